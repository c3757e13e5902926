# Two commands on a fresh machine: `make run` (the controller on the embedded default) and
# `make test` (ruff, mypy, pytest). Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck audit demo bench compile clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m trigger_service.demo run

demo: $(STAMP)
	$(BIN)/python -m trigger_service.demo loop

lint: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/ruff format --check trigger_service pipeline tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Known vulnerabilities with a fix in the pinned set fail the build (docs/security.md).
audit: $(STAMP)
	$(BIN)/python .ci/audit.py constraints.txt

test: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/mypy
	$(BIN)/python .ci/audit.py constraints.txt
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
