# One command each: make up | test | lint | generate | bench (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
GENERATED := clients/python/marketing

.PHONY: up test lint generate check-generated format clean bench

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./clients/python -e '.[dev]'
	touch $(STAMP)

## up: run the whole system locally (embedded PostgreSQL, migrations, service)
up: $(STAMP)
	$(BIN)/python -m service.devstack

## test: run the test suite against real servers started by the harness
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: throughput, latency and memory against real servers (figures in README)
bench: $(STAMP)
	$(BIN)/python -m tests.bench

## generate: regenerate the Python code for proto/
generate: $(STAMP)
	$(BIN)/python clients/python/generate.py clients/python

## lint: buf lint, stale generated code, ruff, mypy
lint: $(STAMP) check-generated
	$(BIN)/buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check-generated: $(STAMP)
	@tmp=$$(mktemp -d) && $(BIN)/python clients/python/generate.py $$tmp >/dev/null && \
	find $$tmp -name __pycache__ -prune -exec rm -rf {} + && \
	if diff -r -x __pycache__ $$tmp/marketing $(GENERATED) >/dev/null; then rm -rf $$tmp; \
	else rm -rf $$tmp; echo "generated code in $(GENERATED) is stale: run 'make generate'"; exit 1; fi

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
