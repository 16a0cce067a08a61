"""The fused loss epilogue ``torch.ops.softset_fast.metric_loss``: fake kernels and wrapper.

``metric_loss(counts, metric, average, beta, zero_division)`` is, in one op,

    1 - softset_fast.metrics.<metric>(counts, average=average, ...).mean()

for counts [G, C, T, 4] = (tp, fn, fp, tn) per (group, class, threshold), float32 or
float64 (G = samples when samplewise, else 1; C = 1 for binary). average "macro",
"micro" or "weighted" gives a 0-d loss, the mean over G and T (auroc: over G) of the
class-averaged metric; "none" gives the per-class loss [C], 1 - the mean over G and T of
that class's metric. Computed in float64 (csrc/epilogue.h, one copy for CPU and CUDA),
returned in counts' dtype; deterministic. An empty G or T gives NaN, as the mean over
nothing does on the tensor path.

The gradient in counts is the private op ``metric_loss_backward`` (autograd in
loss_autograd.py); its own derivative raises, so create_graph=True followed by a second
backward fails loudly instead of giving zeros.

``soft_set_loss`` (csrc/soft_set_loss.cpp) is the counts and this epilogue in one op, the
fused training step of softset_fast.losses; ``_soft_set_loss_parts`` its training form
(loss, counts and dL/dpreds).

Here: the fake kernels of the four ops (shapes and dtypes for torch.compile and FakeTensor,
with the C++ argument checks and messages), :data:`FUSED_METRICS` and
:func:`metric_loss_from_counts`.
Importing this module without a built extension is harmless; only the wrapper raises.
"""
from __future__ import annotations

import math

import torch

FUSED_METRICS = ("f1", "fbeta", "accuracy", "precision", "recall", "specificity", "balanced_accuracy", "jaccard",
                 "gmean", "mcc", "auroc")
FUSED_AVERAGES = ("none", "macro", "micro", "weighted")

from . import extension  # loads softset_fast._C when it is built
from .._prepare import accumulation_dtype
from .._wheel import install_hint

# The extension registers the epilogue ops and soft_set_loss together; read once (torch.compile reads a bool).
AVAILABLE = extension.extension_error is None and hasattr(torch.ops.softset_fast, "soft_set_loss")


def _check_args(op, counts, metric, average, beta, zero_division) -> None:
    """The checks of csrc/epilogue_args.h (make_problem), with its messages."""
    def check(ok, message):
        torch._check(ok, lambda: f"{op}: {message()}")

    check(counts.dim() == 4 and counts.shape[3] == 4,
          lambda: f"counts must have shape [G, C, T, 4] (tp, fn, fp, tn), got {list(counts.shape)}")
    check(counts.dtype in (torch.float32, torch.float64),
          lambda: f"counts must be float32 or float64, got {counts.dtype}")
    check(metric in FUSED_METRICS,
          lambda: f"metric must be one of {', '.join(repr(m) for m in FUSED_METRICS)}, got '{metric}'")
    if metric == "fbeta":
        check(math.isfinite(beta) and beta > 0, lambda: f"beta must be a finite number > 0 for metric='fbeta', got {beta}")
    check(average in FUSED_AVERAGES,
          lambda: f"average must be one of {', '.join(repr(a) for a in FUSED_AVERAGES)}, got '{average}'")
    check(math.isfinite(zero_division), lambda: f"zero_division must be a finite number, got {zero_division}")


def _loss_shape(counts, average):
    return (counts.shape[1],) if average == "none" else ()


if AVAILABLE:
    @torch.library.register_fake("softset_fast::metric_loss")
    def _metric_loss_fake(counts, metric, average, beta, zero_division):
        _check_args("metric_loss", counts, metric, average, beta, zero_division)
        return counts.new_empty(_loss_shape(counts, average))

    @torch.library.register_fake("softset_fast::metric_loss_backward")
    def _metric_loss_backward_fake(grad, counts, metric, average, beta, zero_division):
        op = "metric_loss_backward"
        _check_args(op, counts, metric, average, beta, zero_division)
        torch._check(grad.device == counts.device,
                     lambda: f"{op}: grad must be on counts' device {counts.device}, got {grad.device}")
        torch._check(grad.dtype.is_floating_point, lambda: f"{op}: grad must be floating point, got {grad.dtype}")
        expected = _loss_shape(counts, average)
        torch._check(tuple(grad.shape) == expected,
                     lambda: f"{op}: grad must have the loss's shape {list(expected)} for average='{average}', "
                             f"got {list(grad.shape)}")
        return torch.empty_like(counts, memory_format=torch.contiguous_format)

    def _soft_set_loss_counts_fake(preds, grid, samplewise, shape, metric, average, beta, zero_division):
        torch._check(len(shape) == 3 and preds.numel() == shape[0] * shape[1] * shape[2],
                     lambda: f"soft_set_loss: shape {list(shape)} does not hold preds of {list(preds.shape)}")
        counts = preds.new_empty((shape[0] if samplewise else 1, shape[1], grid.shape[0], 4),
                                 dtype=accumulation_dtype(preds.dtype))
        _check_args("metric_loss", counts, metric, average, beta, zero_division)
        return counts

    @torch.library.register_fake("softset_fast::soft_set_loss")
    def _soft_set_loss_fake(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise, shape,
                            task, validate, metric, average, beta, zero_division, deterministic=False):
        counts = _soft_set_loss_counts_fake(preds, grid, samplewise, shape, metric, average, beta, zero_division)
        return counts.new_empty(_loss_shape(counts, average))

    @torch.library.register_fake("softset_fast::_soft_set_loss_parts")
    def _soft_set_loss_parts_fake(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise,
                                  shape, task, validate, metric, average, beta, zero_division, with_grad,
                                  deterministic=False):
        counts = _soft_set_loss_counts_fake(preds, grid, samplewise, shape, metric, average, beta, zero_division)
        torch._check(not with_grad or average != "none",
                     lambda: "_soft_set_loss_parts: with_grad needs a 0-d loss (average != 'none')")
        grad_preds = preds.new_empty(preds.shape if with_grad else (0,))
        return counts.new_empty(_loss_shape(counts, average)), counts, grad_preds

    @torch.library.register_fake("softset_fast::_planned_soft_set_loss")
    def _planned_soft_set_loss_fake(preds, target, weight, plan, with_grad, deterministic=False):
        from .._loss_plans import PLANNED_OPTIONS
        options = PLANNED_OPTIONS.get(plan)
        torch._check(options is not None, lambda: f"_planned_soft_set_loss: no loss plan numbered {plan} (dropped, or "
                                                  f"never made by _soft_set_loss_plan)")
        return _soft_set_loss_parts_fake(preds, target, weight, *options, with_grad, deterministic)


def metric_loss_from_counts(counts: torch.Tensor, metric: str, average: str = "macro", beta: float = 1.0,
                            zero_division: float = 0.0) -> torch.Tensor:
    """1 - mean(metric(counts)) in one fused op, differentiable in counts (see the module doc).

    counts: [G, C, T, 4] float32/float64, e.g. torch.ops.softset_fast.soft_counts(...).
    metric: one of :data:`FUSED_METRICS`; beta is used by "fbeta" only.
    Returns a 0-d tensor, or [C] for average="none"; counts' dtype.
    """
    if not AVAILABLE:
        raise RuntimeError(f"torch.ops.softset_fast.metric_loss is not built; {install_hint()}")
    return torch.ops.softset_fast.metric_loss(counts, metric, average, float(beta), float(zero_division))
