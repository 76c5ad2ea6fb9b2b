# Toilless: `make run` brings the whole system up on this machine; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: help venv run test lint format test-deps bench lock compose-config clean sop drill

help:
	@echo "make run    - set up the virtualenv and start the sandbox + Airflow on http://127.0.0.1:8080 (Ctrl-C stops)"
	@echo "make test   - set up everything the tests need, then ruff and pytest"
	@echo "make bench  - run the benchmarks, write benchmarks/results.md"
	@echo "make lock   - re-resolve requirements.txt / requirements-dev.txt from the .in files"
	@echo "make sop NAME=<dag_id> - scaffold a new SOP (DAG, package, config, sandbox service, tests, bench stub)"
	@echo "make drill [SCENARIO=<name>] - incident drills against a sandbox of their own (docs/drills.md)"

# The virtualenv is made from the lock files and remade when they change.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# A virtualenv made by other tools (uv venv) may lack pip.
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python -m sandbox run

test-deps:
	@scripts/install_test_deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two test processes (pytest-xdist; every test on the running Airflow in one of them, so the sandbox starts once):
# about 18 minutes instead of 25-31 in one on 2 cores. `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 2
test: venv test-deps lint
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

# The scaffold refuses an invalid or existing dag_id itself; NAME is checked here so `make sop` alone says how.
sop: venv
	$(if $(NAME),,$(error usage: make sop NAME=<dag_id>))
	PYTHONPATH=plugins $(BIN)/python -m toilless.scaffold $(NAME)

# Incident drills (docs/drills.md); bad scenario names and missing runbooks exit 2 before anything starts.
drill: venv
	$(BIN)/python -m sandbox.drill $(SCENARIO) $(if $(READY_FILE),--ready-file $(READY_FILE)) $(if $(BUDGET),--budget $(BUDGET))

bench: venv test-deps
	$(BIN)/python -m benchmarks

lock: venv
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements-dev.in -o requirements-dev.txt

compose-config:
	docker-compose -f docker-compose.yaml config --quiet

clean:
	rm -rf $(VENV) .airflow
