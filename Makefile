# Two commands for a newcomer: `make run` (the pipeline) and `make test` (the test suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP  := $(VENV)/.installed
# Test files run in parallel (pytest-xdist), each file on one worker, so that its fixtures run once.
# Two workers on a 2-core machine, each process on one thread (OMP_NUM_THREADS), so that two
# trainings do not fight over the cores. More cores: make test TEST_WORKERS=4.
TEST_WORKERS ?= 2

.PHONY: setup run test test-fast clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes or the venv is missing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch first, so the declared range installs nothing more.
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/dvc repro

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV)
