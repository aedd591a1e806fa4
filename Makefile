# Two entry points: `make demo` (install + the main job on the embedded synthetic data)
# and `make test` (install + the test suite). Both create .venv when absent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Test processes of `make test` (pytest-xdist; each test file runs whole in one process), and
# torch threads in each: one, so that the processes do not fight over the cores.
TEST_WORKERS ?= 2
TEST_THREADS ?= 1
STAMP := $(VENV)/.oneshot-installed

.PHONY: install test test-slow demo lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision are resolved together from the registry (regular wheels, never a +cpu local build).
	$(PY) -m pip install -q "torch>=2.4" "torchvision>=0.19"
	$(PY) -m pip install -q -e ".[dev,panoptic,examples,export]"  # export: the ONNX round-trip tests (they skip without it)
	# Test-only reference implementation of PQ (its metadata pins numpy<2 and unused extras).
	-$(PY) -m pip install -q --no-deps panopticapi-lite
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	$(VENV)/bin/oneshot search --task panoptic --preset tiny --out runs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check oneshot oneshot_panoptic tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
