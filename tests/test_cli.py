"""The command line: `python -m softset_fast demo --quick`, `bench --quick`, `info` and `--version`;
the optional packages missing, and the progress bar.

Each run's printed table and JSON are checked against numbers recomputed here,
independently (scikit-learn / numpy), from the raw data the run returns.
"""
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

import softset_fast
from softset_fast._config import build_info
from softset_fast.cli.main import main
from softset_fast.cli.demo import read_csv
from softset_fast.cli.progress import _PlainBar, progress_bar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAUS = [t / 10 for t in range(1, 10)]


def run_cli(*args):
    result = subprocess.run([sys.executable, "-m", "softset_fast", *args, "--no-progress"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def assert_png(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n", path


def hard_metrics(probs, target):
    """F1 / accuracy / precision / recall averaged over τ = 0.1..0.9, and the exact AUROC."""
    scores = {"f1": [], "accuracy": [], "precision": [], "recall": []}
    for tau in TAUS:
        predicted = probs >= tau
        scores["f1"].append(f1_score(target, predicted, zero_division=0))
        scores["accuracy"].append(accuracy_score(target, predicted))
        scores["precision"].append(precision_score(target, predicted, zero_division=0))
        scores["recall"].append(recall_score(target, predicted, zero_division=0))
    values = {name: float(np.mean(v)) for name, v in scores.items()}
    values["auroc"] = float(roc_auc_score(target, probs))
    return values


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    stdout = run_cli("demo", "--quick", "--out", str(out))
    result = json.loads((out / "demo.json").read_text())
    assert_png(out / "demo.png")
    target = np.array(result["test_target"])
    assert 0.05 < target.mean() < 0.15                      # the embedded dataset is imbalanced
    assert set(result["losses"]) == {"bce", "f1", "accuracy", "auroc", "f2"}
    for loss_name, entry in result["losses"].items():
        assert len(entry["runs"]) == result["config"]["seeds"] == 2
        for run in entry["runs"]:
            probs = np.array(run["test_probs"])
            assert probs.shape == target.shape
            expected = hard_metrics(probs, target)
            for metric, value in expected.items():
                assert run["metrics"][metric] == pytest.approx(value, abs=1e-9), (loss_name, metric)
        for metric, summary in entry["summary"].items():
            per_seed = [run["metrics"][metric] for run in entry["runs"]]
            assert summary["mean"] == pytest.approx(np.mean(per_seed), abs=1e-12)
            assert summary["std"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
        # the printed row is the JSON's summary
        row = re.search(rf"^{loss_name}\s+(.*)$", stdout, re.MULTILINE).group(1)
        printed = [float(v) for v in re.findall(r"(-?\d+\.\d+) ± (\d+\.\d+)", row) for v in v]
        expected = [round(entry["summary"][m][k], 4) for m in ("f1", "accuracy", "auroc", "precision", "recall")
                    for k in ("mean", "std")]
        assert printed == pytest.approx(expected, abs=1e-9)
    # training on F1 beats BCE on F1 averaged over the thresholds (the paper's point), by a wide margin here
    assert result["losses"]["f1"]["summary"]["f1"]["mean"] > result["losses"]["bce"]["summary"]["f1"]["mean"] + 0.05


def test_demo_csv(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    label = (x[:, 0] + 0.5 * rng.normal(size=300) > 1.2).astype(int)
    path = tmp_path / "data.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "target", "b", "c"])
        writer.writerows([[x[i, 0], label[i], x[i, 1], x[i, 2]] for i in range(300)])
    features, labels = read_csv(str(path), "target")
    assert features.shape == (300, 3) and labels.sum().item() == label.sum()
    np.testing.assert_allclose(features.numpy(), x, rtol=1e-6)
    out = tmp_path / "out"
    assert main(["demo", "--csv", str(path), "--label-col", "target", "--seeds", "1", "--epochs", "2",
                 "--losses", "bce", "f1", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "demo.json").read_text())
    assert result["dataset"]["samples"] == 300 and result["dataset"]["features"] == 3
    assert result["dataset"]["positive_rate"] == pytest.approx(label.mean())
    assert "data.csv" in capsys.readouterr().out


def test_demo_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,label\n1.0,0\nx,1\n")
    with pytest.raises(ValueError, match="line 3: every column must be numeric"):
        read_csv(str(path), "label")
    with pytest.raises(ValueError, match="--label-col 'y' is not a column"):
        read_csv(str(path), "y")
    path.write_text("a,label\n1.0,0\n2.0,2\n")
    with pytest.raises(ValueError, match="--label-col 'label' must hold 0/1 labels"):
        read_csv(str(path), "label")


def test_bench_quick(tmp_path):
    out = tmp_path / "bench"
    # a 3 MB budget: the reference at N=4096, T=33 (an estimated 5.4 MB) must be skipped, not crashed
    stdout = run_cli("bench", "--quick", "--out", str(out), "--n-values", "512", "4096", "--t-values", "9", "33",
                     "--n0", "512", "--max-mem-gb", "0.003", "--threads", "1")
    result = json.loads((out / "bench.json").read_text())
    for name in ("time_vs_N", "time_vs_T", "memory_vs_T"):
        assert_png(out / f"{name}.png")
    rows = result["results"]
    measured = [r for r in rows if r["status"] == "ok"]
    skipped = [r for r in rows if r["status"] != "ok"]
    assert {(r["provider"], r["n"], r["t"]) for r in skipped if r["provider"] == "reference"} == {
        ("reference", 4096, 33)}
    assert all(re.fullmatch(r"skipped: would need 0\.0 GB \(available 0\.0 GB\)", r["status"])
               for r in skipped if r["provider"] == "reference")
    assert {r["suite"] for r in measured} == {"f1", "step"}
    assert {r["mode"] for r in measured if r["suite"] == "f1"} == {"forward", "backward", "full"}
    providers = {r["provider"] for r in measured}
    assert {"reference", "torchmetrics-roc", "torchmetrics-prc"} <= providers
    assert set(result["machine"]["available_backends"]) - {"triton"} <= providers
    medians = {(r["suite"], r["provider"], r["mode"], r["n"], r["t"]): r["median_ms"] for r in measured}
    for r in measured:
        assert r["check"] == "oracle" or r["check"].startswith("ok"), r
        times = np.array(r["times_ms"])
        assert len(times) == r["reps"] >= 3
        assert r["median_ms"] == pytest.approx(np.percentile(times, 50), rel=1e-12)
        assert r["q20_ms"] == pytest.approx(np.percentile(times, 20), rel=1e-12)
        assert r["q80_ms"] == pytest.approx(np.percentile(times, 80), rel=1e-12)
        base = medians.get((r["suite"], "reference", r["mode"], r["n"], r["t"]))
        if base is not None:
            assert r["speedup_vs_reference"] == pytest.approx(base / r["median_ms"], rel=1e-12)
        if r["provider"] == "reference" and r["suite"] == "f1" and r["mode"] != "backward":
            # the reference materialises at least one [N, T] float64 tensor: memory is really measured
            assert r["peak_mem_mb"] * 1e6 >= r["n"] * r["t"] * 8
        if r["suite"] == "f1" and (r["mode"] == "full" or (r["mode"] == "backward" and r["provider"] == "reference")):
            # at least the float32 gradient (the fused CPU loss computes it in the forward: its backward
            # alone hands it over without allocating)
            assert r["peak_mem_mb"] * 1e6 >= r["n"] * 4
        # the printed line carries the JSON's numbers
        line = re.search(rf"^{r['suite']}\s+{r['mode']}\s+{re.escape(r['provider'])}\s+{r['n']}\s+{r['t']}\s+(.*)$",
                         stdout, re.MULTILINE).group(1)
        cells = line.split()
        assert [float(c) for c in cells[:4]] == pytest.approx(
            [round(r[k], 3 if k != "peak_mem_mb" else 2) for k in ("median_ms", "q20_ms", "q80_ms", "peak_mem_mb")],
            abs=1e-9)
    with open(out / "bench.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows)
    for line, r in zip(table, rows):
        assert line["status"] == r["status"]
        if r["status"] == "ok":
            assert math.isclose(float(line["median_ms"]), r["median_ms"], rel_tol=1e-12)


def test_bench_step_cost(tmp_path):
    """The step-cost suite in a tiny configuration: every case checked, then timed in 2 rounds."""
    from softset_fast.cli.bench import STEP_COST_PROVIDERS, THRESHOLDLESS
    out = tmp_path / "cost"
    stdout = run_cli("bench", "--suites", "step-cost", "--out", str(out), "--n-values", "64", "256",
                     "--t-values", "33", "--t-sweep-n", "64", "--rounds", "2", "--threads", "1",
                     "--compile-backend", "aot_eager")    # no C++ code generation: seconds, not a minute
    assert not (out / "bench.json").exists()           # the f1 and step suites did not run
    result = json.loads((out / "step_cost.json").read_text())
    rows = result["results"]
    expected = {(p, n, None if p in THRESHOLDLESS else 9) for p in STEP_COST_PROVIDERS for n in (64, 256)}
    expected |= {(p, 64, 33) for p in STEP_COST_PROVIDERS if p not in THRESHOLDLESS}
    assert sorted((r["provider"], r["n"], r["t"] or 0) for r in rows) == sorted((p, n, t or 0) for p, n, t in expected)
    fused = {(r["n"], r["t"]): r["median_ms"] for r in rows if r["provider"] == "fused"}
    for r in rows:
        # every provider was checked against its oracle before it was timed, and passed
        assert r["status"] == "ok" and (r["check"] == "oracle" or r["check"].startswith("ok (max rel err")), r
        assert re.search(rf"^  {re.escape(r['provider'])}\s+N={r['n']}\s+T={r['t'] or '-'}\s+{re.escape(r['check'])}$",
                         stdout, re.MULTILINE), r
        assert r["rounds"] == len(r["times_ms"]) == 2 and r["block"] >= 1
        assert r["median_ms"] == pytest.approx(np.median(r["times_ms"]), rel=1e-12)
        assert r["fused_ratio"] == pytest.approx(r["median_ms"] / fused[(r["n"], r["t"] or 9)], rel=1e-12)
    checks = {r["provider"]: r["check"] for r in rows}
    assert "vs reference" in checks["fused"] and "vs reference" in checks["naive"]
    assert "vs naive" in checks["naive-compiled"]
    operations = result["operations"]
    assert operations["count"] == len(operations["forward"]) + len(operations["backward"]) >= 2
    assert {t["target"] for t in result["targets"]} >= {"operations per fused step (N=1024)"}
    with open(out / "step_cost.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(line["provider"], int(line["n"])) for line in table] == [(r["provider"], r["n"]) for r in rows]
    for line, r in zip(table, rows):
        assert math.isclose(float(line["median_ms"]), r["median_ms"], rel_tol=1e-12)
    assert_png(out / "step_cost_vs_N.png")


def test_info(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "reference" in text and "torch" in text


def run_without(hidden, *args):
    """The CLI in a process where `import name` fails for each name in ``hidden``; progress bar on."""
    code = ("import sys\n"
            f"for name in {list(hidden)!r}:\n"
            "    sys.modules[name] = None   # `import name` now raises ImportError, as if not installed\n"
            "from softset_fast.cli.main import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


HINT = 'pip install "softset_fast[bench]"'


def test_demo_without_matplotlib(tmp_path):
    out = tmp_path / "demo"
    result = run_without(["matplotlib", "tqdm"], "demo", "--seeds", "1", "--epochs", "1", "--losses", "bce", "f1",
                         "--out", str(out))
    lines = result.stdout.splitlines()
    # said first, before any work, and once
    assert lines[0] == f"demo: matplotlib, tqdm not installed, so no demo.png; a plain progress bar (to add: {HINT})"
    assert sum(HINT in line for line in lines) == 1
    assert lines[-1].endswith(f"wrote {out / 'demo.json'}")
    assert set(json.loads((out / "demo.json").read_text())["losses"]) == {"bce", "f1"}
    assert not (out / "demo.png").exists()
    # stderr is a pipe here: one progress line per update
    assert "\r" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("demo:")]
    assert [re.sub(r"\[.*\]", "[]", line) for line in progress] == ["demo: 1/2 [] loss=bce seed=0",
                                                                   "demo: 2/2 [] loss=f1 seed=0"]


def test_bench_without_matplotlib_and_torchmetrics(tmp_path):
    out = tmp_path / "bench"
    result = run_without(["matplotlib", "tqdm", "torchmetrics"], "bench", "--quick", "--suites", "step",
                         "--n-values", "512", "--t-values", "9", "--n0", "512", "--threads", "1", "--no-progress",
                         "--out", str(out))
    lines = result.stdout.splitlines()
    assert lines[0] == ("bench: matplotlib, tqdm, torchmetrics not installed, so no plots; a plain progress bar; "
                        f"no torchmetrics comparison (to add: {HINT})")
    assert sum(HINT in line for line in lines) == 1
    rows = json.loads((out / "bench.json").read_text())["results"]
    assert rows and all(r["status"] == "ok" for r in rows)
    assert not any(r["provider"].startswith("torchmetrics") for r in rows)
    assert not list(out.glob("*.png"))


def test_version():
    built = build_info()
    expected = (f"softset_fast {built['version']} ({built['distribution']})" if built
                else f"softset_fast {softset_fast.__version__}")
    # plain versions (no +pt213cpu label): the distribution names the CUDA variant
    assert re.fullmatch(r"softset_fast \d+\.\d+\.\d+( \(softset-fast(-cu\d+)?\))?", expected)
    commands = [[sys.executable, "-m", "softset_fast", "--version"]]
    if shutil.which("softset-fast"):      # the console script, where the package is installed
        commands.append(["softset-fast", "--version"])
    for command in commands:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONPATH": ROOT})
        assert (result.returncode, result.stdout) == (0, expected + "\n"), (command, result.stderr)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_progress_bar_lines():
    stream = io.StringIO()                  # not a terminal: a log file, a pipe, CI
    bar = progress_bar(3, "demo", stream=stream)
    assert isinstance(bar, _PlainBar)       # tqdm, installed or not, would join the updates with \r
    with bar:
        for loss in ("bce", "f1", "f2"):
            bar.set_postfix_str(f"loss={loss}")
            bar.update()
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in stream.getvalue()
    assert [re.sub(r"\[.*\]", "[]", line) for line in lines[:-1]] == [
        "demo: 1/3 [] loss=bce", "demo: 2/3 [] loss=f1", "demo: 3/3 [] loss=f2"]


def test_plain_progress_bar_on_a_terminal():
    stream = _Terminal()
    with _PlainBar(2, "bench", disable=False, stream=stream) as bar:
        bar.update()
        bar.update()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "bench: 2/2" in text.split("\r")[-1]
    silent = io.StringIO()
    with _PlainBar(2, "bench", disable=True, stream=silent) as bar:
        bar.update()
    assert silent.getvalue() == ""
