"""The autograd rule of the soft_counts ops, C++ and Triton (torch.library.register_autograd).

The counts are differentiable in preds only; the gradient is the private
backward op of the same backend, called with the forward's inputs. Only the
inputs are saved, never anything [N, T]-sized. The backward ops have no
derivative of their own: theirs raises instead of giving a wrong (zero) one.
"""
from __future__ import annotations

def setup_context(ctx, inputs, output):
    # preds, target, weight, grid, then approx, k, num_classes, ignore_index, samplewise (and the C++
    # op's deterministic, which its backward does not take)
    preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise = inputs[:9]
    if ctx.needs_input_grad[0]:
        ctx.save_for_backward(preds, target, weight, grid)
    ctx.options = (approx, k, num_classes, ignore_index, samplewise)
    ctx.no_grads = (None,) * (len(inputs) - 1)  # for every input but preds


def backward_through(backward_op):
    """The backward function of register_autograd for a forward whose gradient is ``backward_op``."""
    def backward(ctx, grad):
        if not ctx.needs_input_grad[0]:  # e.g. only weight requires grad: there is none to give
            return (None,) + ctx.no_grads
        preds, target, weight, grid = ctx.saved_tensors
        return (backward_op(grad, preds, target, weight, grid, *ctx.options),) + ctx.no_grads
    return backward


def no_second_derivative(ctx, grad):
    """The backward of the backward op: second derivatives are not implemented (an error, not zeros)."""
    raise RuntimeError("soft_counts: second derivatives are not implemented by the fused kernels (cpu, cuda, "
                       "triton); for higher-order gradients use backend='reference'")


def setup_nothing(ctx, inputs, output):
    pass
