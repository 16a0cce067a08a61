"""Stateful metrics under torch.distributed: compute() sums the counts over ranks, once.

Two CPU processes (gloo, 127.0.0.1), spawned once for the module as in test_distributed.py: each
rank runs every scenario and writes "ok" or its traceback; one test per scenario reads them back.
Every rank builds the same full data from a fixed seed and keeps its own batches, so each can
compare its synced value with the single-process value on all the data.
"""
from __future__ import annotations

import datetime

import pytest
import torch
import torch.distributed as dist

import softset_fast as sf
from softset_fast import stateful
from test_distributed import WORLD, _batch, _kwargs, assert_ranks_ok, record_outcome, spawn_ranks

# Batches per rank: uneven, and one case where rank 1 sees none at all.
SPLITS = {"uneven": ([40, 13, 77], [29]), "empty-rank": ([51, 8], [])}


def _rank_batches(task, dtype, split, rank, seed):
    """(all batches, this rank's batches) for ``task``; the same data on every rank."""
    sizes = SPLITS[split]
    preds, target, weight = _batch(task, sum(map(sum, sizes)), dtype, seed)
    batches = list(zip(*(t.split([*sizes[0], *sizes[1]]) for t in (preds, target, weight if weight is not None
                                                                      else torch.ones_like(preds)))))
    mine = batches[:len(sizes[0])] if rank == 0 else batches[len(sizes[0]):]
    return batches, mine


def _filled(metric, batches):
    for preds, target, weight in batches:
        metric.update(preds, target, weight)
    return metric


def _options(task, approx):
    return dict(_kwargs(task), thresholds=[0.2, 0.45, 0.7], approx=approx)


def _counting_all_reduce(calls):
    original = stateful.all_reduce_counts

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    return original, wrapper


# --------------------------------------------------------------------------- scenarios (run on every rank)

def scenario_synced_value_is_the_global_value(rank):
    calls = []
    original, stateful.all_reduce_counts = _counting_all_reduce(calls)
    try:
        for task in ("binary", "multilabel", "multiclass"):
            for split in SPLITS:
                for approx, dtype, tol in (("step", torch.float32, 0), ("linear", torch.float64, 1e-12)):
                    everything, mine = _rank_batches(task, dtype, split, rank, seed=11)
                    options = _options(task, approx)
                    metric = _filled(sf.FBetaMetric(beta=0.5, **options), mine)
                    alone = _filled(sf.FBetaMetric(beta=0.5, **options), everything)
                    local = metric.counts.clone()
                    before = len(calls)
                    value = metric.compute()
                    assert len(calls) == before + 1, "compute() must all-reduce exactly once"
                    torch.testing.assert_close(value, alone.compute(), rtol=tol, atol=tol)
                    assert torch.equal(metric.counts, local), "compute() must not change the local state"
                    torch.testing.assert_close(metric.compute(), value, rtol=0, atol=0)
    finally:
        stateful.all_reduce_counts = original


def scenario_compute_before_any_update_raises_on_every_rank(rank):
    metric = sf.AUROCMetric(thresholds=9)
    try:
        metric.compute()
    except RuntimeError as err:
        assert "before any update" in str(err)
    else:
        raise AssertionError("compute() without any update on any rank did not raise")
    # one rank with a batch is enough
    if rank == 0:
        metric.update(torch.tensor([0.9, 0.1]), torch.tensor([1, 0]))
    assert metric.compute().item() == 1.0


def scenario_sync_false_is_local(rank):
    _, mine = _rank_batches("binary", torch.float64, "uneven", rank, seed=3)
    synced, local = _filled(sf.AccuracyMetric(), mine), _filled(sf.AccuracyMetric(sync_dist=False), mine)
    preds, target, weight = (torch.cat(parts) for parts in zip(*mine))
    counts = sf.soft_confusion_matrix(preds, target, weight=weight, approx="step")
    assert local.compute().item() == pytest.approx(sf.metrics.accuracy(counts).mean().item(), rel=1e-12)
    assert synced.compute().item() != local.compute().item()


def scenario_torchmetrics_twin(rank):
    try:
        from softset_fast.integrations import torchmetrics as twins
    except ImportError:
        return  # the test itself is skipped when torchmetrics is missing
    everything, mine = _rank_batches("multiclass", torch.float32, "uneven", rank, seed=5)
    options = _options("multiclass", "step")
    twin, alone = _filled(twins.FBetaMetric(**options), mine), _filled(sf.FBetaMetric(sync_dist=False, **options),
                                                                        everything)
    assert twin.compute().item() == alone.compute().item()


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in list(globals().items()) if name.startswith("scenario_")}


def _run_scenarios(rank, port, outdir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=30))
    try:
        for name, scenario in SCENARIOS.items():
            record_outcome(outdir, name, rank, scenario)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs every scenario on two processes once; (folder of results, spawn error or None)."""
    outdir = str(tmp_path_factory.mktemp("stateful_distributed"))
    return outdir, spawn_ranks(_run_scenarios, outdir)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_two_processes(results, scenario):
    if scenario == "torchmetrics_twin":
        pytest.importorskip("torchmetrics")
    outdir, spawn_error = results
    assert_ranks_ok(outdir, scenario, spawn_error)
