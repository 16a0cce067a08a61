"""softset_fast.show_config(): the facts it reports agree with torch, the backend
registry and the build record that setup.py wrote."""
import io
import os
import subprocess
import sys

import pytest
import torch

import softset_fast
from softset_fast import _config, _wheel
from softset_fast.backends.registry import BACKENDS, available_backends, unavailable_reason

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _show():
    out = io.StringIO()
    facts = softset_fast.show_config(file=out)
    return facts, out.getvalue()


def test_running_versions_and_threads():
    facts, text = _show()
    assert facts["softset_fast_version"] == softset_fast.__version__
    assert facts["torch_version"] == torch.__version__
    assert facts["torch_cuda_version"] == torch.version.cuda
    assert facts["cuda_available"] == torch.cuda.is_available()
    assert facts["num_threads"] == torch.get_num_threads()
    assert softset_fast.__version__ in text and torch.__version__ in text


def test_thread_count_follows_torch():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert _config.config()["num_threads"] == 1
    finally:
        torch.set_num_threads(before)
    assert _config.config()["num_threads"] == before


def test_backends_match_the_registry():
    facts, text = _show()
    assert facts["backends"] == available_backends()
    assert set(facts["backends"]) | set(facts["unavailable"]) == set(BACKENDS)
    assert not set(facts["backends"]) & set(facts["unavailable"])
    for name, reason in facts["unavailable"].items():
        assert reason == unavailable_reason(name)
        assert f"{name} unavailable: {reason}" in text


def _csrc_uses_stable_abi():
    """What setup.py decides from the sources: the stable ABI once csrc/ registers with STABLE_TORCH_LIBRARY."""
    for directory, _, files in os.walk(os.path.join(ROOT, "csrc")):
        for name in files:
            if name.endswith((".cpp", ".cu", ".cuh")):
                with open(os.path.join(directory, name), encoding="utf-8") as f:
                    if "STABLE_TORCH_LIBRARY" in f.read():
                        return True
    return False


def test_build_record_agrees_with_the_extension():
    facts, text = _show()
    built = _config.build_info()
    assert built is not None, "no softset_fast/_build_info.py: build with `pip install --no-build-isolation -e .`"
    assert facts["built_with_torch"] == built["torch_version"] and built["torch_version"] in text
    variant = ("cu" + "".join(built["torch_cuda_version"].split(".")[:2])) if built["with_cuda"] else "cpu"
    # Plain versions: no +pt213cpu label; the CUDA variant is its own distribution.
    assert built["version"] == softset_fast.__version__
    assert built["variant"] == variant
    assert built["distribution"] in ("softset-fast", f"softset-fast-{variant}")
    assert f"built as {built['distribution']} {built['version']}, {variant} variant" in text
    if _csrc_uses_stable_abi():
        assert built["stable_abi_target"] == _wheel.MIN_TORCH
        assert facts["runs_with_torch"] == f"torch >= {_wheel.MIN_TORCH}"
        assert f"stable ABI target:   torch {_wheel.MIN_TORCH}; runs with torch >= {_wheel.MIN_TORCH}" in text
    else:
        assert built["stable_abi_target"] is None
        assert "stable ABI target:   none (torch's unstable C++ API); runs with torch 2." in text
    # The running torch can load the extension as built (else the op would not have loaded).
    assert facts["torch_mismatch"] is None
    assert ("cpu" in facts["backends"]) and unavailable_reason("cpu") is None
    if built["with_cuda"]:
        assert facts["cuda_arch_list"] and facts["extension_cuda_version"] is not None
        assert facts["extension_cuda_version"].split(".")[0] == built["torch_cuda_version"].split(".")[0]
    else:
        assert facts["cuda_arch_list"] is None and facts["extension_cuda_version"] is None
        assert "cuda" in facts["unavailable"]


@pytest.mark.parametrize("built, target, running, mismatch", [
    # a build against torch's unstable C++ API runs with its own minor release only
    ("2.13.0+cpu", None, "2.13.0+cpu", False),
    ("2.13.0+cpu", None, "2.13.1+cu130", False),
    ("2.12.1", None, "2.13.0+cpu", True),
    ("2.14.0", None, "2.13.0", True),
    # a stable-ABI build runs with every torch from its target on
    ("2.13.0+cpu", "2.11", "2.11.0", False),
    ("2.13.0+cpu", "2.11", "2.14.1+cu130", False),
    ("2.13.0+cu130", "2.11", "2.15.0", False),
    ("2.13.0+cpu", "2.11", "3.0.0a0+git1234", False),
    ("2.13.0+cpu", "2.11", "2.10.2+cu128", True),
    ("2.13.0+cpu", "2.11", "2.9.0", True),
])
def test_torch_mismatch(monkeypatch, built, target, running, mismatch):
    monkeypatch.setattr(torch, "__version__", running)
    message = _config.torch_mismatch({"torch_version": built, "stable_abi_target": target})
    if not mismatch:
        assert message is None
    elif target is None:
        assert built in message and running in message and "--no-build-isolation" in message
    else:
        assert f"needs torch >= {target}, but torch {running} is running" in message
        assert f"pip install --upgrade 'torch>={target}'" in message


def test_unbuilt_checkout_reports_unknown(monkeypatch):
    monkeypatch.setattr(_config, "build_info", lambda: None)
    facts, text = _show()
    assert facts["built_with_torch"] is None and facts["torch_mismatch"] is None
    assert "never built" in text


def test_cli_info_prints_the_config():
    result = subprocess.run([sys.executable, "-m", "softset_fast", "info"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    facts = _config.config()
    assert f"built with torch:    {facts['built_with_torch']}" in result.stdout
    assert f"backends available:  {', '.join(facts['backends'])}" in result.stdout
