# Two commands do the whole set-up on a fresh machine (Python 3.11 + the package registries):
#   make run    start the service on the embedded database with a bootstrap model
#   make test   lint and run the test suite
#   make test-fast  lint and the quick subset: no server start, no training on full data
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast lint bench

$(VENV)/.runtime: backend/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r backend/requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) -m backend serve

lint: $(VENV)/.dev
	$(PY) -m ruff check backend tests bench

test: lint
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not server and not slow"

bench: $(VENV)/.dev
	$(PY) bench/run_all.py
