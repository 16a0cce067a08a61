"""Instructions per F1-loss training step, counted by valgrind's callgrind: a host-cost measure
that does not move with the load of a shared machine (wall times here vary 30 % from run to run).

    python benchmarks/step_instructions.py [--n 1024] [--steps 100] [--providers fused naive-compiled]

Each provider runs in its own process under ``valgrind --tool=callgrind --instr-atstart=no``;
after 20 untimed steps (first-call work, torch.compile) the process turns instrumentation on
with ``callgrind_control``, runs ``--steps`` steps and turns it off, so only those steps count.
Providers: ``fused`` (sf.fbeta_loss, backend "auto"), ``fused-novalidate`` (validate_args=False),
``naive-compiled`` and ``softf1-compiled`` (softset_fast.cli.bench's losses under torch.compile),
``sum-backward`` (p.sum().backward(): autograd's own cost). float32 preds, bool target, T = 9,
1 torch thread. Needs valgrind (Debian: apt-get install valgrind); about 30 s per provider at
N = 1024, more with --n. The output file of each run is left in --out for callgrind_annotate.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

PROVIDERS = ("fused", "fused-novalidate", "naive-compiled", "softf1-compiled", "sum-backward")


def step_function(provider: str, n: int):
    import torch

    import softset_fast as sf
    from softset_fast.cli.bench import naive_f1_loss, soft_f1_loss

    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    preds = torch.rand(n, generator=generator).requires_grad_()
    target = torch.rand(n, generator=generator) < 0.5
    thresholds = torch.linspace(0.1, 0.9, 9)
    losses = {
        "fused": lambda: sf.fbeta_loss(preds, target),
        "fused-novalidate": lambda: sf.fbeta_loss(preds, target, validate_args=False),
        "naive-compiled": lambda compiled=torch.compile(naive_f1_loss, dynamic=False): compiled(preds, target,
                                                                                               thresholds),
        "softf1-compiled": lambda compiled=torch.compile(soft_f1_loss, dynamic=False): compiled(preds, target),
        "sum-backward": lambda: preds.sum(),
    }
    loss = losses[provider]

    def step():
        loss().backward()
        preds.grad = None
    return step


def child(provider: str, n: int, steps: int) -> None:
    step = step_function(provider, n)
    for _ in range(20):
        step()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
    for _ in range(steps):
        step()
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)


def count(provider: str, n: int, steps: int, out: str) -> float:
    path = os.path.join(out, f"callgrind.{provider}.{n}")
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={path}",
               sys.executable, __file__, "--child", provider, "--n", str(n), "--steps", str(steps)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"{provider}: valgrind failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return int(found.group(1)) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--providers", nargs="+", choices=PROVIDERS, default=["fused", "naive-compiled"])
    parser.add_argument("--out", default="out/step_instructions")
    parser.add_argument("--child", choices=PROVIDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n, args.steps)
    os.makedirs(args.out, exist_ok=True)
    counts = {provider: count(provider, args.n, args.steps, args.out) for provider in args.providers}
    first = args.providers[0]
    print(f"instructions per step, N = {args.n}, T = 9, {args.steps} steps (callgrind); ratio to {first}")
    for provider, per_step in counts.items():
        print(f"  {provider:18s} {per_step:12,.0f}   {per_step / counts[first]:6.3f}")


if __name__ == "__main__":
    main()
