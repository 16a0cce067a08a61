"""GPU benchmark of the F1 loss (forward + backward) against the card's copy bandwidth.

Run by benchmarks/gpu_check.sh on a lent GPU. For each backend (cuda, triton) and
approximation it times f1_loss(preds, target).backward() on N elements (fp32 preds,
bool target), median of CUDA-event timings, after a correctness check against the
reference on a smaller N. "%copy" counts the minimal bytes: the forward reads preds
(4 B) and target (1 B); the backward reads them again and writes the gradient (4 B):
14 B per element, over the measured device-to-device copy bandwidth (torch clone,
bytes read + written). The reference runs at a smaller N (it is O(N·T) in memory)
and is compared at that N as a ratio. The step-cost section counts the kernel launches
(kernels, memsets, copies) of one F1-loss step with default arguments and the host gap
(CUDA-event time minus device time) at N = 2^24 and 2^16, for the fused backends and the
reference.

    python benchmarks/gpu_bench.py --out DIR [--n-log2 26] [--repeat 20]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import softset_fast  # noqa: E402
from softset_fast.backends.registry import unavailable_reason  # noqa: E402
from softset_fast.cli.bench import measure_time  # noqa: E402

CASES = [("linear", 9), ("linear", 1000), ("step", 9), ("step", 1000), ("sigmoid", 9)]
STEP_COST_SIZES = (24, 16)  # log2 N of the step-cost section


def kernel_times(fn, calls: int = 5, top: int = 4) -> tuple[float, list[tuple[str, float]], float]:
    """Device time per call summed over every kernel/memset/memcpy (torch.profiler), the top entries (ms),
    and the device operations (launches) per call."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    rows, launches = [], 0
    for ev in prof.key_averages():
        us = getattr(ev, "self_device_time_total", None)
        if us is None:
            us = getattr(ev, "self_cuda_time_total", 0.0)
        if us > 0:
            rows.append((ev.key, us / 1e3 / calls))
            launches += ev.count
    rows.sort(key=lambda r: -r[1])
    return sum(r[1] for r in rows), rows[:top], launches / calls


def short_name(name: str) -> str:
    """Kernel name without template arguments and namespaces."""
    name = name.split("<")[0].split("(")[0]
    return name.rsplit("::", 1)[-1][:40]


def event_times(fn, repeat: int, warmup: int = 3) -> list[float]:
    """Milliseconds per call for exactly ``repeat`` calls, one CUDA-event pair per call."""
    return measure_time(fn, "cuda", warmup=warmup, min_reps=repeat, max_reps=repeat)


def copy_bandwidth(repeat: int) -> float:
    """Bytes per second of a device-to-device clone (read + write) of 1 GiB."""
    x = torch.empty(2**28, device="cuda").uniform_()
    ms = statistics.median(event_times(lambda: x.clone(), repeat))
    return 2 * x.numel() * 4 / (ms * 1e-3)


def loss_step(backend: str, preds: torch.Tensor, target: torch.Tensor, approx: str, thresholds: int,
              validate_args: bool = False):
    def run():
        loss = softset_fast.f1_loss(preds, target, approx=approx, thresholds=thresholds, backend=backend,
                                    validate_args=validate_args)
        (grad,) = torch.autograd.grad(loss, preds)
        return loss, grad
    return run


def check(backend: str, approx: str, thresholds: int) -> str:
    """Loss and gradient vs the reference on fresh random data; returns 'ok' or what differs."""
    n = 2**18 if thresholds > 100 else 2**20
    preds = torch.rand(n, device="cuda", requires_grad=True)
    target = torch.rand(n, device="cuda") > 0.6
    loss, grad = loss_step(backend, preds, target, approx, thresholds)()
    ref_loss, ref_grad = loss_step("reference", preds, target, approx, thresholds)()
    try:
        torch.testing.assert_close(loss, ref_loss.to(loss.dtype), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(grad, ref_grad.to(grad.dtype), rtol=1e-3, atol=1e-9)
    except AssertionError as err:
        return "MISMATCH: " + str(err).splitlines()[0]
    return "ok"


def step_cost(backends: list[str], repeat: int) -> list[dict]:
    """Launches per F1-loss step (default arguments: linear, T = 9, validate_args=True) and the host gap,
    event time minus device time, at each of STEP_COST_SIZES."""
    rows = []
    for n_log2 in STEP_COST_SIZES:
        preds = torch.rand(2**n_log2, device="cuda", requires_grad=True)
        target = torch.rand(2**n_log2, device="cuda") > 0.6
        for backend in backends:
            if unavailable_reason(backend) is not None:
                continue
            row = {"backend": backend, "N": 2**n_log2}
            try:
                step_fn = loss_step(backend, preds, target, "linear", 9, validate_args=True)
                ms = statistics.median(event_times(step_fn, repeat))
                kernel_ms, _, launches = kernel_times(step_fn)
                row.update(ms=ms, kernel_ms=kernel_ms, launches=launches, gap_pct=100 * (ms - kernel_ms) / ms)
            except Exception as err:  # one failing backend must not hide the others
                row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/gpu_bench")
    parser.add_argument("--n-log2", type=int, default=26)
    parser.add_argument("--ref-n-log2", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backends", default="cuda,triton")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    card = torch.cuda.get_device_name()
    bandwidth = copy_bandwidth(args.repeat)
    print(f"card: {card}; torch {torch.__version__}; copy bandwidth {bandwidth / 1e12:.2f} TB/s (read + write)",
          flush=True)
    n = 2**args.n_log2
    preds = torch.rand(n, device="cuda", requires_grad=True)
    target = torch.rand(n, device="cuda") > 0.6
    floor_ms = 14 * n / bandwidth * 1e3
    rows = []
    backends = [b for b in args.backends.split(",") if b]
    for backend in backends:
        reason = unavailable_reason(backend)
        if reason is not None:
            print(f"{backend}: unavailable ({reason})", flush=True)
            rows.append({"backend": backend, "status": f"unavailable: {reason}"})
            continue
        for deterministic in (False, True) if backend == "cuda" else (False,):
            for approx, thresholds in CASES:
                if deterministic and thresholds > 100:
                    continue  # the fixed-order path is O(N·T): only the small grid is of interest
                name = backend + ("-det" if deterministic else "")
                torch.use_deterministic_algorithms(deterministic)
                row = {"backend": name, "approx": approx, "T": thresholds, "N": n}
                try:
                    row["check"] = check(backend, approx, thresholds)
                    step_fn = loss_step(backend, preds, target, approx, thresholds)
                    ms = statistics.median(event_times(step_fn, args.repeat))
                    row.update(ms=ms, pct_copy=100 * floor_ms / ms)
                    try:  # a profiler problem must not hide the timing
                        kernel_ms, top, _ = kernel_times(step_fn)
                        row.update(kernel_ms=kernel_ms, top=[(short_name(k), round(v, 4)) for k, v in top])
                    except Exception as err:
                        row["top"] = [(f"profiler {type(err).__name__}", 0.0)]
                except Exception as err:  # keep going: one failing case must not hide the others
                    row["check"] = f"ERROR {type(err).__name__}: {str(err).splitlines()[0][:200]}"
                finally:
                    torch.use_deterministic_algorithms(False)
                print(json.dumps(row), flush=True)
                rows.append(row)

    step_rows = step_cost(backends + ["reference"], args.repeat)

    # The reference at a smaller N, with the fused backends at that N for the ratio.
    n_ref = 2**args.ref_n_log2
    small_preds = preds.detach()[:n_ref].clone().requires_grad_(True)
    small_target = target[:n_ref]
    ratios = []
    for approx, thresholds in [("linear", 9)]:
        try:
            ref_ms = statistics.median(event_times(loss_step("reference", small_preds, small_target, approx,
                                                             thresholds), 5, warmup=1))
        except torch.cuda.OutOfMemoryError:
            ref_ms = None
        for backend in backends:
            if unavailable_reason(backend) is not None or ref_ms is None:
                continue
            ms = statistics.median(event_times(loss_step(backend, small_preds, small_target, approx, thresholds),
                                               args.repeat))
            ratios.append({"backend": backend, "approx": approx, "T": thresholds, "N": n_ref, "ref_ms": ref_ms,
                           "ms": ms, "speedup": ref_ms / ms})
            print(json.dumps(ratios[-1]), flush=True)
        torch.cuda.empty_cache()

    lines = [f"# GPU benchmark: F1 loss forward + backward, fp32 preds, bool target",
             "",
             f"card: {card}; torch {torch.__version__}; date {time.strftime('%Y-%m-%d')}; "
             f"copy bandwidth {bandwidth / 1e12:.2f} TB/s (clone of 1 GiB, read + write); "
             f"N = 2^{args.n_log2}; minimal bytes 14 N = {14 * n / 1e9:.2f} GB -> floor {floor_ms:.3f} ms",
             "",
             "kernel ms: device time per call of every kernel, memset and copy (torch.profiler); the rest of "
             "the event time is launch gaps (Python glue, host syncs). top: the largest entries, ms per call.",
             "",
             "| backend | approx | T | ms (median) | % of copy bandwidth | kernel ms | check | top kernels |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if "approx" not in row:
            lines.append(f"| {row['backend']} | - | - | - | - | - | {row['status']} | |")
            continue
        ms = f"{row['ms']:.3f}" if "ms" in row else "-"
        pct = f"{row['pct_copy']:.0f} %" if "pct_copy" in row else "-"
        kms = f"{row['kernel_ms']:.3f}" if "kernel_ms" in row else "-"
        top = ", ".join(f"{k} {v:.3f}" for k, v in row.get("top", []))
        lines.append(f"| {row['backend']} | {row['approx']} | {row['T']} | {ms} | {pct} | {kms} | {row['check']} "
                     f"| {top} |")
    names = sorted({r["backend"] for r in rows if "ms" in r}, key=lambda b: [r["backend"] for r in rows].index(b))
    for backend in names:
        by = {(r["approx"], r["T"]): r for r in rows if r.get("backend") == backend and "ms" in r}
        for approx in ("linear", "step"):
            if (approx, 9) in by and (approx, 1000) in by:
                lines.append(f"\n{backend} {approx}: T=1000 / T=9 = {by[(approx, 1000)]['ms'] / by[(approx, 9)]['ms']:.2f}x")
    lines += ["", "## Step cost: launches per F1-loss step (default arguments, T = 9) and host gap",
              "", "| backend | N | ms (median) | device ms | host gap | launches per step |", "| --- | --- | --- | --- | --- | --- |"]
    for r in step_rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['N']} | {r['error']} | | | |")
        else:
            lines.append(f"| {r['backend']} | 2^{r['N'].bit_length() - 1} | {r['ms']:.3f} | {r['kernel_ms']:.3f} | "
                         f"{r['gap_pct']:.0f} % | {r['launches']:.0f} |")
    for r in ratios:
        lines.append(f"\n{r['backend']} vs reference, {r['approx']} T={r['T']}, N=2^{args.ref_n_log2}: "
                     f"{r['ref_ms']:.2f} ms / {r['ms']:.3f} ms = {r['speedup']:.0f}x")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"card": card, "torch": torch.__version__, "copy_bandwidth": bandwidth, "rows": rows,
                   "reference_ratios": ratios, "step_cost": step_rows}, f, indent=1)
    print(table, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
