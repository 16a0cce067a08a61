"""The fused loss step (softset_fast::soft_set_loss): the same values and gradients as the
tensor-op path on the same counts, its argument and value checks, few dispatched operations,
opcheck and torch.compile."""
import itertools

import pytest
import torch

import softset_fast as sf
from softset_fast import metrics
from softset_fast.backends.registry import fused_loss_runs, unavailable_reason
from softset_fast.cli.bench import count_step_operations

pytestmark = pytest.mark.skipif(unavailable_reason("cpu") is not None or not fused_loss_runs("cpu", torch.device("cpu")),
                                reason="the C++ CPU op is not built")

METRICS = sorted(metrics.METRICS)
AVERAGES = ("macro", "micro", "weighted", "none")


def make_case(task, dtype, *, n=37, classes=4, length=3, soft=False, weighted=False, ignore=False):
    if task == "binary":
        preds = torch.rand(n, length, dtype=torch.float64)
        target = torch.rand(n, length, dtype=torch.float64) if soft else torch.rand(n, length) < 0.3
    elif task == "multilabel":
        preds = torch.rand(n, classes, length, dtype=torch.float64)
        target = torch.rand(n, classes, length, dtype=torch.float64) if soft else torch.rand(n, classes, length) < 0.3
    else:
        preds = torch.rand(n, classes, length, dtype=torch.float64).softmax(1)
        target = torch.randint(0, classes, (n, length))
    kwargs = {}
    if weighted:
        kwargs["weight"] = torch.rand(target.shape, dtype=torch.float64)
    if ignore:
        if task == "multiclass":
            target[::5] = -100
            kwargs["ignore_index"] = -100
        else:
            target = target.to(torch.float64) if soft else target.to(torch.int64)
            target[::5] = 7
            kwargs["ignore_index"] = 7
    return preds.to(dtype).requires_grad_(True), target, kwargs


def tensor_path_loss(preds, target, metric, average, metric_kwargs, **kwargs):
    """Today's tensor-op loss on the same (C++) counts: 1 − mean(metric(counts))."""
    counts = sf.soft_confusion_matrix(preds, target, backend="cpu", **kwargs)
    task = kwargs.get("task", "binary")
    values = metrics.METRICS[metric](counts, **metric_kwargs, **({} if task == "binary" else {"average": average}))
    if task != "binary" and average == "none":
        samplewise = kwargs.get("multidim_average") == "samplewise"
        dims = [d for d in range(values.dim()) if d != (1 if samplewise else 0)]
        return 1 - (values.mean(dims) if dims else values)
    return 1 - values.mean()


def check_same(preds, target, metric, average="macro", metric_kwargs=None, rtol=1e-12, atol=1e-12, **kwargs):
    metric_kwargs = dict(metric_kwargs or {})
    fused = sf.metric_loss(preds, target, metric, average=average, metric_kwargs=metric_kwargs, backend="cpu",
                           **kwargs)
    assert fused.grad_fn is not None and "SoftSetLoss" in type(fused.grad_fn).__name__ + fused.grad_fn.name()
    expected = tensor_path_loss(preds, target, metric, average, metric_kwargs, **kwargs)
    torch.testing.assert_close(fused, expected, rtol=rtol, atol=atol)
    upstream = torch.rand_like(fused) + 0.5  # grad_output != 1
    grad, = torch.autograd.grad(fused, preds, upstream)
    expected_grad, = torch.autograd.grad(expected, preds, upstream)
    torch.testing.assert_close(grad, expected_grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("task, average", [("binary", "macro")] + list(itertools.product(
    ("multilabel", "multiclass"), AVERAGES)))
def test_every_metric_and_average_float64(metric, task, average):
    preds, target, kwargs = make_case(task, torch.float64)
    metric_kwargs = {"beta": 2.0} if metric == "fbeta" else {}
    check_same(preds, target, metric, average, metric_kwargs, task=task, **kwargs)


@pytest.mark.parametrize("metric", ["f1", "mcc", "auroc", "gmean", "balanced_accuracy"])
@pytest.mark.parametrize("approx", ["linear", "sigmoid", "step"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("options", ["samplewise", "weight", "ignore", "soft"])
def test_approximations_and_options(metric, approx, task, options):
    if options == "soft" and task == "multiclass":
        pytest.skip("class indices are hard labels")
    preds, target, kwargs = make_case(task, torch.float64, soft=options == "soft", weighted=options == "weight",
                                      ignore=options == "ignore")
    if options == "samplewise":
        kwargs["multidim_average"] = "samplewise"
    check_same(preds, target, metric, "weighted" if task != "binary" else "macro", approx=approx, task=task,
               thresholds=7, **kwargs)


@pytest.mark.parametrize("thresholds", [9, 127, 128, 301, torch.linspace(0.01, 0.99, 32768).tolist()],
                         ids=["T9", "T127", "T128", "T301", "T32768"])
@pytest.mark.parametrize("task, options", [("binary", {}), ("multilabel", {"weighted": True, "ignore": True}),
                                           ("multiclass", {"ignore": True}), ("binary", {"soft": True})])
@pytest.mark.parametrize("validate_args", [True, False])
def test_gradient_pass_with_and_without_recorded_cells(thresholds, task, options, validate_args):
    """A training call's gradient pass reads the cells its counting pass recorded (linear: one byte each up to
    T = 127, two up to T = 32767) or looks them up again (larger grids): the same gradient either way, and the
    same as the tensor path."""
    preds, target, kwargs = make_case(task, torch.float64, n=203, **options)
    check_same(preds, target, "f1", "macro", task=task, thresholds=thresholds, validate_args=validate_args,
               **kwargs)


def test_loss_backward_hands_over_the_saved_gradient_safely():
    """loss.backward() (upstream 1) returns the gradient the forward computed; a retained graph, a second use of
    preds and a second step must still add up exactly."""
    preds = torch.rand(301, dtype=torch.float64, requires_grad=True)
    target = torch.rand(301) < 0.4
    expected, = torch.autograd.grad(sf.fbeta_loss(preds, target, backend="reference"), preds)
    loss = sf.fbeta_loss(preds, target)
    loss.backward(retain_graph=True)
    first = preds.grad.clone()
    torch.testing.assert_close(first, expected, rtol=1e-12, atol=1e-12)
    loss.backward()  # the saved gradient was not changed by the first backward
    torch.testing.assert_close(preds.grad, 2 * first, rtol=0, atol=0)
    preds.grad = None
    (sf.fbeta_loss(preds, target) + preds.sum()).backward()
    torch.testing.assert_close(preds.grad, first + 1, rtol=0, atol=0)
    step_one = preds.grad
    sf.fbeta_loss(preds, target).backward()  # accumulates into .grad, in place
    torch.testing.assert_close(step_one, (first + 1) + first, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float16, 1e-5), (torch.bfloat16, 1e-5)])
def test_low_precision_preds(dtype, rtol):
    preds, target, kwargs = make_case("multilabel", dtype)
    check_same(preds, target, "f1", "macro", rtol=rtol, atol=1e-6, task="multilabel")


@pytest.mark.parametrize("zero_division", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("metric", METRICS)
def test_zero_denominators(metric, zero_division):
    """An empty class, an all-negative batch and an empty batch."""
    preds = torch.rand(20, 3, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(20, 3, dtype=torch.bool)
    target[:5, 0] = True  # class 1 and 2: no positives
    check_same(preds, target, metric, "macro", {"zero_division": zero_division}, task="multilabel")
    negatives = torch.rand(20, dtype=torch.float64, requires_grad=True)
    check_same(negatives, target[:, 1], metric, "macro", {"zero_division": zero_division})
    empty = torch.rand(0, dtype=torch.float64, requires_grad=True)
    check_same(empty, torch.zeros(0, dtype=torch.bool), metric, "macro", {"zero_division": zero_division})


BAD_VALUES = {
    "preds_range": (lambda p, y: (torch.full_like(p, 1.5), y, {}), "preds must be probabilities in \\[0, 1\\]"),
    "preds_nan": (lambda p, y: (torch.full_like(p, float("nan")), y, {}), "preds contains NaN or inf"),
    "int_target": (lambda p, y: (p, y.long() * 2, {}), "target must hold 0 or 1 for task='binary'"),
    "soft_target": (lambda p, y: (p, y.double() * 2, {}), "target must lie in \\[0, 1\\]"),
    "nan_target": (lambda p, y: (p, torch.where(y, float("nan"), 0.0), {}), "target must lie in \\[0, 1\\]"),
    "class_target": (lambda p, y: (torch.rand(30, 3), torch.full((30,), 3), {"task": "multiclass"}),
                     "target must hold class indices in \\[0, 3\\)"),
    "negative_weight": (lambda p, y: (p, y, {"weight": -torch.ones(30)}), "weight must be non-negative"),
    "inf_weight": (lambda p, y: (p, y, {"weight": torch.full((30,), float("inf"))}), "weight contains NaN or inf"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_value_errors_match_the_public_checks(case, backend):
    """validate_args=True checks the values inside the fused op, with the public API's messages."""
    make, message = BAD_VALUES[case]
    preds, target, kwargs = make(torch.rand(30), torch.rand(30) < 0.5)
    with pytest.raises(ValueError, match=message) as raised:
        sf.fbeta_loss(preds, target, backend=backend, **kwargs)
    assert not str(raised.value).startswith("ValueError"), raised.value  # the C++ marker is removed


def test_the_ops_value_errors_are_value_errors_on_every_torch():
    """torch raises a C++ std::invalid_argument as ValueError up to 2.14 and as RuntimeError from 2.15 on:
    the marked messages of the value checks become ValueError either way; other errors pass unchanged."""
    from softset_fast.backends.loss_autograd import _value_error
    for raised in (ValueError("ValueError: weight must be non-negative"),
                   RuntimeError("ValueError: weight must be non-negative")):
        error = _value_error(raised)
        assert type(error) is ValueError and str(error) == "weight must be non-negative"
    other = RuntimeError("soft_counts: grid must be float64, got float32")
    assert _value_error(other) is other


def last_value_bad(case, n):
    """A batch of n (binary: [n / 7, 7]) whose one bad value, of the kind BAD_VALUES[case] names, is the last."""
    preds, target, kwargs = torch.rand(n), torch.rand(n) < 0.5, {}
    if case == "preds_range":
        preds[-1] = 1.5
    elif case == "preds_nan":
        preds[-1] = float("nan")
    elif case in ("int_target", "soft_target", "nan_target"):
        target = target.to(torch.int64 if case == "int_target" else torch.float64)
        target[-1] = float("nan") if case == "nan_target" else 2
    elif case == "class_target":
        preds, target, kwargs = torch.rand(n, 3), torch.randint(0, 3, (n,)), {"task": "multiclass"}
        target[-1] = 3
        return preds, target, kwargs
    else:
        kwargs["weight"] = torch.ones(n)
        kwargs["weight"][-1] = -1.0 if case == "negative_weight" else float("inf")
    shape = (n // 7, 7)
    return preds.reshape(shape), target.reshape(shape), {k: v.reshape(shape) for k, v in kwargs.items()}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
@pytest.mark.parametrize("multidim_average", ["global", "samplewise"])
def test_one_bad_value_at_the_end_of_a_large_batch_is_found(case, multidim_average):
    """The CPU checks run block by block in the counting pass (chunks, or rows when samplewise):
    a bad value in the last element of a batch of several blocks is found."""
    preds, target, kwargs = last_value_bad(case, 7 * 1757)  # > 3 blocks of 4096
    with pytest.raises(ValueError, match=BAD_VALUES[case][1]):
        sf.fbeta_loss(preds, target, multidim_average=multidim_average, **kwargs)


def test_cpu_value_checks_run_in_the_counting_pass():
    """validate_args=True adds no operations over the data (no aminmax, comparisons or copies):
    the kernel gathers the ranges while it counts."""
    preds, target = torch.rand(5000), torch.rand(5000)
    weight = torch.rand(5000, dtype=torch.float64)
    sf.f1_loss(preds, target, weight=weight, ignore_index=-1)
    with torch.profiler.profile() as prof:
        sf.f1_loss(preds, target, weight=weight, ignore_index=-1)
    names = {event.name for event in prof.events()}
    data_passes = {"aten::aminmax", "aten::ne", "aten::where", "aten::min", "aten::max", "aten::isfinite",
                   "aten::stack", "aten::item"}
    assert not names & data_passes, sorted(names & data_passes)
    assert "softset_fast::_planned_soft_set_loss" in names  # the repeated call: its plan's op


def test_ignored_and_out_of_range_labels_pass_when_ignored():
    preds = torch.rand(40, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(40) < 0.5).long()
    target[::4] = 9
    check_same(preds, target, "f1", ignore_index=9)


@pytest.mark.parametrize("kwargs", [{}, {"task": "multilabel"}, {"approx": "sigmoid"}, {"validate_args": False}])
def test_a_loss_step_dispatches_at_most_four_operations(kwargs):
    task = kwargs.get("task", "binary")
    preds = torch.rand(1024, 3 if task == "multilabel" else 1).squeeze(-1).requires_grad_(True)
    target = torch.rand(preds.shape) < 0.3
    sf.fbeta_loss(preds, target, **kwargs).backward()  # warm-up: caches, first-call work
    forward, backward = count_step_operations(lambda: sf.fbeta_loss(preds, target, **kwargs))
    assert forward + backward <= 4, (forward, backward)


def test_opcheck_soft_set_loss():
    preds = torch.rand(5, 3, 7, dtype=torch.float64, requires_grad=True)
    target = torch.rand(5, 3, 7) < 0.4
    grid = sf._grid.coefficient_table(sf._grid.resolve_thresholds(9, "linear", "cpu"), "linear", 0.2)
    for average, samplewise in [("macro", False), ("weighted", True), ("none", False)]:
        shape = [5, 3, 7]
        # validate=False: the value checks read data, which tracing (the aot_dispatch checks) cannot
        args = (preds, target, None, grid, "linear", 10.0, 0, None, samplewise, shape, "multilabel", False, "f1",
                average, 1.0, 0.0)
        torch.library.opcheck(torch.ops.softset_fast.soft_set_loss.default, args)


def test_compile_fullgraph():
    preds = torch.rand(257, requires_grad=True)
    target = torch.rand(257) < 0.3
    eager = sf.fbeta_loss(preds, target)
    grad, = torch.autograd.grad(eager, preds)
    compiled = torch.compile(lambda p, y: sf.fbeta_loss(p, y), fullgraph=True)
    loss = compiled(preds, target)
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(torch.autograd.grad(loss, preds)[0], grad)


@pytest.mark.parametrize("fused", [True, False])
def test_second_derivatives_are_a_clear_error(fused):
    preds = torch.rand(50, dtype=torch.float64, requires_grad=True)
    target = torch.rand(50) < 0.5
    loss = sf.fbeta_loss(preds, target) if fused else 1 - metrics.f1(sf.soft_confusion_matrix(preds, target)).mean()
    grad, = torch.autograd.grad(loss, preds, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives are not implemented"):
        torch.autograd.grad(grad.sum(), preds)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16])
def test_target_dtypes_the_kernels_do_not_read_are_converted(dtype):
    """int8 / int16 targets reach the fused op converted, as they reach the counts op."""
    preds = torch.rand(41, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(41) < 0.4).to(dtype)
    check_same(preds, target, "f1")
    torch.testing.assert_close(sf.fbeta_loss(preds, target), sf.fbeta_loss(preds, target, backend="reference"))


@pytest.mark.parametrize("grad", [False, True])
def test_views_with_a_storage_offset_and_strides(grad):
    """Rows of a batch (a storage offset), a transposed batch (strides) and a weight row: the op views its
    inputs without copying where it can, and must read each view's own elements (found by the torch.func test:
    a row past the first read the rows after it)."""
    batch = torch.rand(4, 37, dtype=torch.float64)
    target = torch.rand(4, 37) < 0.4
    weight = torch.rand(4, 37, dtype=torch.float64)
    columns = torch.rand(37, 4, dtype=torch.float64).t()  # non-contiguous rows
    for preds, y, w in [(batch[3], target[3], weight[2]), (columns[1], target[1], None),
                        (batch[1:3], target[1:3], weight[2:4])]:
        fused_in = preds.clone().requires_grad_(True) if grad else preds
        fused = sf.f1_loss(fused_in, y, weight=w, backend="cpu")
        expected_in = preds.clone().requires_grad_(True)
        expected = sf.f1_loss(expected_in, y, weight=w, backend="reference")
        torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
        if grad:
            torch.testing.assert_close(torch.autograd.grad(fused, fused_in)[0],
                                       torch.autograd.grad(expected, expected_in)[0], rtol=1e-12, atol=1e-12)
