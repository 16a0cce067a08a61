"""The public entry point: soft confusion counts over a threshold grid."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._options import Approx, Backend, MultidimAverage, Task, Thresholds, document, strict_keywords
from ._prepare import Layout, check_bool, prepare
from .backends.registry import counts_function, resolve_backend

if TYPE_CHECKING:  # annotations only
    from torch.distributed import ProcessGroup


@strict_keywords
@document
def soft_confusion_matrix(preds: torch.Tensor, target: torch.Tensor, *, thresholds: Thresholds = None,
                          approx: Approx = "linear", delta: float = 0.2, k: float = 10.0, task: Task = "binary",
                          num_classes: int | None = None, weight: torch.Tensor | None = None,
                          ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                          from_logits: bool = False, backend: Backend = "auto", validate_args: bool = True,
                          sync_dist: bool = False, process_group: ProcessGroup | None = None) -> torch.Tensor:
    """Soft confusion counts (tp, fn, fp, tn) at every threshold, differentiable in ``preds``.

    With H̃ the approximation of the step 1[p ≥ τ], weights w and targets y ∈ [0, 1]:
    TP = Σ w·y·H̃, FN = Σ w·y·(1 − H̃), FP = Σ w·(1 − y)·H̃, TN = Σ w·(1 − y)·(1 − H̃),
    so TP + FN and FP + TN do not depend on τ.

    Args:
        {options}

    Shape:
        {loss_shape}

    Returns:
        binary [T, 4]; multilabel / multiclass [C, T, 4]; samplewise adds a leading [N].
        float64 for float64 preds, else float32 (accumulated in float64 by the fused kernels).
        An empty batch gives zero counts.

    Example:
        >>> import softset_fast as sf
        >>> preds = torch.tensor([0.9, 0.8, 0.4, 0.3, 0.2])
        >>> target = torch.tensor([1, 0, 1, 0, 0])
        >>> sf.soft_confusion_matrix(preds, target, thresholds=[0.25, 0.5, 0.75], approx="step")
        tensor([[2., 0., 2., 1.],
                [1., 1., 1., 2.],
                [1., 1., 1., 2.]])
    """
    check_bool("sync_dist", sync_dist)
    prepared = prepare(preds, target, thresholds=thresholds, approx=approx, delta=delta, k=k, task=task,
                       num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                       multidim_average=multidim_average, from_logits=from_logits, validate_args=validate_args)
    soft_counts = counts_function(resolve_backend(backend, prepared.preds.device))
    return counts_of_prepared(prepared, soft_counts, sync_dist, process_group)


def counts_of_prepared(prepared: Layout, soft_counts, sync_dist: bool, process_group) -> torch.Tensor:
    """Runs the op ``soft_counts`` on prepared inputs, sums over ranks if asked, shapes the result."""
    return op_counts(prepared, soft_counts, sync_dist, process_group).reshape(prepared.out_shape)


def op_counts(prepared: Layout, soft_counts, sync_dist: bool, process_group) -> torch.Tensor:
    """The op's [G, C, T, 4] counts of prepared inputs, summed over ranks when ``sync_dist``."""
    counts = soft_counts(prepared.preds, prepared.target, prepared.weight, prepared.grid, prepared.approx,
                         prepared.k, prepared.num_classes, prepared.ignore_index, prepared.samplewise)
    if sync_dist:
        from .distributed import all_reduce_counts, check_ranks_agree
        if not prepared.samplewise:  # (samplewise: all_reduce_counts raises the clear error)
            options = dict(task=prepared.task, approx=prepared.approx, k=prepared.k if prepared.approx == "sigmoid"
                           else None, ignore_index=prepared.ignore_index)
            check_ranks_agree(counts, prepared.grid, options, process_group)
        counts = all_reduce_counts(counts, process_group, samplewise=prepared.samplewise)
    return counts
