"""The Triton backend: registered ops ``softset_fast::triton_soft_counts`` (+ its backward) and autograd.

Same contract as :func:`softset_fast.reference.soft_counts` ([N, C, L] inputs -> [G, C, T, 4] counts
(tp, fn, fp, tn), float64 for float64 preds else float32). The ops are ``torch.library.triton_op``s
launching kernels through ``wrap_triton``, so torch.compile traces them without a graph break.
On CPU tensors they run under the Triton interpreter (``TRITON_INTERPRET=1`` set before import).

Forward, two strategies:
  * direct (sigmoid always; linear / step with T < HISTOGRAM_MIN_T, or deterministic mode): each program
    evaluates H̃ for a chunk of elements × a block of thresholds in registers and stores its partial
    sums; torch sums the partials in a fixed order. O(N·T) arithmetic, O(T) memory per program,
    no atomics, so bit-identical run to run.
  * histogram (linear / step with T >= HISTOGRAM_MIN_T, default mode): each element adds
    (w·y·p, w·y, w(1−y)p, w(1−y)) to two bins found by binary search (float64 atomics), then prefix
    scans over T give every threshold: O(N + T). Float atomics make the last bits vary run to run;
    under torch.use_deterministic_algorithms(True) the direct strategy is used instead.
Backward (no atomics, deterministic): linear looks up two per-segment prefix tables per element
(O(N + T)); sigmoid loops over the thresholds per element; step has a zero gradient.

The direct forward accumulates a register tile per lane and reduces the block only every few
iterations; the histogram forward spreads its atomics over several copies and skips zero
contributions; chunk sums, histogram scans and the backward tables are single small Triton
kernels writing the counts in the output dtype.
Forward and backward use the same per-grid coefficient rows, built once per grid tensor and cached (_grid_rows).

GPU tuning knobs (module constants): HISTOGRAM_MIN_T, _TARGET_PROGRAMS_GPU, _DIRECT_TILE, _FLUSH, _HIST_BLOCK,
_HIST_COPIES, _BACKWARD_BLOCK.
"""
from __future__ import annotations

import math
import os
import weakref

import torch
import triton
from torch._subclasses.fake_tensor import FakeTensor
from torch.library import triton_op, wrap_triton

from .._prepare import accumulation_dtype
from . import triton_kernels as K
from .op_checks import check_backward_grad, check_grid_values, check_op_args
from .counts_autograd import backward_through, no_second_derivative, setup_context, setup_nothing

APPROX_CODES = {"linear": K.LINEAR, "sigmoid": K.SIGMOID, "step": K.STEP}
# From this many thresholds on, linear / step use the O(N + T) histogram forward (non-deterministic).
HISTOGRAM_MIN_T = 48
# Programs per forward launch to aim for: enough to fill a GPU, few for the (sequential) interpreter.
_TARGET_PROGRAMS_GPU = 1024
_TARGET_PROGRAMS_INTERPRETER = 4
_BACKWARD_BLOCK = 1024
# Direct forward: elements × thresholds per register tile (fp32; half for fp64), block reductions
# every _FLUSH blocks. Histogram: at most _HIST_COPIES copies, at most _HIST_COPY_BYTES in all.
_DIRECT_TILE = 4096
_HIST_BLOCK = 1024
_FLUSH = 16
_HIST_COPIES = 16
_HIST_COPY_BYTES = 64 << 20
_SCAN_BLOCK = 128
_OP = "triton_soft_counts"
# Under the interpreter wrap_triton cannot skip the launch for fake tensors (it can on a GPU).
_INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


def _launch(kernel, grid, *args, **kwargs):
    if _INTERPRETING:
        if any(isinstance(a, FakeTensor) for a in args):
            return  # shape propagation only: the outputs were allocated by the caller
        # An interpreted kernel launches as is; torch >= 2.13's wrap_triton returns it unchanged, 2.11's refuses it.
        kernel[grid](*args, **kwargs)
        return
    wrap_triton(kernel)[grid](*args, **kwargs)


def _round_float32(x: torch.Tensor, up: bool) -> torch.Tensor:
    """The float32 nearest ``x`` (float64) from above (up) or below, so float32 comparisons of float32
    values p give the float64 answer: p < x <=> p < up(x), p > x <=> p > down(x), p >= x <=> p >= up(x)."""
    y = x.to(torch.float32)
    toward = torch.full_like(y, math.inf if up else -math.inf)
    wrong = y.to(torch.float64) < x if up else y.to(torch.float64) > x
    return torch.where(wrong, torch.nextafter(y, toward), y)


def _coefficients(grid: torch.Tensor, approx: str, k: float, compute: torch.dtype) -> torch.Tensor:
    """[7, T] in the compute dtype: a_cmp, b_cmp, tau_cmp, m1 (sigmoid: k), m2, m3, c2 (the kernels
    compute the segment above b as 1 − m3·(1 − p), without c3)."""
    tau, a, b, m1, m2, m3, c2, _ = grid.to(torch.float64).unbind(1)
    if compute == torch.float64:
        a_cmp, b_cmp, tau_cmp = a, b, tau
    else:
        a_cmp, b_cmp = _round_float32(a, up=True), _round_float32(b, up=False)
        # The sigmoid uses tau as a value (nearest), the step as a breakpoint (rounded up).
        tau_cmp = tau.to(torch.float32) if approx == "sigmoid" else _round_float32(tau, up=True)
    if approx == "sigmoid":
        m1 = torch.full_like(tau, float(k))
    rows = [a_cmp, b_cmp, tau_cmp, m1, m2, m3, c2]
    return torch.stack([r.to(compute) for r in rows]).contiguous()


# id(grid) -> (weakref to grid, its version, its data_ptr, {(approx, k, compute): rows}); a few grids only.
_GRID_CACHE: dict[int, tuple] = {}
_GRID_CACHE_SIZE = 8


def _grid_rows(grid: torch.Tensor, approx: str, k: float, compute: torch.dtype) -> torch.Tensor:
    """The [7, T] coefficient rows of ``grid``, validated and built once per grid tensor (and approx, k,
    dtype): a training loop that passes the same grid each step launches no preparation kernels and
    does no host sync. Tensors being traced (fake / functional) are neither validated nor cached."""
    if type(grid) is not torch.Tensor or torch.compiler.is_compiling():
        return _coefficients(grid, approx, k, compute)
    try:
        version = grid._version
    except RuntimeError:  # inference tensors have no version counter: no caching
        check_grid_values(_OP, grid, approx)
        return _coefficients(grid, approx, k, compute)
    key = (approx, float(k) if approx == "sigmoid" else 0.0, compute)
    entry = _GRID_CACHE.get(id(grid))
    if entry is None or entry[0]() is not grid or entry[1] != version or entry[2] != grid.data_ptr():
        entry = (weakref.ref(grid), version, grid.data_ptr(), {})
        if len(_GRID_CACHE) >= _GRID_CACHE_SIZE:
            _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
        _GRID_CACHE[id(grid)] = entry
    rows = entry[3].get(key)
    if rows is None:
        check_grid_values(_OP, grid, approx)
        rows = entry[3][key] = _coefficients(grid, approx, k, compute)
    return rows


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _label_args(target: torch.Tensor, weight, ignore_index):
    """The target as the kernels read it (bool as uint8), the weight pointer and the ignore options."""
    if target.dtype == torch.bool:
        # A free reinterpretation in eager mode. Inductor cannot lower a bool -> uint8 view that
        # feeds a Triton kernel (TypeError from torch.iinfo, seen on an H100 with torch 2.11), so
        # while tracing (fake / functional tensor subclasses) the graph converts instead.
        eager = type(target) is torch.Tensor and not torch.compiler.is_compiling()
        target = target.view(torch.uint8) if eager else target.to(torch.uint8)
    has_ignore = ignore_index is not None
    return dict(
        target=target,
        weight=weight if weight is not None else target,  # a placeholder pointer, never read
        ignore_int=int(ignore_index) if has_ignore else 0,
        ignore_float=float(ignore_index) if has_ignore else 0.0,
        HAS_WEIGHT=weight is not None,
        has_ignore=has_ignore,
        TARGET_FLOAT=target.is_floating_point(),
    )


def _chunks(segments: int, seg_len: int, block: int, device: torch.device) -> tuple[int, int]:
    """(n_chunks, chunk_size): each segment split into n_chunks runs of chunk_size elements."""
    target = _TARGET_PROGRAMS_GPU if device.type == "cuda" else _TARGET_PROGRAMS_INTERPRETER
    blocks = triton.cdiv(seg_len, block)
    n_chunks = min(blocks, max(1, triton.cdiv(target, segments)))
    chunk_size = triton.cdiv(blocks, n_chunks) * block
    return triton.cdiv(seg_len, chunk_size), chunk_size


@triton_op("softset_fast::triton_soft_counts", mutates_args=())
def triton_soft_counts(preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, grid: torch.Tensor,
                       approx: str, k: float, num_classes: int, ignore_index: int | None,
                       samplewise: bool) -> torch.Tensor:
    check_op_args(_OP, preds, target, weight, grid, approx, k, num_classes, ignore_index)
    batch, classes, length = preds.shape
    num_t = grid.shape[0]
    groups = batch if samplewise else 1
    segments = groups * classes
    rows = batch // groups if groups > 0 else 0
    seg_len = rows * length
    acc = accumulation_dtype(preds.dtype)
    if segments == 0 or seg_len == 0:
        return preds.new_zeros((groups, classes, num_t, 4), dtype=acc)
    compute = acc
    coef = _grid_rows(grid, approx, k, compute)
    preds = preds.contiguous()
    labels = _label_args(target.contiguous(), None if weight is None else weight.contiguous(), ignore_index)
    common = dict(APPROX=APPROX_CODES[approx], MULTICLASS=num_classes > 0, one_row=rows == 1,
                  HAS_WEIGHT=labels["HAS_WEIGHT"], has_ignore=labels["has_ignore"],
                  TARGET_FLOAT=labels["TARGET_FLOAT"])
    label_ptrs = (labels["target"], labels["weight"])
    ignore = (labels["ignore_int"], labels["ignore_float"])
    use_histogram = (approx != "sigmoid" and num_t >= HISTOGRAM_MIN_T
                     and not torch.are_deterministic_algorithms_enabled())
    out = preds.new_empty((groups, classes, num_t, 4), dtype=acc)
    if use_histogram:
        block = _HIST_BLOCK
        n_chunks, chunk_size = _chunks(segments, seg_len, block, preds.device)
        copy_bytes = segments * 2 * (num_t + 1) * 4 * 8
        copies = max(1, min(_HIST_COPIES, n_chunks, _HIST_COPY_BYTES // copy_bytes))
        hist = torch.zeros((segments, copies, 2 * (num_t + 1), 4), dtype=torch.float64, device=preds.device)
        _launch(K._forward_histogram_kernel, (segments * n_chunks,),
                preds, *label_ptrs, coef, hist, classes, length, rows, seg_len, num_t, n_chunks, chunk_size,
                *ignore, copies, log2_t=num_t.bit_length(), BLOCK_SIZE=block, **common)
        _launch(K._finish_histogram_kernel, (segments,), hist, grid, out, num_t, copies,
                APPROX=APPROX_CODES[approx], T_BLOCK=_SCAN_BLOCK)
        return out
    t_block = 16  # one compiled variant; larger T runs more threshold blocks
    tile = _DIRECT_TILE if compute == torch.float32 else _DIRECT_TILE // 2
    block = tile // t_block
    flush = min(_FLUSH, triton.cdiv(seg_len, block))  # small inputs: no all-masked iterations
    n_chunks, chunk_size = _chunks(segments, seg_len, block * flush, preds.device)
    partial = torch.empty((segments, n_chunks, num_t, 4), dtype=torch.float64, device=preds.device)
    _launch(K._forward_direct_kernel, (segments * n_chunks, triton.cdiv(num_t, t_block)),
            preds, *label_ptrs, coef, partial, classes, length, rows, seg_len, num_t, n_chunks, chunk_size,
            *ignore, flush, BLOCK_SIZE=block, T_BLOCK=t_block, **common)
    _launch(K._finish_direct_kernel, (segments, triton.cdiv(num_t, _SCAN_BLOCK)), partial, out, num_t, n_chunks,
            T_BLOCK=_SCAN_BLOCK)
    return out


@triton_op("softset_fast::_triton_soft_counts_backward", mutates_args=())
def triton_soft_counts_backward(grad: torch.Tensor, preds: torch.Tensor, target: torch.Tensor,
                                weight: torch.Tensor | None, grid: torch.Tensor, approx: str, k: float,
                                num_classes: int, ignore_index: int | None, samplewise: bool) -> torch.Tensor:
    check_op_args(_OP, preds, target, weight, grid, approx, k, num_classes, ignore_index)
    batch, classes, length = preds.shape
    num_t = grid.shape[0]
    check_backward_grad(f"_{_OP}_backward", grad, preds, grid, samplewise)
    n_elements = preds.numel()
    if approx == "step" or n_elements == 0:
        return torch.zeros_like(preds, memory_format=torch.contiguous_format)
    compute = accumulation_dtype(preds.dtype)
    coef = _grid_rows(grid, approx, k, compute)
    grad = grad.contiguous()
    if approx == "sigmoid":
        table = grad  # the kernel forms g_tp − g_fn, g_fp − g_tn itself
    else:
        segments = grad.numel() // (4 * num_t)
        table = grad.new_empty((segments, num_t + 1, 4), dtype=torch.float64)
        _launch(K._linear_table_kernel, (segments,), grad, grid, table, num_t, T_BLOCK=_SCAN_BLOCK)
    preds = preds.contiguous()
    labels = _label_args(target.contiguous(), None if weight is None else weight.contiguous(), ignore_index)
    out = torch.empty_like(preds)
    block = _BACKWARD_BLOCK if approx == "linear" else 128
    _launch(K._backward_kernel, (triton.cdiv(n_elements, block),),
            out, preds, labels["target"], labels["weight"], coef, table,
            n_elements, classes, length, num_t, labels["ignore_int"], labels["ignore_float"],
            APPROX=APPROX_CODES[approx], MULTICLASS=num_classes > 0, HAS_WEIGHT=labels["HAS_WEIGHT"],
            has_ignore=labels["has_ignore"], TARGET_FLOAT=labels["TARGET_FLOAT"], samplewise=samplewise,
            single_segment=classes == 1 and not samplewise, log2_t=num_t.bit_length(), BLOCK_SIZE=block,
            T_BLOCK=16)
    return out


triton_soft_counts.register_autograd(
    backward_through(torch.ops.softset_fast._triton_soft_counts_backward),
    setup_context=setup_context)
triton_soft_counts_backward.register_autograd(no_second_derivative, setup_context=setup_nothing)


def soft_counts(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    """The Triton backend with the contract of :func:`softset_fast.reference.soft_counts`."""
    return torch.ops.softset_fast.triton_soft_counts(preds, target, weight, grid, approx, float(k),
                                                     int(num_classes), ignore_index, bool(samplewise))
