"""The CUDA launch planner (csrc/cuda/plan.h), checked without a GPU or nvcc.

plan.cpp is plain C++: tests/cuda_plan_driver.cpp is compiled with it by the host
compiler (no CUDA or torch include path, so it also proves the planner needs neither)
and prints each problem's plan as JSON. Checked: the forward path the data selects
(hard or soft labels, weight, T, N, deterministic mode), grid sizes, shared memory,
and the workspace regions: 256-byte aligned, disjoint, inside the total, the sizes the
launchers carve, and the same totals as the formulas before the planner existed.
"""
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_DIR = os.path.join(ROOT, "csrc", "cuda")
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")

H100 = "sm_count=132 max_smem_optin=232448"
A100 = "sm_count=108 max_smem_optin=166912"
N26 = "N=67108864 C=1 L=1"

# (problem, expected forward path). Unlisted fields: float32 preds, bool target, no weight.
CASES = [
    (f"approx=linear T=9 {N26} {H100}", "hist32"),
    (f"approx=step T=1000 {N26} {H100}", "hist32"),
    (f"approx=linear T=9 target=int64 {N26} {H100}", "hist32"),
    (f"approx=linear T=9 target=uint8 preds=float16 N=64 C=10 L=4096 samplewise=1 {A100}", "hist32"),
    (f"approx=linear T=1000 multiclass=1 target=int64 N=256 C=21 L=4096 {H100}", "hist32"),
    (f"approx=linear T=9 weight=1 {N26} {H100}", "hist"),
    (f"approx=linear T=9 target=float32 {N26} {H100}", "hist"),
    (f"approx=step T=9 target=float16 preds=float64 {N26} {A100}", "hist"),
    (f"approx=linear T=9 N=2147483656 C=1 L=1 {H100}", "hist"),  # > 2^31 elements per group
    (f"approx=linear T=9 deterministic=1 {N26} {H100}", "direct"),
    (f"approx=step T=1000 deterministic=1 {N26} {H100}", "direct"),
    (f"approx=sigmoid T=9 {N26} {H100}", "direct"),
    (f"approx=sigmoid T=9 preds=float64 target=float64 weight=1 N=3 C=5 L=7 {A100}", "direct"),
    # T = 2500 on an H100: only the uint32 histogram fits in shared memory.
    (f"approx=linear T=2500 {N26} {H100}", "hist32"),
    (f"approx=linear T=2500 target=float32 {N26} {H100}", "direct"),
    (f"approx=linear T=20000 {N26} {H100}", "direct"),
    (f"approx=linear T=1 N=1 C=1 L=1 {H100}", "hist32"),
]


@pytest.fixture(scope="module")
def planner(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path_factory.mktemp("planner") / "cuda_plan_driver"
    cmd = [CXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", CUDA_DIR,
           os.path.join(CUDA_DIR, "plan.cpp"), os.path.join(ROOT, "tests", "cuda_plan_driver.cpp"), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]

    def run(lines):
        out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]
    return run


def _fields(problem):
    f = dict(kv.split("=") for kv in problem.split())
    n, c, length, t = (int(f[k]) for k in ("N", "C", "L", "T"))
    samplewise = f.get("samplewise") == "1"
    return dict(groups=n * c if samplewise else c, len=length if samplewise else n * length, T=t,
                approx=f["approx"], preds=f.get("preds", "float32"), smem_optin=int(f["max_smem_optin"]))


def _align(x):
    return (x + 255) // 256 * 256


def _check_regions(regions, total):
    used = sorted((off, size) for off, size in regions.values() if size > 0)
    for off, size in used:
        assert off % 256 == 0 and off + size <= total
    for (o1, s1), (o2, _) in zip(used, used[1:]):
        assert o1 + s1 <= o2, regions
    assert total == (used[-1][0] + used[-1][1] if used else 0)


@pytest.mark.parametrize("problem,path", CASES, ids=[c[0].split(" sm_count")[0] for c in CASES])
def test_forward_plan(planner, problem, path):
    (plan,) = planner([problem])
    f, d = plan["forward"], _fields(problem)
    groups, length, t = d["groups"], d["len"], d["T"]
    assert f["path"] == path
    assert f["bytes"] == f["api_bytes"]
    # The split covers every position with chunks of whole runs of 8.
    assert f["chunk"] % 8 == 0 and (f["chunks"] - 1) * f["chunk"] < max(length, 1) <= f["chunks"] * f["chunk"]
    assert f["blocks"] == groups * f["chunks"]
    _check_regions(f["regions"], f["bytes"])
    r = f["regions"]
    if path == "direct":
        assert f["smem"] == 0 and f["B"] == 0
        assert r["partial"] == [0, 8 * f["blocks"] * t * 2] and r["pq"][1] == 8 * f["blocks"] * 2
        assert f["bytes"] == _align(8 * f["blocks"] * t * 2) + 8 * f["blocks"] * 2  # the pre-planner formula
        return
    bins = groups * 8 * (t + 1)
    assert f["B"] in (256, 512, 1024, 2048) and (f["B"] >= 2 * (t + 1) or f["B"] == 2048)
    assert r["buckets"] == [0, 16 * f["B"]] and r["ghist"][1] == 8 * bins
    assert f["R"] in (1, 2, 4, 8, 16, 32) and f["smem"] <= d["smem_optin"]
    assert 1 <= f["blocks_per_sm"] <= 4
    linear = d["approx"] == "linear"
    if path == "hist32":
        assert f["kfix"] == 62 - max(length - 1, 0).bit_length() and f["kfix"] >= 31
        assert r["gint"][1] == 8 * bins and r["side"][1] == 8 * bins
        words = (12 if linear else 2) * (t + 1)
        assert f["smem"] == 16 * t + 16 * f["B"] + 4 * words * f["R"]
        assert f["bytes"] == _align(16 * f["B"]) + 2 * _align(8 * bins) + 8 * bins
    else:
        assert r["gint"][1] == 0 and r["side"][1] == 0
        assert f["smem"] == 16 * t + 16 * f["B"] + 8 * 8 * (t + 1) * f["R"]
        assert f["bytes"] == _align(16 * f["B"]) + 8 * bins


@pytest.mark.parametrize("problem", [c[0] for c in CASES], ids=[c[0].split(" sm_count")[0] for c in CASES])
def test_backward_plan(planner, problem):
    (plan,) = planner([problem])
    b, d = plan["backward"], _fields(problem)
    groups, length, t = d["groups"], d["len"], d["T"]
    assert b["bytes"] == b["api_bytes"]
    _check_regions(b["regions"], b["bytes"])
    r = b["regions"]
    if d["approx"] == "step":  # zero gradient: no plan, no workspace
        assert b["bytes"] == 0 and b["blocks"] == 0
        return
    assert b["blocks"] == groups * b["chunks"]
    assert b["chunk"] % 8 == 0 and (b["chunks"] - 1) * b["chunk"] < max(length, 1) <= b["chunks"] * b["chunk"]
    assert b["use_smem"] == (b["smem"] <= d["smem_optin"])
    if d["approx"] == "linear":
        assert b["smem"] == 16 * t + 32 * (t + 1) + 16 * b["B"]
        assert r["buckets"] == [0, 16 * b["B"]] and r["ab"][1] == 16 * t and r["uv"][1] == 32 * groups * (t + 1)
        assert b["bytes"] == _align(16 * b["B"]) + _align(16 * t) + 32 * groups * (t + 1)
    else:
        s = 8 if d["preds"] == "float64" else 4
        assert b["smem"] == s * 4 * t and r["table"] == [0, s * 4 * groups * t] and b["bytes"] == r["table"][1]


def test_worked_example(planner):
    """The F1-loss benchmark's problem on an H100, by hand: N = 2^26, T = 9, bool target."""
    (plan,) = planner([CASES[0][0]])
    f = plan["forward"]
    # 528 blocks (132 SMs x 4); 2^26 / 528 rounded up to whole runs of 8.
    assert (f["chunks"], f["chunk"], f["blocks"]) == (528, 127104, 528)
    # 32 replicas of 12 * 10 words: 144 (a, b) + 4096 (256 buckets) + 15360 bytes.
    assert (f["B"], f["R"], f["smem"], f["blocks_per_sm"], f["kfix"]) == (256, 32, 19600, 4, 36)
    # buckets 4096 | ghist 640 at 4096 | gint at 4864 | side at 5632.
    assert f["regions"]["ghist"] == [4096, 640] and f["regions"]["gint"] == [4864, 640]
    assert f["regions"]["side"] == [5632, 640] and f["bytes"] == 6272
    b = plan["backward"]
    assert (b["B"], b["smem"], b["use_smem"], b["chunks"], b["blocks"]) == (256, 4560, True, 528, 528)
    assert b["regions"] == {"buckets": [0, 4096], "ab": [4096, 144], "uv": [4352, 320], "table": [0, 0]}


def test_replicas_shrink_for_large_grids(planner):
    """T = 1000: the replicas halve until the histogram fits in ~100 KB; few elements per block halve them too."""
    big, small = planner([f"approx=linear T=1000 {N26} {H100}", f"approx=linear T=9 N=1000 C=1 L=1 {H100}"])
    assert big["forward"]["R"] == 1 and big["forward"]["B"] == 2048
    assert small["forward"]["R"] == 1 and small["forward"]["chunks"] == 1  # 120 words x 2 > 4 x 1000 / 1


def test_planner_includes_no_cuda_or_torch_headers():
    for name in ("problem.h", "plan.h", "plan.cpp"):
        with open(os.path.join(CUDA_DIR, name)) as f:
            includes = [line for line in f if line.startswith("#include")]
        assert all("cuda" not in line and "torch" not in line and "ATen" not in line for line in includes), includes
