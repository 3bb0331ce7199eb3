# Two commands for a newcomer: `make run` (the pipeline) and `make test` (the test suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The environment is locked. requirements.lock pins, with hashes, every distribution but torch
# (made by pip-compile: make lock); torch and pip are pinned here. tests/test_environment.py checks
# that the venv equals these pins.
LOCK   := requirements.lock
TORCH_VERSION ?= 2.13.0
PIP_VERSION   ?= 26.3
# Where torch comes from. Empty: pip's configured sources, i.e. on this project's machines the CPU
# wheel in a local folder (pip's find-links), elsewhere PyPI, whose Linux wheel is the CUDA build.
# For the CPU build elsewhere: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# make lock: pip-tools in a venv of its own; LOCK_UPGRADE= keeps the current pins where they
# still fit, LOCK_UPGRADE="--upgrade-package mlflow" moves one.
PIP_TOOLS_VERSION ?= 7.6.2
LOCK_VENV    := .venv-lock
LOCK_UPGRADE ?= --upgrade
# Test files run in parallel (pytest-xdist), each file on one worker, so that its fixtures run once.
# Two workers on a 2-core machine, each process on one thread (OMP_NUM_THREADS), so that two
# trainings do not fight over the cores. More cores: make test TEST_WORKERS=4.
TEST_WORKERS ?= 2

.PHONY: setup lock run test test-fast clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml or the lock changes or the venv is missing.
# The lock first, without resolving (it is the whole closure but torch), then torch, whose
# dependencies the lock has already put in place, then this project without dependencies, built
# with the lock's setuptools (no isolated build environment, so nothing unlocked is fetched).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve the lock on purpose (newest versions pyproject.toml allows, see LOCK_UPGRADE above),
# for the Python that runs it (3.11 here). torch is held at TORCH_VERSION while resolving and left
# out of the lock (pip-compile's closing WARNING about torch says so); pass TORCH_INDEX as for
# setup where pip has no CPU wheel of its own, so that the CPU wheel's dependencies are locked.
lock: $(LOCK_VENV)/bin/pip-compile
	printf 'torch==%s\n' "$(TORCH_VERSION)" > $(LOCK_VENV)/torch.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --extra dev \
	  --generate-hashes --strip-extras --unsafe-package torch --constraint $(LOCK_VENV)/torch.txt \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) $(LOCK_UPGRADE) \
	  --output-file $(LOCK) pyproject.toml

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "pip==$(PIP_VERSION)" "pip-tools==$(PIP_TOOLS_VERSION)"

run: setup
	$(BIN)/dvc repro

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) $(LOCK_VENV)
