"""Metrics' averaging and zero-division rules, and the loss API."""
import pytest
import torch

import softset_fast as sf

ref = sf.reference.soft_confusion_matrix


def _multiclass_counts():
    preds = torch.rand(40, 4).softmax(1)
    target = torch.randint(0, 4, (40,))
    return preds, target, ref(preds, target, task="multiclass", thresholds=7)


@pytest.mark.parametrize("name", sorted(sf.metrics.METRICS))
def test_averages(name):
    metric = sf.metrics.METRICS[name]
    _, _, cm = _multiclass_counts()
    per_class = metric(cm, average="none")
    torch.testing.assert_close(metric(cm, average="macro"), per_class.mean(0))
    torch.testing.assert_close(metric(cm, average="micro"), metric(cm.sum(0)))
    support = cm[:, 0, 0] + cm[:, 0, 1]
    weights = support / support.sum()
    expected = (per_class * (weights if per_class.dim() == 1 else weights[:, None])).sum(0)
    torch.testing.assert_close(metric(cm, average="weighted"), expected)


@pytest.mark.parametrize("name", sorted(sf.metrics.METRICS))
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_zero_division_gives_value_and_finite_gradient(name, zero_division):
    cm = torch.zeros(3, 4, requires_grad=True)
    value = sf.metrics.METRICS[name](cm, zero_division=zero_division)
    assert bool((value == zero_division).all()), value
    value.sum().backward()
    assert bool(torch.isfinite(cm.grad).all())


def test_all_positive_targets():
    preds = torch.rand(30, requires_grad=True)
    target = torch.ones(30, dtype=torch.bool)
    cm = ref(preds, target)
    assert bool((cm[:, 2:] == 0).all())
    assert bool((sf.metrics.specificity(cm) == 0).all())        # zero_division
    assert sf.metrics.auroc(cm, zero_division=0.5).item() == 0.5
    sf.fbeta_loss(preds, target, backend="reference").backward()
    assert bool(torch.isfinite(preds.grad).all()) and bool((preds.grad <= 0).all())


def test_losses_are_one_minus_mean_metric():
    preds, target = torch.rand(77), torch.rand(77) < 0.3
    cm = ref(preds, target)
    assert sf.fbeta_loss(preds, target).item() == pytest.approx(1 - sf.metrics.f1(cm).mean().item())
    assert sf.fbeta_loss(preds, target, beta=2.0).item() == pytest.approx(
        1 - sf.metrics.fbeta(cm, beta=2.0).mean().item())
    assert sf.f1_loss(preds, target).item() == pytest.approx(sf.fbeta_loss(preds, target).item())
    assert sf.accuracy_loss(preds, target).item() == pytest.approx(1 - sf.metrics.accuracy(cm).mean().item())
    assert sf.auroc_loss(preds, target).item() == pytest.approx(1 - sf.metrics.auroc(cm).item())
    assert sf.metric_loss(preds, target, "mcc").item() == pytest.approx(1 - sf.metrics.mcc(cm).mean().item())
    custom = sf.metric_loss(preds, target, lambda counts: counts[..., 0] / 100)
    assert custom.item() == pytest.approx(1 - (cm[:, 0] / 100).mean().item())


def test_loss_options_pass_through():
    preds, target = torch.rand(50), torch.rand(50) < 0.5
    cm = ref(preds, target, approx="sigmoid", k=4.0, thresholds=[0.2, 0.6])
    loss = sf.fbeta_loss(preds, target, approx="sigmoid", k=4.0, thresholds=[0.2, 0.6])
    assert loss.item() == pytest.approx(1 - sf.metrics.f1(cm).mean().item())


def test_multiclass_loss_averages_classes():
    preds, target, cm = _multiclass_counts()
    macro = sf.fbeta_loss(preds, target, task="multiclass", thresholds=7)
    assert macro.item() == pytest.approx(1 - sf.metrics.f1(cm, average="macro").mean().item())
    micro = sf.fbeta_loss(preds, target, task="multiclass", thresholds=7, average="micro")
    assert micro.item() == pytest.approx(1 - sf.metrics.f1(cm, average="micro").mean().item())
    auroc = sf.auroc_loss(preds, target, task="multiclass", thresholds=7, average="weighted")
    assert auroc.item() == pytest.approx(1 - sf.metrics.auroc(cm, average="weighted").item())


def test_modules_match_functions():
    preds = torch.randn(64, 3)
    target = torch.randint(0, 2, (64, 3))
    weight = torch.rand(64, 3)
    kwargs = dict(task="multilabel", from_logits=True)
    assert sf.FBetaLoss(beta=2.0, **kwargs)(preds, target, weight).item() == pytest.approx(
        sf.fbeta_loss(preds, target, beta=2.0, weight=weight, **kwargs).item())
    assert sf.AccuracyLoss(**kwargs)(preds, target).item() == pytest.approx(
        sf.accuracy_loss(preds, target, **kwargs).item())
    assert sf.AUROCLoss(**kwargs)(preds, target).item() == pytest.approx(sf.auroc_loss(preds, target, **kwargs).item())
    assert sf.SoftSetLoss("jaccard", **kwargs)(preds, target).item() == pytest.approx(
        sf.metric_loss(preds, target, "jaccard", **kwargs).item())
    assert repr(sf.FBetaLoss()) == "FBetaLoss()"          # defaults are not shown
    assert repr(sf.FBetaLoss(beta=2)) == "FBetaLoss(beta=2.0)"


def test_training_step_reduces_loss():
    torch.manual_seed(1)
    x = torch.randn(256, 5)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.8)
    model = torch.nn.Linear(5, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    criterion = sf.FBetaLoss(from_logits=True)
    first = criterion(model(x).squeeze(1), y).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss = criterion(model(x).squeeze(1), y)
        loss.backward()
        optimizer.step()
    assert loss.item() < first - 0.1


def test_mcc_on_large_float32_counts():
    """The product of four float32 counts overflows from ~1e9·1e10: mcc is computed in float64."""
    cm = torch.tensor([[3e9, 1e9, 1e9, 5e9]])
    expected = sf.metrics.mcc(cm.double()).float()
    assert abs(float(expected) - 0.5833333) < 1e-6
    torch.testing.assert_close(sf.metrics.mcc(cm), expected)
    torch.testing.assert_close(sf.metrics.mcc(cm * 1e10), expected)
