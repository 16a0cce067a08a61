"""Smoke test of an installed softset-fast wheel (cibuildwheel's test-command and
.ci/wheel_roundtrip.sh). Not collected by pytest: it checks the installed
package, so run it from outside the checkout.

    python .ci/smoke_wheel.py

SOFTSET_FAST_VARIANT=cpu|cu130 (cibuildwheel passes it) also checks the wheel was built as that
variant (distribution softset-fast / softset-fast-cu130) and, for cu*, that the CUDA kernels were built.
It runs under whichever torch is installed: a stable-ABI wheel must pass under every torch >= 2.11.
"""
import importlib.metadata
import os

import torch

import softset_fast
from softset_fast import reference


def check_installed_not_checkout():
    package_dir = os.path.dirname(os.path.abspath(softset_fast.__file__))
    assert os.path.basename(os.path.dirname(package_dir)) in ("site-packages", "dist-packages"), \
        f"imported {package_dir}, not an installed wheel: run from outside the checkout"
    print(f"softset_fast imported from {package_dir}")


def check_config(variant):
    facts = softset_fast.show_config()
    assert facts["built_with_torch"] is not None, "the wheel carries no build info (softset_fast/_build_info.py)"
    assert facts["torch_mismatch"] is None, facts["torch_mismatch"]
    assert "cpu" in facts["backends"], f"the C++ CPU op is not usable: {facts['unavailable'].get('cpu')}"
    assert facts["wheel_version"] == softset_fast.__version__, f"a labelled version: {facts['wheel_version']}"
    print(f"built against torch {facts['built_with_torch']} (stable ABI target: {facts['stable_abi_target']}), "
          f"running under torch {torch.__version__}")
    if variant:
        expected = "softset-fast" if variant == "cpu" else f"softset-fast-{variant}"
        assert (facts["variant"], facts["distribution"]) == (variant, expected), \
            f"built as {facts['distribution']} ({facts['variant']} variant), not the {variant} variant"
        # the installed metadata's name, not only the build's record (.ci/cibw/name_variant.sh renames it)
        assert importlib.metadata.version(expected) == softset_fast.__version__, f"{expected} is not installed"
        assert bool(facts["built_with_cuda"]) == variant.startswith("cu"), \
            f"variant {variant} but the extension was built with CUDA {facts['built_with_cuda']}"


def check_loss_forward_backward():
    torch.manual_seed(0)
    preds = torch.rand(4, 3, 37, dtype=torch.float32)
    target = torch.randint(0, 2, (4, 3, 37))
    losses = {}
    grads = {}
    for backend in ("cpu", "reference"):
        x = preds.clone().requires_grad_(True)
        loss = softset_fast.f1_loss(x, target, task="multilabel", backend=backend)
        loss.backward()
        losses[backend], grads[backend] = loss.detach(), x.grad
    torch.testing.assert_close(losses["cpu"], losses["reference"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["cpu"], grads["reference"], rtol=1e-4, atol=1e-6)
    assert grads["cpu"].abs().sum() > 0, "the gradient of the F1 loss is all zero"
    print(f"CPU f1_loss {losses['cpu'].item():.6f} and its gradient match the reference")

    cm = softset_fast.soft_confusion_matrix(preds.double(), target, task="multilabel", backend="cpu")
    expected = reference.soft_confusion_matrix(preds.double(), target, task="multilabel")
    torch.testing.assert_close(cm, expected)


def check_compile():
    torch.manual_seed(1)
    preds = torch.rand(257, requires_grad=True)
    target = torch.randint(0, 2, (257,))

    def loss_fn(p, t):
        return softset_fast.f1_loss(p, t, backend="cpu")

    compiled = torch.compile(loss_fn, fullgraph=True)
    loss = compiled(preds, target)
    (grad,) = torch.autograd.grad(loss, preds)
    (expected_grad,) = torch.autograd.grad(loss_fn(preds, target), preds)
    torch.testing.assert_close(loss, loss_fn(preds, target), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)
    print(f"torch.compile(fullgraph=True) of f1_loss: {loss.item():.6f}, gradient matches eager")


def main():
    check_installed_not_checkout()
    check_config(os.environ.get("SOFTSET_FAST_VARIANT"))
    check_loss_forward_backward()
    check_compile()
    print("wheel smoke test passed")


if __name__ == "__main__":
    main()
