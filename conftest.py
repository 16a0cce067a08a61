"""Collection settings for the whole checkout (pytest reads this before tests/conftest.py).

pyproject.toml runs the package's docstring examples (--doctest-modules over softset_fast/):
a module whose optional dependency is not installed is left out rather than failing to import,
and setup.py (which would build when imported) is never collected.
"""
import importlib.util

collect_ignore = ["setup.py"]
if importlib.util.find_spec("triton") is None:
    collect_ignore += ["softset_fast/backends/triton_kernels.py", "softset_fast/backends/triton_op.py"]
if importlib.util.find_spec("torchmetrics") is None:  # the optional torchmetrics integration
    collect_ignore += ["softset_fast/integrations/torchmetrics.py"]
