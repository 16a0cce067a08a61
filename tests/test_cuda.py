"""CUDA-only checks beyond the shared backend matrix (tests/test_backends.py).

Skipped without a GPU by the conftest hook (mark ``cuda``). The N > 2^31 case
also needs tens of GB of device memory (mark ``bigmem``) and skips itself when
the card has too little free.
"""
import warnings

import pytest
import torch

import softset_fast
from softset_fast import reference
from softset_fast.backends.registry import resolve_backend, unavailable_reason

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _needs_cuda_backend():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    reason = unavailable_reason("cuda")
    if reason is not None:
        pytest.skip(f"backend 'cuda' unavailable: {reason}")


def _counts(preds, target, **kw):
    return softset_fast.soft_confusion_matrix(preds, target, backend="cuda", **kw)


def test_auto_picks_cuda():
    assert resolve_backend("auto", torch.device("cuda")) == "cuda"
    preds = torch.rand(1000, device="cuda")
    target = torch.rand(1000, device="cuda") > 0.5
    auto = softset_fast.soft_confusion_matrix(preds, target)
    torch.testing.assert_close(auto, _counts(preds, target))


@pytest.mark.parametrize("validate_args, allowed", [(False, 0), (True, 1)])
def test_host_synchronisations_per_loss_call(validate_args, allowed):
    """A loss call waits for the GPU at most once with validate_args=True (the value checks'
    one read-back), never without. torch's sync debug mode warns at every synchronisation."""
    preds = torch.rand(4099, device="cuda", requires_grad=True)
    target = torch.rand(4099, device="cuda") < 0.4
    softset_fast.fbeta_loss(preds, target, validate_args=validate_args).backward()  # warm-up: caches
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            softset_fast.fbeta_loss(preds, target, validate_args=validate_args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= allowed, syncs


def test_cuda_version_matches_torch():
    from softset_fast.backends import cuda_check as _cuda_check
    assert _cuda_check.extension_cuda_version() is not None
    assert _cuda_check.mismatch() is None


@pytest.mark.parametrize("approx", ["linear", "step", "sigmoid"])
@pytest.mark.parametrize("thresholds", [9, 1000])
def test_deterministic_mode_bit_identical(approx, thresholds):
    preds = torch.rand(3_000_017, device="cuda", requires_grad=True)
    target = torch.rand(3_000_017, device="cuda") > 0.3
    weight = torch.rand(3_000_017, device="cuda")
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(3):
            cm = _counts(preds, target, approx=approx, thresholds=thresholds, weight=weight)
            (grad,) = torch.autograd.grad((cm * torch.linspace(-1, 1, cm.numel(), device="cuda").view_as(cm)).sum(),
                                          preds)
            runs.append((cm, grad))
    finally:
        torch.use_deterministic_algorithms(previous)
    for cm, grad in runs[1:]:
        assert torch.equal(cm, runs[0][0])
        assert torch.equal(grad, runs[0][1])
    # The deterministic path computes the same function as the reference.
    ref = reference.soft_confusion_matrix(preds[:20000].detach(), target[:20000], approx=approx,
                                          thresholds=thresholds, weight=weight[:20000])
    got = _counts(preds[:20000].detach(), target[:20000], approx=approx, thresholds=thresholds,
                  weight=weight[:20000])
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("approx", ["linear", "step"])
def test_default_and_deterministic_paths_agree(approx):
    preds = torch.rand(1_000_003, device="cuda", dtype=torch.float64)
    target = torch.rand(1_000_003, device="cuda", dtype=torch.float64)  # soft labels
    fast = _counts(preds, target, approx=approx, thresholds=257)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        exact = _counts(preds, target, approx=approx, thresholds=257)
    finally:
        torch.use_deterministic_algorithms(previous)
    torch.testing.assert_close(fast, exact, rtol=1e-10, atol=1e-7)


def test_breakpoints_take_the_reference_branch():
    # p exactly at a(τ), b(τ) and τ: every backend must pick the same segment.
    grid_t = torch.tensor([0.1, 0.25, 0.5, 0.7, 0.9], dtype=torch.float64)
    tau_m = torch.minimum(grid_t, 1 - grid_t)
    points = torch.cat([grid_t, grid_t - tau_m / 2, grid_t + tau_m / 2, torch.tensor([0.0, 1.0])])
    preds = points.repeat(50).cuda()
    target = (torch.arange(preds.numel(), device="cuda") % 3 == 0)
    for approx in ("linear", "step"):
        got = _counts(preds, target, approx=approx, thresholds=grid_t.tolist())
        ref = reference.soft_confusion_matrix(preds, target, approx=approx, thresholds=grid_t.tolist())
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
        p = preds.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_counts(p, target, approx=approx, thresholds=grid_t.tolist())[:, 0].sum(), p)
        q = preds.clone().requires_grad_(True)
        (r,) = torch.autograd.grad(reference.soft_confusion_matrix(q, target, approx=approx,
                                                                   thresholds=grid_t.tolist())[:, 0].sum(), q)
        torch.testing.assert_close(g, r, rtol=0, atol=1e-12)


def test_misaligned_and_strided_inputs():
    # A storage offset of one element defeats the vector loads; results must not change.
    base = torch.rand(4097 * 3 + 1, device="cuda")
    preds = base[1:].view(3, 4097)
    target = torch.rand(3, 4097, device="cuda") > 0.5
    for samplewise in ("global", "samplewise"):
        got = _counts(preds, target, multidim_average=samplewise, thresholds=33)
        ref = reference.soft_confusion_matrix(preds, target, multidim_average=samplewise, thresholds=33)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-3)


def test_current_stream_and_device_guard():
    preds = torch.rand(50_000, device="cuda")
    target = torch.rand(50_000, device="cuda") > 0.5
    expected = _counts(preds, target)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = _counts(preds, target)
    stream.synchronize()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-2)


@pytest.mark.bigmem
@pytest.mark.slow
def test_more_than_2_31_elements():
    n = 2**31 + 4099
    free, _ = torch.cuda.mem_get_info()
    # preds (4 B) + target (1 B) + grad (4 B) per element, plus slack.
    if free < n * 10 + (2 << 30):
        pytest.skip(f"needs about {n * 10 / 2**30:.0f} GiB of free device memory, {free / 2**30:.0f} GiB free")
    preds = torch.empty(n, device="cuda")
    preds[: 2**30].fill_(0.02)      # below every a(τ) (>= 0.05) and τ: segment 1, step 0
    preds[2**30:].fill_(0.97)       # above every b(τ) (<= 0.95) and τ: segment 3, step 1
    target = torch.zeros(n, dtype=torch.bool, device="cuda")
    target[-5:] = True              # the last elements sit beyond index 2^31
    preds.requires_grad_(True)
    cm = _counts(preds, target, approx="step")
    high = n - 2**30
    as_f32 = lambda x: float(torch.tensor(float(x), dtype=torch.float32))  # noqa: E731 (float32 output)
    assert cm[:, 0].tolist() == [5.0] * 9                     # tp: the 5 positives at 0.97
    assert cm[:, 2].tolist() == [as_f32(high - 5)] * 9        # fp
    assert cm[:, 3].tolist() == [as_f32(2**30)] * 9           # tn
    cm = _counts(preds, target, approx="linear")
    (grad,) = torch.autograd.grad(cm[:, 0].sum(), preds)
    # Gradient of Σ_t tp at p = 0.97 for a positive is Σ_t m3(τ_t); zero for the negatives.
    assert float(grad[-1]) > 0 and float(grad[-6]) == 0.0 and float(grad[0]) == 0.0
    from softset_fast._grid import coefficient_table, default_thresholds
    grid = coefficient_table(torch.tensor(default_thresholds(), dtype=torch.float64), "linear", 0.2)
    torch.testing.assert_close(float(grad[-1]), float(grid[:, 5].sum()), rtol=1e-5, atol=0)
