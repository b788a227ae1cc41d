# Referee's two commands are `make demo` and `make test`; everything else is here too.
# Every target installs what it needs first (a virtual environment in .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.referee-installed
RUST_SOURCES := $(shell find rust_core/src -name '*.rs') rust_core/Cargo.toml Cargo.toml Cargo.lock

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3

$(STAMP): $(BIN)/python pyproject.toml $(RUST_SOURCES) plugins/grafana/pyproject.toml \
		plugins/alertmanager/pyproject.toml plugins/grafana_alerting/pyproject.toml
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first"; exit 1; }
	$(BIN)/pip install --quiet maturin==1.16.0
	$(BIN)/maturin develop --release --quiet --extras dev
	$(BIN)/pip install --quiet -e plugins/grafana
	$(BIN)/pip install --quiet -e plugins/alertmanager -e plugins/grafana_alerting
	@# The real Alertmanager the source tests deliver webhooks from (Debian 12: prometheus-alertmanager).
	@command -v prometheus-alertmanager >/dev/null || test -x /usr/bin/prometheus-alertmanager || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager; }
	@# PostgreSQL for the verdict-store tests (initdb + pg_ctl in a temporary directory).
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv, build the Rust core and install Referee with its first-party plugins

.PHONY: demo
demo: install ## Play the seed incident end to end on the embedded defaults
	$(BIN)/referee demo

.PHONY: test
test: install ## Run the whole suite: Rust unit tests, rule pack checks and tests, Python tests
	cargo test --quiet --manifest-path rust_core/Cargo.toml
	$(BIN)/referee rules check rules/
	$(BIN)/referee rules test rules/
	$(BIN)/python -m pytest -q

.PHONY: bench
bench: install ## Run the speed benchmarks; results in bench/results.json
	$(BIN)/python -m bench.speed --out bench/results.json

# The directory holding nab/ (the Numenta Anomaly Benchmark's data/ and labels/).
BENCH_DATA ?= $(or $(REFEREE_BENCH_DATA),../shared/data)

.PHONY: bench-quality
bench-quality: install ## NAB score, copilot verdicts (NAB and multi-metric ASD hosts), fit cost; bench/quality.json. Data: BENCH_DATA=DIR (holds nab/ and asd/; default $REFEREE_BENCH_DATA, else ../shared/data)
	$(BIN)/python -m bench.quality --data "$(BENCH_DATA)" --out bench/quality.json

.PHONY: lint
lint: install ## ruff, mypy (+ stubtest for the compiled core), import-linter layers, cargo fmt --check, cargo clippy, Rust module cycles
	$(BIN)/ruff check engine plugins tests bench
	$(BIN)/ruff format --check engine plugins tests bench
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest referee._core
	$(BIN)/lint-imports
	$(BIN)/python rust_core/tools/check_module_cycles.py
	rustup component add rustfmt clippy >/dev/null 2>&1 || true
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings

.PHONY: fmt
fmt: install ## Format Python and Rust sources
	$(BIN)/ruff format engine plugins tests bench
	$(BIN)/ruff check --fix engine plugins tests bench
	cargo fmt --all

.PHONY: clean
clean: ## Remove the virtual environment and build outputs
	rm -rf $(VENV) target
