"""The fused loss epilogue torch.ops.softset_fast.metric_loss against the tensor path
1 - softset_fast.metrics.<metric>(counts, average=...).mean(): values and gradients,
zero denominators, float32, realistic counts, end to end from soft_counts, opcheck,
torch.compile, argument errors and the second-derivative error.

The loss of average="none" is per class: [C], 1 - the mean over G and T (auroc: G) of
that class's metric."""
import math

import pytest
import torch

import softset_fast as sf
import softset_fast.backends.loss_op as loss_op
from softset_fast._prepare import prepare

pytestmark = pytest.mark.skipif(not loss_op.AVAILABLE, reason="softset_fast._C is not built")

METRIC_CASES = [(m, b) for m in loss_op.FUSED_METRICS for b in ((1.0, 0.5, 2.0) if m == "fbeta" else (1.0,))]
AVERAGES = ("macro", "micro", "weighted", "none")
SHAPES = [(g, c, t) for g in (1, 3) for c in (1, 4) for t in (1, 7)]
OP = torch.ops.softset_fast


@pytest.fixture(params=["cpu", "cuda"])
def op_device(request):
    """The devices with a kernel of the op ("cuda" is skipped by the conftest hook without a GPU)."""
    if request.param == "cuda" and not torch._C._dispatch_has_kernel_for_dispatch_key("softset_fast::metric_loss",
                                                                                      "CUDA"):
        pytest.skip("softset_fast._C was built without CUDA")
    return torch.device(request.param)


def _counts(G, C, T, dtype=torch.float64):
    """Random counts with zero denominators: scattered zero entries, and per (group, class) in
    turn all-zero counts, no positives, no negatives; with G >= 3 a group without positives."""
    cm = torch.rand(G, C, T, 4, dtype=torch.float64) * 5
    cm[torch.rand(G, C, T, 4) < 0.15] = 0
    for g in range(G):
        for c in range(C):
            pattern = (g * C + c) % 5
            if pattern == 1:
                cm[g, c] = 0
            elif pattern == 2:
                cm[g, c, :, :2] = 0
            elif pattern == 3:
                cm[g, c, :, 2:] = 0
    if G >= 3:
        cm[G - 1, :, :, :2] = 0  # uniform class weights for average="weighted"
    return cm.to(dtype)


def _tensor_path(counts, metric, average, beta=1.0, zero_division=0.0):
    kwargs = {"zero_division": zero_division}
    if metric == "fbeta":
        kwargs["beta"] = beta
    values = sf.metrics.METRICS[metric](counts, average=average, **kwargs)
    if average == "none":
        return 1 - values.mean(dim=(0, 2) if values.dim() == 3 else 0)
    return 1 - values.mean()


def _fused(counts, metric, average, beta=1.0, zero_division=0.0):
    return loss_op.metric_loss_from_counts(counts, metric, average, beta, zero_division)


def _value_and_grad(fn, counts, grad_output):
    counts = counts.detach().requires_grad_(True)
    loss = fn(counts)
    (grad,) = torch.autograd.grad(loss, counts, grad_output)
    return loss.detach(), grad


def _grad_output(counts, average):
    if average == "none":
        return torch.rand(counts.shape[1], dtype=counts.dtype) + 0.5
    return torch.tensor(0.7, dtype=counts.dtype)


def _compare(counts, metric, average, beta, zero_division, rtol, atol, reference_dtype=None, device="cpu"):
    """The op on device against the tensor path on the CPU (in reference_dtype if given)."""
    grad_output = _grad_output(counts, average)
    ref_counts = counts if reference_dtype is None else counts.to(reference_dtype)
    ref_value, ref_grad = _value_and_grad(lambda cm: _tensor_path(cm, metric, average, beta, zero_division),
                                          ref_counts, grad_output.to(ref_counts.dtype))
    value, grad = _value_and_grad(lambda cm: _fused(cm, metric, average, beta, zero_division),
                                  counts.to(device), grad_output.to(device))
    value, grad = value.cpu(), grad.cpu()
    assert value.dtype == counts.dtype and grad.dtype == counts.dtype
    assert value.shape == ref_value.shape
    torch.testing.assert_close(value, ref_value.to(value.dtype), rtol=rtol, atol=atol)
    torch.testing.assert_close(grad, ref_grad.to(grad.dtype), rtol=rtol, atol=atol)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("zero_division", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("metric,beta", METRIC_CASES)
def test_matches_tensor_path_float64(metric, beta, average, zero_division, op_device):
    for G, C, T in SHAPES:
        _compare(_counts(G, C, T), metric, average, beta, zero_division, rtol=1e-12, atol=1e-12, device=op_device)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("metric,beta", METRIC_CASES)
def test_float32(metric, beta, average, op_device):
    counts = _counts(3, 4, 7, torch.float32)
    # Computed in float64 from the float32 counts: float32 rounding of the exact result ...
    _compare(counts, metric, average, beta, 0.5, rtol=2e-7, atol=1e-7, reference_dtype=torch.float64,
             device=op_device)
    # ... and within float32 tolerance of the float32 tensor path.
    _compare(counts, metric, average, beta, 0.5, rtol=1e-4, atol=1e-5, device=op_device)


def _realistic_counts(samplewise, dtype=torch.float64):
    preds = torch.rand(16, 3, 5, dtype=dtype)
    target = torch.rand(16, 3, 5) < 0.3
    target[:, 2] = False  # a class without positives
    counts = sf.soft_confusion_matrix(preds, target, task="multilabel", thresholds=7, backend="cpu",
                                      multidim_average="samplewise" if samplewise else "global")
    return counts if samplewise else counts.unsqueeze(0)


@pytest.mark.parametrize("samplewise", [False, True])
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("metric,beta", METRIC_CASES)
def test_realistic_counts(metric, beta, average, samplewise, op_device):
    _compare(_realistic_counts(samplewise), metric, average, beta, 0.0, rtol=1e-12, atol=1e-12, device=op_device)


END_TO_END = [
    dict(task="binary"),
    dict(task="binary", multidim_average="samplewise"),
    dict(task="multilabel", average="macro"),
    dict(task="multilabel", average="micro"),
    dict(task="multilabel", average="weighted"),
    dict(task="multilabel", average="macro", multidim_average="samplewise"),
    dict(task="multiclass", num_classes=4, average="weighted"),
]


@pytest.mark.parametrize("case", END_TO_END, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("metric", ["f1", "mcc", "auroc", "gmean", "balanced_accuracy"])
def test_end_to_end_matches_losses(case, metric):
    """soft_counts then metric_loss gives sf.metric_loss (1 - metric(soft_confusion_matrix).mean())."""
    case = dict(case)
    average = case.pop("average", "macro")
    task = case["task"]
    shape = (24,) if task == "binary" else (24, 4, 3)
    preds = torch.rand(shape, dtype=torch.float64)
    if task == "multiclass":
        preds = preds.softmax(1)
        target = torch.randint(0, 4, (24, 3))
    else:
        target = torch.rand(shape) < 0.4
    options = dict(thresholds=9, approx="linear", delta=0.2, k=10.0, num_classes=None, weight=None,
                   ignore_index=None, multidim_average="global", from_logits=False)
    options.update(case)

    eager = preds.clone().requires_grad_(True)
    expected = sf.metric_loss(eager, target, metric, average=average, backend="cpu", **options)
    expected.backward()

    fused_in = preds.clone().requires_grad_(True)
    p = prepare(fused_in, target, **options)
    counts = OP.soft_counts(p.preds, p.target, p.weight, p.grid, p.approx, p.k, p.num_classes, p.ignore_index,
                            p.samplewise)
    fused = _fused(counts, metric, average)
    fused.backward()
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused_in.grad, eager.grad, rtol=1e-12, atol=1e-12)


def test_beta_is_read_by_fbeta_only():
    counts = _counts(1, 4, 7)
    assert torch.equal(_fused(counts, "f1", "macro", beta=-3.0), _fused(counts, "fbeta", "macro", beta=1.0))
    assert not torch.equal(_fused(counts, "fbeta", "macro", beta=2.0), _fused(counts, "f1", "macro"))


@pytest.mark.parametrize("metric", loss_op.FUSED_METRICS)
@pytest.mark.parametrize("average", AVERAGES)
def test_scale_invariant_and_finite_at_extreme_magnitudes(metric, average):
    """Every metric is a function of count ratios: counts · 2^k give the same loss and the
    gradient · 2^-k, exactly, far beyond where tp·tn·(fn + fp) or the mcc product overflow."""
    counts = _counts(3, 4, 7)
    grad_output = _grad_output(counts, average)
    value, grad = _value_and_grad(lambda cm: _fused(cm, metric, average, 0.5, 0.5), counts, grad_output)
    for k in (500, -500):
        scaled_value, scaled_grad = _value_and_grad(lambda cm: _fused(cm, metric, average, 0.5, 0.5),
                                                    counts * 2.0**k, grad_output)
        assert torch.equal(scaled_value, value)
        assert torch.equal(scaled_grad, grad * 2.0**-k)
        assert torch.isfinite(scaled_grad).all()


def test_non_contiguous_counts():
    counts = _counts(3, 4, 7)
    strided = counts.transpose(0, 1).contiguous().transpose(0, 1)
    assert not strided.is_contiguous()
    grad_output = _grad_output(counts, "weighted")
    for cm in (counts, strided):
        value, grad = _value_and_grad(lambda x: _fused(x, "mcc", "weighted"), cm, grad_output)
        if cm is counts:
            expected = (value, grad)
    assert torch.equal(value, expected[0]) and torch.equal(grad, expected[1])


@pytest.mark.parametrize("average", AVERAGES)
def test_same_result_for_any_thread_count(average):
    """Enough groups to split the CPU loop into tasks: bitwise the same as one thread."""
    counts = _counts(3001, 3, 9)
    grad_output = _grad_output(counts, average)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, max(2, threads)):
            torch.set_num_threads(n)
            results.append(_value_and_grad(lambda cm: _fused(cm, "f1", average), counts, grad_output))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_empty_counts():
    """A mean over nothing is NaN, as on the tensor path; the gradient of nothing is empty."""
    for shape in [(0, 3, 5, 4), (2, 3, 0, 4)]:
        counts = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        loss = _fused(counts, "f1", "macro")
        assert torch.isnan(loss) and torch.isnan(_tensor_path(counts, "f1", "macro"))
        assert torch.isnan(_fused(counts, "f1", "none")).all()
        (grad,) = torch.autograd.grad(loss, counts)
        assert grad.shape == shape
    counts = torch.zeros(2, 0, 5, 4, dtype=torch.float64)  # no classes: micro sums nothing
    torch.testing.assert_close(_fused(counts, "f1", "micro", zero_division=0.5),
                               _tensor_path(counts, "f1", "micro", zero_division=0.5))


OPCHECK_CASES = [(m, a) for m in ("f1", "fbeta", "mcc", "gmean", "auroc") for a in AVERAGES]


@pytest.mark.parametrize("metric,average", OPCHECK_CASES)
def test_opcheck_metric_loss(metric, average, op_device):
    counts = _counts(3, 4, 5, torch.float32).to(op_device).requires_grad_(True)
    torch.library.opcheck(OP.metric_loss.default, (counts, metric, average, 0.5, 0.25))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("metric,average", OPCHECK_CASES)
def test_opcheck_metric_loss_backward(metric, average, dtype, op_device):
    counts = _counts(3, 4, 5, dtype).to(op_device)
    grad = _grad_output(counts, average).to(op_device)
    torch.library.opcheck(OP.metric_loss_backward.default, (grad, counts, metric, average, 0.5, 0.25))


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_compile_fullgraph_soft_counts_then_metric_loss(compiler):
    """The two ops in one compiled graph, forward and backward, on the CPU."""
    torch._dynamo.reset()
    preds = torch.rand(8, 3, 11)
    target = torch.rand(8, 3, 11) < 0.4
    p = prepare(preds, target, thresholds=7, approx="linear", delta=0.2, k=10.0, task="multilabel",
                num_classes=None, weight=None, ignore_index=None, multidim_average="samplewise", from_logits=False)

    def loss_fn(x):
        counts = OP.soft_counts(x, p.target, None, p.grid, "linear", 10.0, 0, None, True)
        return 2 * loss_op.metric_loss_from_counts(counts, "mcc", "weighted", 1.0, 0.0)

    eager_in = p.preds.clone().requires_grad_(True)
    eager = loss_fn(eager_in)
    eager.backward()
    compiled_in = p.preds.clone().requires_grad_(True)
    compiled = torch.compile(loss_fn, fullgraph=True, backend=compiler)(compiled_in)
    compiled.backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(compiled_in.grad, eager_in.grad, rtol=1e-6, atol=1e-7)


BAD_FORWARD = [
    (lambda cm: (cm, "f2", "macro", 1.0, 0.0), "metric_loss: metric must be one of 'f1', 'fbeta'"),
    (lambda cm: (cm, "f1", "mean", 1.0, 0.0), "metric_loss: average must be one of"),
    (lambda cm: (cm, "fbeta", "macro", 0.0, 0.0), "metric_loss: beta must be"),
    (lambda cm: (cm, "fbeta", "macro", -1.0, 0.0), "metric_loss: beta must be"),
    (lambda cm: (cm, "fbeta", "macro", math.nan, 0.0), "metric_loss: beta must be"),
    (lambda cm: (cm, "f1", "macro", 1.0, math.nan), "metric_loss: zero_division must be"),
    (lambda cm: (cm[0], "f1", "macro", 1.0, 0.0), r"metric_loss: counts must have shape \[G, C, T, 4\]"),
    (lambda cm: (cm[..., :3], "f1", "macro", 1.0, 0.0), r"metric_loss: counts must have shape \[G, C, T, 4\]"),
    (lambda cm: (cm.half(), "f1", "macro", 1.0, 0.0), "metric_loss: counts must be float32 or float64"),
    (lambda cm: (cm.long(), "f1", "macro", 1.0, 0.0), "metric_loss: counts must be float32 or float64"),
]
BAD_BACKWARD = [
    (lambda cm: (torch.ones(4, dtype=cm.dtype), cm, "f1", "macro", 1.0, 0.0),
     "metric_loss_backward: grad must have the loss's shape"),
    (lambda cm: (torch.ones((), dtype=cm.dtype), cm, "f1", "none", 1.0, 0.0),
     "metric_loss_backward: grad must have the loss's shape"),
    (lambda cm: (torch.ones((), dtype=torch.int64), cm, "f1", "macro", 1.0, 0.0),
     "metric_loss_backward: grad must be floating point"),
    (lambda cm: (torch.ones(()), cm, "auroc", "sum", 1.0, 0.0), "metric_loss_backward: average must be one of"),
]


@pytest.mark.parametrize("fake", [False, True], ids=["kernel", "fake"])
@pytest.mark.parametrize("make_args,message", BAD_FORWARD + BAD_BACKWARD)
def test_bad_arguments_name_the_argument(make_args, message, fake):
    from torch._subclasses.fake_tensor import FakeTensorMode
    counts = _counts(2, 4, 5)
    args = make_args(counts)
    op = OP.metric_loss if isinstance(args[1], str) else OP.metric_loss_backward
    if fake:
        with FakeTensorMode() as mode:
            args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
            with pytest.raises(RuntimeError, match=message):
                op(*args)
    else:
        with pytest.raises(RuntimeError, match=message):
            op(*args)


def test_second_derivative_raises(op_device):
    counts = _counts(3, 4, 7).to(op_device).requires_grad_(True)
    loss = _fused(counts, "f1", "weighted")
    (plain,) = torch.autograd.grad(loss, counts, retain_graph=True)
    (grad,) = torch.autograd.grad(loss, counts, create_graph=True)
    assert torch.equal(grad.detach(), plain)  # create_graph itself is fine
    with pytest.raises(RuntimeError, match="metric_loss: second derivatives are not implemented"):
        torch.autograd.grad(grad.sum(), counts)


def test_fused_metrics_are_the_builtin_metrics():
    assert set(loss_op.FUSED_METRICS) == set(sf.metrics.METRICS)


def test_import_without_the_extension_is_harmless():
    import os
    import subprocess
    import sys
    code = ("import sys; sys.modules['softset_fast._C'] = None\n"  # makes `from . import _C` fail
            "import softset_fast.backends.loss_op as m\n"
            "assert not m.AVAILABLE\n"
            "import torch\n"
            "try:\n"
            "    m.metric_loss_from_counts(torch.zeros(1, 1, 1, 4), 'f1')\n"
            "except RuntimeError as err:\n"
            "    assert 'not built' in str(err)\n"
            "else:\n"
            "    raise AssertionError('no error')\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
