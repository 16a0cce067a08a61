"""The public API's contract: readable signatures and docstrings, strict options, average="none",
the approx="step" warning, and the class options (ignore_index naming a class, classes,
class_weight, ignore_absent_classes) against the reference on every backend that runs here."""
import inspect
import pathlib
import typing
import warnings

import pytest
import torch

import softset_fast as sf
from softset_fast import _grid, _options, _prepare, losses, metrics
from softset_fast.backends.registry import fused_loss_runs
from conftest import FUSED_BACKENDS, backend_device, skip_unless_runs
from test_backends import make_inputs

ref = sf.reference.soft_confusion_matrix
ROOT = pathlib.Path(__file__).resolve().parents[1]
FUNCTIONS = [sf.soft_confusion_matrix, sf.metric_loss, sf.fbeta_loss, sf.f1_loss, sf.accuracy_loss, sf.auroc_loss]
MODULES = [sf.SoftSetLoss, sf.FBetaLoss, sf.AccuracyLoss, sf.AUROCLoss]
CLASS_OPTIONS = ("average", "classes", "class_weight", "ignore_absent_classes")
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
# Loss tolerance per preds dtype: counts accumulate in float32 (float64 for float64 preds) in a
# backend-dependent order; the gradient is rounded to preds' dtype.
RTOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-5, torch.bfloat16: 1e-5}
RTOL_GRAD = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
LOSS_BACKENDS = ("reference",) + FUSED_BACKENDS


def _signature(obj):
    return inspect.signature(obj.__init__ if isinstance(obj, type) else obj)


def _is_fused(loss) -> bool:
    """Whether the loss came from the fused C++ op (its one autograd node)."""
    return loss.grad_fn is not None and "SoftSetLoss" in loss.grad_fn.name()


def _run_backend(name):
    """Skips unless backend ``name`` runs here; returns its device."""
    if name == "reference":
        return torch.device("cpu")
    skip_unless_runs(name)
    return backend_device(name)


# ---- 1. readable signatures, docstrings, types ---------------------------------------------------

@pytest.mark.parametrize("obj", FUNCTIONS + MODULES, ids=lambda o: o.__name__)
def test_signatures_spell_out_every_option_with_a_type(obj):
    parameters = _signature(obj).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), "no **kwargs"
    expected = [name for name in _options.CONFUSION_OPTIONS if not (isinstance(obj, type) and name == "weight")]
    if obj is not sf.soft_confusion_matrix:
        expected += CLASS_OPTIONS
    for name in expected:
        assert name in parameters, name
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].annotation is not inspect.Parameter.empty, name
    assert _signature(obj).parameters["approx"].annotation == "Approx"


@pytest.mark.parametrize("loss", [sf.fbeta_loss, sf.f1_loss, sf.accuracy_loss, sf.auroc_loss],
                         ids=lambda f: f.__name__)
def test_thin_losses_pass_every_option_on_by_name(loss, monkeypatch):
    """The thin losses spell their options out in the call to metric_loss (no locals(), which torch
    2.11's dynamo cannot trace): each option reaches it unchanged, none swapped or dropped."""
    seen = {}
    monkeypatch.setattr(losses, "_metric_loss", lambda preds, target, metric, **kwargs: seen.update(kwargs))
    names = _options.LOSS_OPTIONS
    sentinels = {name: object() for name in names}
    loss(torch.rand(3), torch.rand(3), **sentinels)
    assert {name: seen[name] for name in names} == sentinels
    assert set(seen) == set(names) | {"metric_kwargs"}


@pytest.mark.parametrize("obj", FUNCTIONS + MODULES, ids=lambda o: o.__name__)
def test_docstrings_document_every_parameter_and_run(obj):
    doc = inspect.getdoc(obj)
    for section in ("Args:", "Shape:", "Returns:", "Example:", ">>> "):
        assert section in doc, section
    assert "{" + "options}" not in doc and "_sections}" not in doc
    documented = {line.strip().split(":")[0] for line in doc.splitlines()}
    for name in _signature(obj).parameters:
        if name != "self":
            assert name in documented, f"{obj.__name__}: {name} undocumented"


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_metrics_keep_their_signature_and_document_it(name):
    metric = metrics.METRICS[name]
    parameters = inspect.signature(metric).parameters
    expected = ["cm", "beta", "zero_division", "average"] if name == "fbeta" else ["cm", "zero_division", "average"]
    assert list(parameters) == expected
    assert parameters["average"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["average"].default == "none"
    doc = inspect.getdoc(metric)
    for section in ("Args:", "Shape:", "Returns:", "Example:", "average: how a class axis"):
        assert section in doc, section
    assert metric.__name__ == name


def test_literal_types_are_the_checked_values():
    assert typing.get_args(_options.Approx) == _grid.APPROXIMATIONS
    assert typing.get_args(_options.Task) == _prepare.TASKS
    assert typing.get_args(_options.MultidimAverage) == _prepare.MULTIDIM_AVERAGES
    assert typing.get_args(_options.Average) == metrics.AVERAGES == sf.backends.loss_op.FUSED_AVERAGES
    assert typing.get_args(_options.Backend) == ("auto",) + sf.backends.registry.BACKENDS


def test_repr_shows_each_non_default_option():
    assert repr(sf.FBetaLoss(beta=2)) == "FBetaLoss(beta=2.0)"
    assert repr(sf.AccuracyLoss()) == "AccuracyLoss()"
    assert repr(sf.AUROCLoss(thresholds=19, task="multilabel", from_logits=True)) == \
        "AUROCLoss(thresholds=19, task='multilabel', from_logits=True)"
    assert repr(sf.SoftSetLoss("mcc", metric_kwargs={"zero_division": 1}, approx="sigmoid", k=4)) == \
        "SoftSetLoss(metric='mcc', metric_kwargs={'zero_division': 1.0}, approx='sigmoid', k=4)"
    assert repr(sf.FBetaLoss(task="multiclass", classes=range(1, 3), class_weight=[1.0, 2.0, 3.0])) == \
        "FBetaLoss(classes=(1, 2), class_weight=tensor([1., 2., 3.]), task='multiclass')"


def test_py_typed_ships_and_doctests_run_in_the_suite():
    assert (ROOT / "softset_fast" / "py.typed").is_file()
    assert 'package_data={"softset_fast": ["py.typed"]}' in (ROOT / "setup.py").read_text()
    assert "softset_fast/py.typed" in (ROOT / "MANIFEST.in").read_text()
    import tomllib
    pytest_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in pytest_config["addopts"] and "softset_fast" in pytest_config["testpaths"]


# ---- 2. strict options ---------------------------------------------------------------------------

BAD_OPTIONS = [
    ({"average": "bogus"}, ValueError, "average must be one of"),
    ({"average": "samples"}, ValueError, "average must be one of"),
    ({"approx": "cubic"}, ValueError, "approx must be one of"),
    ({"task": "regression"}, ValueError, "task must be one of"),
    ({"multidim_average": "mean"}, ValueError, "multidim_average must be one of"),
    ({"delta": 0.5}, ValueError, "delta must be"),
    ({"approx": "sigmoid", "k": 0.0}, ValueError, "k must be"),
    ({"thresholds": [0.6, 0.2]}, ValueError, "thresholds must be sorted"),
    ({"zero_division": float("nan")}, ValueError, "zero_division must be a finite number"),
    ({"zero_division": "one"}, ValueError, "zero_division must be a finite number"),
    ({"beta": 0.0}, ValueError, "beta must be a finite number > 0"),
    ({"beta": float("inf")}, ValueError, "beta must be a finite number > 0"),
    ({"beta": True}, ValueError, "beta must be a finite number > 0"),
    ({"backend": "tpu"}, ValueError, "backend must be one of"),
    ({"from_logits": "yes"}, TypeError, "from_logits must be True or False"),
    ({"validate_args": 1}, TypeError, "validate_args must be True or False"),
    ({"ignore_index": 0.5}, TypeError, "ignore_index must be an int"),
    ({"classes": [0, 1]}, ValueError, "classes needs task='multilabel' or 'multiclass'"),
    ({"class_weight": [1.0, 2.0]}, ValueError, "class_weight needs task='multilabel' or 'multiclass'"),
    ({"ignore_absent_classes": True}, ValueError, "ignore_absent_classes needs task"),
    ({"ignore_absent_classes": 1}, TypeError, "ignore_absent_classes must be True or False"),
    ({"task": "multiclass", "classes": [1, 1]}, ValueError, "classes must not repeat"),
    ({"task": "multiclass", "classes": []}, ValueError, "classes must be a non-empty"),
    ({"task": "multiclass", "classes": [0.5]}, ValueError, "classes must be a non-empty sequence of int"),
    ({"task": "multiclass", "classes": [0, 3], "num_classes": 3}, ValueError, r"classes must lie in \[0, 3\)"),
    ({"task": "multiclass", "class_weight": [1.0, -1.0, 1.0]}, ValueError, "class_weight must hold finite, non-neg"),
    ({"task": "multiclass", "class_weight": [0.0, 0.0, 0.0]}, ValueError, "at least one class a weight > 0"),
    ({"task": "multiclass", "class_weight": [[1.0, 2.0, 3.0]]}, TypeError, "class_weight must be a 1-D"),
    ({"task": "multiclass", "class_weight": [1.0, 2.0], "num_classes": 3}, ValueError, "one weight per class"),
    ({"task": "multiclass", "class_weight": [1.0, 1.0, 1.0], "average": "weighted"}, ValueError,
     "class_weight .* needs average='macro'"),
    ({"task": "multilabel", "ignore_absent_classes": True, "average": "none"}, ValueError,
     "ignore_absent_classes .* needs average='macro'"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_OPTIONS)
def test_bad_options_fail_at_module_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        sf.FBetaLoss(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", BAD_OPTIONS)
def test_bad_options_fail_at_the_call(kwargs, error, match):
    task = kwargs.get("task", "binary")
    preds = torch.rand(8, 3).softmax(1) if task != "binary" else torch.rand(8)
    target = torch.randint(0, 3, (8,)) if task == "multiclass" else (torch.rand(preds.shape) < 0.5).long()
    with pytest.raises(error, match=match):
        sf.fbeta_loss(preds, target, **kwargs)


@pytest.mark.parametrize("make", [lambda: sf.FBetaLoss(from_logit=True),
                                  lambda: sf.fbeta_loss(torch.rand(4), torch.ones(4), from_logit=True),
                                  lambda: sf.soft_confusion_matrix(torch.rand(4), torch.ones(4), from_logit=True)])
def test_unknown_keyword_is_named_with_the_valid_ones(make):
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['from_logit'\]; valid keywords: .*"
                                        r"from_logits"):
        make()


def test_weight_at_construction_points_to_forward():
    with pytest.raises(TypeError, match=r"\['weight'\].*takes weight in forward\(preds, target, weight\)"):
        sf.FBetaLoss(weight=torch.ones(3))


def test_other_type_errors_pass_through_unchanged():
    with pytest.raises(TypeError, match="preds must be a torch.Tensor"):
        sf.fbeta_loss([0.5], torch.ones(1))


def test_metric_kwargs_are_checked_against_the_metric():
    with pytest.raises(TypeError, match=r"metric_kwargs \['beta'\] are not keywords of metric 'jaccard'"):
        sf.SoftSetLoss("jaccard", metric_kwargs={"beta": 2.0})
    with pytest.raises(TypeError, match="pass average= to the loss itself"):
        sf.metric_loss(torch.rand(5), torch.ones(5), "f1", metric_kwargs={"average": "macro"})
    with pytest.raises(ValueError, match="metric must be one of"):
        sf.SoftSetLoss("f2")


def test_metric_zero_division_is_checked():
    with pytest.raises(ValueError, match="zero_division must be a finite number"):
        metrics.recall(torch.rand(3, 4), zero_division=float("inf"))


# ---- 2. average="none": per-class losses on every path ---------------------------------------------

def _case(task, dtype, n=37, classes=5, length=3):
    return make_inputs(task, n, dtype, classes=classes, length=length)


def _reference_per_class(preds, target, metric, **kwargs):
    """1 − the metric per class from the reference counts: [C] (means over samples and thresholds)."""
    cm = ref(preds.detach().double(), target, **kwargs)
    values = metrics.METRICS[metric](cm, average="none")
    class_axis = 1 if kwargs.get("multidim_average") == "samplewise" else 0
    dims = [d for d in range(values.dim()) if d != class_axis]
    return 1 - (values.mean(dims) if dims else values)


@pytest.mark.parametrize("backend", LOSS_BACKENDS)
@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
@pytest.mark.parametrize("average", ["none", None])
@pytest.mark.parametrize("metric", ["f1", "auroc", "mcc"])
def test_average_none_gives_per_class_losses_on_every_path(backend, task, average, metric):
    device = _run_backend(backend)
    preds, target = _case(task, torch.float64)
    kwargs = dict(task=task, thresholds=7)
    loss = sf.metric_loss(preds.to(device).requires_grad_(True), target.to(device), metric, average=average,
                          backend=backend, **kwargs)
    assert loss.shape == (5,)
    fused = backend == "cpu" and fused_loss_runs("cpu", device)
    assert _is_fused(loss) == fused                                   # the fused C++ op, or tensor ops
    torch.testing.assert_close(loss.cpu(), _reference_per_class(preds, target, metric, **kwargs).to(loss.dtype),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("samplewise", [False, True])
def test_average_none_per_class_in_each_dtype(dtype, samplewise):
    preds, target = _case("multiclass", dtype, n=23, classes=4, length=5)
    kwargs = dict(task="multiclass", multidim_average="samplewise" if samplewise else "global")
    expected = _reference_per_class(preds, target, "jaccard", **kwargs)
    for backend in ("cpu", "reference"):
        loss = sf.metric_loss(preds, target, "jaccard", average="none", backend=backend, **kwargs)
        assert loss.shape == (4,)
        torch.testing.assert_close(loss.double(), expected, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_callable_metric_gets_every_average():
    """A callable used to get the macro value whatever average said; now it is averaged like a built-in."""
    preds, target = _case("multilabel", torch.float64)

    def my_jaccard(cm):
        tp, fn, fp, _ = cm.unbind(-1)
        return tp / (tp + fn + fp)

    for average in ("none", "macro", "micro", "weighted"):
        torch.testing.assert_close(sf.metric_loss(preds, target, my_jaccard, task="multilabel", average=average),
                                   sf.metric_loss(preds, target, "jaccard", task="multilabel", average=average,
                                                  backend="reference"))
    with pytest.raises(ValueError, match="metric must return one value per threshold"):
        sf.metric_loss(preds, target, lambda cm: cm.sum(), task="multilabel")


# ---- 2. the approx="step" warning ----------------------------------------------------------------

def test_step_loss_on_preds_requiring_grad_warns_once(monkeypatch):
    monkeypatch.setattr(losses, "_step_warned", False)
    preds, target = torch.rand(20), torch.rand(20) < 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sf.fbeta_loss(preds, target, approx="step")                                   # no grad: no warning
        with torch.no_grad():
            sf.fbeta_loss(preds.requires_grad_(True), target, approx="step")          # no_grad: none
        sf.fbeta_loss(preds, target)                                                  # linear: none
        assert not [w for w in caught if issubclass(w.category, losses.StepGradientWarning)]
        sf.FBetaLoss(approx="step")(preds, target)
        sf.accuracy_loss(preds, target, approx="step", backend="reference")
    found = [w for w in caught if issubclass(w.category, losses.StepGradientWarning)]
    assert len(found) == 1 and issubclass(found[0].category, UserWarning)
    assert "zero gradient" in str(found[0].message) and found[0].filename == __file__   # points at the caller


# ---- 4a. ignore_index naming a class (multiclass) ------------------------------------------------

@pytest.mark.parametrize("backend", LOSS_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target_dtype", [torch.int64, torch.int32, torch.uint8])
def test_ignore_index_naming_a_class_leaves_its_samples_out(backend, dtype, target_dtype):
    device = _run_backend(backend)
    n, classes = (61, 4) if backend == "triton" else (301, 4)
    preds = torch.rand(n, classes, 3, dtype=torch.float64).softmax(1).to(dtype)
    target = torch.randint(0, classes, (n, 3)).to(target_dtype)
    keep = target != 0
    options = dict(task="multiclass", thresholds=9)
    # the reference on the kept samples only: an [M, C] batch of the kept (sample, position) pairs
    kept_preds, kept_target = preds.movedim(1, -1)[keep], target[keep]
    expected = ref(kept_preds, kept_target, **options)
    counts = sf.soft_confusion_matrix(preds.to(device), target.to(device), ignore_index=0, backend=backend, **options)
    torch.testing.assert_close(counts.cpu(), expected, rtol=RTOL[dtype], atol=RTOL[dtype] * float(expected.max()))
    assert float(counts[0, :, :2].sum()) == 0.0                                       # class 0: no positives left

    leaf = preds.to(device).requires_grad_(True)
    loss = sf.fbeta_loss(leaf, target.to(device), ignore_index=0, backend=backend, average="none", **options)
    kept_leaf = kept_preds.clone().requires_grad_(True)
    expected_loss = sf.fbeta_loss(kept_leaf, kept_target, backend="reference", average="none", **options)
    torch.testing.assert_close(loss.cpu().double(), expected_loss.double(), rtol=RTOL[dtype], atol=RTOL[dtype])
    upstream = torch.rand(classes, dtype=loss.dtype)
    grad, = torch.autograd.grad(loss, leaf, upstream.to(device))
    expected_grad, = torch.autograd.grad(expected_loss, kept_leaf, upstream.to(expected_loss.dtype))
    grad = grad.cpu().movedim(1, -1)
    assert float(grad[~keep].abs().max()) == 0.0                                      # ignored samples: no gradient
    torch.testing.assert_close(grad[keep].double(), expected_grad.double(), rtol=RTOL_GRAD[dtype],
                               atol=RTOL_GRAD[dtype] * float(expected_grad.abs().max()))


def test_ignore_index_naming_a_class_samplewise_and_logits():
    preds = torch.randn(9, 3, 4, 5, dtype=torch.float64)              # segmentation logits [N, C, H, W]
    target = torch.randint(0, 3, (9, 4, 5))
    kwargs = dict(task="multiclass", multidim_average="samplewise", ignore_index=2, from_logits=True)
    expected = ref(preds, target, **kwargs)
    for n in range(9):                                                # per sample: the kept pixels only
        keep = target[n] != 2
        probs = preds[n].softmax(0).movedim(0, -1)[keep]
        torch.testing.assert_close(expected[n], ref(probs, target[n][keep], task="multiclass"))
    torch.testing.assert_close(sf.soft_confusion_matrix(preds, target, **kwargs), expected)
    torch.testing.assert_close(sf.fbeta_loss(preds, target, **kwargs),
                               sf.fbeta_loss(preds, target, backend="reference", **kwargs))


# ---- 4b/c. classes, class_weight, ignore_absent_classes ------------------------------------------

def _per_class_loss(preds, target, task, metric="f1", samplewise=False):
    """1 − metric per (sample,) class, averaged over thresholds, from the reference: [(N,) C]."""
    kwargs = dict(task=task, multidim_average="samplewise" if samplewise else "global")
    cm = ref(preds.detach().double(), target, **kwargs)
    values = metrics.METRICS[metric](cm, average="none")
    return 1 - (values.mean(-1) if values.dim() == cm.dim() - 1 else values), cm


@pytest.mark.parametrize("backend", LOSS_BACKENDS)
@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_classes_choose_the_averaged_classes(backend, task):
    device = _run_backend(backend)
    preds, target = _case(task, torch.float64, n=41, classes=5)
    per_class, cm = _per_class_loss(preds, target, task)
    chosen = [3, 0, 4]
    call = dict(task=task, backend=backend, classes=chosen)
    p, y = preds.to(device), target.to(device)
    torch.testing.assert_close(sf.f1_loss(p, y, average="none", **call).cpu(), per_class[chosen])
    torch.testing.assert_close(sf.f1_loss(p, y, **call).cpu(), per_class[chosen].mean())
    torch.testing.assert_close(sf.f1_loss(p, y, average="micro", **call).cpu(),
                               1 - metrics.f1(cm[chosen], average="micro").mean())
    torch.testing.assert_close(sf.f1_loss(p, y, average="weighted", **call).cpu(),
                               1 - metrics.f1(cm[chosen], average="weighted").mean())
    with pytest.raises(ValueError, match=r"classes must lie in \[0, 5\)"):
        sf.f1_loss(p, y, task=task, backend=backend, classes=[5])


@pytest.mark.parametrize("backend", LOSS_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_class_weight_weights_the_macro_average(backend, dtype):
    device = _run_backend(backend)
    preds, target = _case("multilabel", dtype, n=29, classes=4)
    per_class, _ = _per_class_loss(preds, target, "multilabel", "auroc")
    class_weight = torch.tensor([0.5, 2.0, 0.0, 1.5])
    expected = (per_class * class_weight.double()).sum() / class_weight.sum()
    criterion = sf.AUROCLoss(task="multilabel", class_weight=class_weight, backend=backend).to(device)
    leaf = preds.to(device).requires_grad_(True)
    loss = criterion(leaf, target.to(device))
    torch.testing.assert_close(loss.cpu().double(), expected, rtol=RTOL[dtype], atol=RTOL[dtype])
    grad, = torch.autograd.grad(loss, leaf)
    assert float(grad[:, 2].abs().max()) == 0.0 and float(grad.abs().max()) > 0   # weight 0: no gradient
    # with classes: the weights of the chosen classes
    chosen = sf.auroc_loss(preds, target, task="multilabel", classes=[1, 3], class_weight=class_weight)
    torch.testing.assert_close(chosen.double(), (per_class[1] * 2.0 + per_class[3] * 1.5) / 3.5,
                               rtol=RTOL[dtype], atol=RTOL[dtype])
    with pytest.raises(ValueError, match="one weight per class, preds.shape\\[1\\] = 4, got 3"):
        sf.auroc_loss(preds, target, task="multilabel", class_weight=[1.0, 1.0, 1.0])


@pytest.mark.parametrize("backend", LOSS_BACKENDS)
@pytest.mark.parametrize("samplewise", [False, True])
def test_ignore_absent_classes_leaves_them_out(backend, samplewise):
    device = _run_backend(backend)
    preds = torch.rand(17, 4, 6, dtype=torch.float64)
    target = torch.rand(17, 4, 6) < 0.3
    target[:, 1] = False                                   # class 1 absent everywhere
    target[3:, 2] = False                                  # class 2 present in samples 0..2 only
    per_class, cm = _per_class_loss(preds, target, "multilabel", samplewise=samplewise)
    present = (cm[..., 0, 0] + cm[..., 0, 1]) > 0
    if samplewise:
        per_sample = (per_class * present).sum(-1) / present.sum(-1).clamp(min=1)
        expected = per_sample[present.any(-1)].mean()
    else:
        expected = per_class[present].mean()
    kwargs = dict(task="multilabel", multidim_average="samplewise" if samplewise else "global", backend=backend)
    leaf = preds.to(device).requires_grad_(True)
    loss = sf.f1_loss(leaf, target.to(device), ignore_absent_classes=True, **kwargs)
    torch.testing.assert_close(loss.cpu(), expected)
    default = sf.f1_loss(preds.to(device), target.to(device), **kwargs)   # default: absent classes count
    torch.testing.assert_close(default.cpu(), per_class.mean())
    assert float((default - loss).abs().detach()) > 1e-3
    grad, = torch.autograd.grad(loss, leaf)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) > 0


def test_no_class_present_gives_zero_loss_and_gradient():
    preds = torch.rand(10, 3, dtype=torch.float64, requires_grad=True)
    loss = sf.f1_loss(preds, torch.zeros(10, 3, dtype=torch.bool), task="multilabel", ignore_absent_classes=True)
    assert loss.item() == 0.0
    grad, = torch.autograd.grad(loss, preds)
    assert float(grad.abs().max()) == 0.0


def test_segmentation_background_recipe():
    """ignore_index=0 drops background pixels; classes=range(1, C) keeps class 0 (now without
    positives) out of the average; the same as ignore_absent_classes when every other class is present."""
    logits = torch.randn(6, 4, 8, 8, dtype=torch.float64)
    target = torch.randint(0, 4, (6, 8, 8))
    common = dict(task="multiclass", from_logits=True, ignore_index=0)
    per_class = sf.f1_loss(logits, target, average="none", **common)
    torch.testing.assert_close(per_class[0], torch.tensor(1.0, dtype=torch.float64))   # no positives: F1 = 0
    without = sf.f1_loss(logits, target, classes=range(1, 4), **common)
    torch.testing.assert_close(without, per_class[1:].mean())
    torch.testing.assert_close(sf.f1_loss(logits, target, ignore_absent_classes=True, **common), without)


@pytest.mark.parametrize("options", [{}, {"classes": [0, 2]}, {"class_weight": [1.0, 2.0, 3.0]},
                                     {"ignore_absent_classes": True}])
def test_fused_path_is_taken_unless_class_options_are_used(options):
    preds = torch.rand(30, 3, dtype=torch.float64, requires_grad=True)
    target = torch.rand(30, 3) < 0.4
    loss = sf.f1_loss(preds, target, task="multilabel", backend="cpu", **options)
    assert _is_fused(loss) == (not options)
    tensor_path = sf.f1_loss(preds, target, task="multilabel", backend="reference", **options)
    torch.testing.assert_close(loss, tensor_path)
