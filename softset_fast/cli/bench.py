"""``python -m softset_fast bench``: the one benchmark harness.

Three suites. ``f1`` and ``step`` (the default run) each sweep N at a fixed T and T at a fixed N:

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

* ``step-cost`` (opt-in, ``--suites step-cost``, CPU): what one training step of the F1 loss costs
  against what a user would otherwise write. Forward + backward, float32 preds, bool target,
  default arguments (validate_args=True), T = 9 over N = 2^6, 2^8, ..., 2^22, and T = 99, 999 at
  N = 2^10, 2^16, 2^22 (``--n-values``, ``--t-values``, ``--t-sweep-n``; ``--quick``: N = 2^6,
  2^10, 2^14 and T = 999 at 2^10, 3 rounds). Providers:

  - ``fused``: ``sf.fbeta_loss(p, y)`` (backend "auto": the fused C++ op on CPU);
  - ``reference``: ``sf.fbeta_loss(p, y, backend="reference")``, skipped where its O(N·T) memory
    would not fit;
  - ``naive``: :func:`naive_f1_loss`, the eager loss a user writes (paper Eq. 5 by torch.where on
    an [N, T] tensor, soft tp / fp / fn, F1 per threshold, 1 − mean); ``naive-compiled``: the same
    under ``torch.compile(dynamic=False)``, compiled once per shape;
  - ``softf1`` / ``softf1-compiled``: :func:`soft_f1_loss`, the thresholdless soft F1
    (tp = Σ p·y, ...), eager and compiled (N sweep only: no T);
  - ``where-floor``: one ``torch.where(y, p, -p)`` pass, the memory-bound floor (N sweep only).

  Each case is checked before it is timed (fused and naive against the reference, loss and
  gradient, relative error <= 1e-5; naive-compiled against naive; softf1 against itself in
  float64). All cases are then timed in interleaved rounds (:func:`interleaved_times`: every case
  once per round, an untimed run first, cases under 10 ms timed as a block of back-to-back runs)
  and reported as medians over the rounds, with the ratio to ``fused`` at the same N and T, the
  issue's target ratios, and the dispatched operations of one fused step at N = 1024
  (:func:`step_operations`: top-level forward ops and backward autograd nodes, AccumulateGrad
  excluded). Writes step_cost.json, step_cost.csv and step_cost_vs_N.png (time vs N, log-log;
  skipped with one line without matplotlib).

The functions ``make_inputs``, ``make_runner``, ``check_provider``, ``measure_time`` and, for
step-cost, ``step_cost_loss``, ``check_step_cost`` and ``loss_step`` are the harness;
benchmarks/test_bench.py drives the same functions through pytest-benchmark, and
benchmarks/cpu_targets.py times its cases with :func:`interleaved_medians`.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import gc
import math
import os
import platform
import statistics
import sys
import time
import types

import torch

import softset_fast as sf
from softset_fast.backends.registry import BACKENDS, unavailable_reason
from softset_fast.cli import extras
from softset_fast.cli.progress import progress_bar

DESCRIPTION = """\
Suites (--suites; default: f1 step):
  f1         F1 loss forward / backward / full on every sf backend against the reference (N and T sweeps)
  step       hard counts -> ROC points against torchmetrics' binned curves
  step-cost  one F1-loss training step (forward + backward, validate_args=True, fp32 preds, bool target)
             at T = 9 over N = 2^6 ... 2^22 and T = 99, 999 at N = 2^10, 2^16, 2^22, on: fused
             (sf.fbeta_loss), reference, naive (the eager [N, T] loss a user writes), naive-compiled,
             softf1 / softf1-compiled (thresholdless soft F1) and where-floor (one torch.where pass);
             every case checked first, then timed in interleaved rounds (medians); the issue's target
             ratios and the operations of one fused step. Writes step_cost.json / .csv / _vs_N.png.
  e.g. python -m softset_fast bench --suites step-cost --rounds 9
"""

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
    # No garbage collection inside the run: freeing earlier garbage there would lower the peak.
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    finally:
        if gc_was_enabled:
            gc.enable()
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
    return extras.importable("torchmetrics")


# --------------------------------------------------------------------------- the sweep

def sweep_shapes(n_values, t0, t_values, n0) -> list[tuple[int, int, str]]:
    """(N, T, sweep) points: N varies at T0, T varies at N0; the shared point is run once."""
    shapes = [(n, t0, "N") for n in n_values]
    shapes += [(n0, t, "T") for t in t_values if (n0, t) not in {(n, t0) for n in n_values}]
    return shapes


def plan(args, suites, providers) -> list[dict]:
    """Every row of the f1 and step suites, in run order, before anything is measured."""
    n_values, t0, t_values, n0 = SWEEPS["quick" if args.quick else "default"]
    n_values, t_values = args.n_values or n_values, args.t_values or t_values
    t0, n0 = args.t0 or t0, args.n0 or n0
    shapes = sweep_shapes(n_values, t0, t_values, n0)
    rows = []
    for suite in suites:
        if suite == "f1":
            names = [p for p in providers if p not in TORCHMETRICS_PROVIDERS]
            modes = args.modes
        else:
            names = list(providers)
            modes = ["forward"]
        for n, t, sweep in shapes:
            for provider in names:
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
        reason = f"unavailable: torchmetrics is not installed ({extras.INSTALL})"
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


def write_results(out: str, stem: str, result: dict, rows: list[dict], fields) -> tuple[str, str]:
    """Writes ``result`` to out/stem.json and ``rows`` to out/stem.csv; returns both paths."""
    os.makedirs(out, exist_ok=True)
    json_path, csv_path = os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}.csv")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


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


# --------------------------------------------------------------------------- the step-cost suite

STEP_COST_PROVIDERS = ("fused", "reference", "naive", "naive-compiled", "softf1", "softf1-compiled", "where-floor")
THRESHOLDLESS = ("softf1", "softf1-compiled", "where-floor")    # no T: timed in the N sweep only
STEP_COST_SWEEPS = {   # (N values at T = 9, T values of the T sweep, N values of the T sweep)
    "default": ([2 ** e for e in range(6, 23, 2)], [99, 999], [2 ** 10, 2 ** 16, 2 ** 22]),
    "quick": ([2 ** 6, 2 ** 10, 2 ** 14], [999], [2 ** 10]),
}
STEP_COST_T0 = 9                     # the default grid 0.1, ..., 0.9
# Eager naive: h, two masks, the three segments, the where temporaries, h·y, 1 − h, ... and what autograd
# saves, each [N, T] float32 or bool: about 16 of them. The compiled twin is estimated the same (safe side).
NAIVE_BYTES_PER_CELL = 64
CHECK_SAMPLES = 2 ** 16              # oracle checks of big cases run on the first CHECK_SAMPLES samples
CHECK_TOLERANCE = 1e-5               # loss and gradient, relative to the oracle's largest magnitude
# The naive loss computes its breakpoints a, b in float32, the reference in float64 (then rounds them): at
# large T a sample or two of 2^16 fall between the two roundings and take the neighbouring segment's slope,
# 1e-4 of the largest gradient at T = 999. Only at T = 9 (no such sample here) is the naive loss held to 1e-5.
NAIVE_TOLERANCE_LARGE_T = 1e-3


def naive_f1_loss(p: torch.Tensor, y: torch.Tensor, thresholds: torch.Tensor, delta: float = 0.2) -> torch.Tensor:
    """The soft-set F1 loss as a user writes it in eager PyTorch (Tsoi et al., Eq. 5, on an [N, T] tensor)."""
    tau = thresholds                                     # [T], e.g. 0.1, ..., 0.9
    tau_m = torch.minimum(tau, 1 - tau)
    a, b = tau - tau_m / 2, tau + tau_m / 2              # H̃(a) = δ, H̃(τ) = 1/2, H̃(b) = 1 − δ
    q = p.unsqueeze(1)                                   # [N, 1] against [T]: every H̃ below is [N, T]
    h = torch.where(q < a, delta / a * q,
                    torch.where(q > b, 1 - delta + delta / (1 - b) * (q - b), 0.5 + (1 - 2 * delta) / tau_m * (q - tau)))
    yf = y.unsqueeze(1).to(p.dtype)
    tp, fp, fn = (h * yf).sum(0), (h * (1 - yf)).sum(0), ((1 - h) * yf).sum(0)
    return 1 - (2 * tp / (2 * tp + fp + fn)).mean()


def soft_f1_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The thresholdless soft F1 loss: the counts weighted by p itself, no grid."""
    yf = y.to(p.dtype)
    tp, fp, fn = (p * yf).sum(), (p * (1 - yf)).sum(), ((1 - p) * yf).sum()
    return 1 - 2 * tp / (2 * tp + fp + fn)


def _own_code(function):
    """A copy of ``function`` with its own code object. torch.compile caches compiled graphs per code
    object, so each case gets a cache of one shape, as in a training loop with a fixed batch size (no
    recompile limit across the sweep's shapes, no walk over the other shapes' guards)."""
    return types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)


def step_cost_loss(provider: str, t: int | None, compile_backend: str = "inductor"):
    """The loss ``(p, y) -> 0-d loss`` of a loss provider (not "where-floor") at T thresholds; the compiled
    providers use torch.compile's ``compile_backend``."""
    if provider == "fused":
        return (lambda p, y: sf.fbeta_loss(p, y)) if t == STEP_COST_T0 else \
            (lambda p, y: sf.fbeta_loss(p, y, thresholds=t))
    if provider == "reference":
        return lambda p, y: sf.fbeta_loss(p, y, thresholds=t, backend="reference")
    if provider in ("softf1", "softf1-compiled"):
        return soft_f1_loss if provider == "softf1" else \
            torch.compile(_own_code(soft_f1_loss), dynamic=False, backend=compile_backend)
    grid = thresholds_tensor(t, "cpu").float()           # what a user writes: torch.linspace(0.1, 0.9, 9)
    naive = naive_f1_loss if provider == "naive" else \
        torch.compile(_own_code(naive_f1_loss), dynamic=False, backend=compile_backend)
    return lambda p, y: naive(p, y, grid)


def loss_step(loss, preds, target):
    """One training step of ``loss``: a fresh leaf, forward and backward; returns (loss, gradient)."""
    def step():
        leaf = preds.detach().requires_grad_(True)
        value = loss(leaf, target)
        value.backward()
        return value, leaf.grad
    return step


def step_cost_runner(provider: str, loss, preds, target):
    """The timed callable: a training step of ``loss``, or the where-floor pass."""
    if provider == "where-floor":
        return lambda: torch.where(target, preds, -preds)
    return loss_step(loss, preds, target)


def step_cost_estimate(provider: str, n: int, t: int | None) -> int:
    """Estimated peak bytes of one step: O(N·T) for the reference and the naive losses, else O(N)."""
    if provider in ("naive", "naive-compiled"):
        return NAIVE_BYTES_PER_CELL * n * t
    return estimated_memory("reference" if provider == "reference" else "cpu", n, t or 1)


def check_step_cost(provider: str, loss, preds, target, t: int | None, budget: int) -> str:
    """Compare one provider's loss and gradient with its oracle before it is timed.

    ``loss`` is the provider's loss (step_cost_loss) that is then timed, so a compiled one is compiled
    here for this shape. fused and naive: the reference F1 loss (on the first CHECK_SAMPLES samples of
    big inputs); naive-compiled: the eager naive loss on the same inputs; softf1 and softf1-compiled:
    soft_f1_loss in float64; where-floor: preds · (2·target − 1).
    """
    if provider == "reference":
        return "oracle"
    if provider == "where-floor":
        error = _relative_error(torch.where(target, preds, -preds), preds * (2 * target.float() - 1))
        oracle, note = "preds*(2y-1)", ""
    else:
        m, note = preds.numel(), ""
        if provider in ("fused", "naive"):
            oracle = "reference"
            m = min(m, CHECK_SAMPLES, max(1, budget // step_cost_estimate("reference", 1, t)))
            if m < preds.numel():
                note = f" on the first {m} samples"
            want = loss_step(step_cost_loss("reference", t), preds[:m], target[:m])()
        elif provider == "naive-compiled":
            oracle = "naive"
            want = loss_step(step_cost_loss("naive", t), preds, target)()
        else:
            oracle = "float64 softf1"
            want = loss_step(soft_f1_loss, preds.double(), target)()
        got = loss_step(loss, preds[:m], target[:m])()
        error = max(_relative_error(got[0].detach(), want[0].detach()), _relative_error(got[1], want[1]))
    tolerance = CHECK_TOLERANCE
    if provider == "naive" and t != STEP_COST_T0:
        tolerance = NAIVE_TOLERANCE_LARGE_T
    verdict = "ok" if error <= tolerance else "FAILED"
    return f"{verdict} (max rel err {error:.1e} vs {oracle}{note})"


def interleaved_times(cases: dict, rounds: int, min_block_s: float = 0.0, max_block: int = 1000,
                      progress=None) -> dict:
    """Seconds per run of each case, one sample per round; every round runs every case.

    The machine is shared: a burst of load from elsewhere then slows every case of a round alike
    instead of all repeats of one case, so the ratios stay fair. Within a round each case runs
    once untimed, then is timed back to back: the first run brings its inputs back into the caches
    the previous case evicted (the reference moves gigabytes). With min_block_s > 0 a case faster
    than that is timed as a block of runs (size fixed before the first round, at most max_block),
    so that a step of microseconds is not lost in the clock's and the scheduler's noise.
    """
    blocks = dict.fromkeys(cases, 1)
    for name, function in cases.items() if min_block_s > 0 else ():
        function()
        start = time.perf_counter()
        function()
        once = time.perf_counter() - start
        blocks[name] = max(1, min(max_block, math.ceil(min_block_s / max(once, 1e-9))))
    times: dict = {name: [] for name in cases}
    for _ in range(rounds):
        for name, function in cases.items():
            function()
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                start = time.perf_counter()
                for _ in range(blocks[name]):
                    function()
                times[name].append((time.perf_counter() - start) / blocks[name])
            finally:
                if gc_was_enabled:
                    gc.enable()
            if progress is not None:
                progress()
    return {"times": times, "blocks": blocks}


def interleaved_medians(cases: dict, rounds: int) -> dict:
    """Median seconds of each case over ``rounds`` interleaved rounds (one timed run per case and round)."""
    return {name: statistics.median(values) for name, values in interleaved_times(cases, rounds)["times"].items()}


def step_operations(step) -> tuple[list[str], list[str]]:
    """The top-level operations of the forward ``step()`` and the autograd nodes of its backward, as
    torch.profiler records them (the AccumulateGrad of the caller's own leaf tensor not counted)."""
    from torch.profiler import ProfilerActivity, profile
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as forward_profile:
        loss = step()
    forward = [e.name for e in forward_profile.events() if e.cpu_parent is None]
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as backward_profile:
        loss.backward()
    nodes = [e.name for e in backward_profile.events()
             if e.name.startswith("autograd::engine::evaluate_function:") and "AccumulateGrad" not in e.name]
    return forward, nodes


def count_step_operations(step) -> tuple[int, int]:
    """(forward operations, backward autograd nodes) of one loss step; see :func:`step_operations`."""
    forward, backward = step_operations(step)
    return len(forward), len(backward)


def step_cost_plan(n_values, t0, t_values, t_sweep_n, providers) -> list[dict]:
    """Rows (provider, N, T, sweep) in run order: N ascending, then T; thresholdless providers at T0 only."""
    shapes = sorted({(n, t0, "N") for n in n_values} |
                    {(n, t, "T") for n in t_sweep_n for t in t_values if t != t0 or n not in n_values} |
                    {(n, t0, "T") for n in t_sweep_n if n not in n_values})
    rows = []
    for n, t, sweep in shapes:
        for provider in providers:
            if provider in THRESHOLDLESS and (t != t0 or sweep == "T" and n in n_values):
                continue
            rows.append({"suite": "step-cost", "provider": provider, "n": n,
                         "t": None if provider in THRESHOLDLESS else t, "sweep": sweep})
    return rows


def step_cost_targets(rows: list[dict], operations: int | None) -> list[dict]:
    """The issue's targets: name, measured (ratio of the medians), paired (median over the rounds of the
    ratio within a round: the two cases ran seconds apart, so a slow phase of the machine cancels), limit,
    met (judged on the ratio of the medians)."""
    found = {(r["provider"], r["n"], r["t"]): r for r in rows if r.get("median_ms") is not None}
    t0 = STEP_COST_T0

    def ratios(a, b):
        """(ratio of medians, median of per-round ratios) of cases a and b, or (None, None)."""
        if a not in found or b not in found:
            return None, None
        per_round = [x / y for x, y in zip(found[a]["times_ms"], found[b]["times_ms"])]
        return found[a]["median_ms"] / found[b]["median_ms"], statistics.median(per_round)

    targets = []

    def add(name, values, limit):
        value, paired = values
        targets.append({"target": name, "measured": value, "paired": paired, "limit": limit,
                        "met": None if value is None else value <= limit})

    for n, limit in ((2 ** 10, 0.5), (2 ** 16, 0.33)):
        add(f"N=2^{n.bit_length() - 1}: fused / naive-compiled", ratios(("fused", n, t0), ("naive-compiled", n, t0)),
            limit)
    n = 2 ** 22
    add("N=2^22: fused / where-floor", ratios(("fused", n, t0), ("where-floor", n, None)), 2.0)
    add("N=2^22: fused T=999 / T=9", ratios(("fused", n, 999), ("fused", n, t0)), 1.2)
    big = [ratios(("fused", m, t0), ("softf1-compiled", m, None))
           for m in sorted({r["n"] for r in rows if r["n"] >= 2 ** 16})]
    big = [pair for pair in big if pair[0] is not None]
    add("stretch: every N >= 2^16: fused / softf1-compiled (worst)",
        (max(p[0] for p in big), max(p[1] for p in big)) if big else (None, None), 1.0)
    add("operations per fused step (N=1024)", (operations, None), 4)
    return targets


def format_step_cost(rows: list[dict], n_values, t0) -> str:
    """The N sweep as a table of medians (ms) per provider, then the T sweep."""
    providers = list(dict.fromkeys(r["provider"] for r in rows))
    cell = {(r["provider"], r["n"], r["t"] or t0): r for r in rows}
    lines = []
    for title, points in (
            (f"T = {t0}, median ms per step",
             [(n, t0) for n in sorted({r["n"] for r in rows if r["sweep"] == "N"})]),
            ("T sweep, median ms per step",
             sorted({(r["n"], r["t"]) for r in rows if r["sweep"] == "T" and r["t"] is not None}
                    | {(r["n"], t0) for r in rows if r["sweep"] == "T"}))):
        if not points:
            continue
        shown = [p for p in providers if any((p, n, t) in cell for n, t in points)]
        header = f"{'N':>8} {'T':>4} " + " ".join(f"{p:>15}" for p in shown)
        lines += ["", title, header, "-" * len(header)]
        for n, t in points:
            values = []
            for provider in shown:
                r = cell.get((provider, n, t))
                if r is None:
                    values.append("")
                elif r.get("median_ms") is None:
                    values.append("skipped")
                else:
                    values.append(f"{r['median_ms']:.4g}")
            lines.append(f"{n:>8} {t:>4} " + " ".join(f"{v:>15}" for v in values))
    return "\n".join(lines[1:])


STEP_COST_CSV_FIELDS = ("suite", "provider", "n", "t", "sweep", "status", "check", "rounds", "block", "median_ms",
                        "q20_ms", "q80_ms", "fused_ratio")


def plot_step_cost(rows: list[dict], out: str, t0: int) -> str:
    """step_cost_vs_N.png: time per step and time per sample vs N (log-log), one line per provider."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    selected = [r for r in rows if r.get("median_ms") is not None and r["sweep"] == "N"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for provider in dict.fromkeys(r["provider"] for r in selected):
        points = sorted((r["n"], r["median_ms"]) for r in selected if r["provider"] == provider)
        n, ms = zip(*points)
        axes[0].plot(n, ms, marker="o", label=provider)
        axes[1].plot(n, [1e6 * time_ms / size for size, time_ms in points], marker="o", label=provider)
    for axis, label in zip(axes, ("median time per step (ms)", "median time per sample (ns)")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("N")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.suptitle(f"F1 loss forward + backward, float32 preds, bool target, T = {t0} (softf1, where-floor: no T)",
                    fontsize=10)
    figure.tight_layout()
    path = os.path.join(out, "step_cost_vs_N.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run_step_cost(args, device, budget: int, info: dict) -> dict:
    """The step-cost suite: check every provider, then time all cases in interleaved rounds."""
    if device.type != "cpu":
        raise SystemExit("bench: the step-cost suite runs on --device cpu")
    n_values, t_values, t_sweep_n = STEP_COST_SWEEPS["quick" if args.quick else "default"]
    n_values, t_values = args.n_values or n_values, args.t_values or t_values
    t_sweep_n = t_sweep_n if args.t_sweep_n is None else args.t_sweep_n
    t0 = args.t0 or STEP_COST_T0
    providers = [p for p in (args.providers or STEP_COST_PROVIDERS) if p in STEP_COST_PROVIDERS]
    if not providers:
        raise SystemExit(f"bench: --providers names none of the step-cost providers {STEP_COST_PROVIDERS}")
    rounds = args.rounds or (3 if args.quick else 9)
    min_block_s = 0.002 if args.quick else 0.01
    rows = step_cost_plan(n_values, t0, t_values, t_sweep_n, providers)
    if unavailable_reason("cpu") is not None and "fused" in providers:
        print(f"step-cost: fused runs the reference here ({unavailable_reason('cpu')})")
    load = os.getloadavg()
    print(f"\nstep-cost: F1 loss forward + backward (validate_args=True, fp32 preds, bool target), {len(rows)} cases "
          f"in {rounds} interleaved rounds; {torch.get_num_threads()} torch threads; load average "
          f"{' '.join(f'{x:.2f}' for x in load)}")
    if torch.get_num_threads() > 1 and load[0] > (os.cpu_count() or 1):
        print(f"step-cost: the load average exceeds the {os.cpu_count()} CPUs: multi-threaded steps (torch.compile's "
              f"kernels above all, which open an OpenMP region at every N) wait at their barriers for descheduled "
              f"threads; --threads 1 (or OMP_WAIT_POLICY=passive) measures the work instead")
    start = time.perf_counter()
    cases, inputs = {}, {}
    with progress_bar(len(rows), "step-cost checks", disable=args.no_progress) as bar:
        for row in rows:
            provider, n, t = row["provider"], row["n"], row["t"]
            bar.set_postfix_str(f"{provider} N={n} T={t}")
            need = step_cost_estimate(provider, n, t)
            if need > budget:
                row["status"] = f"skipped: would need {need / 1e9:.1f} GB (available {budget / 1e9:.1f} GB)"
            else:
                if n not in inputs:
                    inputs[n] = make_inputs(n, device)
                preds, target = inputs[n]
                loss = None if provider == "where-floor" else step_cost_loss(provider, t, args.compile_backend)
                row["check"] = check_step_cost(provider, loss, preds, target, t, budget)
                row["status"] = "ok"
                cases[(provider, n, t)] = step_cost_runner(provider, loss, preds, target)
            bar.update()
    with progress_bar(rounds * len(cases), "step-cost rounds", disable=args.no_progress) as bar:
        measured = interleaved_times(cases, rounds, min_block_s=min_block_s, progress=bar.update)
    operations = None
    if "fused" in providers:   # the dispatched operations of one default fused step at N = 1024
        preds, target = make_inputs(1024, device)
        loss = step_cost_loss("fused", STEP_COST_T0)
        loss_step(loss, preds, target)()                     # warm-up: caches, first-call work
        leaf = preds.detach().requires_grad_(True)
        forward, backward = step_operations(lambda: loss(leaf, target))
        operations = len(forward) + len(backward)
    load_after = os.getloadavg()
    fused = {}
    for row in rows:
        key = (row["provider"], row["n"], row["t"])
        if key in cases:
            times = [1e3 * s for s in measured["times"][key]]
            row.update(rounds=len(times), block=measured["blocks"][key], times_ms=times,
                       median_ms=quantile(times, 0.5), q20_ms=quantile(times, 0.2), q80_ms=quantile(times, 0.8))
            if row["provider"] == "fused":
                fused[(row["n"], row["t"])] = row["median_ms"]
    for row in rows:
        base = fused.get((row["n"], row["t"] if row["t"] is not None else t0))
        if base and row.get("median_ms"):
            row["fused_ratio"] = row["median_ms"] / base
    targets = step_cost_targets(rows, operations) if t0 == STEP_COST_T0 else []
    seconds = time.perf_counter() - start
    print(format_step_cost(rows, n_values, t0))
    print("\nchecks before timing:")
    for row in rows:
        print(f"  {row['provider']:<16} N={row['n']:<8} T={row['t'] if row['t'] is not None else '-':<4} "
              f"{row.get('check') or row['status']}")
    if operations is not None:
        print(f"\nfused step at N=1024, T={STEP_COST_T0}: {len(forward)} forward operation(s) {forward} + {len(backward)} "
              f"backward node(s) {[name.removeprefix('autograd::engine::evaluate_function: ') for name in backward]} = "
              f"{operations}")
    if targets:
        print("\ntargets: ratio of the medians (paired: median over the rounds of the ratio within a round)")
        for target in targets:
            value = "-" if target["measured"] is None else f"{target['measured']:.3g}"
            paired = "" if target["paired"] is None else f"(paired {target['paired']:.3g})"
            verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
            print(f"  {target['target']:<58} {value:>8} {paired:<16} <= {target['limit']:<5} {verdict}")
    result = {"machine": {**info, "load_average_before": list(info["load_average"]),
                          "load_average_after": list(load_after)},
              "config": {"quick": args.quick, "providers": providers, "n_values": n_values, "t0": t0,
                         "t_values": t_values, "t_sweep_n": t_sweep_n, "rounds": rounds,
                         "compile_backend": args.compile_backend, "threads": torch.get_num_threads(),
                         "min_block_s": min_block_s, "memory_budget_bytes": budget},
              "seconds": seconds, "operations": None if operations is None else
              {"forward": forward, "backward": backward, "count": operations},
              "targets": targets, "results": rows}
    json_path, csv_path = write_results(args.out, "step_cost", result, rows, STEP_COST_CSV_FIELDS)
    png = plot_step_cost(rows, args.out, t0) if args.plots else None
    print(f"\n{seconds:.1f} s (load average {' '.join(f'{x:.2f}' for x in load_after)}); wrote {json_path}, "
          f"{csv_path}" + (f", {png}" if png else ""))
    result["failed"] = sum(r.get("check", "").startswith("FAILED") for r in rows)
    return result


def machine_info(device) -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "softset_fast": sf.__version__, "available_backends": sf.available_backends(), "device": str(device),
            "load_average": os.getloadavg()}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench: --device cuda needs a CUDA GPU and a CUDA build of torch")
    budget = int(args.max_mem_gb * 1e9) if args.max_mem_gb else available_memory(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info(device)
    print(f"softset_fast {sf.__version__} bench on {device} ({info.get('gpu') or info['machine']}, "
          f"{info['cpu_count']} CPUs, {info['torch_threads']} torch threads); torch {torch.__version__}; "
          f"available backends {info['available_backends']}; memory budget {budget / 1e9:.1f} GB; "
          f"load average {' '.join(f'{x:.2f}' for x in info['load_average'])}")
    result: dict = {"machine": info, "failed": 0}
    if any(suite != "step-cost" for suite in args.suites):
        result = run_rows(args, device, budget, info)
    if "step-cost" in args.suites:
        step_cost = run_step_cost(args, device, budget, info)
        result["step_cost"] = step_cost
        result["failed"] += step_cost["failed"]
    return result


def run_rows(args, device, budget: int, info: dict) -> dict:
    """The f1 and step suites: one row after the other, each timed by measure_time."""
    suites = [suite for suite in args.suites if suite != "step-cost"]
    providers = args.providers
    if providers is None:
        providers = default_providers(device) + (list(TORCHMETRICS_PROVIDERS) if torchmetrics_available() else [])
    providers = [p for p in providers if p in BACKENDS or p in TORCHMETRICS_PROVIDERS]
    if not providers:
        raise SystemExit(f"bench: --providers names none of the {' and '.join(suites)} providers")
    timing = ({"warmup": 1, "min_reps": 3, "max_reps": 20, "budget_s": 0.05} if args.quick
              else {"warmup": 2, "min_reps": 5, "max_reps": 100, "budget_s": 1.0})
    rows = plan(args, suites, providers)
    print(f"{' and '.join(suites)}: providers {providers}")
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
    result = {"machine": info, "config": {"quick": args.quick, "suites": suites, "modes": args.modes,
                                          "providers": providers, "memory_budget_bytes": budget,
                                          "timing": timing},
              "seconds": seconds, "results": rows}
    json_path, csv_path = write_results(args.out, "bench", result, rows, CSV_FIELDS)
    pngs = plot(rows, args.out) if args.plots else []
    print(f"\n{seconds:.1f} s; wrote " + ", ".join([json_path, csv_path] + pngs))
    failed = [r for r in rows if r.get("check", "").startswith("FAILED")]
    if failed:
        print(f"{len(failed)} rows FAILED their correctness check", file=sys.stderr)
    result["failed"] = len(failed)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small sweep: under a minute on a 2-core CPU")
    parser.add_argument("--out", default=os.path.join("out", "bench"), help="folder for JSON, CSV and PNGs")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--providers", nargs="+",
                        choices=list(dict.fromkeys(list(BACKENDS) + list(TORCHMETRICS_PROVIDERS)
                                                   + list(STEP_COST_PROVIDERS))),
                        help="default: f1 and step: every sf backend for --device, plus torchmetrics when installed; "
                             f"step-cost: {' '.join(STEP_COST_PROVIDERS)}. Each suite takes the names it knows")
    parser.add_argument("--suites", nargs="+", default=["f1", "step"], choices=["f1", "step", "step-cost"],
                        help="f1, step (the default run) and step-cost (opt-in: the cost of one training step at "
                             "small N against what users would otherwise write; see the module doc)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES), help="f1 suite only")
    parser.add_argument("--n-values", type=int, nargs="+", help="the N sweep (at --t0); step-cost default "
                                                                "2^6 2^8 ... 2^22 (quick: 2^6 2^10 2^14)")
    parser.add_argument("--t-values", type=int, nargs="+", help="the T sweep (at --n0; step-cost: at each "
                                                                "--t-sweep-n); step-cost default 99 999")
    parser.add_argument("--t0", type=int, help="T of the N sweep (step-cost default 9, the default grid)")
    parser.add_argument("--n0", type=int, help="N of the T sweep (f1, step)")
    parser.add_argument("--t-sweep-n", type=int, nargs="*", help="step-cost: the N values of the T sweep (default "
                                                                 "2^10 2^16 2^22; none: no T sweep)")
    parser.add_argument("--rounds", type=int, help="step-cost: interleaved rounds (default 9, quick 3)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="step-cost: torch.compile's backend for the *-compiled providers (default inductor; "
                             "aot_eager: no code generation, e.g. for a quick test of the harness)")
    parser.add_argument("--max-mem-gb", type=float, help="memory budget (default: half of MemAvailable, or "
                                                         "90 %% of free GPU memory)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the CPU runs (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    needs = {"matplotlib": "no plots", "tqdm": "a plain progress bar"}
    if "step" in args.suites and (args.providers is None or set(args.providers) & set(TORCHMETRICS_PROVIDERS)):
        needs["torchmetrics"] = "no torchmetrics comparison"
    args.plots = "matplotlib" not in extras.missing("bench", needs)
    result = run(args)
    return 1 if result["failed"] else 0
