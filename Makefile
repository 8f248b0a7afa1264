# Two commands do the whole set-up on a fresh machine (Python 3.11 + the package registries):
#   make run    start the service on the embedded database with a bootstrap model
#   make test   lint and run the test suite
#   make test-fast  lint and the quick subset: no server start, no training on full data
# and make freqtrade-venv builds the bot side (freqtrade + tml-client, .venv-freqtrade); make test
# depends on it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# freqtrade's pins clash with the service's: the bot side gets a virtualenv of its own
FT_VENV ?= .venv-freqtrade
FT_PY := $(FT_VENV)/bin/python

.PHONY: run test test-fast lint bench browser freqtrade-venv

$(VENV)/.runtime: backend/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r backend/requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(FT_VENV)/.freqtrade: integrations/freqtrade/requirements.txt client/pyproject.toml
	test -x $(FT_PY) || $(PYTHON) -m venv $(FT_VENV)
	$(FT_PY) -m pip install -q --disable-pip-version-check \
		-r integrations/freqtrade/requirements.txt -e ./client
	touch $@

freqtrade-venv: $(FT_VENV)/.freqtrade

run: $(VENV)/.runtime
	$(PY) -m backend serve

lint: $(VENV)/.dev
	$(PY) -m ruff check backend tests bench client integrations

# The browser tests drive Debian's Chromium (Playwright from PyPI, no browser download).
# As root the package is installed when missing; otherwise the tests say why they skip.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "chromium missing and not root (or no apt-get): the browser tests will skip"; fi

test: lint browser freqtrade-venv
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not server and not slow"

bench: $(VENV)/.dev
	$(PY) bench/run_all.py
