"""The registered ops themselves: opcheck (schema, fake kernels, autograd registration),
torch.compile without graph breaks, and thread-count (in)dependence of the C++ kernels."""
import os
import subprocess
import sys

import pytest
import torch

import softset_fast as sf
from conftest import skip_unless_runs
from softset_fast.backends.registry import unavailable_reason
from softset_fast._grid import coefficient_table, resolve_thresholds

OP_DEVICES = ("cpu", "cuda")  # devices with a C++ kernel of torch.ops.softset_fast.*


@pytest.fixture(params=OP_DEVICES)
def op_device(request):
    return torch.device(skip_unless_runs(request.param))


def _op_args(device, approx, task, samplewise, with_weight, dtype=torch.float32):
    n, c, length = 4, 3, 7
    preds = torch.rand(n, c, length, device=device, dtype=dtype)
    if task == "multiclass":
        target = torch.randint(0, c, (n, length), device=device)
        num_classes, ignore = c, -100
        target[0, 0] = ignore
    else:
        target = torch.rand(n, c, length, device=device) < 0.5
        num_classes, ignore = 0, None
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    weight = torch.rand(target.shape, device=device, dtype=acc) if with_weight else None
    grid = coefficient_table(resolve_thresholds(5, approx, device), approx, 0.2)
    return [preds, target, weight, grid, approx, 10.0, num_classes, ignore, samplewise]


CASES = [(approx, task, samplewise, with_weight)
         for approx in ("linear", "sigmoid", "step")
         for task, samplewise, with_weight in [("multilabel", False, False), ("multiclass", True, True),
                                               ("multilabel", True, True)]]


@pytest.mark.parametrize("approx,task,samplewise,with_weight", CASES)
def test_opcheck_soft_counts(op_device, approx, task, samplewise, with_weight):
    args = _op_args(op_device, approx, task, samplewise, with_weight)
    args[0].requires_grad_(True)
    torch.library.opcheck(torch.ops.softset_fast.soft_counts.default, tuple(args))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("approx,task,samplewise,with_weight", CASES)
def test_opcheck_soft_counts_backward(op_device, approx, task, samplewise, with_weight, dtype):
    args = _op_args(op_device, approx, task, samplewise, with_weight, dtype)
    groups = args[0].shape[0] if samplewise else 1
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    grad = torch.randn(groups, args[0].shape[1], args[3].shape[0], 4, device=op_device, dtype=acc)
    torch.library.opcheck(torch.ops.softset_fast._soft_counts_backward.default, tuple([grad] + args))


def test_fake_kernel_checks_arguments(op_device):
    """The fake kernel rejects what the real kernel rejects, naming the argument."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    args = _op_args(op_device, "linear", "multilabel", False, False)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        out = torch.ops.softset_fast.soft_counts(*fake)
        assert out.shape == (1, 3, 5, 4) and out.dtype == torch.float32
        bad = list(fake)
        bad[1] = fake[1][:, :2]
        with pytest.raises(RuntimeError, match="target"):
            torch.ops.softset_fast.soft_counts(*bad)


@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_compile_fullgraph_matches_eager(op_device, approx, compiler):
    torch._dynamo.reset()
    preds = torch.rand(3, 4, 33, device=op_device)
    target = torch.randint(0, 4, (3, 33), device=op_device)
    backend = op_device.type

    def loss_fn(p, t):
        return sf.fbeta_loss(p, t, task="multiclass", num_classes=4, approx=approx, thresholds=7, backend=backend)

    eager_in = preds.clone().requires_grad_(True)
    eager = loss_fn(eager_in, target)
    eager.backward()

    explanation = torch._dynamo.explain(loss_fn)(preds, target)
    assert explanation.graph_break_count == 0, explanation.break_reasons

    torch._dynamo.reset()
    compiled_in = preds.clone().requires_grad_(True)
    compiled = torch.compile(loss_fn, fullgraph=True, backend=compiler)(compiled_in, target)
    compiled.backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(compiled_in.grad, eager_in.grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("approx", ["linear", "sigmoid", "step"])
@pytest.mark.parametrize("samplewise", [False, True])
def test_threads_agree(approx, samplewise):
    """One thread and several give the same counts: bitwise for samplewise counts and for
    every gradient; global counts differ at most by float64 rounding of the chunk sums."""
    if unavailable_reason("cpu") is not None:
        pytest.skip(unavailable_reason("cpu"))
    n = 200_003 if not samplewise else 6
    preds = torch.rand(n, 2, 1 if not samplewise else 40_000, dtype=torch.float64)
    target = torch.rand(preds.shape) < 0.3
    weight = torch.rand(preds.shape, dtype=torch.float64)
    grid = coefficient_table(resolve_thresholds(17, approx, "cpu"), approx, 0.2)
    args = (target, weight, grid, approx, 10.0, 0, None, samplewise)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 4):
            torch.set_num_threads(threads)
            p = preds.clone().requires_grad_(True)
            counts = torch.ops.softset_fast.soft_counts(p, *args)
            upstream = torch.linspace(-1, 1, counts.numel(), dtype=counts.dtype).view(counts.shape)
            grad, = torch.autograd.grad((counts * upstream).sum(), p)
            results.append((counts, grad))
    finally:
        torch.set_num_threads(before)
    (c1, g1), (c4, g4) = results
    assert torch.equal(g1, g4)
    if samplewise:
        assert torch.equal(c1, c4)
    else:
        torch.testing.assert_close(c1, c4, rtol=1e-12, atol=1e-12 * float(c1.detach().abs().max()))


def _check_against_reference_op(preds, args, rtol, atol, grad_rtol, grad_atol):
    """torch.ops.softset_fast.soft_counts(preds, *args) and its gradient vs the reference op
    (computed on the CPU), with a random upstream gradient; both finite."""
    from softset_fast import reference
    counts = torch.ops.softset_fast.soft_counts(preds, *args)
    ref_preds = preds.detach().cpu().requires_grad_(True)
    expected = reference.soft_counts(ref_preds, *[a.cpu() if isinstance(a, torch.Tensor) else a for a in args])
    torch.testing.assert_close(counts.cpu(), expected, rtol=rtol, atol=atol)
    upstream = torch.randn(expected.shape, dtype=expected.dtype)
    (grad,) = torch.autograd.grad((counts * upstream.to(counts.device)).sum(), preds)
    (expected_grad,) = torch.autograd.grad((expected * upstream).sum(), ref_preds)
    torch.testing.assert_close(grad.cpu().double(), expected_grad.double(), rtol=grad_rtol, atol=grad_atol)
    assert torch.isfinite(counts).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("k", [10.0, 150.0, 169.0, 171.0, 290.0, 400.0])
@pytest.mark.parametrize("num_t", [8, 9])
def test_steep_sigmoid_matches_the_reference_op(op_device, k, num_t):
    # Far outside [0, 1] too: exp(-k (p - τ)) then spans the whole float64 range, where the
    # kernels' factorised sigmoid (one exp per sample, thresholds sharing divisions) must
    # hand over to the direct formula instead of overflowing.
    preds = torch.cat([torch.rand(61, dtype=torch.float64), torch.linspace(-2.5, 3.5, 40, dtype=torch.float64)])
    preds = preds.view(1, 1, -1).to(op_device).requires_grad_(True)
    target = torch.rand(preds.shape, device=op_device) < 0.5
    grid = coefficient_table(resolve_thresholds(num_t, "sigmoid", op_device), "sigmoid", 0.2)
    # Gradient atol: the reference differentiates torch.sigmoid as s (1 - s), which cancels
    # where s rounds to 1 (absolute error ~ k·T·1e-16); the kernels use u s², exact there.
    _check_against_reference_op(preds, [target, None, grid, "sigmoid", k, 0, None, False],
                                rtol=1e-10, atol=1e-300, grad_rtol=1e-10, grad_atol=1e-12)


def test_alternating_grids_each_get_their_own_cells(op_device):
    """The C++ keeps the look-up tables of recently used grids (8 on the CPU): cycling through 11 grids of
    different sizes, twice, evicts and rebuilds them, and every call counts with its own grid."""
    preds = torch.rand(1, 1, 301, dtype=torch.float64, device=op_device).requires_grad_(True)
    target = torch.rand(preds.shape, device=op_device) < 0.5
    grids = [coefficient_table(resolve_thresholds(t, "linear", op_device), "linear", 0.2)
             for t in (3, 9, 17, 40, 99, 128, 200, 255, 300, 511, 999)]
    for grid in grids + grids[::-1]:
        _check_against_reference_op(preds, [target, None, grid, "linear", 10.0, 0, None, False],
                                    rtol=1e-9, atol=1e-9, grad_rtol=1e-9, grad_atol=1e-9)  # a wrong grid: O(1) off


def test_cpu_sigmoid_baseline_copy_matches_the_reference_op():
    # The CPU sigmoid kernels have an AVX2 + FMA copy picked once per process (on CPUs that have
    # both); SOFTSET_FAST_CPU_ISA=baseline, read then, forces the copy every x86-64 CPU runs, so
    # the test below runs again in a process started with it.
    if unavailable_reason("cpu") is not None:
        pytest.skip(unavailable_reason("cpu"))
    env = dict(os.environ, SOFTSET_FAST_CPU_ISA="baseline", SOFTSET_FAST_EXPECT_CPU_ISA="baseline")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             f"{__file__}::test_cpu_sigmoid_copies_match_the_reference_op"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


@pytest.mark.parametrize("num_t", [1, 8, 33])
@pytest.mark.parametrize("labels", ["bool", "soft", "classes"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_cpu_sigmoid_copies_match_the_reference_op(num_t, labels, dtype):
    if unavailable_reason("cpu") is not None:
        pytest.skip(unavailable_reason("cpu"))
    expected_isa = os.environ.get("SOFTSET_FAST_EXPECT_CPU_ISA")
    if expected_isa is not None:
        assert torch.ops.softset_fast.cpu_isa() == expected_isa
    n, c, length = 5, 3, 211
    preds = torch.rand(n, c, length, dtype=torch.float64).to(dtype).requires_grad_(True)
    if labels == "classes":
        target, num_classes = torch.randint(0, c, (n, length)), c
    else:
        target = torch.rand(n, c, length) < 0.4 if labels == "bool" else torch.rand(n, c, length)
        num_classes = 0
    weight = torch.rand(target.shape, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    grid = coefficient_table(resolve_thresholds(num_t, "sigmoid", "cpu"), "sigmoid", 0.2)
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    # bfloat16 gradients: both sides round to bfloat16 (8 bits), one ulp apart at most.
    grad_rtol, grad_atol = (1e-2, 1e-4) if dtype == torch.bfloat16 else (rtol, 1e-6 * rtol)
    for samplewise in (False, True):
        _check_against_reference_op(preds, [target, weight, grid, "sigmoid", 10.0, num_classes, None, samplewise],
                                    rtol=rtol, atol=1e-6 * rtol, grad_rtol=grad_rtol, grad_atol=grad_atol)
