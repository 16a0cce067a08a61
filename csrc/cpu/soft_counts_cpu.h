// Internals shared by the CPU forward (soft_counts_cpu.cpp) and backward
// (soft_counts_backward_cpu.cpp) kernels: argument checks, the parsed problem,
// grid look-ups, per-element labels and the one dtype/variant dispatch helper.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>

#include <string>
#include <type_traits>
#include <vector>

#include "../softset_common.h"

namespace softset {
namespace cpu {

// Elements per parallel chunk: large enough that per-chunk setup is noise.
constexpr int64_t kGrain = 1 << 15;

// How target values become (y, skip).
enum class TargetKind : int {
  kBinary = 0,  // bool: y in {0, 1}
  kSoft = 1,    // integer or floating target of preds' shape: y = value (soft labels allowed)
  kClass = 2,   // class indices [N, L]: y = (target == c), one-vs-rest
};

// The op's arguments, checked, with contiguous tensors and the grid columns split out.
struct Problem {
  at::Tensor preds, target, weight, grid;  // weight undefined when absent
  Approx approx;
  double k;
  int64_t N, C, L, T;
  int64_t num_classes;
  bool has_ignore;
  int64_t ignore_index;
  bool samplewise;
  int64_t G() const { return samplewise ? N : 1; }
  std::vector<double> tau, a, b;  // grid columns, contiguous
};

Problem make_problem(const at::Tensor& preds, const at::Tensor& target, const c10::optional<at::Tensor>& weight,
                     const at::Tensor& grid, c10::string_view approx, double k, int64_t num_classes,
                     c10::optional<int64_t> ignore_index, bool samplewise, const char* op_name);

// Count of grid values below p in O(1) for evenly spaced grids, O(log T) at worst:
// a uniform bucket table over [x_0, x_{T-1}] (about 16 buckets per grid point) gives
// the count at the bucket's left edge; exact comparisons with x then correct it.
struct LookupView {
  const double* x;
  const int64_t* start;  // start[j] = #{x < left edge of bucket j}, start[buckets] = T
  int64_t T, buckets;
  double lo, scale;

  template <bool Strict>
  static bool before(double v, double p) { return Strict ? v < p : v <= p; }

  // #{t : x_t < p} (Strict) or #{t : x_t <= p}. Exact for any p, NaN included (-> 0).
  template <bool Strict>
  int64_t count(double p) const {
    const int64_t j = bucket_of(p, lo, scale, buckets);
    int64_t i = start[j];
    if (start[j + 1] - i > 4) return count_before<Strict>(x, 1, T, p, i, start[j + 1] + 1);  // crowded
    if (i < T && before<Strict>(x[i], p)) {
      do ++i; while (i < T && before<Strict>(x[i], p));
    } else {
      while (i > 0 && !before<Strict>(x[i - 1], p)) --i;
    }
    return i;
  }
};

class Lookup {
 public:
  explicit Lookup(const std::vector<double>& x);
  // A plain copy for the hot loop: a local the compiler keeps in registers.
  LookupView view() const { return LookupView{x_, start_.data(), T_, buckets_, lo_, scale_}; }

 private:
  const double* x_ = nullptr;
  int64_t T_ = 0, buckets_ = 1;
  double lo_ = 0.0, scale_ = 0.0;
  std::vector<int64_t> start_;
};

// The label of one element: skip (ignored) or y. For kBinary / kClass y is 0 or 1.
template <typename target_t, TargetKind K>
struct Labels {
  const target_t* target;  // [N, C, L] or [N, L] (kClass)
  bool has_ignore;
  target_t ignore_as_target;  // ignore_index converted like torch's `target != ignore_index`
  int64_t ignore_index;

  // y of element with target offset `i` in class `c`; returns false when ignored.
  inline bool get(int64_t i, int64_t c, double& y) const {
    const target_t v = target[i];
    if constexpr (K == TargetKind::kBinary) {
      // torch compares bool with an int in int64.
      if (has_ignore && static_cast<int64_t>(v) == ignore_index) return false;
      y = v ? 1.0 : 0.0;
    } else if constexpr (K == TargetKind::kSoft) {
      if (has_ignore && v == ignore_as_target) return false;
      y = static_cast<double>(v);
    } else {
      if (has_ignore && v == ignore_as_target) return false;
      y = static_cast<int64_t>(v) == c ? 1.0 : 0.0;
    }
    return true;
  }
};

template <typename target_t, TargetKind K>
Labels<target_t, K> make_labels(const Problem& pr) {
  Labels<target_t, K> labels;
  labels.target = pr.target.data_ptr<target_t>();
  labels.has_ignore = pr.has_ignore;
  labels.ignore_index = pr.ignore_index;
  labels.ignore_as_target = static_cast<target_t>(pr.ignore_index);
  return labels;
}

// Calls f(preds_t{}, target_t{}, kind, approx) with the compile-time variants of this call:
// preds dtype x target dtype x target kind x approximation. The only place that branches
// on them; the kernels see template parameters.
template <typename T>
struct TypeTag {
  using type = T;
};
template <TargetKind K>
using KindTag = std::integral_constant<TargetKind, K>;
template <Approx A>
using ApproxTag = std::integral_constant<Approx, A>;

template <bool WithStep, typename F>
void dispatch_approx(Approx approx, F&& f) {
  switch (approx) {
    case Approx::kLinear: f(ApproxTag<Approx::kLinear>{}); break;
    case Approx::kSigmoid: f(ApproxTag<Approx::kSigmoid>{}); break;
    case Approx::kStep:
      if constexpr (WithStep) f(ApproxTag<Approx::kStep>{});
      else TORCH_INTERNAL_ASSERT(false, "step has no kernel here");
      break;
  }
}

template <typename F>
void dispatch_target(const Problem& pr, F&& f) {
  const at::ScalarType dtype = pr.target.scalar_type();
  if (pr.num_classes > 0) {
    switch (dtype) {
      case at::kByte: f(TypeTag<uint8_t>{}, KindTag<TargetKind::kClass>{}); return;
      case at::kInt: f(TypeTag<int32_t>{}, KindTag<TargetKind::kClass>{}); return;
      case at::kLong: f(TypeTag<int64_t>{}, KindTag<TargetKind::kClass>{}); return;
      default: break;
    }
  } else {
    switch (dtype) {
      case at::kBool: f(TypeTag<bool>{}, KindTag<TargetKind::kBinary>{}); return;
      case at::kByte: f(TypeTag<uint8_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kInt: f(TypeTag<int32_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kLong: f(TypeTag<int64_t>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kHalf: f(TypeTag<at::Half>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kBFloat16: f(TypeTag<at::BFloat16>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kFloat: f(TypeTag<float>{}, KindTag<TargetKind::kSoft>{}); return;
      case at::kDouble: f(TypeTag<double>{}, KindTag<TargetKind::kSoft>{}); return;
      default: break;
    }
  }
  TORCH_INTERNAL_ASSERT(false, "unchecked target dtype ", dtype);
}

template <bool WithStep, typename F>
void dispatch(const Problem& pr, F&& f) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pr.preds.scalar_type(), "softset_fast_cpu", [&] {
    using preds_t = scalar_t;
    dispatch_target(pr, [&](auto target_tag, auto kind_tag) {
      dispatch_approx<WithStep>(pr.approx, [&](auto approx_tag) {
        f(TypeTag<preds_t>{}, target_tag, kind_tag, approx_tag);
      });
    });
  });
}

// Element offsets of a contiguous run of one row (n, c) of preds [N, C, L]:
// preds offset e, target / weight offset t (differs for class indices [N, L]).
struct Run {
  int64_t e, t, n, c, count;
};

// Calls body(run) for the runs covering flat preds offsets [begin, end).
template <typename Body>
inline void for_each_run(const Problem& pr, int64_t begin, int64_t end, Body&& body) {
  const int64_t L = pr.L;
  int64_t e = begin;
  while (e < end) {
    const int64_t row = e / L, l = e - row * L;
    const int64_t count = std::min(end - e, L - l);
    const int64_t n = row / pr.C, c = row - n * pr.C;
    const int64_t t = pr.num_classes > 0 ? n * L + l : e;
    body(Run{e, t, n, c, count});
    e += count;
  }
}

// exp(k τ_t) for the factorised sigmoid, and whether it is safe for this grid.
struct SigmoidTable {
  std::vector<double> exp_k_tau;
  bool factorised = false;
};
SigmoidTable make_sigmoid_table(const Problem& pr);

}  // namespace cpu
}  // namespace softset
