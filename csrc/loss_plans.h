// Planned loss calls: a training loop calls the loss with the same options every step, so the
// options are handed to C++ once (a plan, by number) and each step's op call passes only the
// tensors and the plan's number. Converting an op argument from Python costs ~0.17 us on the
// dev machine whatever its type; the planned call passes 6 instead of 18 (~2 us a step).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "torch_api.h"

namespace softset {

// The ops' kernels (registered in softset.cpp). _soft_set_loss_plan stores the options of
// _soft_set_loss_parts after the tensors and returns the plan's number; _planned_soft_set_loss is
// _soft_set_loss_parts with those options; _drop_soft_set_loss_plan forgets a plan.
int64_t soft_set_loss_plan(const Tensor& grid, std::string_view approx, double k, int64_t num_classes,
                           std::optional<int64_t> ignore_index, bool samplewise, const std::vector<int64_t>& shape,
                           std::string_view task, bool validate, std::string_view metric, std::string_view average,
                           double beta, double zero_division);
std::tuple<Tensor, Tensor, Tensor> planned_soft_set_loss(const Tensor& preds, const Tensor& target,
                                                         const OptionalTensor& weight, int64_t plan, bool with_grad,
                                                         bool deterministic);
void drop_soft_set_loss_plan(int64_t plan);

}  // namespace softset
