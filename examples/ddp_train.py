"""Train an MLP with the soft F1 loss on several processes, on the global counts.

    torchrun --nproc_per_node 2 examples/ddp_train.py            # CPU (gloo) or GPUs (nccl)
    torchrun --nproc_per_node 2 examples/ddp_train.py --epochs 5
    python examples/ddp_train.py                                 # one process, same code

Soft-set metrics do not decompose over shards: F1 of the global batch is not the
mean of the per-rank F1s. With ``sync_dist=True`` every rank sums its counts with
the others' (one differentiable all-reduce of C·T·4 numbers), so each rank's loss
is the loss of the global batch and, after DDP's gradient averaging, the gradients
are those of one process training on the whole batch.
"""
from __future__ import annotations

import argparse
import math
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import softset_fast as sf


def synthetic(n: int, features: int, seed: int):
    """An imbalanced binary problem (about 10% positives); the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    direction = torch.randn(features, generator=g)
    score = x @ direction / math.sqrt(features) + 0.5 * torch.randn(n, generator=g)
    y = (score > 1.28).to(torch.int64)  # the top ~10%
    return x, y


def setup():
    """Join the process group torchrun describes (or a one-process group); returns (rank, world, device)."""
    if "RANK" not in os.environ:  # plain `python examples/ddp_train.py`
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29511")
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size(), device


@torch.no_grad()
def global_f1(model, x, y) -> tuple[float, float]:
    """Exact F1 at threshold 0.5 of the whole split (hard counts summed over ranks) and this rank's own."""
    probs = model(x).squeeze(1).sigmoid()
    local = sf.soft_confusion_matrix(probs, y, thresholds=[0.5], approx="step")
    total = sf.soft_confusion_matrix(probs, y, thresholds=[0.5], approx="step", sync_dist=True)
    return sf.metrics.f1(total).item(), sf.metrics.f1(local).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20011, help="training samples over all ranks")
    parser.add_argument("--batch-size", type=int, default=512, help="per rank")
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    rank, world, device = setup()
    x, y = synthetic(args.samples + 5003, 16, seed=0)
    x_train, y_train, x_val, y_val = x[:args.samples], y[:args.samples], x[args.samples:], y[args.samples:]
    # Each rank keeps its shard; the shards may differ in size by one.
    x_train, y_train = (t.tensor_split(world)[rank].to(device) for t in (x_train, y_train))
    x_val, y_val = (t.tensor_split(world)[rank].to(device) for t in (x_val, y_val))

    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1)).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = sf.FBetaLoss(beta=1.0, from_logits=True, sync_dist=True)

    # Every rank must run the same number of steps (each step is a collective), so the
    # count comes from the largest shard; a rank that has run out trains on an empty
    # batch: zero counts, zero gradients, but it still joins the all-reduces.
    steps = math.ceil(math.ceil(args.samples / world) / args.batch_size)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), device=device)
        for step in range(steps):
            index = order[step * args.batch_size:(step + 1) * args.batch_size]
            loss = loss_fn(model(x_train[index]).squeeze(1), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        f1, local_f1 = global_f1(model, x_val, y_val)
        locals_ = [None] * world
        dist.all_gather_object(locals_, round(local_f1, 4))
        if rank == 0:
            print(f"epoch {epoch + 1:2d}  last loss {loss.item():.4f}  validation F1 (global) {f1:.4f}  "
                  f"per-rank F1 {locals_}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
