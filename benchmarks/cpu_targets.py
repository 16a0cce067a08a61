"""Issue 3's CPU numbers, side by side in one run, medians, printed as a table.

F1 loss forward + backward (softset_fast.fbeta_loss), approx="linear", float32 preds,
bool target, unless a row says otherwise:
  1. cpu vs reference at N = 2^22, T = 9                      (target >= 30x)
  2. cpu at T = 999 vs T = 9, N = 2^22                          (target <= 1.5x)
  3. cpu vs the memory floor torch.where(target, preds, -preds) (target <= 4x)
  4. peak memory beyond inputs and gradient, N = 2^24, T = 999 (target <= 512 MB)
  5. sigmoid, T = 9: cpu vs reference at N = 2^22              (target >= 10x)

Run: python benchmarks/cpu_targets.py [--log2n 22] [--rounds 5] [--json]
Peak memory is measured in a fresh subprocess from the kernel's max resident set size
(VmHWM in /proc/self/status, reset at the child's start): the high-water mark after allocating the inputs and a
gradient-sized buffer (touched, then freed) is the baseline; the loss's forward and
backward then may raise it only by what they allocate beyond the inputs and gradient.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

import torch

import softset_fast as sf
from softset_fast.cli.bench import interleaved_medians  # interleaved rounds, the second run timed


def f1_step(preds, target, *, backend, thresholds, approx="linear", validate_args=True):
    def run():
        p = preds.detach().requires_grad_(True)
        loss = sf.fbeta_loss(p, target, thresholds=thresholds, approx=approx, backend=backend,
                             validate_args=validate_args)
        loss.backward()
        return loss, p.grad
    return run


def check_same(preds, target, thresholds, approx):
    """Correctness before timing: the fast loss and gradient equal the reference's."""
    small_p, small_t = preds[:100_003], target[:100_003]
    fast_loss, fast_grad = f1_step(small_p, small_t, backend="cpu", thresholds=thresholds, approx=approx)()
    ref_loss, ref_grad = f1_step(small_p, small_t, backend="reference", thresholds=thresholds, approx=approx)()
    torch.testing.assert_close(fast_loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_grad, ref_grad, rtol=1e-4, atol=1e-9)


MEMORY_CHILD = r"""
import sys, torch, softset_fast as sf
n, thresholds = int(sys.argv[1]), int(sys.argv[2])
def peak():  # VmHWM: this process's peak resident set size
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # drop the peak inherited from the parent
warm = torch.rand(1000, requires_grad=True)
sf.fbeta_loss(warm, torch.rand(1000) < 0.5, thresholds=thresholds, backend="cpu").backward()
preds = torch.rand(n, requires_grad=True)
target = torch.rand(n) < 0.3
grad_sized = torch.ones_like(preds)  # touched, so the baseline includes room for the gradient
del grad_sized
baseline = peak()
loss = sf.fbeta_loss(preds, target, thresholds=thresholds, backend="cpu", validate_args=False)
loss.backward()
print(baseline, peak())
"""


def peak_rss_bytes(log2n: int, thresholds: int) -> tuple[int, int]:
    """(max RSS with inputs + gradient room, max RSS after the loss's forward + backward)."""
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(2 ** log2n), str(thresholds)],
                         check=True, capture_output=True, text=True)
    baseline, peak = out.stdout.strip().splitlines()[-1].split()
    return int(baseline), int(peak)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log2n", type=int, default=22)
    parser.add_argument("--log2n-memory", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of every case, interleaved")
    parser.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    args = parser.parse_args(argv)

    r = {}
    # First, while this process is small: the child's peak RSS starts from its own baseline.
    r["rss_baseline_bytes"], r["rss_peak_bytes"] = peak_rss_bytes(args.log2n_memory, 999)
    torch.manual_seed(0)
    n = 2 ** args.log2n
    preds = torch.rand(n)
    target = torch.rand(n) < 0.3
    for approx in ("linear", "sigmoid"):
        check_same(preds, target, 9, approx)

    cpu = dict(backend="cpu", validate_args=False)
    cases = {
        "ref_linear_9": f1_step(preds, target, backend="reference", thresholds=9),
        "cpu_linear_9": f1_step(preds, target, thresholds=9, **cpu),
        "cpu_linear_9_validate": f1_step(preds, target, backend="cpu", thresholds=9),
        "cpu_linear_999": f1_step(preds, target, thresholds=999, **cpu),
        "cpu_linear_999_validate": f1_step(preds, target, backend="cpu", thresholds=999),
        "floor_where": lambda: torch.where(target, preds, -preds),
        "ref_sigmoid_9": f1_step(preds, target, backend="reference", thresholds=9, approx="sigmoid"),
        "cpu_sigmoid_9": f1_step(preds, target, thresholds=9, approx="sigmoid", **cpu),
        "cpu_sigmoid_9_validate": f1_step(preds, target, backend="cpu", thresholds=9, approx="sigmoid"),
    }
    r.update(interleaved_medians(cases, args.rounds))
    mb = (r["rss_peak_bytes"] - r["rss_baseline_bytes"]) / 2 ** 20
    rows = [
        ("reference, linear, T=9", r["ref_linear_9"], ""),
        ("cpu, linear, T=9, validate_args=False", r["cpu_linear_9"],
         f"{r['ref_linear_9'] / r['cpu_linear_9']:.1f}x faster than reference (target >= 30x)"),
        ("cpu, linear, T=9, validate_args=True", r["cpu_linear_9_validate"],
         f"{r['ref_linear_9'] / r['cpu_linear_9_validate']:.1f}x faster than reference"),
        ("cpu, linear, T=999, validate_args=False", r["cpu_linear_999"],
         f"{r['cpu_linear_999'] / r['cpu_linear_9']:.2f}x the T=9 time (target <= 1.5x)"),
        ("cpu, linear, T=999, validate_args=True", r["cpu_linear_999_validate"],
         f"{r['cpu_linear_999_validate'] / r['cpu_linear_9_validate']:.2f}x the T=9 time"),
        ("floor: torch.where(target, preds, -preds)", r["floor_where"],
         f"cpu T=9 is {r['cpu_linear_9'] / r['floor_where']:.2f}x the floor (target <= 4x); "
         f"validate_args=True {r['cpu_linear_9_validate'] / r['floor_where']:.2f}x"),
        ("reference, sigmoid, T=9", r["ref_sigmoid_9"], ""),
        ("cpu, sigmoid, T=9, validate_args=False", r["cpu_sigmoid_9"],
         f"{r['ref_sigmoid_9'] / r['cpu_sigmoid_9']:.1f}x faster than reference (target >= 10x)"),
        ("cpu, sigmoid, T=9, validate_args=True", r["cpu_sigmoid_9_validate"],
         f"{r['ref_sigmoid_9'] / r['cpu_sigmoid_9_validate']:.1f}x faster than reference"),
    ]
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"F1 loss forward + backward, float32 preds, bool target, N = 2^{args.log2n}; "
          f"medians of {args.rounds} interleaved rounds (each case run twice per round, the second timed)\n")
    print("| case | median ms | ratio |")
    print("| --- | ---: | --- |")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds * 1e3:.1f} | {note} |")
    print(f"| peak memory beyond inputs + gradient, N = 2^{args.log2n_memory}, T = 999 | | "
          f"{mb:.1f} MB (target <= 512 MB; peak RSS {r['rss_baseline_bytes'] / 2 ** 20:.0f} MB with inputs + "
          f"gradient room -> {r['rss_peak_bytes'] / 2 ** 20:.0f} MB after forward + backward) |")
    if args.json:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
