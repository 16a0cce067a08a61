"""Global counts under torch.distributed: one differentiable all-reduce of [G, C, T, 4].

Soft-set metrics do not decompose over shards (F1 of the global batch is not the
mean of per-rank F1s), so each rank sums its counts with every other rank's and
computes the loss on the global counts. Only the small counts tensor travels:
C·T·4 numbers per step, whatever the batch size.

Gradient scaling. Let s_r be rank r's counts, S = Σ_r s_r and L(S) the loss every
rank computes. The all-reduce's backward is itself an all-reduce SUM of the
upstream gradients, so rank r receives Σ_r' ∂L/∂S = W·∂L/∂S (W ranks, all with
the same ∂L/∂S) and its parameters get W·∂L/∂S·∂s_r/∂θ. DDP then averages over
ranks: (1/W)·Σ_r W·∂L/∂S·∂s_r/∂θ = ∂L/∂S·Σ_r ∂s_r/∂θ, which is the gradient of
the single-process loss on the concatenated batch. Without DDP's averaging (a
hand-written all-reduce of gradients that sums), divide the loss by W.

Agreement. Counts of different shapes or dtypes cannot be summed (gloo aborts a rank,
NCCL hangs or returns garbage), and counts of different grids or tasks must not be.
The first time a process syncs a configuration (counts shape and dtype, task, approx,
k, ignore_index, the grid's values), its ranks compare fingerprints with one small
MAX all-reduce; a mismatch is a ValueError on every rank. Later steps with a
configuration already agreed on cost nothing extra. What this cannot catch: one rank
alone switching to a configuration the others never use, after the first step.
"""
from __future__ import annotations

import hashlib
import weakref

import torch
import torch.distributed as dist


def _resolve_group(process_group):
    if not dist.is_available():
        raise RuntimeError("sync_dist=True needs torch.distributed, which this build of torch lacks")
    if not dist.is_initialized():
        raise RuntimeError("sync_dist=True needs an initialised process group: call "
                           "torch.distributed.init_process_group(...) first (torchrun sets up the "
                           "environment), or pass sync_dist=False for the local counts")
    if process_group is None:
        return dist.group.WORLD
    if not isinstance(process_group, dist.ProcessGroup):
        raise TypeError(f"process_group must be None (the world) or a torch.distributed.ProcessGroup "
                        f"(e.g. from dist.new_group), got {type(process_group).__name__}")
    return process_group


# Configurations this process has checked with its group: (group name, described options, grid digest).
_AGREED: set = set()
# The digest of a grid's values by id(grid), with a weak reference that proves the id is still that
# grid's (cached grids are read once). Bounded: cleared when full.
_GRID_DIGESTS: dict = {}
_GRID_DIGESTS_LIMIT = 64


def _grid_digest(grid: torch.Tensor) -> str:
    entry = _GRID_DIGESTS.get(id(grid))
    if entry is not None and entry[0]() is grid:
        return entry[1]
    # repr of the float64 values round-trips exactly; .numpy() would need numpy, which torch does not.
    values = repr(grid.detach().to("cpu", torch.float64).tolist()).encode()
    digest = hashlib.blake2b(values, digest_size=16).hexdigest()
    if len(_GRID_DIGESTS) >= _GRID_DIGESTS_LIMIT:
        _GRID_DIGESTS.clear()
    _GRID_DIGESTS[id(grid)] = (weakref.ref(grid), digest)
    return digest


def check_ranks_agree(counts: torch.Tensor, grid: torch.Tensor, options: dict, process_group=None) -> None:
    """Raises ValueError on every rank of the group unless all of them sum the same kind of counts.

    ``options``: what else the counts depend on (task, approx, k, ignore_index). One MAX
    all-reduce of two int64 per new configuration, none once it has been agreed on;
    skipped while torch.compile traces.
    """
    if torch.compiler.is_compiling():
        return
    group = _resolve_group(process_group)
    described = dict(shape=list(counts.shape[1:]), dtype=str(counts.dtype).replace("torch.", ""), **options)
    configuration = (group.group_name, repr(sorted(described.items())), _grid_digest(grid))
    if configuration in _AGREED:  # a set look-up per step; the fingerprint only for a new configuration
        return
    fingerprint = int.from_bytes(hashlib.blake2b(repr(configuration[1:]).encode(), digest_size=7).digest(), "little")
    flags = torch.tensor([fingerprint, -fingerprint], dtype=torch.int64, device=counts.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=group)
    highest, minus_lowest = flags.tolist()
    if highest != -minus_lowest:
        thresholds = grid[:, 0].tolist()
        raise ValueError(
            "sync_dist=True: the ranks of the process group do not sum the same kind of counts. This rank has "
            f"counts {described} for thresholds {thresholds}; every rank must pass the same task, num_classes, "
            "thresholds, approx (with its delta or k), ignore_index and preds dtype")
    _AGREED.add(configuration)


def all_reduce_counts(counts: torch.Tensor, process_group=None, *, samplewise: bool = False) -> torch.Tensor:
    """Sum ``counts`` over ``process_group`` (default: the world), differentiably.

    Every rank of the group must call this, in the same order, including a rank whose
    local batch is empty (its counts are zeros and it still takes part). The backward
    is an all-reduce sum of the upstream gradients (see the module docstring for why
    that gives exact gradients under DDP).

    Samplewise counts [N, C, T, 4] hold different samples on each rank and cannot be
    summed; a samplewise loss is a mean of per-sample terms that already decomposes
    over shards, so it is computed locally (sync_dist=False) and we raise here.
    """
    if samplewise:
        raise ValueError("sync_dist=True needs multidim_average='global': samplewise counts belong to "
                         "different samples on each rank and cannot be summed; per-sample metrics do not "
                         "need the other ranks, so use sync_dist=False")
    group = _resolve_group(process_group)
    # The functional collectives (torch.distributed._functional_collectives; the older
    # torch.distributed.nn.functional is deprecated): out-of-place, traceable by torch.compile,
    # with autograd registered when that module is imported (backward = all-reduce sum).
    # funcol.all_reduce would wrap the result in an AsyncCollectiveTensor, whose first use
    # imports torch._dynamo (seconds); we wait at once, so we call the two ops it calls.
    from torch.distributed import _functional_collectives  # noqa: F401  (registers the autograd)
    functional = torch.ops._c10d_functional
    summed = functional.all_reduce(counts.contiguous(), "sum", group.group_name)
    return functional.wait_tensor(summed)  # a plain tensor; its backward is the identity
