"""pytest-benchmark over providers × modes × sizes, driving the harness of softset_fast.cli.bench
(the f1 and step suites, and the step-cost suite's providers at one small N).

Not part of the default test run (pyproject's testpaths is tests/ and addopts disables
benchmarks). Run with:

    pytest benchmarks/ --benchmark-enable [--benchmark-columns=median,iqr,rounds]

Each benchmark first checks its provider against the oracle on the same inputs, and skips a
provider that is not built here or whose estimated memory exceeds what is available.
"""
import pytest
import torch

from softset_fast.cli import bench

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SF_PROVIDERS = bench.default_providers(DEVICE)
STEP_PROVIDERS = SF_PROVIDERS + (list(bench.TORCHMETRICS_PROVIDERS) if bench.torchmetrics_available() else [])
SHAPES = [(2 ** 14, 9), (2 ** 14, 99), (2 ** 18, 99)]


def _prepare(suite, provider, n, t):
    need = bench.estimated_memory(provider, n, t)
    budget = bench.available_memory(DEVICE)
    if need > budget:
        pytest.skip(f"{provider} would need {need / 1e9:.1f} GB (available {budget / 1e9:.1f} GB)")
    preds, target = bench.make_inputs(n, DEVICE)
    check = bench.check_provider(suite, provider, preds[:2 ** 14], target[:2 ** 14], t)
    assert check == "oracle" or check.startswith("ok"), check
    return preds, target


def _run(benchmark, runner):
    if DEVICE == "cuda":
        def synchronised():
            runner()
            torch.cuda.synchronize()
        benchmark(synchronised)
    else:
        benchmark(runner)


@pytest.mark.parametrize("n,t", SHAPES, ids=[f"N{n}-T{t}" for n, t in SHAPES])
@pytest.mark.parametrize("mode", bench.MODES)
@pytest.mark.parametrize("provider", SF_PROVIDERS)
def test_f1_loss(benchmark, provider, mode, n, t):
    preds, target = _prepare("f1", provider, n, t)
    benchmark.group = f"f1 {mode} N={n} T={t}"
    _run(benchmark, bench.make_runner("f1", provider, mode, preds, target, t))


@pytest.mark.parametrize("n,t", SHAPES, ids=[f"N{n}-T{t}" for n, t in SHAPES])
@pytest.mark.parametrize("provider", STEP_PROVIDERS)
def test_step_roc(benchmark, provider, n, t):
    preds, target = _prepare("step", provider, n, t)
    benchmark.group = f"step N={n} T={t}"
    _run(benchmark, bench.make_runner("step", provider, "forward", preds, target, t))


COST_N = 2 ** 10


@pytest.mark.skipif(DEVICE != "cpu", reason="the step-cost suite runs on CPU")
@pytest.mark.parametrize("provider", bench.STEP_COST_PROVIDERS)
def test_step_cost(benchmark, provider):
    """One training step of the step-cost suite's providers at N = 2^10, T = 9 (``bench --suites step-cost``)."""
    t = None if provider in bench.THRESHOLDLESS else bench.STEP_COST_T0
    preds, target = bench.make_inputs(COST_N, DEVICE)
    loss = None if provider == "where-floor" else bench.step_cost_loss(provider, t)
    check = bench.check_step_cost(provider, loss, preds, target, t, bench.available_memory(DEVICE))
    assert check == "oracle" or check.startswith("ok"), check
    benchmark.group = f"step-cost N={COST_N} T={bench.STEP_COST_T0}"
    benchmark(bench.step_cost_runner(provider, loss, preds, target))
