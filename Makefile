# Thin verbs. `make run` and `make test` each set up .venv on their own (fresh clone included).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.conveyor-installed
UV_VERSION := 0.13.8
CONFIG ?= examples/fraud/pipeline.yaml
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: one process); wall-clock tests share one worker.
PYTEST_WORKERS ?= 2

.PHONY: checkov bench-verdicts tools rollout-sim bench-rollback run test compile lint format typecheck images test-containers clean lock bench bench-serving bench-drift bench-ct venv ui reference

venv: $(STAMP)

# Rebuilt whenever the lock file or pyproject changes, so a stale .venv is never used.
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (as on this machine) nothing is
# ever cached, and every process (each kfp.local task) recompiled ~5,800 modules: 5 s each.
$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Prometheus, Alertmanager and nginx from Debian's packages, unpacked into .tools/ (no root, no services).
tools:
	bash scripts/fetch-tools.sh

# checkov (its own venv: its pinned dependencies would clash with ours) on the rendered dev
# and prod overlays; any failed check fails. Skips are annotations on the objects, each with
# its reason (tests/manifests/test_kustomize.py keeps the reviewed list).
CHECKOV := .tools/checkov/bin/checkov
$(CHECKOV): requirements-checkov.lock $(STAMP)
	@test -x .tools/checkov/bin/python || $(PYTHON) -m venv .tools/checkov
	$(BIN)/uv pip sync -q --python .tools/checkov/bin/python requirements-checkov.lock
	@touch $(CHECKOV)

checkov: $(CHECKOV)
	@mkdir -p build/checkov
	@for overlay in dev prod; do \
		$(BIN)/kubectl kustomize manifests/overlays/$$overlay > build/checkov/$$overlay.yaml || exit 1; \
	done
	$(CHECKOV) --framework kubernetes --skip-download --compact --quiet \
		-f build/checkov/dev.yaml -f build/checkov/prod.yaml

# ARGS=--force trains even when nothing changed since the last run (skip-if-unchanged).
ARGS ?=
run: $(STAMP)
	$(BIN)/conveyor run --config $(CONFIG) $(ARGS)

test: $(STAMP) tools lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

compile: $(STAMP)
	$(BIN)/python -m conveyor.pipelines.compile

# docs/reference.md from the pydantic models (a test fails when the committed file is stale).
reference: $(STAMP)
	@mkdir -p docs
	$(BIN)/python -m conveyor.reference > docs/reference.md.tmp
	@mv docs/reference.md.tmp docs/reference.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy conveyor

# Exact, hashed lock files from the ranges in pyproject.toml (needs network).
lock: $(STAMP)
	$(BIN)/uv pip compile -q --python-version 3.11 --generate-hashes pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile -q --python-version 3.11 --generate-hashes --extra dev pyproject.toml \
		-c requirements.lock -o requirements-dev.lock
	$(BIN)/uv pip compile -q --python-version 3.11 --generate-hashes --extra bench pyproject.toml \
		-c requirements.lock -o bench/requirements.lock
	echo "checkov==3.3.30" | $(BIN)/uv pip compile -q --python-version 3.11 --generate-hashes - \
		-o requirements-checkov.lock

bench: $(STAMP)
	$(BIN)/uv pip install -q --python $(BIN)/python -r bench/requirements.lock
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/skip.py
	$(BIN)/python bench/drift_process.py
	$(BIN)/python bench/scale.py

# Every rollout-sim scenario 10 times, idle and with both cores busy (~70 min).
bench-verdicts: $(STAMP) tools
	$(BIN)/python bench/verdicts.py --repeat 10

# A real canary on this machine (servers, nginx, Prometheus): SCENARIO=healthy|errors|...
SCENARIO ?= errors
rollout-sim: $(STAMP) tools
	$(BIN)/conveyor rollout-sim --scenario $(SCENARIO)

bench-rollback: $(STAMP) tools
	$(BIN)/python bench/rollback.py

# Local model server vs `mlflow models serve` on the same model (execs uvicorn: venv on PATH).
bench-serving: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/serving.py

# check_drift vs evidently's PSI drift preset and one numpy pass, 1M vs 1M rows (bench extra).
bench-drift: $(STAMP)
	$(BIN)/uv pip install -q --python $(BIN)/python -r bench/requirements.lock
	$(BIN)/python bench/drift.py

# First run vs an unchanged re-run (skip-if-unchanged), conveyor run and conveyor retrain.
bench-ct: $(STAMP)
	$(BIN)/python bench/ct_cache.py

# The component image and the serving-runtime image (one Dockerfile, one lock file) on docker
# or podman; as root on Debian with no engine it installs podman. BASE=auto|registry|debian:
# the registry's python:3.11 slim base where it can be pulled, else one made here from Debian.
BASE ?= auto
images: $(STAMP)
	$(BIN)/python scripts/images.py --base $(BASE)

# The compiled training pipeline with every task in the component image, the model in the
# serving image, checked against the in-process run (needs `make images` first).
test-containers: $(STAMP)
	$(BIN)/python -m pytest -m containers -p no:cacheprovider $(PYTEST_ARGS) tests/containers

clean:
	rm -rf .conveyor local_outputs build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The MLflow UI on the embedded store that `make run` writes (no MLflow server jobs: unused).
ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false PATH=$(CURDIR)/$(BIN):$$PATH \
		$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --workers 1 \
		--backend-store-uri sqlite:///$(CURDIR)/.conveyor/mlflow.db \
		--default-artifact-root $(CURDIR)/.conveyor/mlartifacts
