"""Stateful metrics (softset_fast.stateful): counts accumulated over batches, the metric at compute().

Hard counts (approx="step") are checked against torchmetrics' stat scores at each threshold, against
scikit-learn's weighted confusion matrix and against hand counts; accumulated values against the
functional metrics and losses on the concatenated batches.
"""
from __future__ import annotations

import doctest
import io

import pytest
import torch

import softset_fast as sf
from softset_fast import stateful

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
THRESHOLDS = [0.05, 0.31, 0.5, 0.77, 0.93]


def _without_ties(preds, thresholds):
    """preds with every value equal to a threshold (in preds' dtype) set to 0.

    At p == τ softset_fast counts a positive prediction (H = 1[p ≥ τ], the paper's rule) where
    torchmetrics uses p > τ; test_tie_counts_as_positive checks the rule itself.
    """
    ties = torch.isin(preds, torch.tensor(thresholds, dtype=preds.dtype))
    return preds.masked_fill(ties, 0.0)


def _batches(task, dtype, sizes=(37, 101, 5), classes=3, seed=0):
    """Random batches of odd sizes: (preds, target) pairs for ``task``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for n in sizes:
        if task == "binary":
            preds = torch.rand(n, 3, generator=g)
            target = (torch.rand(n, 3, generator=g) < 0.3).to(torch.int64)
        elif task == "multilabel":
            preds = torch.rand(n, classes, 2, generator=g)
            target = (torch.rand(n, classes, 2, generator=g) < 0.4).to(torch.int64)
        else:
            preds = torch.rand(n, classes, 2, generator=g).softmax(1)
            target = torch.randint(0, classes, (n, 2), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.1] = -1  # ignored elements
        batches.append((_without_ties(preds.to(dtype), THRESHOLDS), target))
    return batches


def _options(task, classes=3):
    return {"task": task, "ignore_index": -1, "num_classes": None if task == "binary" else classes}


def _accumulate(metric, batches):
    for preds, target in batches:
        metric.update(preds, target)
    return metric


def _concatenated(batches):
    return torch.cat([p for p, _ in batches]), torch.cat([t for _, t in batches])


# --------------------------------------------------------------------------- hard counts vs other libraries

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_step_counts_equal_torchmetrics_stat_scores(task, dtype):
    """At every threshold: (tp, fn, fp, tn) = torchmetrics' binary / multilabel stat scores.

    Multiclass counts are one-vs-rest (class c predicted where p_c ≥ τ), which is torchmetrics'
    multilabel stat scores of the one-hot target, not its argmax-based multiclass stat scores.
    """
    classification = pytest.importorskip("torchmetrics.functional.classification")
    batches = _batches(task, dtype)
    metric = _accumulate(sf.SoftSetMetric("f1", thresholds=THRESHOLDS, **_options(task)), batches)
    preds, target = _concatenated(batches)
    if task == "multiclass":
        ignored = target == -1
        target = torch.nn.functional.one_hot(target.clamp(min=0), 3).movedim(-1, 1)
        target[ignored.unsqueeze(1).expand_as(target)] = -1
    for t, tau in enumerate(THRESHOLDS):
        if task == "binary":
            scores = classification.binary_stat_scores(preds, target, threshold=tau, ignore_index=-1)[None]
        else:
            scores = classification.multilabel_stat_scores(preds, target, num_labels=3, threshold=tau,
                                                           average=None, ignore_index=-1)
        tp, fp, tn, fn = scores[:, :4].unbind(-1)
        expected = torch.stack([tp, fn, fp, tn], dim=-1).to(torch.float64)
        assert torch.equal(metric.counts[:, t], expected), (tau, metric.counts[:, t], expected)
    assert metric.counts[..., 0].sum() > 0 and metric.counts[..., 3].sum() > 0


def test_step_counts_equal_sklearn_weighted_confusion_matrix():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(3)
    metric = sf.SoftSetMetric(thresholds=THRESHOLDS)
    all_preds, all_target, all_weight = [], [], []
    for n in (53, 1, 210):
        preds = torch.rand(n, generator=g, dtype=torch.float64)
        target = torch.rand(n, generator=g) < 0.35
        weight = torch.rand(n, generator=g, dtype=torch.float64) * 3
        metric.update(preds, target, weight)
        all_preds.append(preds), all_target.append(target), all_weight.append(weight)
    preds, target, weight = torch.cat(all_preds), torch.cat(all_target), torch.cat(all_weight)
    for t, tau in enumerate(THRESHOLDS):
        tn, fp, fn, tp = metrics.confusion_matrix(target.numpy(), (preds >= tau).numpy(), labels=[0, 1],
                                                  sample_weight=weight.numpy()).ravel()
        torch.testing.assert_close(metric.counts[0, t], torch.tensor([tp, fn, fp, tn], dtype=torch.float64),
                                   rtol=1e-12, atol=1e-12)


def test_tie_counts_as_positive():
    """Hand counts; p exactly at τ counts as predicted positive (H = 1[p ≥ τ])."""
    metric = sf.SoftSetMetric(thresholds=[0.25, 0.5, 0.75])
    metric.update(torch.tensor([0.5, 0.75, 0.1]), torch.tensor([1, 0, 1]))
    metric.update(torch.tensor([0.9, 0.25]), torch.tensor([0, 1]))
    # samples (p, y): (.5, 1) (.75, 0) (.1, 1) (.9, 0) (.25, 1)
    expected = torch.tensor([[2, 1, 2, 0],    # τ = .25: positives .5 .25 | .1 missed; .75 .9 false positives
                             [1, 2, 2, 0],    # τ = .5
                             [0, 3, 2, 0]],   # τ = .75
                            dtype=torch.float64)
    assert torch.equal(metric.counts[0], expected)


def test_ties_are_where_torchmetrics_differs():
    """torchmetrics predicts positive where p > τ: a prediction exactly at τ moves from tp to fn there."""
    classification = pytest.importorskip("torchmetrics.functional.classification")
    preds, target = torch.tensor([0.5, 0.5, 0.7, 0.2]), torch.tensor([1, 0, 1, 1])
    metric = sf.SoftSetMetric(thresholds=[0.5])
    metric.update(preds, target)
    tp, fp, tn, fn, _ = classification.binary_stat_scores(preds, target, threshold=0.5).tolist()
    assert metric.counts[0, 0].tolist() == [2, 1, 1, 0]   # (.5, 1) and (.7, 1) hit; (.5, 0) a false positive
    assert [tp, fn, fp, tn] == [1, 2, 0, 1]


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("approx", ["step", "linear"])
def test_value_equals_functional_metric_on_all_batches(task, dtype, approx):
    """compute() = the metric of soft_confusion_matrix on the concatenated batches; for soft counts
    also 1 − the loss on them (the loss averages the same metric over the grid)."""
    batches = _batches(task, dtype, sizes=(64, 9, 130), seed=7)
    preds, target = _concatenated(batches)
    options = dict(_options(task), thresholds=THRESHOLDS, approx=approx)
    counts = sf.soft_confusion_matrix(preds, target, **options).to(torch.float64)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for metric, loss, name in ((sf.FBetaMetric(beta=2.0, **options), sf.fbeta_loss, "fbeta"),
                               (sf.AccuracyMetric(**options), sf.accuracy_loss, "accuracy"),
                               (sf.AUROCMetric(**options), sf.auroc_loss, "auroc"),
                               (sf.SoftSetMetric("mcc", **options), None, "mcc")):
        value = _accumulate(metric, batches).compute()
        kwargs = {"beta": 2.0} if name == "fbeta" else {}
        if task != "binary":
            kwargs["average"] = "macro"
        expected = sf.metrics.METRICS[name](counts, **kwargs).mean()
        torch.testing.assert_close(value, expected, rtol=tol, atol=tol)
        assert value.dtype == torch.float64 and value.dim() == 0
        if loss is not None and approx == "linear":
            extra = {"beta": 2.0} if name == "fbeta" else {}
            torch.testing.assert_close(value, 1 - loss(preds, target, **options, **extra).double(),
                                       rtol=tol, atol=tol)


def test_averages_and_shapes():
    batches = _batches("multiclass", torch.float32, seed=11)
    preds, target = _concatenated(batches)
    counts = sf.soft_confusion_matrix(preds, target, thresholds=THRESHOLDS, approx="step",
                                      **_options("multiclass")).double()
    options = dict(_options("multiclass"), thresholds=THRESHOLDS)
    per_threshold = _accumulate(sf.SoftSetMetric("jaccard", threshold_average="none", average="weighted",
                                                 **options), batches).compute()
    torch.testing.assert_close(per_threshold, sf.metrics.jaccard(counts, average="weighted"))
    assert per_threshold.shape == (len(THRESHOLDS),)
    per_class = _accumulate(sf.FBetaMetric(average="none", **options), batches).compute()
    torch.testing.assert_close(per_class, sf.metrics.f1(counts).mean(-1))
    assert per_class.shape == (3,)
    table = _accumulate(sf.SoftSetMetric("recall", average="none", threshold_average="none", **options),
                        batches).compute()
    assert table.shape == (3, len(THRESHOLDS))
    auroc = _accumulate(sf.AUROCMetric(average="none", **options), batches).compute()
    torch.testing.assert_close(auroc, sf.metrics.auroc(counts))
    micro = _accumulate(sf.SoftSetMetric("precision", average="micro", **options), batches).compute()
    torch.testing.assert_close(micro, sf.metrics.precision(counts.sum(0)).mean())


def test_callable_metric_and_metric_kwargs():
    def balanced_error(cm, scale=1.0):
        return scale * (1 - sf.metrics.balanced_accuracy(cm))

    batches = _batches("binary", torch.float64, seed=2)
    metric = _accumulate(sf.SoftSetMetric(balanced_error, thresholds=THRESHOLDS, ignore_index=-1,
                                          metric_kwargs={"scale": 3.0}), batches)
    preds, target = _concatenated(batches)
    counts = sf.soft_confusion_matrix(preds, target, thresholds=THRESHOLDS, approx="step", ignore_index=-1)
    torch.testing.assert_close(metric.compute(), 3 * (1 - sf.metrics.balanced_accuracy(counts)).mean())


def test_zero_division_when_a_denominator_is_zero():
    metric = sf.SoftSetMetric("precision", thresholds=[0.5], zero_division=0.25)
    metric.update(torch.tensor([0.1, 0.2]), torch.tensor([1, 0]))  # nothing predicted positive
    assert metric.compute().item() == 0.25


def test_forward_returns_the_batch_value_and_accumulates():
    first = (torch.tensor([0.9, 0.8, 0.2]), torch.tensor([1, 0, 1]))
    second = (torch.tensor([0.7, 0.1, 0.6, 0.3]), torch.tensor([1, 0, 1, 0]))
    metric = sf.FBetaMetric(thresholds=[0.5])
    batch_value = metric(first[0].requires_grad_(), first[1])  # e.g. logged in a training step
    assert not batch_value.requires_grad and not metric.counts.requires_grad
    assert batch_value.item() == pytest.approx(0.5)   # tp 1, fn 1, fp 1
    assert metric(*second).item() == pytest.approx(1.0)  # tp 2
    assert metric.compute().item() == pytest.approx(6 / 8)  # tp 3, fn 1, fp 1
    assert int(metric.updates) == 2


def test_reset_then_compute_raises_until_update():
    metric = sf.AccuracyMetric()
    with pytest.raises(RuntimeError, match=r"before any update\(\)"):
        metric.compute()
    metric.update(torch.rand(11), torch.randint(0, 2, (11,)))
    assert 0 <= metric.compute().item() <= 1
    metric.reset()
    assert int(metric.updates) == 0 and not metric.counts.any()
    with pytest.raises(RuntimeError, match="update"):
        metric.compute()


def test_large_batch_counts_stay_exact():
    """More elements than float32 counts exactly (2**24): the batch is counted in float64."""
    n = stateful.FLOAT32_EXACT + 3
    preds = torch.full((n,), 0.75)
    metric = sf.SoftSetMetric(thresholds=[0.5])
    metric.update(preds, torch.ones(n, dtype=torch.bool))
    del preds
    assert metric.counts[0, 0, 0].item() == n  # float32 would round it to 2**24 + 4
    assert float(torch.tensor(float(n), dtype=torch.float32)) != n


# --------------------------------------------------------------------------- state

def test_state_dict_round_trip_and_continue():
    batches = _batches("multilabel", torch.float32, sizes=(31, 12, 77, 5), seed=5)
    options = dict(_options("multilabel"), thresholds=THRESHOLDS, approx="linear")
    straight = _accumulate(sf.FBetaMetric(**options), batches)
    first = _accumulate(sf.FBetaMetric(**options), batches[:2])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    restored = sf.FBetaMetric(**options)
    restored.load_state_dict(torch.load(buffer))
    assert set(restored.state_dict()) == {"counts", "updates"}
    assert torch.equal(restored.counts, first.counts) and int(restored.updates) == 2
    assert restored.compute().item() == first.compute().item()
    _accumulate(restored, batches[2:])
    assert torch.equal(restored.counts, straight.counts)
    assert restored.compute().item() == straight.compute().item()


def test_load_state_dict_of_another_grid_fails():
    metric = sf.SoftSetMetric(thresholds=5)
    with pytest.raises(RuntimeError, match="counts"):
        metric.load_state_dict(sf.SoftSetMetric(thresholds=7).state_dict())


@pytest.mark.parametrize("cast, dtype", [(lambda m: m.half(), torch.float16),
                                         (lambda m: m.to(torch.bfloat16), torch.bfloat16),
                                         (lambda m: m.double(), torch.float64)])
def test_module_casts_keep_float64_counts(cast, dtype):
    metric = sf.SoftSetMetric(thresholds=[0.5], approx="linear")
    metric.update(torch.tensor([0.3, 0.6, 0.55], dtype=torch.float64), torch.tensor([1, 0, 1]))
    before = metric.counts.clone()
    model = torch.nn.ModuleDict({"head": torch.nn.Linear(2, 1), "metric": metric})
    cast(model)
    assert model["head"].weight.dtype == dtype  # the model was cast, the counts were not
    assert metric.counts.dtype == torch.float64 and torch.equal(metric.counts, before)
    assert metric.updates.dtype == torch.int64


# --------------------------------------------------------------------------- errors

def test_update_with_another_layout_or_classes_raises():
    metric = sf.SoftSetMetric(task="multiclass", num_classes=4)
    metric.update(torch.rand(6, 4, 2).softmax(1), torch.randint(0, 4, (6, 2)))
    with pytest.raises(ValueError, match="num_classes=4 does not match preds.shape"):
        metric.update(torch.rand(6, 5, 2).softmax(1), torch.randint(0, 5, (6, 2)))
    with pytest.raises(ValueError, match="preds has 2 dimensions .* first update's had 3"):
        metric.update(torch.rand(6, 4).softmax(1), torch.randint(0, 4, (6,)))
    binary = sf.SoftSetMetric()
    binary.update(torch.rand(5, 3), torch.randint(0, 2, (5, 3)))
    with pytest.raises(ValueError, match="target must have the shape of preds"):
        binary.update(torch.rand(5, 3), torch.randint(0, 3, (5,)))  # multiclass-shaped input
    with pytest.raises(ValueError, match="preds has 1 dimensions"):
        binary.update(torch.rand(5), torch.randint(0, 2, (5,)))
    binary.update(torch.rand(9, 7), torch.randint(0, 2, (9, 7)))  # other sizes, same layout: accepted
    assert int(binary.updates) == 2 and binary.counts[0, 0].sum() == 5 * 3 + 9 * 7  # failed updates add nothing


def test_update_on_another_device_raises():
    metric = sf.SoftSetMetric()
    with pytest.raises(ValueError, match="preds is on meta but the metric's state is on cpu"):
        metric.update(torch.rand(4, device="meta"), torch.ones(4, device="meta"))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"task": "multiclass"}, ValueError, "num_classes must be a positive int for task='multiclass'"),
    ({"task": "multilabel", "num_classes": 0}, ValueError, "num_classes must be a positive int"),
    ({"num_classes": 3}, ValueError, "num_classes must be None .* for task='binary'"),
    ({"metric": "f7"}, ValueError, "metric must be one of"),
    ({"metric": "fbeta", "metric_kwargs": {"beta": 0}}, ValueError, "beta must be a finite number > 0"),
    ({"average": "mean"}, ValueError, "average must be one of"),
    ({"threshold_average": "max"}, ValueError, "threshold_average must be one of"),
    ({"approx": "cubic"}, ValueError, "approx must be one of"),
    ({"thresholds": [0.5, 0.2]}, ValueError, "ascending"),
    ({"multidim_average": "samplewise"}, TypeError, "global counts only"),
    ({"sync_dist": "yes"}, ValueError, "sync_dist must be"),
    ({"samplewise": True}, TypeError, "samplewise"),
])
def test_bad_options_raise_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        sf.SoftSetMetric(**kwargs)


def test_fbeta_metric_checks_beta():
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        sf.FBetaMetric(beta=-1.0)


def test_bad_input_is_named():
    metric = sf.AUROCMetric(thresholds=19)
    with pytest.raises(ValueError, match=r"preds must be probabilities in \[0, 1\]"):
        metric.update(torch.tensor([1.5, 0.2]), torch.tensor([1, 0]))
    with pytest.raises(TypeError, match="preds must be a torch.Tensor"):
        metric.update([0.5], torch.tensor([1]))


def test_sync_dist_without_process_group():
    metric = sf.SoftSetMetric(sync_dist=True)
    metric.update(torch.rand(5), torch.randint(0, 2, (5,)))
    with pytest.raises(RuntimeError, match="init_process_group"):
        metric.compute()
    metric.sync_dist = None  # the default: local when no group is initialised
    assert 0 <= metric.compute().item() <= 1


def test_repr_and_docstring_examples():
    assert "metric='fbeta'" in repr(sf.FBetaMetric()) and "approx='step'" in repr(sf.FBetaMetric())
    result = doctest.testmod(stateful, raise_on_error=False, verbose=False)
    assert result.attempted >= 10 and result.failed == 0
