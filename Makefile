# The commands people type. `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/todoscale_test
PYTEST_ARGS ?=
INSTANCES ?= 2
CLUSTER_PORT ?= 8080

export PORT

.PHONY: run test lint typecheck contracts pytest pytest-sqlite pytest-postgres bench clean \
	translations cluster

$(VENV)/.run-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

## run: install, migrate and serve the app on http://localhost:$(PORT) (embedded defaults)
run: $(VENV)/.run-installed
	$(BIN)/todoscale serve

## test: lint, type checks, import contracts, then the suite on SQLite and on PostgreSQL
test: lint typecheck contracts pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench migrations deploy
	$(BIN)/ruff format --check src tests bench deploy

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

contracts: $(VENV)/.dev-installed
	$(BIN)/lint-imports

pytest: pytest-sqlite pytest-postgres

pytest-sqlite: $(VENV)/.dev-installed
	@echo "== test suite on SQLite =="
	$(BIN)/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

pytest-postgres: $(VENV)/.dev-installed
	@echo "== test suite on PostgreSQL ($(TEST_POSTGRES_URL)) =="
	TODOSCALE_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest $(PYTEST_ARGS)

I18N := src/todoscale/translations

## translations: extract the UI's messages, merge them into the catalogs, compile (commit all)
translations: $(VENV)/.dev-installed
	$(BIN)/pybabel extract -F $(I18N)/babel.cfg -k _l -k lazy_gettext -k Message \
		--no-location --sort-output --project todoscale -o $(I18N)/messages.pot .
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) --width 100 \
		--ignore-obsolete
	$(BIN)/pybabel compile -d $(I18N) --statistics

## cluster: nginx on $(CLUSTER_PORT) in front of $(INSTANCES) instances (`todoscale cluster down` stops it)
cluster: $(VENV)/.run-installed
	$(BIN)/todoscale cluster up --instances $(INSTANCES) --port $(CLUSTER_PORT)

## bench: the scaling ladder on the reference workload (needs wrk)
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
