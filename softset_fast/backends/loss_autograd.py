"""Autograd of the C++ ops (csrc/softset.cpp), in Python: torch's stable ABI, which the
extension is built on, has no C++ autograd.

* ``soft_counts`` -> ``_soft_counts_backward`` and ``metric_loss`` -> ``metric_loss_backward``
  through ``torch.library.register_autograd`` (counts_autograd.py's rule); the backward ops'
  own derivative raises, so a second derivative is a clear error, never zeros.
* ``soft_set_loss``, the fused loss step, through :class:`SoftSetLoss`, a plain
  ``torch.autograd.Function``: a training call (preds requires grad) runs the op
  ``_soft_set_loss_parts`` (or ``_planned_soft_set_loss``, the same with the options held in
  C++ by a plan: softset_fast/_loss_plans.py), which computes dL/dpreds in the forward while
  the data is in cache (float32 / float64 preds, a 0-d loss), so the backward is one multiplication by the
  upstream gradient, or none when it is 1. Measured on the 2-core dev machine: a Function
  costs ~17 us per step over the C++ autograd it replaces, register_autograd ~68 us
  (benchmarks/RESULTS_cpu.md, "Autograd in Python").
  ``register_autograd`` also covers ``soft_set_loss`` called directly (the unfused backward).
"""
from __future__ import annotations

import torch

from .._prepare import accumulation_dtype
from .counts_autograd import backward_through, no_second_derivative, setup_context, setup_nothing

_ops = torch.ops.softset_fast


def _metric_loss_setup(ctx, inputs, output):
    counts, metric, average, beta, zero_division = inputs
    ctx.save_for_backward(counts)
    ctx.options = (metric, average, beta, zero_division)


def _metric_loss_backward(ctx, grad):
    counts, = ctx.saved_tensors
    return (_ops.metric_loss_backward(grad, counts, *ctx.options),) + (None,) * 4


def _no_metric_loss_second_derivative(ctx, grad):
    raise RuntimeError("metric_loss: second derivatives are not implemented by the fused epilogue; for higher-order "
                       "gradients compute the loss on the tensor path, 1 - softset_fast.metrics.<metric>(counts).mean()")


def _kernel_target_and_weight(preds, target, weight, shape, num_classes):
    """target and weight in the kernels' layout ([N, L] class indices or [N, C, L]), the weight in the
    counts' dtype: what soft_set_loss does to them in C++ (csrc/soft_set_loss.cpp, view_inputs)."""
    target_shape = (shape[0], shape[2]) if num_classes > 0 else tuple(shape)
    if weight is not None:
        weight = weight.reshape(target_shape).to(accumulation_dtype(preds.dtype))
    return target.reshape(target_shape), weight


def _unfused_backward(grad, preds, target, weight, counts, options):
    """dL/dpreds from the counts: metric_loss_backward, then _soft_counts_backward on preds' [N, C, L] view
    (preds itself, so a second derivative reaches the backward ops' own autograd, which raises)."""
    grid, approx, k, num_classes, ignore_index, samplewise, shape, _task, _validate, metric, average, beta, \
        zero_division = options
    # dL/dcounts in float64, from float64 counts: from float32 counts it can overflow (2/fp for a
    # subnormal fp) and become inf·0 = NaN for samples y = 0.
    grad_counts = _ops.metric_loss_backward(grad, counts.double(), metric, average, beta, zero_division)
    target, weight = _kernel_target_and_weight(preds, target, weight, shape, num_classes)
    grad_preds = _ops._soft_counts_backward(grad_counts, preds.reshape(shape), target, weight,
                                            grid, approx, k, num_classes, ignore_index, samplewise)
    return grad_preds.reshape(preds.shape)


# The C++ value checks' errors start with this (csrc/torch_api.h, fail_value): torch raises them as
# ValueError up to 2.14 and as RuntimeError from 2.15 on; here they are ValueError on every torch.
_VALUE_ERROR_PREFIX = "ValueError: "


def _value_error(error: Exception) -> Exception:
    """The op's error as the public API raises it: a bad value is a ValueError, without the prefix."""
    message = str(error)
    return ValueError(message[len(_VALUE_ERROR_PREFIX):]) if message.startswith(_VALUE_ERROR_PREFIX) else error


class SoftSetLoss(torch.autograd.Function):
    """soft_set_loss with one backward node (see the module doc)."""

    @staticmethod
    def forward(ctx, preds, target, weight, options, plan):
        average = options[10]
        gradient_now = average != "none" and preds.dtype in (torch.float32, torch.float64)
        deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            if plan is None:
                loss, counts, grad_preds = _ops._soft_set_loss_parts.default(
                    preds, target, weight, *options, gradient_now, deterministic)
            else:  # the same op with the options stored under the plan's number (fewer arguments)
                loss, counts, grad_preds = _ops._planned_soft_set_loss.default(
                    preds, target, weight, plan, gradient_now, deterministic)
        except (ValueError, RuntimeError) as error:
            raise _value_error(error) from None
        # Not save_for_backward: grad_preds is a result of this op, not an input or output, and the
        # backward hands it on without a copy.
        ctx.grad_preds = grad_preds if gradient_now else None
        ctx.save_for_backward(preds, target, weight, counts)
        ctx.options = options
        return loss

    @staticmethod
    def backward(ctx, grad):
        grad_preds, ctx.grad_preds = ctx.grad_preds, None  # the node's reference goes: preds.grad may adopt it
        if grad_preds is not None and not torch.is_grad_enabled():
            # With create_graph (grad mode on) the unfused path runs, whose second derivative raises.
            # loss.backward() on the CPU: the upstream gradient is 1 and the saved gradient is the answer,
            # handed on as is (no pass, no new buffer: AccumulateGrad adopts it as preds.grad).
            # Not while tracing (torch.compile; FakeTensors), where grad holds no value.
            if (not torch.compiler.is_compiling() and type(grad) is torch.Tensor and grad.is_cpu
                    and grad.item() == 1.0):
                return grad_preds, None, None, None, None
            return grad_preds * grad, None, None, None, None
        preds, target, weight, counts = ctx.saved_tensors
        return _unfused_backward(grad, preds, target, weight, counts, ctx.options), None, None, None, None


def soft_set_loss(preds, target, weight, *options):
    """torch.ops.softset_fast.soft_set_loss(preds, target, weight, *options), differentiable in preds with
    one backward node."""
    if preds.requires_grad and torch.is_grad_enabled():
        return SoftSetLoss.apply(preds, target, weight, options, None)  # one tuple: apply's cost grows with its arguments
    try:
        return _ops.soft_set_loss.default(preds, target, weight, *options, torch.are_deterministic_algorithms_enabled())
    except (ValueError, RuntimeError) as error:
        raise _value_error(error) from None


def planned_soft_set_loss(preds, target, weight, options, plan: int):
    """soft_set_loss(preds, target, weight, *options) through the plan numbered ``plan``, which holds
    ``options`` in C++ (torch.ops.softset_fast._soft_set_loss_plan; softset_fast/_loss_plans.py)."""
    if preds.requires_grad and torch.is_grad_enabled():
        return SoftSetLoss.apply(preds, target, weight, options, plan)
    try:
        return _ops._planned_soft_set_loss.default(preds, target, weight, plan, False,
                                                   torch.are_deterministic_algorithms_enabled())[0]
    except (ValueError, RuntimeError) as error:
        raise _value_error(error) from None


def _soft_set_loss_setup(ctx, inputs, output):
    preds, target, weight, *options = inputs
    ctx.save_for_backward(preds, target, weight)
    ctx.options = tuple(options[:13])  # without deterministic
    ctx.no_grads = (None,) * (len(inputs) - 1)


def _soft_set_loss_backward(ctx, grad):
    preds, target, weight = ctx.saved_tensors
    grid, approx, k, num_classes, ignore_index, samplewise, shape = ctx.options[:7]
    kernel_target, kernel_weight = _kernel_target_and_weight(preds, target, weight, shape, num_classes)
    counts = _ops.soft_counts(preds.detach().reshape(shape), kernel_target, kernel_weight, grid, approx,
                              k, num_classes, ignore_index, samplewise, torch.are_deterministic_algorithms_enabled())
    return (_unfused_backward(grad, preds, target, weight, counts, ctx.options),) + ctx.no_grads


def register() -> None:
    """Registers the autograd of the C++ ops (once, when the extension loads)."""
    torch.library.register_autograd("softset_fast::soft_counts", backward_through(_ops._soft_counts_backward),
                                    setup_context=setup_context)
    torch.library.register_autograd("softset_fast::_soft_counts_backward", no_second_derivative,
                                    setup_context=setup_nothing)
    torch.library.register_autograd("softset_fast::metric_loss", _metric_loss_backward,
                                    setup_context=_metric_loss_setup)
    torch.library.register_autograd("softset_fast::metric_loss_backward", _no_metric_loss_second_derivative,
                                    setup_context=setup_nothing)
    torch.library.register_autograd("softset_fast::soft_set_loss", _soft_set_loss_backward,
                                    setup_context=_soft_set_loss_setup)
