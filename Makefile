# `make demo` and `make test` do all set-up on a fresh machine (Python 3.10+ with pip).
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo bench test clean cuda-compile-check sanitize torch-matrix

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

# The C++ extension under AddressSanitizer + UBSan (DEVELOPERS.md): built with SOFTSET_FAST_SANITIZE=1 in
# a copy of the tree ($(SANITIZE_DIR); the checkout's own build is left alone), then the fuzz suite (CI
# budget) and the bad-input tests run on it. python is not instrumented, so the sanitizer runtimes are
# preloaded; leaks are not checked (python and torch keep allocations until exit). Triton cases are
# deselected: they run no C++ of ours.
SANITIZE_DIR ?= build/sanitize
SANITIZE_TESTS ?= tests/test_fuzz.py tests/test_validation.py tests/test_op_contract.py tests/test_fused_loss.py \
                  tests/test_loss_plans.py
SANITIZE_CC ?= gcc
SANITIZE_CXX ?= g++
sanitize:
	rm -rf $(SANITIZE_DIR) && mkdir -p $(SANITIZE_DIR)
	tar --exclude=__pycache__ --exclude='*.so' --exclude=_build_info.py -cf - setup.py pyproject.toml csrc softset_fast tests \
	    | tar -xf - -C $(SANITIZE_DIR)
	cd $(SANITIZE_DIR) && CC=$(SANITIZE_CC) CXX=$(SANITIZE_CXX) SOFTSET_FAST_SANITIZE=1 SOFTSET_FAST_FORCE_CPU=1 $(PYTHON) setup.py -q build_ext --inplace
	cd $(SANITIZE_DIR) && \
	    LD_PRELOAD="$$($(SANITIZE_CC) -print-file-name=libasan.so) $$($(SANITIZE_CC) -print-file-name=libubsan.so)" \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider $(SANITIZE_TESTS) -k "not triton"

# One wheel built against the installed torch, then its smoke test and the CPU test suite under each torch of
# TORCH_MATRIX (venv=version; missing venvs are created). Not part of `make test`: it installs several GB of
# torch. The extension uses torch's stable ABI only, so one build passes under every torch >= 2.11 (.ci/torch_matrix.sh).
TORCH_MATRIX ?= /work/venvs/pt211=2.11.0 /work/venvs/pt212=2.12.1 /work/venvs/pt214=2.14.1 /work/venvs/pt215=2.15.0
torch-matrix:
	PYTHON=$(PYTHON) bash .ci/torch_matrix.sh $(TORCH_MATRIX)

clean:
	rm -rf build dist *.egg-info softset_fast/*.so out
