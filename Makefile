# Two commands on a fresh machine: `make run` (the controller on the embedded default) and
# `make test` (ruff, mypy, pytest). Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# MLflow for the model-registry tests: its own venv (it is heavy and pins what it likes), never a
# dependency of the service. `make test` creates it once; later runs reuse it.
MLFLOW_VERSION := 3.17.2
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(MLFLOW_VERSION)

.PHONY: install run test lint typecheck demo bench compile clean mlflow

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev]'
	touch $(STAMP)

install: $(STAMP)

$(MLFLOW_STAMP):
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet 'mlflow==$(MLFLOW_VERSION)'
	touch $(MLFLOW_STAMP)

mlflow: $(MLFLOW_STAMP)

run: $(STAMP)
	$(BIN)/python -m trigger_service.demo run

demo: $(STAMP)
	$(BIN)/python -m trigger_service.demo loop

lint: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/ruff format --check trigger_service pipeline tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(MLFLOW_STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/ingest_bench.py --part all
	$(BIN)/python bench/decision_bench.py --part all
	$(BIN)/python bench/submit_bench.py --part all

compile: $(STAMP)
	$(BIN)/python -m pipeline compile --output var/pipeline.yaml

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
