"""The reference implementation: hand-computed values, the properties of
docs/architecture.md ("The math"), agreement with scikit-learn for hard counts, and gradcheck."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix

import softset_fast as sf
from softset_fast import reference
from softset_fast._grid import coefficient_table

ref = reference.soft_confusion_matrix


def linear_h(p, tau, delta=0.2):
    """Paper Eq. 5 written out independently, in plain Python."""
    tm = min(tau, 1 - tau)
    a, b = tau - tm / 2, tau + tm / 2
    if p < a:
        return delta / a * p
    if p > b:
        m3 = delta / (1 - b)
        return m3 * p + (1 - delta - m3 * b)
    m2 = (1 - 2 * delta) / tm
    return m2 * p + (0.5 - m2 * tau)


class TestHandComputed:
    preds = torch.tensor([0.1, 0.6, 0.9, 0.5], dtype=torch.float64)
    target = torch.tensor([0, 1, 1, 0])

    def test_linear_values(self):
        # τ = 0.5: a = 0.25, b = 0.75, m1 = 0.8, m2 = 1.2, m3 = 0.8 -> H = [0.08, 0.62, 0.92, 0.5]
        h = reference.approximate_step(self.preds, thresholds=[0.5])
        torch.testing.assert_close(h[:, 0], torch.tensor([0.08, 0.62, 0.92, 0.5], dtype=torch.float64))
        cm = ref(self.preds, self.target, thresholds=[0.5])
        torch.testing.assert_close(cm, torch.tensor([[1.54, 0.46, 0.58, 1.42]], dtype=torch.float64))

    def test_linear_low_threshold(self):
        # τ = 0.2: a = 0.1, b = 0.3, m1 = 2, m2 = 3, m3 = 2/7
        p = torch.tensor([0.05, 0.2, 0.25, 0.65, 1.0], dtype=torch.float64)
        h = reference.approximate_step(p, thresholds=[0.2])[:, 0]
        torch.testing.assert_close(h, torch.tensor([0.1, 0.5, 0.65, 0.9, 1.0], dtype=torch.float64))

    def test_sigmoid_values(self):
        cm = ref(self.preds, self.target, thresholds=[0.5], approx="sigmoid", k=10.0)
        h = [1 / (1 + math.exp(-10 * (p - 0.5))) for p in self.preds.tolist()]
        expected = [h[1] + h[2], 2 - h[1] - h[2], h[0] + h[3], 2 - h[0] - h[3]]
        torch.testing.assert_close(cm[0], torch.tensor(expected, dtype=torch.float64))

    def test_step_values(self):
        cm = ref(self.preds, self.target, thresholds=[0.5, 0.95], approx="step")
        torch.testing.assert_close(cm, torch.tensor([[2.0, 0, 1, 1], [0, 2, 0, 2]], dtype=torch.float64))

    def test_metrics_on_hand_counts(self):
        cm = ref(self.preds, self.target, thresholds=[0.5])
        tp, fn, fp, tn = 1.54, 0.46, 0.58, 1.42
        expected = {
            "f1": 2 * tp / (2 * tp + fn + fp),
            "accuracy": (tp + tn) / 4,
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "balanced_accuracy": (tp / (tp + fn) + tn / (tn + fp)) / 2,
            "jaccard": tp / (tp + fn + fp),
            "gmean": math.sqrt(tp / (tp + fn) * tn / (tn + fp)),
            "mcc": (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
        }
        for name, value in expected.items():
            got = sf.metrics.METRICS[name](cm)
            assert got.shape == (1,)
            assert got.item() == pytest.approx(value, rel=1e-12), name
        f2 = sf.metrics.fbeta(cm, beta=2.0).item()
        assert f2 == pytest.approx(5 * tp / (5 * tp + 4 * fn + fp), rel=1e-12)

    def test_auroc_hand(self):
        # step at τ = 0.3: TPR 1, FPR 0.5; at τ = 0.7: TPR 0.5, FPR 0 -> area 0.5 + 0.375
        p = torch.tensor([0.2, 0.4, 0.6, 0.8])
        y = torch.tensor([0, 1, 0, 1])
        cm = ref(p, y, thresholds=[0.3, 0.7], approx="step")
        assert sf.metrics.auroc(cm).item() == pytest.approx(0.875)

    def test_auroc_perfect_and_inverted(self):
        p = torch.tensor([0.1, 0.2, 0.8, 0.9])
        y = torch.tensor([0, 0, 1, 1])
        assert sf.metrics.auroc(ref(p, y, approx="step")).item() == pytest.approx(1.0)
        assert sf.metrics.auroc(ref(1 - p, y, approx="step")).item() == pytest.approx(0.0)


class TestLinearProperties:
    @pytest.mark.parametrize("delta", [0.05, 0.2, 0.45])
    @pytest.mark.parametrize("tau", [0.01, 0.1, 0.3, 0.5, 0.7, 0.93])
    def test_anchor_points(self, tau, delta):
        grid = coefficient_table(torch.tensor([tau], dtype=torch.float64), "linear", delta)
        a, b = grid[0, 1].item(), grid[0, 2].item()
        p = torch.tensor([0.0, a, tau, b, 1.0], dtype=torch.float64)
        h = reference.heaviside(p, grid, "linear")[:, 0]
        torch.testing.assert_close(h, torch.tensor([0, delta, 0.5, 1 - delta, 1], dtype=torch.float64))
        for value, point in zip(h.tolist(), p.tolist()):
            assert value == pytest.approx(linear_h(point, tau, delta), abs=1e-12)

    def test_continuous_and_monotone_in_p(self):
        p = torch.linspace(0, 1, 20001, dtype=torch.float64)
        h = reference.approximate_step(p, thresholds=99)
        steps = h[1:] - h[:-1]
        assert bool((steps >= -1e-15).all())
        # continuous: no jump larger than the steepest slope of each column times the step
        grid = coefficient_table(torch.tensor([(t + 1) / 100 for t in range(99)], dtype=torch.float64), "linear", 0.2)
        steepest = grid[:, 3:6].max(dim=1).values
        assert bool((steps <= steepest * (p[1] - p[0]) * (1 + 1e-9)).all())

    def test_monotone_in_tau(self):
        p = torch.rand(500, dtype=torch.float64)
        h = reference.approximate_step(p, thresholds=99)
        assert bool((h[:, 1:] <= h[:, :-1] + 1e-15).all())

    def test_gradient_at_breakpoints_is_middle_slope(self):
        grid = coefficient_table(torch.tensor([0.3], dtype=torch.float64), "linear", 0.2)
        a, b, m2 = grid[0, 1].item(), grid[0, 2].item(), grid[0, 4].item()
        p = torch.tensor([a, b], dtype=torch.float64, requires_grad=True)
        reference.heaviside(p, grid, "linear").sum().backward()
        torch.testing.assert_close(p.grad, torch.tensor([m2, m2], dtype=torch.float64))

    def test_sigmoid_monotone(self):
        p = torch.linspace(0, 1, 1001, dtype=torch.float64)
        h = reference.approximate_step(p, thresholds=9, approx="sigmoid", k=7.0)
        assert bool((h[1:] >= h[:-1]).all()) and bool((h[:, 1:] <= h[:, :-1]).all())


@pytest.mark.parametrize("approx", ["linear", "sigmoid", "step"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_partition_holds_at_every_threshold(approx, task):
    n, c = 101, 3
    if task == "binary":
        preds, target = torch.rand(n), torch.rand(n)
    elif task == "multilabel":
        preds, target = torch.rand(n, c), torch.randint(0, 2, (n, c))
    else:
        preds, target = torch.rand(n, c).softmax(1), torch.randint(0, c, (n,))
    weight = torch.rand(target.shape)
    cm = ref(preds, target, thresholds=17, approx=approx, task=task, weight=weight)
    positives = cm[..., 0] + cm[..., 1]
    negatives = cm[..., 2] + cm[..., 3]
    torch.testing.assert_close(positives, positives[..., :1].expand_as(positives))
    torch.testing.assert_close(negatives, negatives[..., :1].expand_as(negatives))
    if task == "binary":
        assert positives[0].item() == pytest.approx((weight * target).sum().item(), rel=1e-5)
        assert negatives[0].item() == pytest.approx((weight * (1 - target)).sum().item(), rel=1e-5)


def test_step_matches_sklearn():
    preds = torch.rand(997)
    preds[:50] = torch.tensor([0.25, 0.5, 0.75]).repeat(17)[:50]   # samples exactly at thresholds
    target = torch.rand(997) < 0.3
    thresholds = [0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9]
    cm = ref(preds, target, thresholds=thresholds, approx="step")
    y = target.numpy()
    for t, tau in enumerate(thresholds):
        tn, fp, fn, tp = confusion_matrix(y, (preds.numpy() >= np.float32(tau)), labels=[0, 1]).ravel()
        assert cm[t].tolist() == [tp, fn, fp, tn]


def test_multiclass_equals_one_vs_rest_binary():
    preds = torch.rand(53, 4, 3).softmax(1)
    target = torch.randint(0, 4, (53, 3))
    cm = ref(preds, target, task="multiclass", thresholds=11)
    for c in range(4):
        torch.testing.assert_close(cm[c], ref(preds[:, c], target == c, thresholds=11))


def test_multilabel_and_samplewise_equal_binary_slices():
    preds = torch.rand(7, 3, 5)
    target = torch.randint(0, 2, (7, 3, 5))
    cm = ref(preds, target, task="multilabel", multidim_average="samplewise", approx="sigmoid")
    assert cm.shape == (7, 3, 9, 4)
    for n in range(7):
        for c in range(3):
            torch.testing.assert_close(cm[n, c], ref(preds[n, c], target[n, c], approx="sigmoid"))
    binary = ref(preds, target, multidim_average="samplewise")
    assert binary.shape == (7, 9, 4)
    torch.testing.assert_close(binary[2], ref(preds[2], target[2]))


def test_weight_equals_repetition_and_ignore_equals_removal():
    preds = torch.rand(40, dtype=torch.float64)
    target = torch.randint(0, 2, (40,))
    repeats = torch.randint(0, 3, (40,))
    weighted = ref(preds, target, weight=repeats.double())
    repeated = ref(preds.repeat_interleave(repeats), target.repeat_interleave(repeats))
    torch.testing.assert_close(weighted, repeated)
    ignored = target.clone()
    ignored[::3] = -1
    keep = ignored != -1
    torch.testing.assert_close(ref(preds, ignored, ignore_index=-1), ref(preds[keep], target[keep]))


def test_multiclass_ignore_index():
    preds = torch.rand(30, 3).softmax(1)
    target = torch.randint(0, 3, (30,))
    target[::4] = 255
    keep = target != 255
    torch.testing.assert_close(ref(preds, target, task="multiclass", ignore_index=255),
                               ref(preds[keep], target[keep], task="multiclass"))


def test_from_logits_and_soft_labels():
    logits = torch.randn(33)
    target = torch.rand(33)
    torch.testing.assert_close(ref(logits, target, from_logits=True), ref(logits.sigmoid(), target))
    logits = torch.randn(12, 5)
    labels = torch.randint(0, 5, (12,))
    torch.testing.assert_close(ref(logits, labels, task="multiclass", from_logits=True),
                               ref(logits.softmax(1), labels, task="multiclass"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_accumulate_wide(dtype):
    preds = torch.rand(1001).to(dtype)
    target = torch.rand(1001) < 0.5
    cm = ref(preds, target)
    assert cm.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    exact = ref(preds.double(), target)
    torch.testing.assert_close(cm.double(), exact, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("target_dtype", [torch.bool, torch.uint8, torch.int8, torch.int32, torch.int64,
                                          torch.float16, torch.float32])
def test_target_dtypes_agree(target_dtype):
    preds = torch.rand(64)
    target = torch.rand(64) < 0.4
    torch.testing.assert_close(ref(preds, target.to(target_dtype)), ref(preds, target))


def test_thresholds_forms_agree():
    preds, target = torch.rand(50), torch.rand(50) < 0.5
    default = ref(preds, target)
    torch.testing.assert_close(ref(preds, target, thresholds=9), default)
    torch.testing.assert_close(ref(preds, target, thresholds=[i / 10 for i in range(1, 10)]), default)
    torch.testing.assert_close(ref(preds, target, thresholds=torch.arange(1, 10) / 10), default, rtol=1e-6,
                               atol=1e-6)


def test_empty_batch_is_defined():
    preds = torch.zeros(0, requires_grad=True)
    cm = ref(preds, torch.zeros(0, dtype=torch.bool))
    assert cm.shape == (9, 4) and bool((cm == 0).all())
    for name, metric in sf.metrics.METRICS.items():
        value = metric(cm)
        assert bool(torch.isfinite(value).all()), name
    loss = sf.fbeta_loss(preds, torch.zeros(0, dtype=torch.bool), backend="reference")
    loss.backward()
    assert loss.item() == 1.0 and preds.grad.shape == (0,)
    everything_ignored = ref(torch.rand(5), torch.full((5,), -1), ignore_index=-1)
    assert bool((everything_ignored == 0).all())


@pytest.mark.parametrize("loss_fn", [sf.fbeta_loss, sf.accuracy_loss, sf.auroc_loss])
@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
def test_gradcheck_losses(loss_fn, approx):
    preds = torch.rand(23, dtype=torch.float64).requires_grad_()
    target = torch.rand(23) < 0.4
    weight = torch.rand(23, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda p: loss_fn(p, target, approx=approx, weight=weight, backend="reference"), (preds,))


@pytest.mark.parametrize("approx", ["linear", "sigmoid"])
def test_gradcheck_counts_multiclass(approx):
    preds = torch.rand(9, 3, 2, dtype=torch.float64).requires_grad_()
    target = torch.randint(0, 3, (9, 2))
    assert torch.autograd.gradcheck(
        lambda p: ref(p, target, task="multiclass", approx=approx, thresholds=5), (preds,))


def test_step_gradient_is_zero():
    preds = torch.rand(10, requires_grad=True)
    sf.fbeta_loss(preds, torch.rand(10) < 0.5, approx="step", backend="reference").backward()
    assert bool((preds.grad == 0).all())
