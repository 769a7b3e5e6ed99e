# The two commands of the README, plus checks. Each sets up what it needs itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9

.PHONY: run test lint bench

## run: the function on a local Firestore emulator with demo data and a live generation
run: $(STAMP)
	$(PY) -m diffio_progress run

## test: the whole suite, on a Firestore emulator the tests start themselves
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m diffio_progress.bench

# uv installs the same pins in seconds rather than a minute; pip is the fallback.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	( $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements-dev.txt ) || \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)
