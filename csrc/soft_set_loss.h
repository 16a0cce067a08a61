// The parts of softset_fast::soft_set_loss (soft_set_loss.cpp): the layout of the public
// tensors, the value checks and the forward's parts.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "op_checks.h"
#include "torch_api.h"
#include "cpu/soft_counts_cpu.h"

namespace softset {

// How the public tensors map onto soft_counts' [N, C, L] layout.
struct LossLayout {
  std::vector<int64_t> shape;  // [N, C, L]
  std::string task;            // binary | multilabel | multiclass (for the value checks' messages)
  int64_t num_classes = 0;     // > 0: target holds class indices [N, L]
  int64_t classes = 1;         // C
  bool samplewise = false;
};

struct LossOptions {
  std::string metric, average;
  double beta, zero_division;
};

struct LossInputs {
  Tensor preds, target, weight;  // [N, C, L] views; weight undefined when absent
};

inline OptionalTensor weight_of(const LossInputs& in) {
  return in.weight.defined() ? OptionalTensor(in.weight) : std::nullopt;
}

struct LossParts {
  LossInputs inputs;
  Tensor counts, loss;
  std::optional<cpu::Problem> cpu_problem;  // a CPU training call's checked problem, for its gradient pass
};

LossLayout make_layout(const std::vector<int64_t>& shape, std::string_view task, int64_t num_classes,
                       bool samplewise);

// The value checks of the public API (NaN, ranges, labels, weights), with its messages.
void check_loss_values(const LossLayout& layout, const Tensor& preds, const Tensor& target,
                       const OptionalTensor& weight, std::optional<int64_t> ignore_index);

// Views, checks, counts and loss: the forward of soft_set_loss. With codes, a CPU call records each
// element's cell for a gradient pass that follows (codes->recorded() says where) and keeps its checked
// problem (cpu_problem).
LossParts soft_set_loss_parts(const LossLayout& layout, const Tensor& preds, const Tensor& target,
                              const OptionalTensor& weight, const Tensor& grid, std::string_view approx, double k,
                              std::optional<int64_t> ignore_index, bool validate, bool deterministic,
                              const LossOptions& options, cpu::CellCodes* codes = nullptr);

// The ops' kernels (registered in softset.cpp): the loss, and the loss with the counts and, when
// with_grad, dL/dpreds for an upstream gradient of 1.
Tensor soft_set_loss(const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
                     std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index,
                     bool samplewise, const std::vector<int64_t>& shape, std::string_view task, bool validate,
                     std::string_view metric, std::string_view average, double beta, double zero_division,
                     bool deterministic);
std::tuple<Tensor, Tensor, Tensor> soft_set_loss_training(
    const Tensor& preds, const Tensor& target, const OptionalTensor& weight, const Tensor& grid,
    std::string_view approx, double k, int64_t num_classes, std::optional<int64_t> ignore_index, bool samplewise,
    const std::vector<int64_t>& shape, std::string_view task, bool validate, std::string_view metric,
    std::string_view average, double beta, double zero_division, bool with_grad, bool deterministic);

}  // namespace softset
