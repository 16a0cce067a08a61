"""``python -m softset_fast bench``: the one benchmark harness.

Two suites, each over a sweep of N at a fixed T and of T at a fixed N:

* ``f1``: the F1 loss (approx="linear", float32 preds, bool target, validate_args=False) on every
  provider (reference, cpu, cuda, triton: whatever runs on --device), modes forward (the
  training forward, preds requiring grad), backward (``loss.backward`` alone) and full (both).
* ``step``: hard counts (approx="step") turned into an ROC curve, against torchmetrics' binned
  ``binary_roc`` and ``binary_precision_recall_curve`` on the same thresholds (forward only).

Each provider is checked against the reference (or torchmetrics) on the same inputs before it is
timed. Times: median and 20 % / 80 % quantiles of repeated runs after a warm-up (CUDA: events and
synchronisation). Peak memory: the most memory allocated during one run beyond what existed
before it, inputs excluded (CUDA: torch.cuda.max_memory_allocated; CPU: the tensor allocations
recorded by torch.profiler with profile_memory=True). A provider whose estimated memory exceeds
what is available is reported as "skipped: would need X GB", not run.

The functions ``make_inputs``, ``make_runner``, ``check_provider`` and ``measure_time`` are the
harness; benchmarks/test_bench.py drives the same functions through pytest-benchmark.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import sys
import time

import torch

import softset_fast as sf
from softset_fast.backends.registry import BACKENDS, unavailable_reason
from softset_fast.cli.progress import progress_bar

MODES = ("forward", "backward", "full")
TORCHMETRICS_PROVIDERS = ("torchmetrics-roc", "torchmetrics-prc")
# The reference materialises several [N, T] float64 tensors; its measured peak (forward and
# backward of the F1 loss, CPU) is about 4.3 × N·T·8 bytes, so 5 × is the estimate used to skip it.
REFERENCE_BYTES_PER_CELL = 5 * 8
FUSED_BYTES_PER_SAMPLE = 64          # inputs, gradient and per-sample indices: O(N), not O(N·T)
SWEEPS = {   # (N values at T0, T0, T values at N0, N0)
    "default": ([2 ** e for e in range(14, 23, 2)], 99, [9, 33, 99, 333, 999], 2 ** 18),
    "quick": ([2 ** 11, 2 ** 13, 2 ** 15], 33, [9, 33, 99, 333], 2 ** 13),
}


# --------------------------------------------------------------------------- the harness

def thresholds_tensor(t: int, device) -> torch.Tensor:
    """The grid of ``thresholds=t``: (i + 1) / (t + 1), shared with torchmetrics in the step suite."""
    return torch.tensor([(i + 1) / (t + 1) for i in range(t)], dtype=torch.float64, device=device)


def make_inputs(n: int, device, seed: int = 0, positive_rate: float = 0.3):
    """float32 probabilities [n] (uniform) and a bool target [n] with ``positive_rate`` positives."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    preds = torch.rand(n, generator=g).to(device)
    target = (torch.rand(n, generator=g) < positive_rate).to(device)
    return preds, target


def f1_loss(provider: str, preds, target, t: int):
    return sf.fbeta_loss(preds, target, thresholds=t, approx="linear", backend=provider, validate_args=False)


def step_roc(provider: str, preds, target, grid):
    """(fpr, tpr) at each threshold, ascending τ, from hard counts (or torchmetrics' binned curves)."""
    if provider == "torchmetrics-roc":
        from torchmetrics.functional.classification import binary_roc
        fpr, tpr, _ = binary_roc(preds, target.long(), thresholds=grid.float(), validate_args=False)
        return fpr.flip(0), tpr.flip(0)
    if provider == "torchmetrics-prc":
        from torchmetrics.functional.classification import binary_precision_recall_curve
        precision, recall, _ = binary_precision_recall_curve(preds, target.long(), thresholds=grid.float(),
                                                             validate_args=False)
        return precision[:-1], recall[:-1]
    tp, fn, fp, tn = sf.soft_confusion_matrix(preds, target, thresholds=grid, approx="step", backend=provider,
                                              validate_args=False).unbind(-1)
    return fp / (fp + tn).clamp_min(1), tp / (tp + fn).clamp_min(1)


def step_pr(provider: str, preds, target, grid):
    """(precision, recall) at each threshold from hard counts: what torchmetrics-prc is checked against."""
    tp, fn, fp, tn = sf.soft_confusion_matrix(preds, target, thresholds=grid, approx="step", backend=provider,
                                              validate_args=False).unbind(-1)
    return tp / (tp + fp).clamp_min(1), tp / (tp + fn).clamp_min(1)


def make_runner(suite: str, provider: str, mode: str, preds, target, t: int):
    """A no-argument callable running one measured step of (suite, provider, mode)."""
    if suite == "step":
        grid = thresholds_tensor(t, preds.device)
        return lambda: step_roc(provider, preds, target, grid)
    leaf = preds.detach().clone().requires_grad_(True)
    if mode == "forward":
        return lambda: f1_loss(provider, leaf, target, t)
    if mode == "full":
        def full():
            leaf.grad = None
            f1_loss(provider, leaf, target, t).backward()
        return full
    loss = f1_loss(provider, leaf, target, t)   # backward alone: the graph is built once

    def backward():
        leaf.grad = None
        loss.backward(retain_graph=True)
    return backward


def _relative_error(value: torch.Tensor, expected: torch.Tensor) -> float:
    scale = expected.abs().max().clamp_min(1e-12)
    return float((value.double() - expected.double()).abs().max() / scale)


def check_provider(suite: str, provider: str, preds, target, t: int, tolerance: float = 1e-4) -> str:
    """Compare a provider with its oracle on these inputs: "ok (max rel err …)" or "FAILED …".

    f1: the counts and the gradient of the F1 loss against the reference; step: the ROC (or
    precision / recall) points of sf's reference hard counts against torchmetrics, and of the
    other sf providers against the reference.
    """
    if suite == "f1":
        if provider == "reference":
            return "oracle"
        errors = []
        for name in (provider, "reference"):
            leaf = preds.detach().clone().requires_grad_(True)
            counts = sf.soft_confusion_matrix(leaf, target, thresholds=t, backend=name, validate_args=False)
            (1 - sf.metrics.f1(counts).mean()).backward()
            errors.append((counts.detach(), leaf.grad))
        error = max(_relative_error(errors[0][0], errors[1][0]), _relative_error(errors[0][1], errors[1][1]))
    else:
        if provider == "reference":
            return "oracle"
        grid = thresholds_tensor(t, preds.device)
        got = step_roc(provider, preds, target, grid)
        oracle = step_pr if provider == "torchmetrics-prc" else step_roc
        want = oracle("reference", preds, target, grid)
        error = max(_relative_error(a, b) for a, b in zip(got, want))
    verdict = "ok" if error <= tolerance else "FAILED"
    return f"{verdict} (max rel err {error:.1e})"


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure_time(fn, device, warmup: int = 1, min_reps: int = 3, max_reps: int = 50, budget_s: float = 0.5):
    """Run ``fn`` ``warmup`` times, then repeatedly (at least min_reps, until budget_s or max_reps).

    Returns the list of times in milliseconds. CUDA runs are timed with events after a synchronise.
    """
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    _synchronize(device)
    times: list[float] = []
    while len(times) < max_reps and (len(times) < min_reps or sum(times) < budget_s * 1e3):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    return times


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's start/stop lines, which C++ writes straight to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def measure_peak_memory(fn, device) -> int:
    """Bytes allocated at the peak of one run of ``fn``, beyond what was allocated before it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def available_memory(device) -> int:
    """Bytes a run may use: free device memory on CUDA; half of MemAvailable on a (shared) CPU host."""
    if torch.device(device).type == "cuda":
        return int(0.9 * torch.cuda.mem_get_info(torch.device(device))[0])
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    return 4 << 30


def estimated_memory(provider: str, n: int, t: int) -> int:
    """A conservative estimate of a run's peak: O(N·T) for the reference, O(N) for the rest."""
    if provider == "reference":
        return REFERENCE_BYTES_PER_CELL * n * t
    if provider.startswith("torchmetrics"):
        return 8 * n * t   # the vectorised binned update compares [N, T] at once
    return FUSED_BYTES_PER_SAMPLE * n


def default_providers(device) -> list[str]:
    """The sf backends that run tensors of this device (Triton on CPU only under TRITON_INTERPRET=1)."""
    kind = torch.device(device).type
    names = [name for name in sf.available_backends() if name == "reference" or name == kind
             or (name == "triton" and (kind == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"))]
    return names


def torchmetrics_available() -> bool:
    try:
        import torchmetrics  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- the sweep

def sweep_shapes(n_values, t0, t_values, n0) -> list[tuple[int, int, str]]:
    """(N, T, sweep) points: N varies at T0, T varies at N0; the shared point is run once."""
    shapes = [(n, t0, "N") for n in n_values]
    shapes += [(n0, t, "T") for t in t_values if (n0, t) not in {(n, t0) for n in n_values}]
    return shapes


def plan(args) -> list[dict]:
    """Every row of the benchmark, in run order, before anything is measured."""
    n_values, t0, t_values, n0 = SWEEPS["quick" if args.quick else "default"]
    n_values, t_values = args.n_values or n_values, args.t_values or t_values
    t0, n0 = args.t0 or t0, args.n0 or n0
    shapes = sweep_shapes(n_values, t0, t_values, n0)
    rows = []
    for suite in args.suites:
        if suite == "f1":
            providers = [p for p in args.providers if p not in TORCHMETRICS_PROVIDERS]
            modes = args.modes
        else:
            providers = list(args.providers)
            modes = ["forward"]
        for n, t, sweep in shapes:
            for provider in providers:
                for mode in modes:
                    rows.append({"suite": suite, "provider": provider, "mode": mode, "n": n, "t": t, "sweep": sweep})
    return rows


def run_row(row: dict, device, budget: int, timing: dict, checks: dict) -> dict:
    """Measure one row in place: status, check, times, quantiles and peak memory."""
    provider, n, t = row["provider"], row["n"], row["t"]
    reason = None
    if provider in BACKENDS:
        reason = unavailable_reason(provider)
        if reason is not None:
            reason = f"unavailable: {reason}"
    elif provider in TORCHMETRICS_PROVIDERS and not torchmetrics_available():
        reason = "unavailable: torchmetrics is not installed (pip install torchmetrics)"
    need = estimated_memory(provider, n, t)
    if reason is None and need > budget:
        reason = f"would need {need / 1e9:.1f} GB (available {budget / 1e9:.1f} GB)"
    if reason is not None:
        row["status"] = f"skipped: {reason}"
        return row
    preds, target = make_inputs(n, device)
    key = (row["suite"], provider, n, t)
    if key not in checks:
        # Against the oracle on the same inputs; on a prefix when the reference itself would not fit.
        fits = estimated_memory("reference", n, t) <= budget
        m = n if fits else max(1, budget // (estimated_memory("reference", 1, t) * 4))
        checks[key] = check_provider(row["suite"], provider, preds[:m], target[:m], t)
        if m < n:
            checks[key] += f" on the first {m} samples"
    row["check"] = checks[key]
    runner = make_runner(row["suite"], provider, row["mode"], preds, target, t)
    times = measure_time(runner, device, **timing)
    row.update(status="ok", reps=len(times), times_ms=times, median_ms=quantile(times, 0.5),
               q20_ms=quantile(times, 0.2), q80_ms=quantile(times, 0.8))
    # A fresh runner: a timed one frees the previous run's gradient inside the run, hiding its allocation.
    fresh = make_runner(row["suite"], provider, row["mode"], preds, target, t)
    row["peak_mem_mb"] = measure_peak_memory(fresh, device) / 1e6
    return row


def add_speedups(rows: list[dict]) -> None:
    """speedup_vs_reference (and vs torchmetrics-roc in the step suite): baseline median / median."""
    medians = {(r["suite"], r["provider"], r["mode"], r["n"], r["t"]): r.get("median_ms") for r in rows}
    for row in rows:
        for baseline, column in (("reference", "speedup_vs_reference"),
                                 ("torchmetrics-roc", "speedup_vs_torchmetrics")):
            if column == "speedup_vs_torchmetrics" and row["suite"] != "step":
                continue
            base = medians.get((row["suite"], baseline, row["mode"], row["n"], row["t"]))
            if base is not None and row.get("median_ms"):
                row[column] = base / row["median_ms"]


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """One line per row; times in ms, memory in MB, speed-up as reference time / this time."""
    header = (f"{'suite':<5} {'mode':<8} {'provider':<16} {'N':>8} {'T':>5} {'median ms':>10} {'q20 ms':>9} "
              f"{'q80 ms':>9} {'peak MB':>9} {'x ref':>7} {'x tm':>6}  check / status")
    lines = [header, "-" * len(header)]
    for r in rows:
        status = r.get("check", "") if r.get("status") == "ok" else r.get("status", "")
        lines.append(f"{r['suite']:<5} {r['mode']:<8} {r['provider']:<16} {r['n']:>8} {r['t']:>5} "
                     f"{_fmt(r.get('median_ms'), '.3f'):>10} {_fmt(r.get('q20_ms'), '.3f'):>9} "
                     f"{_fmt(r.get('q80_ms'), '.3f'):>9} {_fmt(r.get('peak_mem_mb'), '.2f'):>9} "
                     f"{_fmt(r.get('speedup_vs_reference'), '.2f'):>7} "
                     f"{_fmt(r.get('speedup_vs_torchmetrics'), '.2f'):>6}  {status}")
    return "\n".join(lines)


CSV_FIELDS = ("suite", "mode", "provider", "n", "t", "sweep", "status", "check", "reps", "median_ms", "q20_ms",
              "q80_ms", "peak_mem_mb", "speedup_vs_reference", "speedup_vs_torchmetrics")


def plot(rows: list[dict], out: str) -> list[str]:
    """time_vs_N.png, time_vs_T.png and memory_vs_T.png: one panel per mode (and one for step)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("f1", mode) for mode in MODES] + [("step", "forward")]
    panels = [p for p in panels if any(r["suite"] == p[0] and r["mode"] == p[1] for r in rows)]
    paths = []
    for name, sweep, x_key, y_key, y_label in (
            ("time_vs_N", "N", "n", "median_ms", "median time (ms)"),
            ("time_vs_T", "T", "t", "median_ms", "median time (ms)"),
            ("memory_vs_T", "T", "t", "peak_mem_mb", "peak memory (MB)")):
        figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
        for axis, (suite, mode) in zip(axes[0], panels):
            selected = [r for r in rows if r["suite"] == suite and r["mode"] == mode and r.get(y_key) is not None
                        and (r["sweep"] == sweep or (sweep == "N" and r["t"] == rows_t0(rows))
                             or (sweep == "T" and r["n"] == rows_n0(rows)))]
            for provider in dict.fromkeys(r["provider"] for r in selected):
                points = sorted((r[x_key], r[y_key]) for r in selected if r["provider"] == provider)
                axis.plot(*zip(*points), marker="o", label=provider)
            fixed = f"T = {rows_t0(rows)}" if sweep == "N" else f"N = {rows_n0(rows)}"
            axis.set_title(f"{'F1 loss' if suite == 'f1' else 'hard counts → ROC'}, {mode} ({fixed})", fontsize=9)
            axis.set_xscale("log", base=2 if sweep == "N" else 10)
            axis.set_yscale("log")
            axis.set_xlabel(sweep)
            axis.set_ylabel(y_label)
            axis.grid(alpha=0.3, which="both")
            if selected:
                axis.legend(fontsize=8)
        figure.tight_layout()
        path = os.path.join(out, f"{name}.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def rows_t0(rows):
    return next((r["t"] for r in rows if r["sweep"] == "N"), None)


def rows_n0(rows):
    return next((r["n"] for r in rows if r["sweep"] == "T"), None)


def machine_info(device) -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "softset_fast": sf.__version__, "available_backends": sf.available_backends(), "device": str(device)}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench: --device cuda needs a CUDA GPU and a CUDA build of torch")
    if args.providers is None:
        args.providers = default_providers(device) + (list(TORCHMETRICS_PROVIDERS) if torchmetrics_available()
                                                      else [])
    budget = int(args.max_mem_gb * 1e9) if args.max_mem_gb else available_memory(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    timing = ({"warmup": 1, "min_reps": 3, "max_reps": 20, "budget_s": 0.05} if args.quick
              else {"warmup": 2, "min_reps": 5, "max_reps": 100, "budget_s": 1.0})
    rows = plan(args)
    info = machine_info(device)
    print(f"softset_fast {sf.__version__} bench on {device} ({info.get('gpu') or info['machine']}, "
          f"{info['cpu_count']} CPUs, {info['torch_threads']} torch threads); torch {torch.__version__}; "
          f"available backends {info['available_backends']}; providers {args.providers}; "
          f"memory budget {budget / 1e9:.1f} GB")
    start = time.perf_counter()
    checks: dict = {}
    with progress_bar(len(rows), "bench", disable=args.no_progress) as bar:
        for row in rows:
            bar.set_postfix_str(f"{row['suite']} {row['provider']} {row['mode']} N={row['n']} T={row['t']}")
            run_row(row, device, budget, timing, checks)
            bar.update()
    add_speedups(rows)
    seconds = time.perf_counter() - start
    print("\nTimes in ms (median, 20 % and 80 % quantiles); peak memory allocated during one run, inputs "
          "excluded; x ref / x tm: speed-up over the reference / torchmetrics-roc.")
    print("f1: F1 loss, approx='linear', float32 preds, bool target; step: hard counts -> ROC points.")
    print(format_table(rows))
    result = {"machine": info, "config": {"quick": args.quick, "suites": args.suites, "modes": args.modes,
                                          "providers": args.providers, "memory_budget_bytes": budget,
                                          "timing": timing},
              "seconds": seconds, "results": rows}
    os.makedirs(args.out, exist_ok=True)
    json_path, csv_path = os.path.join(args.out, "bench.json"), os.path.join(args.out, "bench.csv")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    pngs = plot(rows, args.out)
    print(f"\n{seconds:.1f} s; wrote {json_path}, {csv_path}, {', '.join(pngs)}")
    failed = [r for r in rows if r.get("check", "").startswith("FAILED")]
    if failed:
        print(f"{len(failed)} rows FAILED their correctness check", file=sys.stderr)
    result["failed"] = len(failed)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small sweep: under a minute on a 2-core CPU")
    parser.add_argument("--out", default=os.path.join("out", "bench"), help="folder for JSON, CSV and PNGs")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--providers", nargs="+", choices=list(BACKENDS) + list(TORCHMETRICS_PROVIDERS),
                        help="default: every sf backend for --device, plus torchmetrics when installed")
    parser.add_argument("--suites", nargs="+", default=["f1", "step"], choices=["f1", "step"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--n-values", type=int, nargs="+", help="the N sweep (at --t0)")
    parser.add_argument("--t-values", type=int, nargs="+", help="the T sweep (at --n0)")
    parser.add_argument("--t0", type=int, help="T of the N sweep")
    parser.add_argument("--n0", type=int, help="N of the T sweep")
    parser.add_argument("--max-mem-gb", type=float, help="memory budget (default: half of MemAvailable, or "
                                                         "90 %% of free GPU memory)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the CPU runs (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    result = run(args)
    return 1 if result["failed"] else 0
