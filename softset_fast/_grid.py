"""Threshold grids and the per-threshold coefficients of the approximations.

Every backend reads the same coefficient table, computed here once in float64,
so that all of them take the same branch at the breakpoints a(τ) and b(τ).
"""
from __future__ import annotations

import torch

APPROXIMATIONS = ("linear", "sigmoid", "step")

# Columns of the coefficient table ``grid`` [T, 8] (float64):
#   tau, a, b, m1, m2, m3, c2, c3
# Linear H̃(p) = m1·p (p < a) | m3·p + c3 (p > b) | m2·p + c2 (otherwise).
# For "sigmoid" and "step" only ``tau`` is used; the other columns are zero.
GRID_COLUMNS = ("tau", "a", "b", "m1", "m2", "m3", "c2", "c3")


def default_thresholds() -> list[float]:
    """The paper's grid 0.1, 0.2, …, 0.9 (exactly i/10)."""
    return evenly_spaced(9)


def evenly_spaced(count: int) -> list[float]:
    """``count`` points strictly inside (0, 1): (t + 1) / (count + 1)."""
    return [(t + 1) / (count + 1) for t in range(count)]


def resolve_thresholds(thresholds, approx: str, device, validate: bool = True) -> torch.Tensor:
    """Turn the ``thresholds`` argument into a sorted float64 tensor [T] on ``device``."""
    if thresholds is None:
        values = torch.tensor(default_thresholds(), dtype=torch.float64)
    elif isinstance(thresholds, bool):
        raise TypeError(f"thresholds must be None, an int, a list or a 1-D tensor, got {thresholds!r}")
    elif isinstance(thresholds, int):
        if thresholds < 1:
            raise ValueError(f"thresholds as an int is the number of grid points and must be >= 1, got {thresholds}")
        values = torch.tensor(evenly_spaced(thresholds), dtype=torch.float64)
    elif isinstance(thresholds, (list, tuple)):
        if len(thresholds) == 0:
            raise ValueError("thresholds must not be empty")
        try:
            values = torch.tensor([float(t) for t in thresholds], dtype=torch.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"thresholds must be a list of numbers, got {thresholds!r}") from err
    elif isinstance(thresholds, torch.Tensor):
        if thresholds.dim() != 1:
            raise ValueError(f"thresholds must be a 1-D tensor, got shape {tuple(thresholds.shape)}")
        if thresholds.numel() == 0:
            raise ValueError("thresholds must not be empty")
        if thresholds.dtype == torch.bool or thresholds.is_complex():
            raise TypeError(f"thresholds must be a real tensor, got dtype {thresholds.dtype}")
        values = thresholds.detach().to(torch.float64)
    else:
        raise TypeError(f"thresholds must be None, an int, a list or a 1-D tensor, got {type(thresholds).__name__}")
    values = values.to(device)
    if validate:
        check_thresholds(values, approx)
    return values


def check_thresholds(values: torch.Tensor, approx: str) -> None:
    if not bool(torch.isfinite(values).all()):
        raise ValueError("thresholds must be finite")
    if values.numel() > 1 and not bool((values[1:] > values[:-1]).all()):
        raise ValueError("thresholds must be sorted in strictly ascending order")
    if approx == "linear" and not bool(((values > 0) & (values < 1)).all()):
        raise ValueError("thresholds must lie strictly inside (0, 1) for approx='linear'")


def coefficient_table(thresholds: torch.Tensor, approx: str, delta: float) -> torch.Tensor:
    """The table [T, 8] (see GRID_COLUMNS) shared by every backend, float64."""
    tau = thresholds.to(torch.float64)
    if approx != "linear":
        zeros = torch.zeros_like(tau)
        return torch.stack([tau] + [zeros] * 7, dim=1)
    tau_m = torch.minimum(tau, 1 - tau)
    a = tau - tau_m / 2
    b = tau + tau_m / 2
    m1 = delta / a
    m2 = (1 - 2 * delta) / tau_m
    m3 = delta / (1 - b)
    c2 = 0.5 - m2 * tau
    c3 = 1 - delta - m3 * b
    return torch.stack([tau, a, b, m1, m2, m3, c2, c3], dim=1)
