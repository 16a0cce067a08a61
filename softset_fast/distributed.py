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
"""
from __future__ import annotations

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
