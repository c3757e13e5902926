# Two commands on a fresh machine: `make run` (the controller on the embedded default) and
# `make test` (ruff, mypy, pytest). Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=8081 S3_PORT=9100`: the service's port, the demo S3 server's (0: a free one).
PORT ?= 8080
S3_PORT ?= 0
VAR ?= var
# MLflow for the model-registry tests: its own venv (it is heavy and pins what it likes), never a
# dependency of the service. `make test` creates it once; later runs reuse it.
MLFLOW_VERSION := 3.17.2
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(MLFLOW_VERSION)

.PHONY: install run test test-fast lint typecheck audit demo bench compile manifests clean mlflow

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
	$(BIN)/python -m demo run --var $(VAR) --port $(PORT) --s3-port $(S3_PORT)

demo: $(STAMP)
	$(BIN)/python -m demo loop

lint: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline demo tests bench
	$(BIN)/ruff format --check trigger_service pipeline demo tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Known vulnerabilities with a fix in the pinned set fail the build (docs/security.md).
audit: $(STAMP)
	$(BIN)/python .ci/audit.py constraints.txt

test: $(STAMP) $(MLFLOW_STAMP)
	$(BIN)/ruff check trigger_service pipeline demo tests bench
	$(BIN)/mypy
	$(BIN)/python .ci/audit.py constraints.txt
	$(BIN)/python -m pytest -q

# The developer's loop (docs/development.md): ruff, mypy (its cache warm: ~1 s) and every test
# not marked `slow` (those train a model or start PostgreSQL, Alertmanager or S3 servers), in
# TEST_WORKERS pytest-xdist workers, each test file in one worker (its module fixtures start
# once). Two workers a core: half of a test's time is waiting (a `serve` starting, a poll
# interval), which they overlap. CI runs `make test`, in one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')
test-fast: $(STAMP)
	$(BIN)/ruff check trigger_service pipeline demo tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile

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
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
