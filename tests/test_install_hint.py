"""Every message that says a backend cannot run names the distribution that provides it
(softset-fast, or softset-fast-cu130 for the CUDA kernels) and then the source build, or asks for a
newer torch when the running one predates the stable ABI release the wheels target
(softset_fast/_wheel.py)."""
import os
import subprocess
import sys

import pytest
import torch

from softset_fast import _config, _wheel
from softset_fast.backends import cuda_check, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def running_torch(monkeypatch, version, cuda):
    monkeypatch.setattr(torch, "__version__", version)
    monkeypatch.setattr(torch.version, "cuda", cuda)


def assert_wheel_then_build(message, distribution):
    assert f"install {distribution}" in message, message
    assert message.index(f"install {distribution}") < message.index("pip install --no-build-isolation"), message


@pytest.mark.parametrize("version, target", [
    ("2.11", "0x020b000000000000"),          # what setup.py passes as TORCH_TARGET_VERSION
    ("2.13.0+cpu", "0x020d000000000000"),
    ("2.9.1", "0x0209000000000000"),
    ("3.0.0a0+git1234", "0x0300000000000000"),
])
def test_torch_target_version(version, target):
    assert _wheel.torch_target_version(version) == target


def test_min_torch_is_the_stable_abi_release():
    assert _wheel.MIN_TORCH == "2.11"
    assert _wheel.torch_target_version() == "0x020b000000000000"


@pytest.mark.parametrize("torch_version, too_old", [
    ("2.10.2+cu128", True),
    ("2.9.0", True),
    ("1.13.1", True),
    ("2.11.0", False),
    ("2.11.0a0+git1234", False),
    ("2.15.0+cu130", False),
    ("3.0.0", False),
])
def test_torch_too_old(torch_version, too_old):
    assert _wheel.torch_too_old(torch_version) is too_old


@pytest.mark.parametrize("variant, distribution", [
    (None, "softset-fast"), ("cpu", "softset-fast"), ("cu130", "softset-fast-cu130"),
])
def test_distribution_names_the_cuda_variant(variant, distribution):
    assert _wheel.distribution(variant) == distribution


def test_cpu_backend_when_the_extension_did_not_load(monkeypatch):
    running_torch(monkeypatch, "2.12.1+cpu", None)
    monkeypatch.setattr(registry, "extension_error", "ImportError: undefined symbol: _ZN3c10")
    reason = registry.unavailable_reason("cpu")
    assert "did not load (ImportError: undefined symbol: _ZN3c10)" in reason
    assert_wheel_then_build(reason, "softset-fast (")
    assert "pip install --force-reinstall softset-fast`, one wheel for every torch >= 2.11" in reason
    with pytest.raises(RuntimeError, match=r"backend='cpu' is not available: .*install softset-fast \("):
        registry.resolve_backend("cpu", torch.device("cpu"))


def test_cpu_backend_on_a_cuda_torch_names_the_cpu_wheel(monkeypatch):
    # softset-fast's CPU kernels run with a CUDA build of torch too: no CUDA wheel needed for them
    running_torch(monkeypatch, "2.13.0+cu130", "13.0")
    monkeypatch.setattr(registry, "extension_error", "ImportError: x")
    reason = registry.unavailable_reason("cpu")
    assert_wheel_then_build(reason, "softset-fast (")
    assert "cu130" not in reason


@pytest.mark.parametrize("torch_version", ["2.10.2+cu128", "2.9.0+cpu"])
def test_torch_older_than_the_stable_abi_target_asks_for_an_upgrade(monkeypatch, torch_version):
    running_torch(monkeypatch, torch_version, None)
    monkeypatch.setattr(registry, "extension_error", "ImportError: undefined symbol: torch_parallel_for")
    monkeypatch.setitem(registry._kernel_cache, "CUDA", False)
    for name in ("cpu", "cuda"):
        reason = registry.unavailable_reason(name)
        assert f"need torch >= 2.11 (the stable ABI release they target) but torch {torch_version} is running" in reason
        assert "`pip install --upgrade 'torch>=2.11'`" in reason
        assert "--no-build-isolation" not in reason   # a rebuild would not help: the headers need 2.11 too


def test_cuda_backend_on_a_build_without_cuda(monkeypatch):
    monkeypatch.setitem(registry._kernel_cache, "CUDA", False)
    running_torch(monkeypatch, "2.14.1+cu130", "13.0")
    reason = registry.unavailable_reason("cuda")
    assert reason.startswith("the extension was built without CUDA; install softset-fast-cu130, the wheel with "
                             "the CUDA 13.0 kernels (`pip uninstall -y softset-fast && pip install softset-fast-cu130`)")
    assert_wheel_then_build(reason, "softset-fast-cu130")
    assert "SOFTSET_FAST_FORCE_CUDA=1 CUDA_HOME=/path/to/cuda-13.0 pip install --no-build-isolation ." in reason
    with pytest.raises(RuntimeError, match=r"backend='cuda' is not available: .*install softset-fast-cu130"):
        registry.resolve_backend("cuda", torch.device("cpu"))


@pytest.mark.parametrize("torch_version, cuda", [("2.13.0+cpu", None), ("2.13.0+cu128", "12.8")])
def test_cuda_backend_without_a_cuda_13_torch_asks_for_one_first(monkeypatch, torch_version, cuda):
    monkeypatch.setitem(registry._kernel_cache, "CUDA", False)
    running_torch(monkeypatch, torch_version, cuda)
    reason = registry.unavailable_reason("cuda")
    released = _wheel.RELEASED_CUDA
    assert f"install a CUDA {released.split('.')[0]} build of torch >= 2.11, then install softset-fast-cu130" in reason
    assert_wheel_then_build(reason, "softset-fast-cu130")
    assert f"CUDA_HOME=/path/to/cuda-{cuda or released} pip install" in reason


@pytest.mark.parametrize("built, torch_cuda, problem", [
    (12080, "13.0", "built with CUDA 12.8 but torch 2.13.0+cu130 uses CUDA 13.0"),
    (13000, None, "built with CUDA 13.0 but torch 2.13.0+cu130 is a CPU build"),
])
def test_cuda_mismatch(monkeypatch, built, torch_cuda, problem):
    running_torch(monkeypatch, "2.13.0+cu130", torch_cuda)
    monkeypatch.setattr(cuda_check, "extension_cuda_version", lambda: built)
    message = cuda_check._compute_mismatch()
    assert problem in message
    assert_wheel_then_build(message, "softset-fast-cu130")


def test_cuda_match_gives_no_message(monkeypatch):
    running_torch(monkeypatch, "2.13.0+cu130", "13.0")
    monkeypatch.setattr(cuda_check, "extension_cuda_version", lambda: 13020)   # 13.2 kernels, 13.0 torch
    assert cuda_check._compute_mismatch() is None


def test_torch_mismatch_of_an_unstable_abi_build_names_the_wheel(monkeypatch):
    running_torch(monkeypatch, "2.14.0+cu130", "13.0")
    message = _config.torch_mismatch({"torch_version": "2.13.0+cu130", "stable_abi_target": None})
    assert ("built against torch 2.13.0+cu130 without the stable ABI (it runs only with torch 2.13.x) "
            "but torch 2.14.0+cu130 is running") in message
    assert_wheel_then_build(message, "softset-fast-cu130")


def test_show_config_and_losses_without_the_extension():
    """The whole path in a process where softset_fast._C cannot load: info, then a loss on backend='cpu'."""
    code = ("import sys; sys.modules['softset_fast._C'] = None\n"   # makes `from . import _C` fail
            "import torch, softset_fast as sf\n"
            "sf.show_config()\n"
            "try:\n"
            "    sf.fbeta_loss(torch.rand(4), torch.tensor([0, 1, 0, 1]), backend='cpu')\n"
            "except RuntimeError as err:\n"
            "    print('ERROR', err)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = "softset-fast ("   # the CPU kernels' distribution, for any torch >= 2.11
    info_line = next(line for line in result.stdout.splitlines() if line.startswith("  cpu unavailable:"))
    error_line = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    for line in (info_line, error_line):
        assert "did not load (ModuleNotFoundError" in line
        assert_wheel_then_build(line, wheel)
    cuda_line = next(line for line in result.stdout.splitlines() if line.startswith("  cuda unavailable:"))
    assert "softset_fast._C did not load (ModuleNotFoundError" in cuda_line and "FORCE_CUDA" in cuda_line


def test_min_torch_is_the_same_everywhere_it_is_written():
    # softset_fast/_wheel.py is the one source; these files cannot import it, so they are checked here
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        build_requires = tomllib.load(f)["build-system"]["requires"]
    assert f"torch>={_wheel.MIN_TORCH}" in build_requires
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert f"torch >= {_wheel.MIN_TORCH} and Python >= 3.10" in f.read()
