# The two commands of the README, plus checks. Each sets up what it needs itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9

.PHONY: run test lint bench lock

## run: the function on a local Firestore emulator with demo data and a live generation
run: $(STAMP)
	$(PY) -m diffio_progress run

## test: the whole suite, on a Firestore emulator the tests start themselves
# Most tests wait on an emulator or a served function, so a few workers beat the cores;
# each worker starts its own emulator. TEST_WORKERS=0 runs in one process.
# The emulator's class archive is made once per machine (a few seconds, then each emulator
# start costs half the CPU; diffio_progress/tools/class_archive.py); where none can be, no matter.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(PY) -m diffio_progress.tools.class_archive
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m diffio_progress.bench

# uv installs the locked, hashed set in seconds rather than a minute; pip is the fallback.
# uv itself comes from the lock's own entry, hash-checked. Nothing unhashed is installed.
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (CI machines), nothing would
# cache bytecode, and every served function and CLI the tests start would compile the
# Google libraries again (an import of 2.9 s instead of 1.2 s).
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	awk '/^uv==$(UV_VERSION) /{on=1; print; next} on && /^ /{print; next} {on=0}' \
	  requirements-dev.txt > $(VENV)/uv-lock.txt
	( $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	    -r $(VENV)/uv-lock.txt && \
	  $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) \
	    --require-hashes -r requirements-dev.txt ) || \
	  $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $(STAMP)

## lock: regenerate requirements.txt and requirements-dev.txt from their .in files (hashed,
## one universal lock for Python 3.11 here and python312 deployed; docs/security.md)
LOCK := $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--annotation-style=line
lock: $(STAMP)
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt
