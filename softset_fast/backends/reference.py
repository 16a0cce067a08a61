"""The reference backend: the op contract in plain PyTorch, the oracle of every fused backend.

It materialises the [N, C, L, T] matrix of H̃ values in float64, so it is
O(N·T) in time and memory; its gradients come from autograd. The public face
is :mod:`softset_fast.reference`.
"""
from __future__ import annotations

import torch

from .._grid import coefficient_table, resolve_thresholds
from .._prepare import accumulation_dtype, check_options


def heaviside(p: torch.Tensor, grid: torch.Tensor, approx: str, k: float = 10.0) -> torch.Tensor:
    """H̃(p, τ) for every threshold of ``grid`` [T, 8]: returns p's shape + [T].

    Branch conventions (shared by every backend): linear takes m1 for p < a,
    m3 for p > b and m2 otherwise (a and b included); step is 1[p ≥ τ] with a
    zero gradient.
    """
    p = p.unsqueeze(-1)
    tau = grid[:, 0].to(p.dtype)
    if approx == "step":
        return (p >= tau).to(p.dtype) + p * 0
    if approx == "sigmoid":
        return torch.sigmoid(k * (p - tau))
    a, b, m1, m2, m3, c2 = grid[:, 1:7].to(p.dtype).unbind(1)
    # Above b, m3·p + c3 written 1 − m3·(1 − p): exactly 1 at p = 1 (1 − p is exact there).
    return torch.where(p < a, m1 * p, torch.where(p > b, 1 - m3 * (1 - p), m2 * p + c2))


def approximate_step(p: torch.Tensor, thresholds=None, approx: str = "linear", delta: float = 0.2,
                     k: float = 10.0) -> torch.Tensor:
    """H̃(p, τ) in float64 for the public threshold and approximation arguments: p.shape + [T]."""
    check_options(approx, delta, k, "binary", "global")
    grid = coefficient_table(resolve_thresholds(thresholds, approx, p.device), approx, float(delta))
    return heaviside(p.to(torch.float64), grid, approx, k)


def soft_counts(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    """The op contract in plain PyTorch: [N, C, L] inputs -> [G, C, T, 4] (tp, fn, fp, tn)."""
    acc = torch.float64
    batch, classes, _ = preds.shape
    p = preds.to(acc)
    if num_classes > 0:
        class_ids = torch.arange(classes, device=preds.device).view(1, classes, 1)
        y = (target.unsqueeze(1) == class_ids).to(acc)
        keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
        keep = keep.unsqueeze(1)
        w = keep.to(acc) if weight is None else weight.to(acc).unsqueeze(1) * keep
    else:
        keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
        y = torch.where(keep, target.to(acc), 0)
        w = keep.to(acc) if weight is None else weight.to(acc) * keep
    w = w.expand(batch, classes, -1)
    y = y.expand(batch, classes, -1)
    h = heaviside(p, grid, approx, k)                       # [N, C, L, T]
    positive = (w * y).unsqueeze(-1)
    negative = (w * (1 - y)).unsqueeze(-1)
    dims = (2,) if samplewise else (0, 2)
    # Elements outside a set (weight 0) contribute nothing, gradient included: where(), not 0·h,
    # so an infinite dL/dcount (a metric of subnormal counts) gives them 0, not 0·inf = NaN.
    s1 = torch.where(positive > 0, positive * h, 0).sum(dims)
    s0 = torch.where(negative > 0, negative * h, 0).sum(dims)
    total_pos = positive.sum(dims)
    total_neg = negative.sum(dims)
    counts = torch.stack([s1, total_pos - s1, s0, total_neg - s0], dim=-1)
    if not samplewise:
        counts = counts.unsqueeze(0)
    return counts.to(accumulation_dtype(preds.dtype))
