"""The torchmetrics twins (softset_fast.integrations.torchmetrics) and torchmetrics staying optional."""
from __future__ import annotations

import doctest
import io
import os
import subprocess
import sys

import pytest
import torch

import softset_fast as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python -c imports this checkout's package


def _twins():
    pytest.importorskip("torchmetrics")
    from softset_fast.integrations import torchmetrics as twins
    return twins


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_softset_fast_does_not_import_torchmetrics():
    done = _run("import sys, torch, softset_fast\n"
                "softset_fast.FBetaMetric().update(torch.rand(3), torch.ones(3))\n"
                "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchmetrics', 'lightning')))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_integration_without_torchmetrics_says_what_to_install():
    done = _run("import sys\nsys.modules['torchmetrics'] = None  # as if not installed\n"
                "import softset_fast.integrations.torchmetrics")
    assert done.returncode != 0
    assert "needs torchmetrics: pip install torchmetrics" in done.stderr


def _batches(seed, sizes=(23, 64, 7)):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 4, 3, generator=g).softmax(1), torch.randint(0, 4, (n, 3), generator=g)) for n in sizes]


@pytest.mark.parametrize("name", ["SoftSetMetric", "FBetaMetric", "AccuracyMetric", "AUROCMetric"])
@pytest.mark.parametrize("approx", ["step", "sigmoid"])
def test_twin_equals_the_module_metric(name, approx):
    twins = _twins()
    options = dict(task="multiclass", num_classes=4, thresholds=17, approx=approx, average="weighted")
    twin, module = getattr(twins, name)(**options), getattr(sf, name)(**options)
    assert isinstance(twin, twins.Metric)
    for preds, target in _batches(1):
        torch.testing.assert_close(twin(preds, target), module(preds, target), rtol=0, atol=0)  # batch values
    assert torch.equal(twin.counts, module.counts)
    value = twin.compute()
    assert value.dtype == torch.float64 and value.item() == module.compute().item()
    assert 0 < value.item() <= 1


def test_twin_options_reach_torchmetrics_and_softset():
    twins = _twins()
    metric = twins.FBetaMetric(beta=2.0, thresholds=[0.5], dist_sync_on_step=True, compute_on_cpu=True)
    assert metric.dist_sync_on_step and metric.spec.metric_kwargs == {"beta": 2.0}
    with pytest.raises(ValueError, match="Unexpected keyword"):
        twins.SoftSetMetric(no_such_option=1)
    with pytest.raises(ValueError, match="threshold_average must be one of"):
        twins.AccuracyMetric(threshold_average="median")


@pytest.mark.filterwarnings("ignore:The ``compute`` method")  # torchmetrics' own warning, before our error
def test_twin_reset_and_compute_before_update():
    twins = _twins()
    metric = twins.AccuracyMetric()
    with pytest.raises(RuntimeError, match=r"before any update\(\)"):
        metric.compute()
    preds, target = torch.rand(13), torch.randint(0, 2, (13,))
    metric.update(preds, target)
    assert int(metric.updates) == 1 and metric.counts.sum() == 13 * 9
    metric.reset()
    assert int(metric.updates) == 0 and not metric.counts.any()


def test_twin_state_dict_round_trip():
    twins = _twins()
    batches = _batches(2)
    first = twins.SoftSetMetric("mcc", task="multiclass", num_classes=4)
    first.update(*batches[0])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    restored = twins.SoftSetMetric("mcc", task="multiclass", num_classes=4)
    restored.load_state_dict(torch.load(buffer))
    assert set(first.state_dict()) == {"counts", "updates"}
    assert torch.equal(restored.counts, first.counts) and int(restored.updates) == 1
    straight = twins.SoftSetMetric("mcc", task="multiclass", num_classes=4)
    for batch in batches:
        straight.update(*batch)
    for batch in batches[1:]:
        restored.update(*batch)
    assert restored.compute().item() == straight.compute().item()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_twin_casts_keep_float64_counts(dtype):
    twins = _twins()
    metric = twins.FBetaMetric(approx="linear")
    metric.update(torch.rand(31, dtype=torch.float64), torch.randint(0, 2, (31,)))
    before = metric.counts.clone()
    metric.to(dtype)
    metric.half()
    assert metric.counts.dtype == torch.float64 and torch.equal(metric.counts, before)
    metric.reset()
    assert metric.counts.dtype == torch.float64  # the default it resets to, too


def test_twin_docstring_examples():
    twins = _twins()
    result = doctest.testmod(twins, raise_on_error=False, verbose=False)
    assert result.attempted >= 8 and result.failed == 0
