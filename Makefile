# Two commands on a fresh machine: `make run` (the controller on the embedded default) and
# `make test` (ruff, mypy, pytest). Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint typecheck demo bench compile manifests clean

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

test: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The developer's loop (docs/development.md): ruff and every test not marked `slow` (those
# train a model or start PostgreSQL, Alertmanager or S3 servers). CI runs `make test`.
test-fast: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline tests bench
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/ingest_bench.py --part all
	$(BIN)/python bench/decision_bench.py --part all
	$(BIN)/python bench/submit_bench.py --part all

compile: $(STAMP)
	$(BIN)/python -m pipeline compile --output var/pipeline.yaml

# The kustomize trees under manifests/, rendered from the Helm chart and helm/profiles/ by the
# real Helm engine (a test fails when the checked-in trees are stale). Re-run after changing the
# chart or a profile, and commit the result.
manifests: $(STAMP)
	$(BIN)/python helm/render_manifests.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
