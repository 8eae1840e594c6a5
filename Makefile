# One command per task; the README and CI call these verbatim.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo cluster test lint acceptance bench clean

# Two stamps: the demo needs ratelord alone, the tests its dev tools too.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(VENV)/.runtime $@

install: $(VENV)/.dev

## Install ratelord (without the dev tools) and start the daemon with a demo provider
## on http://127.0.0.1:8090
demo: $(VENV)/.runtime
	$(BIN)/ratelord-d --demo

## A local 3-daemon cluster on a real PostgreSQL (ports 8091-8093); Ctrl-C stops it
cluster: install
	scripts/cluster.sh

## Install and run the whole test suite (lint, unit, end-to-end, acceptance table)
test: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
# pytest caches the plugins it rewrote for its asserts, so the xdist workers do not
# rewrite them again (about 4 s of CPU each), also where PYTHONDONTWRITEBYTECODE is set
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

## The acceptance matrix (docs/acceptance.md) as a PASS/FAIL table (part of `make test` too)
acceptance: install
	$(BIN)/pytest -m acceptance -q

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
