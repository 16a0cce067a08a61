// Calls of the softset_fast ops through the dispatcher, for C++ code that composes them
// (autograd.cpp, soft_set_loss.cpp). Each op's typed handle is looked up once.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

namespace softset {

using OptionalTensor = c10::optional<at::Tensor>;

inline at::Tensor call_soft_counts(const at::Tensor& preds, const at::Tensor& target, const OptionalTensor& weight,
                                   const at::Tensor& grid, c10::string_view approx, double k, int64_t num_classes,
                                   c10::optional<int64_t> ignore_index, bool samplewise) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softset_fast::soft_counts", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                                         const at::Tensor&, c10::string_view, double, int64_t,
                                         c10::optional<int64_t>, bool)>();
  return op.call(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
}

inline at::Tensor call_soft_counts_backward(const at::Tensor& grad, const at::Tensor& preds,
                                            const at::Tensor& target, const OptionalTensor& weight,
                                            const at::Tensor& grid, c10::string_view approx, double k,
                                            int64_t num_classes, c10::optional<int64_t> ignore_index,
                                            bool samplewise) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softset_fast::_soft_counts_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const OptionalTensor&, const at::Tensor&, c10::string_view, double,
                                         int64_t, c10::optional<int64_t>, bool)>();
  return op.call(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
}

inline at::Tensor call_metric_loss(const at::Tensor& counts, c10::string_view metric, c10::string_view average,
                                   double beta, double zero_division) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softset_fast::metric_loss", "")
                       .typed<at::Tensor(const at::Tensor&, c10::string_view, c10::string_view, double, double)>();
  return op.call(counts, metric, average, beta, zero_division);
}

inline at::Tensor call_metric_loss_backward(const at::Tensor& grad, const at::Tensor& counts, c10::string_view metric,
                                            c10::string_view average, double beta, double zero_division) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softset_fast::metric_loss_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view, c10::string_view,
                                         double, double)>();
  return op.call(grad, counts, metric, average, beta, zero_division);
}

}  // namespace softset
