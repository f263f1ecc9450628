# The two commands: `make run` brings the platform up, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)  ## Start the whole platform locally; Ctrl-C stops everything.
	$(BIN)/agents up

test: lint typecheck  ## Lint, type-check and run every test against real servers.
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layers of docs/architecture.md
	$(BIN)/bandit -c pyproject.toml -r agents tasks db celeryconfig.py -q  # security lint (nosec lines say why)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)  ## Only the tests that need no server.
	$(BIN)/pytest -m "not servers"

bench: $(STAMP)  ## Side-by-side vanilla Celery vs routed platform, and the routing micro-benchmark.
	$(BIN)/python -m bench.routing_bench
	$(BIN)/python -m bench.compare

chaos: $(STAMP)  ## 65 faults at random moments under load (~10 min); table in docs/reliability.md; exit 1 on any loss.
	$(BIN)/python -m bench.chaos --write docs/reliability.md

clean:
	rm -rf $(VENV) .agents .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
