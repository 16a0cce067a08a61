// The parts of softset_fast::soft_set_loss (soft_set_loss.cpp), shared with its
// autograd (autograd.cpp), which keeps the counts and the [N, C, L] views for the backward.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "op_checks.h"
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
  at::Tensor preds, target, weight;  // [N, C, L] views; weight undefined when absent
};

struct LossParts {
  LossInputs inputs;
  at::Tensor counts, loss;
};

// A CPU tensor whose values C++ can read: not a tensor subclass such as FakeTensor (under
// torch.compile or opcheck), which holds no data.
inline bool readable_on_cpu(const at::Tensor& x) {
  return x.is_cpu() && !x.key_set().has(c10::DispatchKey::Python);
}

LossLayout make_layout(at::IntArrayRef shape, c10::string_view task, int64_t num_classes, bool samplewise);

// The value checks of the public API (NaN, ranges, labels, weights), with its messages.
void check_loss_values(const LossLayout& layout, const at::Tensor& preds, const at::Tensor& target,
                       const c10::optional<at::Tensor>& weight, c10::optional<int64_t> ignore_index);

// Views, checks, counts and loss: the forward of soft_set_loss. With codes, a CPU call records each
// element's cell for a gradient pass that follows (codes->recorded() says where).
LossParts soft_set_loss_parts(const LossLayout& layout, const at::Tensor& preds, const at::Tensor& target,
                              const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                              c10::string_view approx, double k, c10::optional<int64_t> ignore_index, bool validate,
                              const LossOptions& options, cpu::CellCodes* codes = nullptr);

}  // namespace softset
