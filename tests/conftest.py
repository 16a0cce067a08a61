"""Shared fixtures: the backend matrix and the CUDA skip hook.

``backend`` runs a test on every fused backend: "cpu" (the C++ op),
"triton" (the interpreter on CPU tensors when TRITON_INTERPRET=1, else CUDA)
and "cuda". A backend that is not built or has no device here is skipped
with the reason, in one place.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    # Without a GPU the Triton backend runs in the interpreter on CPU tensors. Triton reads this
    # when the kernels are decorated, so it must be set before softset_fast imports them.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import softset_fast  # noqa: E402
from softset_fast.backends.registry import unavailable_reason

FUSED_BACKENDS = ("cpu", "triton", "cuda")


def backend_device(name: str) -> torch.device:
    """The device whose tensors a backend runs on in this test session."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "triton" and os.environ.get("TRITON_INTERPRET") == "1":
        return torch.device("cpu")
    return torch.device("cuda")


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)


def skip_unless_runs(name: str) -> str:
    """Skips the calling test unless backend ``name`` runs here (with the reason); returns name."""
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    reason = unavailable_reason(name)
    if reason is not None:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    return name


@pytest.fixture(params=FUSED_BACKENDS)
def backend(request):
    return skip_unless_runs(request.param)


@pytest.fixture
def device(backend):
    return backend_device(backend)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
