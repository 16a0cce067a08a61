// The argument checks of the soft_counts ops, written once for every C++ device
// (csrc/cpu, csrc/cuda). The Triton op has a Python twin (softset_fast/backends/
// op_checks.py) that tests/test_op_contract.py holds to the same table of bad calls.
#pragma once


#include <algorithm>
#include <limits>
#include <string>

#include "softset_common.h"
#include "torch_api.h"

namespace softset {

// What a checked call is: sizes and the parsed approximation.
struct OpShape {
  int64_t N, C, L, T;
  int64_t G;  // groups of the result: N when samplewise, else 1
  Approx approx;
};

// The dtype of the counts (and weights) of a preds dtype: softset_common.h's counts_type, which
// treats every type but double alike (any preds dtype maps, so a bad one is reported by the checks).
inline ScalarType counts_dtype(ScalarType preds) {
  return preds == ScalarType::Double ? c10::CppTypeToScalarType<counts_type<double>>::value
                                     : c10::CppTypeToScalarType<counts_type<float>>::value;
}

// Metadata checks (shapes, dtypes, devices, options) of a soft_counts / _soft_counts_backward call,
// then the grid's values (check_grid). Errors read "<op>: <argument> ...".
OpShape check_op_args(const char* op, const Tensor& preds, const Tensor& target, const OptionalTensor& weight,
                      const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                      std::optional<int64_t> ignore_index, bool samplewise);

// The backward's grad: [G, C, T, 4], floating point, on preds' device.
void check_backward_grad(const char* op, const Tensor& grad, const Tensor& preds, const OpShape& shape);

// The ranges the public API's value checks read (soft_set_loss with validate=True): of preds, of the
// targets not ignored (bool targets are not read) and of the weights in the counts' dtype. NaN is
// flagged apart (min / max skip it). Gathered in the CPU counting pass, or read back from a device.
struct ValueStats {
  static constexpr double kInf = std::numeric_limits<double>::infinity();
  double preds_low = kInf, preds_high = -kInf;
  bool preds_nan = false;
  double target_low = kInf, target_high = -kInf;
  bool target_nan = false;
  double weight_low = kInf, weight_high = -kInf;
  bool weight_nan = false;

  void merge(const ValueStats& o) {
    preds_low = std::min(preds_low, o.preds_low);
    preds_high = std::max(preds_high, o.preds_high);
    preds_nan |= o.preds_nan;
    target_low = std::min(target_low, o.target_low);
    target_high = std::max(target_high, o.target_high);
    target_nan |= o.target_nan;
    weight_low = std::min(weight_low, o.weight_low);
    weight_high = std::max(weight_high, o.weight_high);
    weight_nan |= o.weight_nan;
  }
};

// The grid's values: every column finite, tau strictly ascending and, for linear, a <= tau <= b with a and b
// ascending (the kernels' segment look-ups assume it). A CPU grid is read every call. Reading a device grid
// costs a copy to the host (a synchronisation), so the last device grid that passed is held and not read
// again while it is the one passed: a cached coefficient table is checked once. (torch's stable ABI has no
// version counter, so a device grid changed in place after its check is not read again.)
void check_grid(const char* op, const Tensor& grid, Approx approx);

}  // namespace softset
