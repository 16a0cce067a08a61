"""Every message that says a backend cannot run names the wheel that provides it (its version
label, from the running torch and CUDA) and then the source build (softset_fast/_wheel.py)."""
import os
import subprocess
import sys

import pytest
import torch

import softset_fast
from softset_fast import _config, _wheel
from softset_fast.backends import cuda_check, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = softset_fast.__version__


def running_torch(monkeypatch, version, cuda):
    monkeypatch.setattr(torch, "__version__", version)
    monkeypatch.setattr(torch.version, "cuda", cuda)


def assert_wheel_then_build(message, wheel):
    assert f"softset_fast {wheel} wheel" in message, message
    assert message.index(wheel) < message.index("pip install --no-build-isolation"), message


@pytest.mark.parametrize("torch_version, cuda, label", [
    ("2.13.0+cpu", None, "pt213cpu"),
    ("2.13.1+cu130", "13.0", "pt213cu130"),
    ("2.10.0", "12.8", "pt210cu128"),
    ("3.0.0a0+git1234", "13.1", "pt30cu131"),
])
def test_local_label(torch_version, cuda, label):
    assert _wheel.local_label(torch_version, cuda) == label


def test_cpu_backend_when_the_extension_did_not_load(monkeypatch):
    running_torch(monkeypatch, "2.12.1+cpu", None)
    monkeypatch.setattr(registry, "extension_error", "ImportError: undefined symbol: _ZN3c10")
    reason = registry.unavailable_reason("cpu")
    assert "did not load (ImportError: undefined symbol: _ZN3c10)" in reason
    assert_wheel_then_build(reason, f"{VERSION}+pt212cpu")
    assert "built for torch 2.12" in reason
    with pytest.raises(RuntimeError, match=r"backend='cpu' is not available: .*\+pt212cpu wheel"):
        registry.resolve_backend("cpu", torch.device("cpu"))


def test_cpu_backend_on_a_cuda_torch_names_the_cuda_wheel(monkeypatch):
    # the CUDA wheels hold the CPU kernels too, and only they match a CUDA build of torch
    running_torch(monkeypatch, "2.13.0+cu128", "12.8")
    monkeypatch.setattr(registry, "extension_error", "ImportError: x")
    assert_wheel_then_build(registry.unavailable_reason("cpu"), f"{VERSION}+pt213cu128")


def test_cuda_backend_on_a_build_without_cuda(monkeypatch):
    monkeypatch.setitem(registry._kernel_cache, "CUDA", False)
    running_torch(monkeypatch, "2.13.0+cu128", "12.8")
    reason = registry.unavailable_reason("cuda")
    assert reason.startswith("the extension was built without CUDA; install the softset_fast")
    assert_wheel_then_build(reason, f"{VERSION}+pt213cu128")
    assert "SOFTSET_FAST_FORCE_CUDA=1 CUDA_HOME=/path/to/cuda-12.8 pip install --no-build-isolation ." in reason
    with pytest.raises(RuntimeError, match=r"backend='cuda' is not available: .*\+pt213cu128 wheel"):
        registry.resolve_backend("cuda", torch.device("cpu"))


def test_cuda_backend_on_a_cpu_torch_asks_for_a_cuda_torch_first(monkeypatch):
    monkeypatch.setitem(registry._kernel_cache, "CUDA", False)
    running_torch(monkeypatch, "2.13.0+cpu", None)
    reason = registry.unavailable_reason("cuda")
    cuda = _wheel.RELEASED_CUDA
    assert f"install a CUDA {cuda} build of torch 2.13, then install the softset_fast" in reason
    assert_wheel_then_build(reason, f"{VERSION}+pt213cu{cuda.replace('.', '')}")


@pytest.mark.parametrize("built, torch_cuda, problem, wheel", [
    (12080, "13.0", "built with CUDA 12.8 but torch 2.13.0+cu130 uses CUDA 13.0", "pt213cu130"),
    (13000, None, "built with CUDA 13.0 but torch 2.13.0+cu130 is a CPU build", "pt213cu130"),
])
def test_cuda_mismatch(monkeypatch, built, torch_cuda, problem, wheel):
    running_torch(monkeypatch, "2.13.0+cu130", torch_cuda)
    monkeypatch.setattr(cuda_check, "extension_cuda_version", lambda: built)
    message = cuda_check._compute_mismatch()
    assert problem in message
    assert_wheel_then_build(message, f"{VERSION}+{wheel}")


def test_cuda_match_gives_no_message(monkeypatch):
    running_torch(monkeypatch, "2.13.0+cu130", "13.0")
    monkeypatch.setattr(cuda_check, "extension_cuda_version", lambda: 13020)   # 13.2 kernels, 13.0 torch
    assert cuda_check._compute_mismatch() is None


def test_torch_mismatch_names_the_wheel_for_the_running_torch(monkeypatch):
    running_torch(monkeypatch, "2.14.0+cu130", "13.0")
    message = _config.torch_mismatch({"torch_version": "2.13.0+cu130"})
    assert "built against torch 2.13.0+cu130 but torch 2.14.0+cu130 is running" in message
    assert_wheel_then_build(message, f"{VERSION}+pt214cu130")


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
    wheel = f"{VERSION}+{_wheel.local_label(torch.__version__, torch.version.cuda)}"
    info_line = next(line for line in result.stdout.splitlines() if line.startswith("  cpu unavailable:"))
    error_line = next(line for line in result.stdout.splitlines() if line.startswith("ERROR"))
    for line in (info_line, error_line):
        assert "did not load (ModuleNotFoundError" in line
        assert_wheel_then_build(line, wheel)
    cuda_line = next(line for line in result.stdout.splitlines() if line.startswith("  cuda unavailable:"))
    assert "softset_fast._C did not load (ModuleNotFoundError" in cuda_line and "FORCE_CUDA" in cuda_line
