"""Threshold grids and the per-threshold coefficients of the approximations.

Every backend reads the same coefficient table, computed here once in float64,
so that all of them take the same branch at the breakpoints a(τ) and b(τ).
"""
from __future__ import annotations

import torch

APPROXIMATIONS = ("linear", "sigmoid", "step")

# Columns of the coefficient table ``grid`` [T, 8] (float64):
#   tau, a, b, m1, m2, m3, c2, c3
# Linear H̃(p) = m1·p (p < a) | m3·p + c3 = 1 − m3·(1 − p) (p > b) | m2·p + c2 (otherwise).
# For "sigmoid" and "step" only ``tau`` is used; the other columns are zero.
GRID_COLUMNS = ("tau", "a", "b", "m1", "m2", "m3", "c2", "c3")

# How close a linear threshold may come to 0 or 1. The slopes grow like 0.4 / min(τ, 1 − τ) and
# the segment sums m·Σp + c·Σw cancel by that factor: at 1e-4 float64 sums keep ~1e-11 relative
# accuracy, but 1 − 1e-9 lost 1e-8 and 1 − 1e-14 gave a wrong TP (and float32 arithmetic, as in the
# Triton kernels, loses ~2.4e-8 / min(τ, 1 − τ) per element).
LINEAR_MARGIN = 1e-4


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
        if thresholds.device.type == "meta" and torch.device(device).type != "meta":
            raise ValueError("thresholds is a meta tensor, which holds no values; pass it as a list or a tensor "
                             "on a real device")
        values = thresholds.detach().to(torch.float64)
    else:
        raise TypeError(f"thresholds must be None, an int, a list or a 1-D tensor, got {type(thresholds).__name__}")
    if validate and values.device.type != "meta":  # before the move: checking on a GPU would synchronise
        check_thresholds(values, approx)
    return values.to(device)


def check_thresholds(values: torch.Tensor, approx: str) -> None:
    if not bool(torch.isfinite(values).all()):
        raise ValueError("thresholds must be finite")
    if values.numel() > 1 and not bool((values[1:] > values[:-1]).all()):
        raise ValueError("thresholds must be sorted in strictly ascending order")
    if approx == "linear" and not bool(((values > 0) & (values < 1)).all()):
        raise ValueError("thresholds must lie strictly inside (0, 1) for approx='linear'")
    if approx == "linear" and not bool(((values >= LINEAR_MARGIN) & (values <= 1 - LINEAR_MARGIN)).all()):
        raise ValueError(f"thresholds must lie in [{LINEAR_MARGIN:g}, 1 - {LINEAR_MARGIN:g}] for approx='linear': "
                         "closer to 0 or 1 the approximation's slopes (~0.4 / min(τ, 1 − τ)) make the sums "
                         "cancel beyond the kernels' accuracy")


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
    c3 = 1 - m3  # = 1 - δ - m3·b in one rounding (m3 + c3 rounds to 1); the CUDA kernel reads it
    return torch.stack([tau, a, b, m1, m2, m3, c2, c3], dim=1)


# Tables for grids given as None / int / list, keyed on the spelled-out grid, the
# approximation, delta and the device: built and checked once, then reused, so a
# training step pays no small host-to-device copies or synchronisations for them.
_TABLE_CACHE: dict = {}
_TABLE_CACHE_LIMIT = 64


def _grid_key(thresholds):
    """A hashable spelling of a Python grid, or None for a tensor (or an invalid argument)."""
    if thresholds is None:
        return "default"
    if isinstance(thresholds, int) and not isinstance(thresholds, bool):
        return thresholds
    if isinstance(thresholds, (list, tuple)):
        try:
            return tuple(float(t) for t in thresholds)
        except (TypeError, ValueError):
            return None  # resolve_thresholds raises the clear error
    return None


def grid_for(thresholds, approx: str, delta: float, device, validate_tensor: bool = True) -> torch.Tensor:
    """The coefficient table [T, 8] for the public ``thresholds`` argument on ``device``.

    Python grids are validated once and cached; a tensor grid is read every call and
    its values checked when ``validate_tensor`` (one synchronisation on a GPU).
    """
    key = None if torch.compiler.is_compiling() else _grid_key(thresholds)
    if key is None and not isinstance(thresholds, torch.Tensor):  # torch.compile traces this
        return coefficient_table(resolve_thresholds(thresholds, approx, device,
                                                    validate=not torch.compiler.is_compiling()), approx, delta)
    if key is None:
        return coefficient_table(resolve_thresholds(thresholds, approx, device, validate=validate_tensor),
                                 approx, delta)
    full_key = (key, approx, float(delta) if approx == "linear" else None, torch.device(device))
    table = _TABLE_CACHE.get(full_key)
    if table is None:
        if len(_TABLE_CACHE) >= _TABLE_CACHE_LIMIT:
            _TABLE_CACHE.clear()
        table = coefficient_table(resolve_thresholds(thresholds, approx, "cpu"), approx, delta).to(device)
        _TABLE_CACHE[full_key] = table
    return table
