"""sync_dist=True: global counts and exact gradients across processes.

Two CPU processes (gloo, 127.0.0.1) are spawned once for the module; each runs
every scenario below and writes "ok" or its traceback to a file, one test per
scenario reads them back. Every rank builds the same full batch from a fixed
seed, keeps its shard, and compares against the single-process result on the
whole batch computed locally with sync_dist=False.
"""
from __future__ import annotations

import datetime
import os
import socket
import traceback
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import softset_fast as sf

WORLD = 2
BACKENDS = ("auto", "reference")


def _shard(tensor, sizes, rank):
    return tensor.split(sizes)[rank]


def _batch(task, n, dtype, seed):
    """A full batch (preds, target, weight) for ``task``; the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    if task == "binary":
        preds = torch.rand(n, 5, generator=g, dtype=dtype)
        target = (torch.rand(n, 5, generator=g) < 0.2).to(torch.int64)
        weight = torch.rand(n, 5, generator=g, dtype=dtype)
    elif task == "multilabel":
        preds = torch.rand(n, 3, 4, generator=g, dtype=dtype)
        target = torch.rand(n, 3, 4, generator=g, dtype=dtype)  # soft labels
        weight = None
    else:  # multiclass with ignored pixels
        preds = torch.rand(n, 4, 3, generator=g, dtype=dtype).softmax(1)
        target = torch.randint(0, 4, (n, 3), generator=g)
        target[torch.rand(n, 3, generator=g) < 0.1] = -1
        weight = torch.rand(n, 3, generator=g, dtype=dtype)
    return preds, target, weight


def _kwargs(task):
    kwargs = {"task": task}
    if task == "multilabel":
        kwargs["num_classes"] = 3
    if task == "multiclass":
        kwargs.update(num_classes=4, ignore_index=-1)
    return kwargs


def _shard_weight(weight, sizes, rank):
    return None if weight is None else _shard(weight, sizes, rank)


# --------------------------------------------------------------------------- scenarios (run on every rank)

def scenario_loss_equals_global(rank, backend):
    """Every rank's synced counts and losses equal the single-process ones on the whole batch."""
    sizes = [300, 199]
    cases = (("binary", torch.float32, sf.f1_loss), ("multilabel", torch.float64, sf.auroc_loss),
             ("multiclass", torch.float32, sf.accuracy_loss), ("multiclass", torch.float64, sf.f1_loss))
    for task, dtype, loss_fn in cases:
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        preds, target, weight = _batch(task, sum(sizes), dtype, seed=1)
        kwargs = dict(_kwargs(task), backend=backend)
        local = (_shard(preds, sizes, rank), _shard(target, sizes, rank))
        local_weight = _shard_weight(weight, sizes, rank)
        counts = sf.soft_confusion_matrix(*local, weight=local_weight, sync_dist=True, **kwargs)
        torch.testing.assert_close(counts, sf.soft_confusion_matrix(preds, target, weight=weight, **kwargs),
                                   rtol=tol, atol=tol)
        loss = loss_fn(*local, weight=local_weight, sync_dist=True, **kwargs)
        torch.testing.assert_close(loss, loss_fn(preds, target, weight=weight, **kwargs), rtol=tol, atol=tol)
    # the nn.Module form passes sync_dist through its constructor
    preds, target, weight = _batch("binary", sum(sizes), torch.float64, seed=5)
    module = sf.SoftSetLoss("mcc", sync_dist=True, backend=backend)
    torch.testing.assert_close(module(_shard(preds, sizes, rank), _shard(target, sizes, rank),
                                      _shard(weight, sizes, rank)),
                               sf.metric_loss(preds, target, "mcc", weight=weight, backend=backend))


def scenario_class_options_use_global_counts(rank, backend):
    """The class options and an ignore_index naming a class act on the synced counts: class 3 is on
    rank 0 only, yet present for ignore_absent_classes on every rank; class 0 (ignored) is absent."""
    sizes = [211, 190]
    preds, target, weight = _batch("multiclass", sum(sizes), torch.float64, seed=3)
    target[target == -1] = 0
    target[sizes[0]:][target[sizes[0]:] == 3] = 2
    local = (_shard(preds, sizes, rank), _shard(target, sizes, rank), _shard(weight, sizes, rank))
    for options in ({"ignore_index": 0, "ignore_absent_classes": True}, {"classes": [3, 1]},
                    {"class_weight": [0.5, 1.0, 2.0, 0.0]}, {"ignore_index": 0, "average": "none"}):
        kwargs = dict(task="multiclass", backend=backend, **options)
        loss = sf.f1_loss(*local[:2], weight=local[2], sync_dist=True, **kwargs)
        torch.testing.assert_close(loss, sf.f1_loss(preds, target, weight=weight, **kwargs), rtol=1e-12, atol=1e-12)


def scenario_step_counts_exact(rank, backend):
    """Hard counts (approx="step") synced are exactly the global counts."""
    sizes = [517, 482]
    preds, target, _ = _batch("binary", sum(sizes), torch.float32, seed=2)
    local = (_shard(preds, sizes, rank), _shard(target, sizes, rank))
    counts = sf.soft_confusion_matrix(*local, approx="step", thresholds=17, sync_dist=True, backend=backend)
    expected = sf.soft_confusion_matrix(preds, target, approx="step", thresholds=17, backend=backend)
    assert torch.equal(counts, expected), (counts - expected).abs().max()
    assert counts[:, :2].sum(1).eq(target.sum()).all()  # tp + fn = global positives


def scenario_local_without_sync(rank, backend):
    """sync_dist=False keeps the local counts; a one-rank process_group does too."""
    sizes = [600, 399]
    preds, target, weight = _batch("binary", sum(sizes), torch.float64, seed=3)
    local = (_shard(preds, sizes, rank), _shard(target, sizes, rank))
    local_weight = _shard_weight(weight, sizes, rank)
    expected = sf.soft_confusion_matrix(*local, weight=local_weight, backend=backend)
    global_counts = sf.soft_confusion_matrix(preds, target, weight=weight, backend=backend)
    unsynced = sf.soft_confusion_matrix(*local, weight=local_weight, sync_dist=False, backend=backend)
    torch.testing.assert_close(unsynced, expected, rtol=0, atol=0)
    assert not torch.allclose(unsynced, global_counts)
    # new_group is collective: every rank creates every group, then uses its own.
    singles = [dist.new_group([r]) for r in range(WORLD)]
    alone = sf.soft_confusion_matrix(*local, weight=local_weight, sync_dist=True, process_group=singles[rank],
                                     backend=backend)
    torch.testing.assert_close(alone, expected, rtol=0, atol=0)
    pair = dist.new_group(list(range(WORLD)))
    together = sf.soft_confusion_matrix(*local, weight=local_weight, sync_dist=True, process_group=pair,
                                        backend=backend)
    torch.testing.assert_close(together, global_counts, rtol=1e-12, atol=1e-12)
    try:
        sf.soft_confusion_matrix(*local, sync_dist=True, process_group=[0, 1], backend=backend)
    except TypeError as err:
        assert "process_group" in str(err)
    else:
        raise AssertionError("a list as process_group was accepted")


def _model(in_features, out_features, dtype):
    torch.manual_seed(123)  # the same initial parameters on every rank and for the single-process copy
    return nn.Sequential(nn.Linear(in_features, 16), nn.Tanh(), nn.Linear(16, out_features)).to(dtype)


def _ddp_gradients_match(rank, backend, sizes, task, dtype):
    """DDP (which averages gradients over ranks) + sync_dist gives the single-process gradients."""
    n = sum(sizes)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(n, 6, generator=g, dtype=dtype)
    if task == "binary":
        y = (x[:, 0] + 0.5 * torch.randn(n, generator=g, dtype=dtype) > 1.0).to(torch.int64)  # ~16% positives
        kwargs = {"task": "binary", "from_logits": True}
        out_features = 1
    else:
        y = torch.randint(0, 3, (n,), generator=g)
        kwargs = {"task": "multiclass", "num_classes": 3, "from_logits": True}
        out_features = 3

    def loss_of(model, xs, ys, sync):
        logits = model(xs)
        logits = logits.squeeze(1) if out_features == 1 else logits
        return sf.f1_loss(logits, ys, sync_dist=sync, backend=backend, **kwargs)

    single = _model(6, out_features, dtype)
    single_loss = loss_of(single, x, y, sync=False)
    single_loss.backward()

    ddp = DistributedDataParallel(_model(6, out_features, dtype))
    loss = loss_of(ddp, _shard(x, sizes, rank), _shard(y, sizes, rank), sync=True)
    loss.backward()
    torch.testing.assert_close(loss, single_loss, rtol=1e-5, atol=0)
    for (name, p), q in zip(ddp.module.named_parameters(), single.parameters()):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5 * q.grad.abs().max().item(),
                                   msg=lambda m, name=name: f"{name}: {m}")


def scenario_ddp_uneven(rank, backend):
    for task in ("binary", "multiclass"):
        for dtype in (torch.float64, torch.float32):
            _ddp_gradients_match(rank, backend, [600, 399], task, dtype)


def scenario_ddp_empty_shard(rank, backend):
    for task in ("binary", "multiclass"):
        _ddp_gradients_match(rank, backend, [999, 0], task, torch.float64)
        _ddp_gradients_match(rank, backend, [0, 999], task, torch.float32)


def scenario_ranks_disagree(rank, backend):
    """Ranks that would sum different kinds of counts get the same clear error (never an abort or a
    silent sum); the configurations are new to this process (agreed ones are not checked again)."""
    preds = torch.rand(20, 3, dtype=torch.float64)
    target = torch.rand(20, 3) < 0.5
    cases = {  # rank 0's and rank 1's keywords
        "T": (dict(thresholds=7), dict(thresholds=11)),
        "dtype, same bytes": (dict(thresholds=14, dtype=torch.float32), dict(thresholds=7, dtype=torch.float64)),
        "grid, same T": (dict(thresholds=[0.2, 0.6]), dict(thresholds=[0.3, 0.6])),
        "task, same shape": (dict(thresholds=5, task="binary", columns=1),
                             dict(thresholds=5, task="multilabel", num_classes=1, columns=1)),
        "approx": (dict(thresholds=6, approx="sigmoid"), dict(thresholds=6)),
    }
    for name, options in cases.items():
        kwargs = dict(options[rank])
        dtype = kwargs.pop("dtype", torch.float64)
        columns = kwargs.pop("columns", 3)
        for loss in (sf.soft_confusion_matrix, sf.f1_loss):
            try:
                loss(preds[:, :columns].to(dtype), target[:, :columns], sync_dist=True, backend=backend, **kwargs)
            except ValueError as err:
                assert "do not sum the same kind of counts" in str(err), (name, str(err))
            else:
                raise AssertionError(f"{name}: ranks that disagree were summed")
    # Agreeing ranks still sync afterwards (a grid no case above used: a configuration one rank has agreed
    # on before is not checked again, so a case must not reuse it on one rank only).
    counts = sf.soft_confusion_matrix(preds, target, thresholds=4, sync_dist=True, backend=backend)
    torch.testing.assert_close(counts, WORLD * sf.soft_confusion_matrix(preds, target, thresholds=4, backend=backend))


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in list(globals().items()) if name.startswith("scenario_")}


def _worker(rank, port, outdir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=30))
    warnings.simplefilter("ignore", RuntimeWarning)  # backend="auto" may fall back to the reference
    try:
        for backend in BACKENDS:
            for name, fn in SCENARIOS.items():
                record_outcome(outdir, f"{name}-{backend}", rank, fn, backend)
    finally:
        dist.destroy_process_group()


def record_outcome(outdir, name, rank, scenario, *args):
    """Runs scenario(rank, *args) and writes "ok" or its traceback, then waits for the other ranks."""
    try:
        scenario(rank, *args)
        result = "ok"
    except Exception:  # reported by the test of this scenario
        result = traceback.format_exc()
    with open(os.path.join(outdir, f"{name}-{rank}.txt"), "w") as f:
        f.write(result)
    dist.barrier()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(worker, outdir):
    """Runs worker(rank, port, outdir) on WORLD processes; returns None, or the error of a crash or
    a collective timeout (each test then reports what is missing)."""
    try:
        mp.spawn(worker, args=(_free_port(), outdir), nprocs=WORLD, join=True)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def assert_ranks_ok(outdir, name, spawn_error):
    """Every rank wrote "ok" for ``name`` (see record_outcome)."""
    for rank in range(WORLD):
        path = os.path.join(outdir, f"{name}-{rank}.txt")
        assert os.path.exists(path), f"rank {rank} did not finish {name}; the spawn failed with {spawn_error}"
        with open(path) as f:
            result = f.read()
        assert result == "ok", f"rank {rank}:\n{result}"


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """Runs every scenario on two processes once; returns (folder of results, spawn error or None)."""
    outdir = str(tmp_path_factory.mktemp("distributed"))
    return outdir, spawn_ranks(_worker, outdir)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_two_processes(spawned, scenario, backend):
    outdir, spawn_error = spawned
    assert_ranks_ok(outdir, f"{scenario}-{backend}", spawn_error)


# --------------------------------------------------------------------------- in this process, no group

def test_sync_without_process_group_raises():
    assert not dist.is_initialized()
    preds, target = torch.rand(10), torch.randint(0, 2, (10,))
    with pytest.raises(RuntimeError, match="init_process_group"):
        sf.soft_confusion_matrix(preds, target, sync_dist=True, backend="reference")
    with pytest.raises(RuntimeError, match="init_process_group"):
        sf.FBetaLoss(sync_dist=True, backend="reference")(preds, target)
    # sync_dist=False needs no group
    sf.f1_loss(preds, target, sync_dist=False, backend="reference")


def test_sync_samplewise_raises():
    preds, target = torch.rand(4, 3, 5), torch.randint(0, 2, (4, 3, 5))
    with pytest.raises(ValueError, match="samplewise"):
        sf.soft_confusion_matrix(preds, target, task="multilabel", num_classes=3, multidim_average="samplewise",
                                 sync_dist=True, backend="reference")
