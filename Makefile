# One command each: make up | test | lint | generate | bench (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
GENERATED := clients/python/marketing clients/runtime/marketing
TS := clients/typescript
TS_STAMP := $(TS)/node_modules/.installed-stamp
TS_GENERATED := $(TS)/src/gen
# promtool checks and unit-tests the alert rules (service/monitoring/alerts.yml);
# Debian's `prometheus` package ships it. Installed once, quietly (its output only
# on failure); as root, else through sudo.
PROMTOOL := /usr/bin/promtool
# The browser test drives Debian's headless Chromium through its chromedriver.
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up test fuzz lint generate check-generated check-dispatcher-install format clean bench

$(STAMP): pyproject.toml clients/python/pyproject.toml clients/runtime/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./clients/runtime -e ./clients/python -e '.[dev]'
	touch $(STAMP)

$(PROMTOOL):
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  out=$$( { $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } 2>&1 ) || \
	  { echo "$$out"; exit 1; }; }

$(CHROMEDRIVER):
	@command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing Chromium (Debian packages chromium, chromium-driver)"; \
	  out=$$( { $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium chromium-driver; } 2>&1 ) || \
	  { echo "$$out"; exit 1; }; }

# The TypeScript client's packages, exactly as package-lock.json pins them.
$(TS_STAMP): $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(TS_STAMP)

## up: run the whole system locally (embedded PostgreSQL, migrations, service)
up: $(STAMP)
	$(BIN)/python -m service.devstack

## test: run the test suite against real servers started by the harness
test: $(STAMP) $(TS_STAMP) $(PROMTOOL) $(CHROMEDRIVER)
	$(BIN)/python -m pytest

## fuzz: the API fuzz test of `make test`, long and randomized (MARKETING_FUZZ_EXAMPLES per method and kind)
MARKETING_FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	MARKETING_FUZZ_EXAMPLES=$(MARKETING_FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz --timeout=0

## bench: throughput, latency and memory against real servers (figures in README)
bench: $(STAMP)
	$(BIN)/python -m tests.bench

## generate: regenerate the Python and TypeScript code for proto/
generate: $(STAMP) $(TS_STAMP)
	$(BIN)/python clients/python/generate.py clients
	$(BIN)/python $(TS)/generate_typescript.py $(TS_GENERATED)

## lint: buf lint and breaking changes, stale generated code, ruff, mypy, import contracts, tsc, alert rules
# The contract is compared with main: the local branch, else origin/main (a
# clone made on another branch); BUF_AGAINST=<buf input> overrides both.
lint: $(STAMP) $(TS_STAMP) $(PROMTOOL) check-generated
	$(BIN)/buf lint
	@against='$(BUF_AGAINST)'; \
	if [ -z "$$against" ] && git rev-parse -q --verify refs/heads/main >/dev/null; then against='.git#branch=main'; fi; \
	if [ -z "$$against" ] && git rev-parse -q --verify refs/remotes/origin/main >/dev/null; then against='.git#ref=origin/main'; fi; \
	if [ -z "$$against" ]; then echo "buf breaking: no main branch (local or origin/main): set BUF_AGAINST"; exit 1; fi; \
	echo "buf breaking --against $$against"; $(BIN)/buf breaking --against "$$against"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	cd $(TS) && npx tsc -p . --noEmit
	promtool check rules service/monitoring/alerts.yml

## check-dispatcher-install: a dispatcher-only install (throw-away venv) has no gRPC or database drivers and runs
check-dispatcher-install: $(STAMP)
	$(BIN)/python -m tests.dispatcher_install

check-generated: $(STAMP) $(TS_STAMP)
	@tmp=$$(mktemp -d) && $(BIN)/python clients/python/generate.py $$tmp >/dev/null && \
	if diff -r -x __pycache__ $$tmp/python/marketing clients/python/marketing >/dev/null && \
	   diff -r -x __pycache__ $$tmp/runtime/marketing clients/runtime/marketing >/dev/null; then rm -rf $$tmp; \
	else rm -rf $$tmp; echo "generated code in $(GENERATED) is stale: run 'make generate'"; exit 1; fi
	@tmp=$$(mktemp -d) && $(BIN)/python $(TS)/generate_typescript.py $$tmp/gen >/dev/null && \
	if diff -r $$tmp/gen $(TS_GENERATED) >/dev/null; then rm -rf $$tmp; \
	else rm -rf $$tmp; echo "generated code in $(TS_GENERATED) is stale: run 'make generate'"; exit 1; fi

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache $(TS)/node_modules $(TS)/dist
