"""Triton-specific checks: both forward strategies (direct, histogram), the backward tables, the
breakpoint conventions, deterministic mode, opcheck and torch.compile.

Without a GPU the kernels run in the Triton interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1 before the kernels are imported), so sizes stay small.
"""
import os

import pytest
import torch

import softset_fast as sf
from softset_fast import reference
from softset_fast.backends.registry import unavailable_reason
from softset_fast._grid import coefficient_table, resolve_thresholds

if unavailable_reason("triton") is not None:
    pytest.skip(f"triton backend unavailable: {unavailable_reason('triton')}", allow_module_level=True)

from softset_fast.backends import triton_op as triton_ops  # noqa: E402

DEVICE = torch.device("cpu") if os.environ.get("TRITON_INTERPRET") == "1" else torch.device("cuda")
HIST_T = triton_ops.HISTOGRAM_MIN_T + 5  # linear / step use the histogram forward from HISTOGRAM_MIN_T on
# (rtol, atol) of the counts (float32 results, float64 for float64 preds) and of the gradient (preds' dtype)
COUNT_TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1e-4), torch.float16: (1e-5, 1e-4),
             torch.bfloat16: (1e-5, 1e-4)}
GRAD_RTOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def make_grid(thresholds, approx, delta=0.2):
    return coefficient_table(resolve_thresholds(thresholds, approx, DEVICE), approx, delta)


def make_inputs(shape, task, dtype, target_dtype=torch.float32, weighted=False, ignore_index=None):
    """[N, C, L] preds and the target / weight of the op contract for ``task``."""
    batch, classes, length = shape
    preds = torch.rand(shape, dtype=torch.float64).to(dtype)
    if task == "multiclass":
        target = torch.randint(0, classes, (batch, length))
        if ignore_index is not None:
            target[torch.rand(target.shape) < 0.2] = ignore_index
    else:
        target = torch.rand(shape)
        target = (target > 0.5).to(target_dtype) if target_dtype != torch.float32 else target  # soft labels
        if ignore_index is not None:
            target[torch.rand(shape) < 0.2] = ignore_index
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    weight = torch.rand(target.shape, dtype=acc) if weighted else None
    return preds.to(DEVICE), target.to(DEVICE), None if weight is None else weight.to(DEVICE)


def check_against_reference(preds, target, weight, grid, approx, num_classes, ignore_index, samplewise, k=10.0):
    """Counts and the gradient for a random grad_output, Triton vs the reference."""
    fast_in = preds.clone().requires_grad_()
    ref_in = preds.clone().requires_grad_()
    fast = triton_ops.soft_counts(fast_in, target, weight, grid, approx, k, num_classes, ignore_index, samplewise)
    ref = reference.soft_counts(ref_in, target, weight, grid, approx, k, num_classes, ignore_index, samplewise)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape
    rtol, atol = COUNT_TOL[preds.dtype]
    torch.testing.assert_close(fast, ref, rtol=rtol, atol=atol)
    grad_out = torch.randn_like(ref)
    (fast * grad_out).sum().backward()
    (ref * grad_out).sum().backward()
    assert fast_in.grad.dtype == preds.dtype
    if approx == "step":
        assert bool((fast_in.grad == 0).all())
        return
    rtol = GRAD_RTOL[preds.dtype]
    scale = float(ref_in.grad.abs().max()) + 1e-12
    torch.testing.assert_close(fast_in.grad, ref_in.grad, rtol=rtol, atol=rtol * scale)


# Each distinct (kernel, dtypes, mode flags) is one native compilation on a GPU (about half a second):
# the tests share a few input configurations and vary one thing at a time. Sizes, T and the runtime
# flags (one_row, samplewise, ignore_index) do not cause compilations.
@pytest.mark.parametrize("approx", ["linear", "sigmoid", "step"])
@pytest.mark.parametrize("num_t", [1, 9, HIST_T])
@pytest.mark.parametrize("task, shape, samplewise", [
    ("binary", (1, 1, 301), False),
    ("multilabel", (3, 2, 37), False),
    ("multilabel", (3, 2, 37), True),
    ("multiclass", (2, 3, 29), False),
    ("multiclass", (2, 3, 29), True),
])
def test_matches_reference(approx, num_t, task, shape, samplewise):
    """Weighted, soft labels (binary / multilabel) or class indices, every task layout."""
    preds, target, weight = make_inputs(shape, task, torch.float32, weighted=True)
    num_classes = shape[1] if task == "multiclass" else 0
    check_against_reference(preds, target, weight, make_grid(num_t, approx), approx, num_classes, None, samplewise)


@pytest.mark.parametrize("approx", ["linear", "sigmoid", "step"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("num_t", [9, HIST_T])
def test_dtypes(approx, dtype, num_t):
    """Every preds dtype, bool target, no weight (the benchmark's configuration for float32)."""
    preds, target, weight = make_inputs((2, 2, 41), "multilabel", dtype, target_dtype=torch.bool)
    check_against_reference(preds, target, weight, make_grid(num_t, approx), approx, 0, None, False)


@pytest.mark.parametrize("target_dtype", [torch.bool, torch.uint8, torch.int32, torch.int64, torch.float16,
                                          torch.bfloat16, torch.float32, torch.float64])
def test_target_dtypes_and_ignore_index(target_dtype):
    """Every target dtype with ignore_index (the label loading is shared by every approx and strategy)."""
    ignore = 255 if target_dtype in (torch.uint8, torch.int32, torch.int64, torch.float64) else None
    preds, target, weight = make_inputs((2, 1, 53), "binary", torch.float32, target_dtype=target_dtype,
                                        ignore_index=ignore)
    for samplewise in (False, True):
        check_against_reference(preds, target, weight, make_grid(9, "linear"), "linear", 0, ignore, samplewise)


@pytest.mark.parametrize("samplewise", [False, True])
def test_multiclass_ignore_index_and_soft_k(samplewise):
    preds, target, weight = make_inputs((3, 4, 23), "multiclass", torch.float32, weighted=True, ignore_index=-100)
    for approx, num_t in [("linear", 7), ("linear", HIST_T), ("sigmoid", 7), ("step", HIST_T)]:
        check_against_reference(preds, target, weight, make_grid(num_t, approx), approx, 4, -100, samplewise,
                                k=7.3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_t", [9, HIST_T])
def test_breakpoints(dtype, num_t):
    """preds exactly on (and one ulp around) a, b and tau take the reference's branches."""
    grid = make_grid(num_t, "linear")
    points = grid[:, :3].reshape(-1).to(dtype)
    around = torch.cat([points, torch.nextafter(points, torch.ones_like(points)),
                        torch.nextafter(points, torch.zeros_like(points)), torch.tensor([0.0, 1.0], dtype=dtype,
                                                                                           device=DEVICE)])
    preds = around.reshape(1, 1, -1)
    target = (torch.arange(preds.numel(), device=DEVICE) % 2).to(torch.bool).reshape(preds.shape)
    for approx in ("linear", "step"):
        check_against_reference(preds, target, None, make_grid(num_t, approx), approx, 0, None, False)


def test_both_forward_strategies_agree(monkeypatch):
    preds, target, weight = make_inputs((2, 3, 67), "multilabel", torch.float64, target_dtype=torch.bool)
    for approx in ("linear", "step"):
        grid = make_grid(13, approx)
        direct = triton_ops.soft_counts(preds, target, weight, grid, approx, 10.0, 0, None, False)
        monkeypatch.setattr(triton_ops, "HISTOGRAM_MIN_T", 1)
        histogram = triton_ops.soft_counts(preds, target, weight, grid, approx, 10.0, 0, None, False)
        monkeypatch.setattr(triton_ops, "HISTOGRAM_MIN_T", 10 ** 9)
        torch.testing.assert_close(histogram, direct, rtol=1e-12, atol=1e-12)


def test_many_chunks_and_histogram_copies(monkeypatch):
    """Small tiles so that each segment spans several chunks, flush rounds and histogram copies."""
    monkeypatch.setattr(triton_ops, "_DIRECT_TILE", 256)  # 16 elements per block at T <= 16
    monkeypatch.setattr(triton_ops, "_FLUSH", 2)  # 3 flush rounds per chunk
    monkeypatch.setattr(triton_ops, "_HIST_BLOCK", 64)
    monkeypatch.setattr(triton_ops, "_TARGET_PROGRAMS_INTERPRETER", 8)
    monkeypatch.setattr(triton_ops, "_TARGET_PROGRAMS_GPU", 8)
    preds, target, weight = make_inputs((2, 1, 700), "binary", torch.float32, target_dtype=torch.bool)
    for approx, num_t in [("linear", 9), ("sigmoid", 9), ("linear", HIST_T), ("step", HIST_T)]:
        check_against_reference(preds, target, weight, make_grid(num_t, approx), approx, 0, None, False)


def test_grid_rows_cache_follows_the_grid():
    """The cached coefficient rows are rebuilt when the grid changes in place, and bad grids are refused."""
    preds, target, _ = make_inputs((1, 1, 101), "binary", torch.float32, target_dtype=torch.bool)
    grid = make_grid(9, "linear")
    first = triton_ops.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None, False)
    torch.testing.assert_close(first, reference.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None,
                                                            False))
    with torch.no_grad():
        grid.copy_(make_grid(torch.linspace(0.05, 0.7, 9), "linear"))
    second = triton_ops.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None, False)
    torch.testing.assert_close(second, reference.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None,
                                                             False))
    with torch.no_grad():
        grid.copy_(grid.flip(0))
    with pytest.raises(RuntimeError, match="grid"):
        triton_ops.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None, False)


@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
def test_deterministic_mode_is_bit_identical(approx):
    preds, target, weight = make_inputs((4, 2, 97), "multilabel", torch.float32, weighted=True)
    grid = make_grid(HIST_T, approx)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            x = preds.clone().requires_grad_()
            counts = triton_ops.soft_counts(x, target, weight, grid, approx, 10.0, 0, None, False)
            counts.sum().backward()
            runs.append((counts, x.grad))
    finally:
        torch.use_deterministic_algorithms(previous)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    ref = reference.soft_counts(preds, target, weight, grid, approx, 10.0, 0, None, False)
    torch.testing.assert_close(runs[0][0], ref, rtol=1e-5, atol=1e-4)


def test_empty_inputs():
    grid = make_grid(9, "linear")
    for shape, samplewise, expected in [((0, 2, 5), False, (1, 2, 9, 4)), ((0, 2, 5), True, (0, 2, 9, 4)),
                                        ((3, 2, 0), True, (3, 2, 9, 4))]:
        preds = torch.rand(shape, device=DEVICE, requires_grad=True)
        target = torch.zeros(shape, dtype=torch.bool, device=DEVICE)
        counts = triton_ops.soft_counts(preds, target, None, grid, "linear", 10.0, 0, None, samplewise)
        assert counts.shape == expected and bool((counts == 0).all())
        counts.sum().backward()
        assert preds.grad.shape == shape


def test_public_api_and_loss_gradient():
    preds = torch.rand(5, 3, 7, 3, device=DEVICE)
    target = torch.randint(0, 3, (5, 7, 3), device=DEVICE)
    target[0, 0] = 255
    kwargs = dict(task="multiclass", num_classes=3, ignore_index=255, thresholds=11)
    torch.testing.assert_close(sf.soft_confusion_matrix(preds, target, backend="triton", **kwargs),
                               sf.soft_confusion_matrix(preds, target, backend="reference", **kwargs))
    fast_in, ref_in = preds.clone().requires_grad_(), preds.clone().requires_grad_()
    sf.f1_loss(fast_in, target, backend="triton", **kwargs).backward()
    sf.f1_loss(ref_in, target, backend="reference", **kwargs).backward()
    torch.testing.assert_close(fast_in.grad, ref_in.grad, rtol=1e-5, atol=1e-7)


def test_opcheck():
    preds, target, weight = make_inputs((2, 3, 17), "multilabel", torch.float64, target_dtype=torch.bool)
    grid = make_grid(9, "linear")
    # The interpreter cannot run under functionalization (aot_dispatch); a GPU runs every check.
    utils = (("test_schema", "test_autograd_registration", "test_faketensor") if DEVICE.type == "cpu"
             else ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"))
    args = (preds.requires_grad_(), target, weight, grid, "linear", 10.0, 0, None, False)
    torch.library.opcheck(torch.ops.softset_fast.triton_soft_counts.default, args, test_utils=utils)
    grad = torch.randn(1, 3, 9, 4, dtype=torch.float64, device=DEVICE)
    torch.library.opcheck(torch.ops.softset_fast._triton_soft_counts_backward.default,
                          (grad, preds.detach()) + args[1:], test_utils=utils)


@pytest.mark.cuda
@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
def test_compile_fullgraph(approx):
    """torch.compile sees the triton_op without a graph break (needs a GPU: the interpreter cannot be traced)."""
    preds = torch.rand(4, 1000, device="cuda")
    target = torch.rand(4, 1000, device="cuda") > 0.5

    def loss(x):
        return sf.f1_loss(x, target, approx=approx, backend="triton", validate_args=False)

    compiled = torch.compile(loss, fullgraph=True)
    fast_in, ref_in = preds.clone().requires_grad_(), preds.clone().requires_grad_()
    value = compiled(fast_in)
    value.backward()
    expected = sf.f1_loss(ref_in, target, approx=approx, backend="reference")
    expected.backward()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_in.grad, ref_in.grad, rtol=1e-4, atol=1e-7)


_NATIVE_COMPILE = r'''
import os, sys
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from softset_fast.backends import triton_kernels as K

arch = int(sys.argv[1])
# Argument types by name (pointers as the fp32-preds / bool-target case unless overridden); the runtime
# flags are i1, the sizes i32.
types = {"preds_ptr": "*fp32", "target_ptr": "*u8", "weight_ptr": "*fp32", "coef_ptr": "*fp32",
         "partial_ptr": "*fp64", "hist_ptr": "*fp64", "grid_ptr": "*fp64", "out_ptr": "*fp32", "grad_ptr": "*fp32",
         "table_ptr": "*fp64", "grad_out_ptr": "*fp32", "ignore_float": "fp32", "seg_len": "i64",
         "n_elements": "i64", "has_ignore": "i1", "one_row": "i1", "samplewise": "i1", "single_segment": "i1"}
flags = {"MULTICLASS": False, "HAS_WEIGHT": True, "TARGET_FLOAT": False}
kernels = [
    (K._forward_direct_kernel, {}, dict(APPROX=0, BLOCK_SIZE=256, T_BLOCK=16, **flags)),
    (K._forward_direct_kernel, {"preds_ptr": "*bf16"}, dict(APPROX=1, BLOCK_SIZE=256, T_BLOCK=16, **flags)),
    (K._forward_direct_kernel, {"preds_ptr": "*fp64", "coef_ptr": "*fp64", "weight_ptr": "*fp64"},
     dict(APPROX=0, BLOCK_SIZE=128, T_BLOCK=16, **flags)),
    (K._forward_histogram_kernel, {"preds_ptr": "*fp16"}, dict(APPROX=0, BLOCK_SIZE=1024, **flags)),
    (K._forward_histogram_kernel, {}, dict(APPROX=2, BLOCK_SIZE=1024, **dict(flags, MULTICLASS=True))),
    (K._finish_direct_kernel, {}, dict(T_BLOCK=128)),
    (K._finish_histogram_kernel, {}, dict(APPROX=0, T_BLOCK=128)),
    (K._finish_histogram_kernel, {"out_ptr": "*fp64"}, dict(APPROX=2, T_BLOCK=128)),
    (K._linear_table_kernel, {}, dict(T_BLOCK=128)),
    (K._backward_kernel, {}, dict(APPROX=0, BLOCK_SIZE=1024, T_BLOCK=16, **flags)),
    (K._backward_kernel, {"grad_out_ptr": "*fp64", "preds_ptr": "*fp64", "coef_ptr": "*fp64", "weight_ptr": "*fp64",
                          "table_ptr": "*fp64"},
     dict(APPROX=1, BLOCK_SIZE=128, T_BLOCK=16, **flags)),
]
for fn, override, constexprs in kernels:
    signature = {name: "constexpr" if name in constexprs else override.get(name, types.get(name, "i32"))
                 for name in fn.arg_names}
    triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs), target=GPUTarget("cuda", arch, 32))
print("compiled", len(kernels))
'''


def test_kernels_compile_natively_for_gpu(tmp_path):
    """The kernels lower to PTX and SASS for sm_90 (no GPU needed), not only run in the interpreter."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", _NATIVE_COMPILE, "90"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled 11" in result.stdout
