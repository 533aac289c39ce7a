# Every target creates the project virtualenv (.venv/) first if it is missing or stale.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC stage commands say `python`: make it the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export WANDB_MODE ?= offline
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: help venv run test test-unit test-quick lint bench heldout clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || python3 -m venv $(VENV)
	# torch first, on its own: the CPU wheel on this disk (plain `torch` pulls a CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

venv: $(STAMP) ## create/refresh .venv from requirements.lock

run: $(STAMP) ## main job: the whole DVC pipeline on the embedded simulated cohort
	$(BIN)/dvc repro

test: $(STAMP) ## all tests: fast unit tests and the marked integration tests
	$(BIN)/pytest

test-unit: $(STAMP) ## fast unit tests only
	$(BIN)/pytest -m "not integration"

test-quick: $(STAMP) ## everything but the tests that take minutes (marked slow)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests pipelines bench serve
	$(BIN)/ruff format --check src tests pipelines bench serve

bench: $(STAMP) ## benchmarks (ratios against a baseline run alongside); serve/sweep need `make run` first
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/preprocess_speed.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/sweep.py --samples 8 --epochs 6

heldout: $(STAMP) ## leave-one-condition-out + representation ablation (~1 h on 2 cores; after make run)
	$(BIN)/python bench/heldout.py --epochs 8

clean: ## remove regenerable pipeline outputs (keeps .venv, the DVC cache and committed results)
	rm -rf data models/train models/mrseq models/store reports/tune/ray .serve bench/out
