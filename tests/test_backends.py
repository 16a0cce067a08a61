"""Every fused backend against the pure-PyTorch reference.

Runs once per backend of the ``backend`` fixture (tests/conftest.py): the C++
CPU op, Triton (the CPU interpreter under TRITON_INTERPRET=1, else CUDA) and
CUDA; unavailable ones are skipped there. Values and gradients (with a random
upstream gradient on the [.., T, 4] output) must equal the reference's on the
same inputs, within per-dtype tolerances.
"""
import os
import math

import pytest
import torch

import softset_fast as sf
from softset_fast import reference
from softset_fast.backends.registry import counts_function
from softset_fast._grid import coefficient_table, resolve_thresholds

APPROXES = ("linear", "sigmoid", "step")
TASKS = ("binary", "multilabel", "multiclass")
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
# Relative tolerance of the counts (float64 out for float64 preds, else float32) and of the
# gradient, which is cast to preds' dtype (so one rounding step of that dtype).
RTOL_COUNTS = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-5, torch.bfloat16: 1e-5}
RTOL_GRAD = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
# The Triton interpreter runs kernels in Python on the CPU: keep its inputs small.
MAX_N = {"cpu": 100_003, "cuda": 100_003, "triton": 3_001}


def _size(backend, n):
    return min(n, MAX_N[backend])


def _interpreted(backend):
    """The Triton interpreter runs every program in Python: samplewise cases (one program
    row per sample and class) need small batches there to keep CI in minutes."""
    return backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"


def assert_close(actual, expected, rtol, what=""):
    """|actual - expected| <= rtol · (|expected| + max|expected|): relative, with an absolute
    floor at the scale of the result (counts such as fn = P - S1 may cancel to ~0)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    actual = actual.detach().cpu().double()
    expected = expected.detach().cpu().double()
    if expected.numel() == 0:
        return
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-30), equal_nan=True,
                               msg=lambda m: f"{what}: {m}")


def make_inputs(task, n, dtype, *, classes=3, length=5, target_dtype=None, soft=False, device="cpu"):
    """Random preds (probabilities) and targets for a task; n samples."""
    if task == "binary":
        preds = torch.rand(n, dtype=torch.float64)
        target = torch.rand(n) < 0.4
    elif task == "multilabel":
        preds = torch.rand(n, classes, length, dtype=torch.float64)
        target = torch.rand(n, classes, length) < 0.4
    else:
        preds = torch.rand(n, classes, length, dtype=torch.float64).softmax(1)
        target = torch.randint(0, classes, (n, length))
    if soft and task != "multiclass":
        target = torch.rand(target.shape, dtype=torch.float64)
    if target_dtype is not None:
        target = target.to(target_dtype)
    return preds.to(dtype).to(device), target.to(device)


def compare(backend, preds, target, *, rtol_counts=None, rtol_grad=None, **kwargs):
    """Counts and gradients of backend vs reference on the same inputs; returns the counts."""
    dtype = preds.dtype
    rtol_counts = rtol_counts or RTOL_COUNTS[dtype]
    rtol_grad = rtol_grad or RTOL_GRAD[dtype]
    fast_in = preds.detach().clone().requires_grad_(True)
    ref_in = preds.detach().cpu().clone().requires_grad_(True)
    ref_kwargs = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    fast = sf.soft_confusion_matrix(fast_in, target, backend=backend, **kwargs)
    ref = reference.soft_confusion_matrix(ref_in, target.cpu(), **ref_kwargs)
    assert_close(fast, ref, rtol_counts, "counts")
    upstream = torch.randn(ref.shape, dtype=ref.dtype)
    (fast * upstream.to(fast.device)).sum().backward()
    (ref * upstream).sum().backward()
    assert_close(fast_in.grad, ref_in.grad, rtol_grad, "grad")
    return fast


@pytest.mark.parametrize("extras", ["plain", "weight", "ignore", "weight+ignore"])
@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("approx", APPROXES)
def test_matrix_matches_reference(backend, device, approx, task, dtype, samplewise, extras):
    n = 7 if samplewise and _interpreted(backend) else 37
    preds, target = make_inputs(task, n, dtype, device=device)
    kwargs = dict(approx=approx, task=task, thresholds=11,
                  multidim_average="samplewise" if samplewise else "global")
    if task != "binary":
        kwargs["num_classes"] = preds.shape[1]
    if "ignore" in extras:
        ignore = -100 if task == "multiclass" else -1
        target = target.to(torch.int64)
        target[torch.rand(target.shape, device=device) < 0.2] = ignore
        kwargs["ignore_index"] = ignore
    if "weight" in extras:
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        kwargs["weight"] = torch.rand(target.shape, dtype=acc, device=device)
    compare(backend, preds, target, **kwargs)


@pytest.mark.parametrize("n", [0, 1, 2, 13, 997, 100_003])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("approx", APPROXES)
def test_odd_sizes(backend, device, approx, dtype, n):
    n = _size(backend, n)
    preds, target = make_inputs("binary", n, dtype, device=device)
    counts = compare(backend, preds, target, approx=approx, thresholds=9)
    # tp + fn and fp + tn do not depend on the threshold.
    assert_close(counts[:, 0] + counts[:, 1], target.sum().to(counts).expand(counts.shape[0]), RTOL_COUNTS[dtype])


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_large_multiclass(backend, device, task):
    n = _size(backend, 20_011)
    preds, target = make_inputs(task, n, torch.float64, classes=5, length=3, device=device)
    compare(backend, preds, target, task=task, num_classes=5, thresholds=25)
    if _interpreted(backend):
        preds, target = preds[:61], target[:61]
    compare(backend, preds, target, task=task, num_classes=5, thresholds=25, multidim_average="samplewise")


@pytest.mark.parametrize("target_dtype", [torch.bool, torch.uint8, torch.int32, torch.int64,
                                          torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("approx", APPROXES)
@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_target_dtypes(backend, device, task, approx, target_dtype):
    soft = target_dtype.is_floating_point  # floating targets carry soft labels in [0, 1]
    preds, target = make_inputs(task, 211, torch.float64, target_dtype=target_dtype, soft=soft, device=device)
    compare(backend, preds, target, task=task, approx=approx, thresholds=7)


@pytest.mark.parametrize("target_dtype", [torch.uint8, torch.int32, torch.int64])
def test_class_index_dtypes(backend, device, target_dtype):
    preds, target = make_inputs("multiclass", 101, torch.float32, classes=4, target_dtype=target_dtype,
                                device=device)
    compare(backend, preds, target, task="multiclass", num_classes=4)
    compare(backend, preds, target, task="multiclass", num_classes=4, approx="sigmoid")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_logits(backend, device, task, dtype):
    preds, target = make_inputs(task, 53, dtype, device=device)
    logits = (torch.randn(preds.shape, dtype=torch.float64) * 3).to(dtype).to(device)
    kwargs = dict(task=task, from_logits=True)
    if task != "binary":
        kwargs["num_classes"] = preds.shape[1]
    compare(backend, logits, target, **kwargs)
    compare(backend, logits, target, approx="sigmoid", **kwargs)


@pytest.mark.parametrize("approx", APPROXES)
@pytest.mark.parametrize("task", TASKS)
def test_non_contiguous(backend, device, task, approx):
    # Inputs are strided views; the backend must not read them as if contiguous.
    preds, target = make_inputs(task, 64, torch.float64, classes=3, length=8, device=device)
    if task == "binary":
        preds_nc, target_nc = preds[::2], target[::2]
        weight = torch.rand(128, device=device, dtype=torch.float64)[::4]
    else:
        preds_nc = preds.transpose(0, 2).contiguous().transpose(0, 2)[:, :, ::2]  # strided in N and L
        target_nc = target[..., ::2]
        weight = torch.rand(target.shape + (2,), device=device, dtype=torch.float64)[..., ::2, 0]
    assert not preds_nc.is_contiguous()
    kwargs = dict(task=task, approx=approx, weight=weight)
    if task != "binary":
        kwargs["num_classes"] = 3
    compare(backend, preds_nc, target_nc, **kwargs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("approx", APPROXES)
def test_thresholds_at_sample_values_and_breakpoints(backend, device, approx, dtype):
    # Dyadic thresholds: τ, a = τ - min(τ, 1-τ)/2 and b are exact in float32 and float64,
    # so preds hit them exactly and every backend must take the documented branch.
    thresholds = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
    grid = coefficient_table(torch.tensor(thresholds, dtype=torch.float64), "linear", 0.2)
    points = torch.cat([grid[:, 0], grid[:, 1], grid[:, 2], torch.tensor([0.0, 1.0], dtype=torch.float64)])
    preds = points.repeat(5)
    target = torch.rand(preds.shape) < 0.5
    assert bool((preds.to(dtype).double() == preds).all())
    compare(backend, preds.to(dtype).to(device), target.to(device), approx=approx, thresholds=thresholds)


@pytest.mark.parametrize("thresholds", [
    [0.03, 0.1, 0.3, 0.31, 0.5, 0.77, 0.9, 0.999],
    torch.linspace(0.001, 0.999, 255).tolist(),  # dense: most breakpoints alone in a look-up bucket
    sorted(set(torch.empty(400, dtype=torch.float64).uniform_(0.001, 0.999,
                                                                generator=torch.Generator().manual_seed(3)).tolist())),
], ids=["irregular", "dense", "random"])
@pytest.mark.parametrize("approx", APPROXES)
def test_thresholds_at_breakpoints_float64_irregular(backend, device, approx, thresholds):
    grid = coefficient_table(torch.tensor(thresholds, dtype=torch.float64), "linear", 0.2)
    points = torch.cat([grid[:, 0], grid[:, 1], grid[:, 2]])
    # One ulp either side too: p > b and p >= a flip exactly there.
    preds = torch.cat([points, torch.nextafter(points, torch.ones_like(points)),
                       torch.nextafter(points, torch.zeros_like(points)),
                       torch.rand(41, dtype=torch.float64)]).repeat(3 if len(thresholds) < 20 else 1)
    target = torch.rand(preds.shape, dtype=torch.float64)  # soft labels
    compare(backend, preds.to(device), target.to(device), approx=approx, thresholds=thresholds)


@pytest.mark.parametrize("thresholds", [
    None, 1, 2, 9, 100, 999,                                          # even grids
    [0.5], [0.013, 0.2, 0.21, 0.5, 0.77, 0.99],                       # uneven
    [0.05] + [0.4 + i * 1e-4 for i in range(60)] + [0.95],            # clustered
    [0.05] + [0.4 + i * 1e-9 for i in range(60)] + [0.95],            # dozens of points in one bucket
])
@pytest.mark.parametrize("approx", APPROXES)
def test_grids(backend, device, approx, thresholds):
    preds, target = make_inputs("binary", _size(backend, 2_003), torch.float64, device=device)
    compare(backend, preds, target, approx=approx, thresholds=thresholds)


@pytest.mark.parametrize("approx", APPROXES)
def test_samples_inside_a_crowded_bucket(backend, device, approx):
    # Sixty thresholds 1e-9 apart share one bucket of the kernels' look-up tables (as do
    # their breakpoints a, b); samples in and around the clusters take the search path.
    thresholds = [0.05] + [0.4 + i * 1e-9 for i in range(60)] + [0.95]
    grid = coefficient_table(torch.tensor(thresholds, dtype=torch.float64), "linear", 0.2)
    centres = torch.stack([grid[1:-1, 0], grid[1:-1, 1], grid[1:-1, 2]]).mean(dim=1)
    offsets = torch.linspace(-2e-8, 1e-7, 97, dtype=torch.float64)
    preds = torch.cat([(centres.view(-1, 1) + offsets).flatten(), grid[:, 0], grid[:, 1], grid[:, 2],
                       torch.rand(101, dtype=torch.float64)])
    target = torch.rand(preds.shape) < 0.5
    compare(backend, preds.to(device), target.to(device), approx=approx, thresholds=thresholds)


@pytest.mark.parametrize("fill", [True, False])
@pytest.mark.parametrize("task", ["binary", "multilabel"])
@pytest.mark.parametrize("approx", APPROXES)
def test_all_positive_or_all_negative(backend, device, approx, task, fill):
    preds, target = make_inputs(task, 29, torch.float32, device=device)
    target = torch.full_like(target, fill)
    counts = compare(backend, preds, target, approx=approx, task=task)
    zero_side = counts[..., 2:] if fill else counts[..., :2]
    assert bool((zero_side == 0).all())


@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
@pytest.mark.parametrize("task", TASKS)
def test_gradcheck_float64(backend, device, approx, task):
    preds, target = make_inputs(task, 6, torch.float64, classes=3, length=2, device=device)
    kwargs = dict(task=task, approx=approx, thresholds=[0.2, 0.45, 0.7])
    if task != "binary":
        kwargs["num_classes"] = 3
    weight = torch.rand(target.shape, dtype=torch.float64, device=device)
    preds = preds.clamp(0.01, 0.99).requires_grad_(True)

    def function(p):
        return sf.soft_confusion_matrix(p, target, weight=weight, backend=backend, validate_args=False, **kwargs)

    assert torch.autograd.gradcheck(function, (preds,), eps=1e-7, atol=1e-6)


def test_step_gradient_is_zero(backend, device):
    preds, target = make_inputs("binary", 50, torch.float32, device=device)
    preds.requires_grad_(True)
    sf.soft_confusion_matrix(preds, target, approx="step", backend=backend).sum().backward()
    assert bool((preds.grad == 0).all())


@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("approx", APPROXES)
def test_direct_op_call(backend, device, approx, samplewise):
    """The [N, C, L] op contract itself, as backends share it (weights, soft targets, ignore)."""
    preds = torch.rand(7, 3, 19, dtype=torch.float64, device=device)
    target = torch.rand(7, 3, 19, dtype=torch.float64, device=device)
    target[:, :, ::5] = -1.0
    weight = torch.rand(7, 3, 19, dtype=torch.float64, device=device)
    grid = coefficient_table(resolve_thresholds(13, approx, device), approx, 0.15)
    args = (weight, grid, approx, 4.0, 0, -1, samplewise)
    fast_in = preds.clone().requires_grad_(True)
    ref_in = preds.clone().requires_grad_(True)
    fast = counts_function(backend)(fast_in, target, *args)
    ref = reference.soft_counts(ref_in, target, *args)
    assert fast.shape == (7 if samplewise else 1, 3, 13, 4)
    assert_close(fast, ref, 1e-10, "counts")
    upstream = torch.randn_like(ref)
    grad_fast, = torch.autograd.grad((fast * upstream).sum(), fast_in)
    grad_ref, = torch.autograd.grad((ref * upstream).sum(), ref_in)
    assert_close(grad_fast, grad_ref, 1e-10, "grad")


def test_invalid_values_without_validation_do_not_crash(backend, device):
    """validate_args=False skips the data checks: out-of-range class indices and NaN preds
    must still read nothing out of bounds and give the reference's result."""
    preds, target = make_inputs("multiclass", 40, torch.float64, classes=4, device=device)
    target[0, :3] = torch.tensor([4, 1000, -7])  # not classes: y = 0 for every class
    compare(backend, preds, target, task="multiclass", num_classes=4, validate_args=False)
    preds, target = make_inputs("binary", 40, torch.float64, device=device)
    preds[3], target[3] = math.nan, False
    fast = sf.soft_confusion_matrix(preds, target, backend=backend, validate_args=False)
    # A NaN poisons the counts it is summed into (fp, tn of a negative element); it is
    # never silently dropped. (The reference's 0·NaN poisons tp, fn too.)
    assert bool(torch.isnan(fast[:, 2:]).all())


def _error_of(function):
    try:
        function()
    except (ValueError, TypeError, RuntimeError) as err:
        return type(err), str(err)
    return None


# (an ignore_index inside the class range is no error: tests/test_api.py checks it on every backend)
@pytest.mark.parametrize("case", ["class_index_too_large", "negative_class_index", "preds_out_of_range", "nan_preds", "target_not_binary", "weight_shape",
                                  "negative_weight", "unsorted_thresholds"])
def test_bad_inputs_same_errors_as_reference(backend, device, case):
    preds, target = make_inputs("multiclass", 10, torch.float32, classes=3, device=device)
    kwargs = dict(task="multiclass", num_classes=3)
    if case == "class_index_too_large":
        target[0, 0] = 3
    elif case == "negative_class_index":
        target[1, 2] = -2
    elif case == "preds_out_of_range":
        preds[0, 0, 0] = 1.5
    elif case == "nan_preds":
        preds[0, 0, 0] = math.nan
    elif case == "target_not_binary":
        preds, target = make_inputs("binary", 10, torch.float32, device=device)
        target = target.to(torch.int64) * 2
        kwargs = dict(task="binary")
    elif case == "weight_shape":
        kwargs["weight"] = torch.ones(10, 4, device=device)
    elif case == "negative_weight":
        kwargs["weight"] = -torch.ones(target.shape, device=device)
    elif case == "unsorted_thresholds":
        kwargs["thresholds"] = [0.5, 0.2]
    fast = _error_of(lambda: sf.soft_confusion_matrix(preds, target, backend=backend, **kwargs))
    ref_kwargs = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    ref = _error_of(lambda: reference.soft_confusion_matrix(preds.cpu(), target.cpu(), **ref_kwargs))
    assert ref is not None
    assert fast == ref


@pytest.mark.parametrize("k", [0.5, 10.0, 500.0, 5000.0])
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_slopes(backend, device, k, soft):
    """Gentle and very steep sigmoids (exp overflows for k·|p - τ| > ~709)."""
    preds, target = make_inputs("multilabel", 31, torch.float64, soft=soft, device=device)
    compare(backend, preds, target, task="multilabel", approx="sigmoid", k=k, thresholds=13)


@pytest.mark.parametrize("argument", ["target", "weight"])
def test_target_or_weight_requiring_grad_is_rejected(backend, device, argument):
    """Only preds is differentiable, on every backend: a target or weight that requires grad is
    an error naming it, not a gradient on one backend and None on another."""
    preds, target = make_inputs("binary", 53, torch.float32, device=device)
    kwargs = {"weight": torch.rand(target.shape, device=device)}
    if argument == "target":
        target = target.float().requires_grad_(True)
    else:
        kwargs["weight"].requires_grad_(True)
    for name in (backend, "reference"):
        with pytest.raises(ValueError, match=f"{argument} must not require grad"):
            sf.soft_confusion_matrix(preds, target, backend=name, **kwargs)


def test_second_derivatives_are_a_clear_error(backend, device):
    """The fused backends give first derivatives only: differentiating the gradient is an error
    naming the alternative, never silently zero."""
    preds, target = make_inputs("binary", 41, torch.float64, device=device)
    preds.requires_grad_(True)
    loss = 1 - sf.metrics.f1(sf.soft_confusion_matrix(preds, target, backend=backend)).mean()
    grad, = torch.autograd.grad(loss, preds, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives are not implemented.*backend='reference'"):
        torch.autograd.grad(grad.sum(), preds)
    reference_loss = 1 - sf.metrics.f1(sf.soft_confusion_matrix(preds, target, backend="reference")).mean()
    reference_grad, = torch.autograd.grad(reference_loss, preds, create_graph=True)
    assert torch.autograd.grad(reference_grad.sum(), preds)[0].abs().sum() > 0
