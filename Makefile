# SyncFlow — the README's commands. Each target installs what it needs (uv, the
# locked environment) on a machine that has only Python 3.11+.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
RUN := $(UV) run --locked --quiet
export DAGSTER_HOME := $(CURDIR)/data/dagster
PYTEST_WORKERS ?= 2

.PHONY: help bootstrap demo test lint typecheck unit ui emulators bench clean reliability

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

bootstrap:  ## install uv if missing and sync the locked environment
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv
	@$(UV) sync --locked --quiet --compile-bytecode
	@mkdir -p $(DAGSTER_HOME)
	@ln -sf $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: bootstrap  ## the main job: a new local world in data/, synced in three rounds through Dagster
	$(RUN) syncflow demo

test: bootstrap lint typecheck  ## the whole suite: lint, types, definitions, tests
	$(RUN) dagster definitions validate -m syncflow_dagster.definitions
	$(RUN) pytest -n $(PYTEST_WORKERS) -q

RELIABILITY_RESULTS ?= $(CURDIR)/data/reliability/results.jsonl
reliability: bootstrap  ## kill -9 trials, fault storms, bad inputs, secrets (not in `make test`; ~10 min)
	@mkdir -p $(dir $(RELIABILITY_RESULTS)) && rm -f $(RELIABILITY_RESULTS)
	@RELIABILITY_RESULTS=$(RELIABILITY_RESULTS) $(RUN) pytest -n $(PYTEST_WORKERS) -q \
		-m "reliability or not reliability" syncflow_dagster_tests/reliability; \
	status=$$?; $(RUN) python -m syncflow_dagster_tests.reliability.results $(RELIABILITY_RESULTS); \
	exit $$status

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck:
	$(RUN) mypy

PORT ?= 3000
ui: bootstrap  ## the local world: Dagster UI (PORT=3000) and daemon, operations API, both emulators
	$(RUN) syncflow emulators --ui --ui-port $(PORT)

emulators: bootstrap  ## the local world's two emulators alone, in the foreground
	$(RUN) syncflow emulators

bench: bootstrap  ## the 1M-row benchmark; updates docs/BENCHMARKS.md
	$(RUN) syncflow bench

clean:  ## reset the local world (data/: ERP, hub, state, Dagster instance, logs) and the caches
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
