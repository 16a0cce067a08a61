// Autograd of softset_fast::soft_counts and metric_loss in C++, for every device with a
// C++ kernel.
//
// The counts are differentiable in preds only; the gradient is the private op
// _soft_counts_backward, called with the forward's inputs (nothing [N, T]-sized is
// saved). The same rule as softset_fast/_autograd.py (which the Triton op uses), kept
// in C++ here because the Python wrapper of torch.library.register_autograd cost
// ~100 us of host time per training step, more than both kernels at N = 1000.
//
// metric_loss is differentiable in counts through the private op metric_loss_backward.
// That op has no derivative of its own: its Autograd kernel records a node that raises
// when a second derivative is asked for, instead of returning a wrong (zero) one.
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

#include "op_calls.h"
#include "soft_set_loss.h"

namespace softset {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SoftCounts : public torch::autograd::Function<SoftCounts> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& preds, const at::Tensor& target,
                            const c10::optional<at::Tensor>& weight, const at::Tensor& grid, c10::string_view approx,
                            double k, int64_t num_classes, c10::optional<int64_t> ignore_index, bool samplewise) {
    at::AutoDispatchBelowADInplaceOrView guard;
    // References, not copies. (ctx->needs_input_grad is not valid here when no input
    // requires grad: the node then has no edges.)
    ctx->save_for_backward({preds, target, weight.value_or(at::Tensor()), grid});
    ctx->saved_data["approx"] = std::string(approx);
    ctx->saved_data["k"] = k;
    ctx->saved_data["num_classes"] = num_classes;
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["samplewise"] = samplewise;
    return call_soft_counts(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(9);  // one per forward input; only preds gets a gradient
    if (!ctx->needs_input_grad(0)) return result;  // e.g. only weight requires grad
    const variable_list saved = ctx->get_saved_variables();
    const c10::optional<at::Tensor> weight =
        saved[2].defined() ? c10::optional<at::Tensor>(saved[2]) : c10::nullopt;
    const std::string approx = ctx->saved_data["approx"].toStringRef();
    result[0] = call_soft_counts_backward(grads[0], saved[0], saved[1], weight, saved[3], approx,
                              ctx->saved_data["k"].toDouble(), ctx->saved_data["num_classes"].toInt(),
                              ctx->saved_data["ignore_index"].toOptional<int64_t>(),
                              ctx->saved_data["samplewise"].toBool());
    return result;
  }
};

at::Tensor soft_counts_autograd(const at::Tensor& preds, const at::Tensor& target,
                                const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                                c10::string_view approx, double k, int64_t num_classes,
                                c10::optional<int64_t> ignore_index, bool samplewise) {
  return SoftCounts::apply(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
}

class MetricLoss : public torch::autograd::Function<MetricLoss> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& counts, c10::string_view metric,
                            c10::string_view average, double beta, double zero_division) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({counts});
    ctx->saved_data["metric"] = std::string(metric);
    ctx->saved_data["average"] = std::string(average);
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["zero_division"] = zero_division;
    return call_metric_loss(counts, metric, average, beta, zero_division);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(5);  // one per forward input; only counts gets a gradient
    const variable_list saved = ctx->get_saved_variables();
    const std::string metric = ctx->saved_data["metric"].toStringRef();
    const std::string average = ctx->saved_data["average"].toStringRef();
    result[0] = call_metric_loss_backward(grads[0], saved[0], metric, average, ctx->saved_data["beta"].toDouble(),
                                          ctx->saved_data["zero_division"].toDouble());
    return result;
  }
};

// Reached only when the gradient of metric_loss is itself differentiated (create_graph=True).
class MetricLossBackward : public torch::autograd::Function<MetricLossBackward> {
 public:
  static at::Tensor forward(AutogradContext* /*ctx*/, const at::Tensor& grad, const at::Tensor& counts,
                            c10::string_view metric, c10::string_view average, double beta, double zero_division) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_metric_loss_backward(grad, counts, metric, average, beta, zero_division);
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grads*/) {
    TORCH_CHECK(false,
                "metric_loss: second derivatives are not implemented by the fused epilogue; for higher-order "
                "gradients compute the loss on the tensor path, 1 - softset_fast.metrics.<metric>(counts).mean()");
    return variable_list(6);
  }
};

at::Tensor metric_loss_autograd(const at::Tensor& counts, c10::string_view metric, c10::string_view average,
                                double beta, double zero_division) {
  return MetricLoss::apply(counts, metric, average, beta, zero_division);
}

at::Tensor metric_loss_backward_autograd(const at::Tensor& grad, const at::Tensor& counts, c10::string_view metric,
                                         c10::string_view average, double beta, double zero_division) {
  return MetricLossBackward::apply(grad, counts, metric, average, beta, zero_division);
}

}  // namespace
}  // namespace softset

namespace softset {
namespace {

// Reached only when the gradient of soft_counts is itself differentiated (create_graph=True).
class SoftCountsBackward : public torch::autograd::Function<SoftCountsBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& preds,
                            const at::Tensor& target, const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                            c10::string_view approx, double k, int64_t num_classes,
                            c10::optional<int64_t> ignore_index, bool samplewise) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_soft_counts_backward(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(false,
                "soft_counts: second derivatives are not implemented by the fused kernels (cpu, cuda, triton); for "
                "higher-order gradients use backend='reference'");
    return variable_list(10);
  }
};

at::Tensor soft_counts_backward_autograd(const at::Tensor& grad, const at::Tensor& preds, const at::Tensor& target,
                                         const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                                         c10::string_view approx, double k, int64_t num_classes,
                                         c10::optional<int64_t> ignore_index, bool samplewise) {
  return SoftCountsBackward::apply(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index,
                                   samplewise);
}

// One node for the whole loss. A training call (preds requires grad, one loss value) computes
// dL/dpreds in the forward, while the data is still in cache: counts, loss, dL/dcounts and the
// per-sample pass in one op call, so the backward is one multiplication by the upstream gradient
// (the way fused cross-entropy kernels do it; float32 / float64 preds, whose gradient rounded once
// more by that multiplication stays within an ulp). Otherwise, and for create_graph=True (where the
// backward ops' own autograd must raise instead of giving a zero second derivative), the backward
// runs metric_loss_backward -> dL/dcounts, then _soft_counts_backward -> dL/dpreds.
class SoftSetLoss : public torch::autograd::Function<SoftSetLoss> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& preds, const at::Tensor& target,
                            const c10::optional<at::Tensor>& weight, const at::Tensor& grid, c10::string_view approx,
                            double k, int64_t num_classes, c10::optional<int64_t> ignore_index, bool samplewise,
                            at::IntArrayRef shape, c10::string_view task, bool validate, c10::string_view metric,
                            c10::string_view average, double beta, double zero_division, bool gradient_now) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const LossLayout layout = make_layout(shape, task, num_classes, samplewise);
    const LossOptions options{std::string(metric), std::string(average), beta, zero_division};
    // The counting pass records each element's cell for the gradient pass (CPU, linear): kept per
    // thread between calls, so a training loop does not allocate it every step.
    static thread_local cpu::CellCodes codes;
    LossParts parts = soft_set_loss_parts(layout, preds, target, weight, grid, approx, k, ignore_index, validate,
                                          options, gradient_now ? &codes : nullptr);
    at::Tensor grad_preds;
    if (gradient_now) {
      const c10::optional<at::Tensor> w =
          parts.inputs.weight.defined() ? c10::optional<at::Tensor>(parts.inputs.weight) : c10::nullopt;
      const at::Tensor unit = at::ones({}, parts.counts.options().dtype(at::kDouble));
      const at::Tensor grad_counts = counts_gradient(unit, parts.counts, options);
      const cpu::CodePointers cells = codes.recorded();
      grad_preds = cells.narrow != nullptr || cells.wide != nullptr
                       ? cpu::soft_counts_backward_with_codes(grad_counts, parts.inputs.preds, parts.inputs.target, w,
                                                              grid, approx, k, num_classes, ignore_index, samplewise,
                                                              cells)
                       : call_soft_counts_backward(grad_counts, parts.inputs.preds, parts.inputs.target, w, grid,
                                                   approx, k, num_classes, ignore_index, samplewise);
      grad_preds = grad_preds.reshape(preds.sizes());
    }
    // preds itself, not its [N, C, L] view: a second derivative must reach the backward ops'
    // own autograd (which says it is not implemented) instead of a tensor without history.
    ctx->save_for_backward({preds, parts.inputs.target, parts.inputs.weight, grid, parts.counts, grad_preds});
    ctx->saved_data["shape"] = shape.vec();
    ctx->saved_data["approx"] = std::string(approx);
    ctx->saved_data["k"] = k;
    ctx->saved_data["num_classes"] = num_classes;
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["samplewise"] = samplewise;
    ctx->saved_data["metric"] = options.metric;
    ctx->saved_data["average"] = options.average;
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["zero_division"] = zero_division;
    return parts.loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(17);  // one per forward input; only preds gets a gradient
    if (!ctx->needs_input_grad(0)) return result;
    const variable_list saved = ctx->get_saved_variables();
    if (saved[5].defined() && !at::GradMode::is_enabled()) {
      // loss.backward() on the CPU: the upstream gradient is 1 and the saved gradient is the answer.
      // Returned as is, it spares a pass and a fresh N-element buffer: once the engine releases this
      // node's saved tensors, AccumulateGrad adopts it as preds.grad (with retain_graph=True the node
      // keeps its reference, so AccumulateGrad copies it and the saved gradient stays intact).
      if (readable_on_cpu(grads[0]) && grads[0].item<double>() == 1.0) {
        result[0] = saved[5];
        return result;
      }
      result[0] = saved[5] * grads[0];  // the loss is a 0-d tensor here: dL/dpreds scales with it
      return result;
    }
    const c10::optional<at::Tensor> weight =
        saved[2].defined() ? c10::optional<at::Tensor>(saved[2]) : c10::nullopt;
    const LossOptions options{ctx->saved_data["metric"].toStringRef(), ctx->saved_data["average"].toStringRef(),
                              ctx->saved_data["beta"].toDouble(), ctx->saved_data["zero_division"].toDouble()};
    const at::Tensor grad_counts = counts_gradient(grads[0], saved[4], options);
    const at::Tensor preds = saved[0];
    const at::Tensor grad_preds = call_soft_counts_backward(
        grad_counts, preds.reshape(ctx->saved_data["shape"].toIntVector()), saved[1], weight, saved[3],
        ctx->saved_data["approx"].toStringRef(),
        ctx->saved_data["k"].toDouble(), ctx->saved_data["num_classes"].toInt(),
        ctx->saved_data["ignore_index"].toOptional<int64_t>(), ctx->saved_data["samplewise"].toBool());
    result[0] = grad_preds.reshape(preds.sizes());
    return result;
  }

 private:
  // dL/dcounts in float64, from float64 counts, as the counts' backward reads it: from float32
  // counts it can overflow (2/fp for a subnormal fp) and become inf·0 = NaN for samples y = 0.
  static at::Tensor counts_gradient(const at::Tensor& grad, const at::Tensor& counts, const LossOptions& options) {
    // No aten::to when already float64: an op below autograd must not return its input.
    const at::Tensor counts64 = counts.scalar_type() == at::kDouble ? counts : counts.to(at::kDouble);
    return call_metric_loss_backward(grad, counts64, options.metric, options.average, options.beta,
                                     options.zero_division);
  }
};

at::Tensor soft_set_loss_autograd(const at::Tensor& preds, const at::Tensor& target,
                                  const c10::optional<at::Tensor>& weight, const at::Tensor& grid,
                                  c10::string_view approx, double k, int64_t num_classes,
                                  c10::optional<int64_t> ignore_index, bool samplewise, at::IntArrayRef shape,
                                  c10::string_view task, bool validate, c10::string_view metric,
                                  c10::string_view average, double beta, double zero_division) {
  // A training call: the gradient is computed with the loss (see SoftSetLoss). Not for float16 /
  // bfloat16 preds: their gradient rounded before the upstream scaling would be rounded twice.
  const bool single_rounding = preds.scalar_type() == at::kFloat || preds.scalar_type() == at::kDouble;
  const bool gradient_now =
      average != "none" && single_rounding && preds.requires_grad() && at::GradMode::is_enabled();
  return SoftSetLoss::apply(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, shape,
                            task, validate, metric, average, beta, zero_division, gradient_now);
}

}  // namespace
}  // namespace softset

TORCH_LIBRARY_IMPL(softset_fast, Autograd, m) {
  m.impl("_soft_counts_backward", &softset::soft_counts_backward_autograd);
  m.impl("soft_set_loss", &softset::soft_set_loss_autograd);
  m.impl("soft_counts", &softset::soft_counts_autograd);
  m.impl("metric_loss", &softset::metric_loss_autograd);
  m.impl("metric_loss_backward", &softset::metric_loss_backward_autograd);
}
