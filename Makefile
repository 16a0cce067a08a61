# `make demo` and `make test` do all set-up on a fresh machine (Python 3.10+ with pip).
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo bench test clean cuda-compile-check

setup:
	$(PYTHON) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PYTHON) -m pip install -q setuptools wheel ninja
	$(PYTHON) -m pip install -q --no-build-isolation -e ".[test,bench,triton]"

demo: setup
	$(PYTHON) -m softset_fast demo

bench: setup
	$(PYTHON) -m softset_fast bench --quick --out out/bench

test: setup
	$(PYTHON) -m pytest -q

# Every CUDA source compiles with nvcc for sm_80 and sm_90 (no GPU needed; see DEVELOPERS.md).
cuda-compile-check:
	bash csrc/cuda/compile_check.sh

clean:
	rm -rf build dist *.egg-info softset_fast/*.so out
