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

.PHONY: run test lint typecheck contracts audit pytest pytest-sqlite pytest-postgres pytest-free coverage bench clean \
	translations cluster vendor lock chaos config-table deploy-files

# Installs come from the lock files (exact versions, with hashes), never straight from
# pyproject.toml's ranges: an upstream release cannot change a fresh clone unannounced.
RUN_LOCK := requirements/run.lock
DEV_LOCK := requirements/dev.lock

$(VENV)/.run-installed: $(RUN_LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(RUN_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed $(DEV_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	touch $@

# What builds the package (pyproject's [build-system]) and pip itself are locked too.
LOCK_EXTRA = $(BIN)/python -c 'import tomllib; print("pip"); \
	print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'
LOCK_OPTIONS = --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"

## lock: resolve pyproject.toml's ranges afresh into requirements/*.lock (commit both)
lock: $(VENV)/.dev-installed
	$(LOCK_EXTRA) | $(BIN)/uv pip compile pyproject.toml - $(LOCK_OPTIONS) --upgrade \
		-o $(RUN_LOCK)
	$(LOCK_EXTRA) | $(BIN)/uv pip compile pyproject.toml - --extra dev --extra bench -c $(RUN_LOCK) \
		$(LOCK_OPTIONS) --upgrade -o $(DEV_LOCK)

## run: install, migrate, then serve the app, live updates and a job worker on
## http://localhost:$(PORT) (embedded defaults; Ctrl-C stops everything)
run: $(VENV)/.run-installed
	$(BIN)/todoscale run

## test: lint, type checks, import contracts, the vulnerability audit, then the suite on SQLite
## and on PostgreSQL (both passes at once)
test: lint typecheck contracts audit pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

contracts: $(VENV)/.dev-installed
	$(BIN)/lint-imports

# pip-audit asks PyPI's JSON API about each locked version (`/pypi/NAME/VERSION/json`). Where
# that API cannot be reached (a registry proxy that serves only the simple index), the audit
# cannot run: it says so, with the error, instead of reporting "no known vulnerabilities".
AUDIT_PROBE = https://pypi.org/pypi/pip/25.0/json

## audit: known vulnerabilities of every locked version (pip-audit, PyPI's advisory data)
audit: $(VENV)/.dev-installed
	@if problem=$$($(BIN)/python -c 'import sys, urllib.request; \
		urllib.request.urlopen(sys.argv[1], timeout=20)' $(AUDIT_PROBE) 2>&1); then \
		echo "== pip-audit of $(RUN_LOCK) and $(DEV_LOCK) =="; \
		$(BIN)/pip-audit --strict --require-hashes --disable-pip --progress-spinner off \
			--vulnerability-service pypi -r $(RUN_LOCK) -r $(DEV_LOCK); \
	else \
		echo "== pip-audit CANNOT RUN HERE: PyPI's JSON API did not answer $(AUDIT_PROBE):"; \
		echo "   $$(echo "$$problem" | tail -n 1)"; \
		echo "   (nothing was audited; run make audit where pypi.org answers)"; \
	fi

# Each pass has a Redis database of its own: the passes run at the same time, and the bench
# empties the one it is given. The PostgreSQL pass's is TODOSCALE_TEST_REDIS_URL when it is set.
TEST_REDIS_URL ?= $(or $(TODOSCALE_TEST_REDIS_URL),redis://127.0.0.1:6379/15)
TEST_SQLITE_REDIS_URL ?= redis://127.0.0.1:6379/14
TEST_FREE_REDIS_URL ?= redis://127.0.0.1:6379/13
PASS_LOGS := artifacts
PASSES := sqlite postgres free

# Three passes at once: the suite on SQLite, again on PostgreSQL, and the tests that touch
# no database of the suite's (marked database_free: the browser tests, `todoscale run`'s, the
# servers', the wheel's, each on SQLite files of its own) once, in a pass of their own. Most
# of each is spent waiting for real servers to start, so two cores keep three busy. Each
# pass's whole output is shown when all are done, under its name, followed by its verdict.
pytest: $(VENV)/.dev-installed
	@mkdir -p $(PASS_LOGS)
	@echo "== the test suite's passes at once (SQLite, PostgreSQL, database-free); follow them" \
		"with tail -f $(foreach pass,$(PASSES),$(PASS_LOGS)/pytest-$(pass).log) =="
	@$(MAKE) --no-print-directory pytest-sqlite > $(PASS_LOGS)/pytest-sqlite.log 2>&1 & \
	sqlite=$$!; \
	$(MAKE) --no-print-directory pytest-free > $(PASS_LOGS)/pytest-free.log 2>&1 & \
	free=$$!; \
	$(MAKE) --no-print-directory pytest-postgres > $(PASS_LOGS)/pytest-postgres.log 2>&1; \
	postgres=$$?; \
	wait $$sqlite; sqlite=$$?; \
	wait $$free; free=$$?; \
	verdict() { if [ "$$2" = 0 ]; then echo "== $$1 pass: passed =="; \
		else echo "== $$1 pass: FAILED (exit $$2; its failures are listed just above) =="; fi; }; \
	cat $(PASS_LOGS)/pytest-sqlite.log; verdict SQLite $$sqlite; \
	cat $(PASS_LOGS)/pytest-postgres.log; verdict PostgreSQL $$postgres; \
	cat $(PASS_LOGS)/pytest-free.log; verdict database-free $$free; \
	[ $$sqlite = 0 ] && [ $$postgres = 0 ] && [ $$free = 0 ]

# The suite's temporary folders (SQLite files, local queues, instance folders, logs) in RAM
# where the machine has /dev/shm: SQLite's commits then wait for no disk (twice as fast here
# on a busy disk). One folder per checkout and pass; pytest empties it when the pass starts.
CHECKOUT_ID := $(shell printf '%s' '$(CURDIR)' | cksum | cut -d' ' -f1)
BASETEMP = $(if $(wildcard /dev/shm),--basetemp=/dev/shm/todoscale-$(CHECKOUT_ID)-$(1))

# Each pass lists its slowest tests: what to look at when make test nears its 15 minutes.
DURATIONS := --durations=25

# A pass that PYTEST_ARGS leaves no test of (pytest's exit 5) has nothing to fail.
NONE_SELECTED = || [ $$? = 5 ]

pytest-sqlite: $(VENV)/.dev-installed
	@echo "== test suite on SQLite (database-free tests aside) =="
	TODOSCALE_TEST_REDIS_URL=$(TEST_SQLITE_REDIS_URL) $(BIN)/pytest $(call BASETEMP,sq) \
		-m "not database_free" $(DURATIONS) $(PYTEST_ARGS) $(NONE_SELECTED)

pytest-free: $(VENV)/.dev-installed
	@echo "== the tests that touch no database of the suite's (database_free) =="
	TODOSCALE_TEST_REDIS_URL=$(TEST_FREE_REDIS_URL) $(BIN)/pytest $(call BASETEMP,free) \
		-m database_free $(DURATIONS) $(PYTEST_ARGS) $(NONE_SELECTED)

## coverage: the suite on SQLite with line and branch coverage, the servers and workers it
## starts included (not in `make test`: measuring every process costs about half again its CPU)
# --cov-branch is also pyproject's setting; saying it here hands it to the subprocesses the
# suite starts (workers, servers) in other folders, so their coverage data combines.
coverage: $(VENV)/.dev-installed
	TODOSCALE_TEST_REDIS_URL=$(TEST_SQLITE_REDIS_URL) $(BIN)/pytest $(call BASETEMP,sq) \
		--cov --cov-branch --cov-report=term:skip-covered $(PYTEST_ARGS)

pytest-postgres: $(VENV)/.dev-installed
	@echo "== test suite on PostgreSQL ($(TEST_POSTGRES_URL)) =="
	TODOSCALE_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) TODOSCALE_TEST_REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest $(call BASETEMP,pg) -m "not database_free" $(DURATIONS) $(PYTEST_ARGS) \
		$(NONE_SELECTED)

CHAOS_TESTS := tests/chaos tests/realtime/test_removal_race.py tests/test_access_matrix.py \
	tests/web/test_hostile_forms.py
CHAOS_FIGURES := artifacts/chaos-figures.jsonl

## chaos: the long versions of the fault, race and fuzzing tests (10,000 If-Match races, 60 s of
## 20 SQLite writers, 50 schemathesis examples per operation, 100 jobs under Celery kills, the
## Socket.IO process restarted, 10 HUPs, 5 minutes of mixed load at 0.7x capacity, 60 s at 2x,
## 12 worker kills...) on SQLite and on PostgreSQL; their figures go to the table of
## docs/RELIABILITY.md (over an hour on 2 cores)
chaos: $(VENV)/.dev-installed
	mkdir -p artifacts && rm -f $(CHAOS_FIGURES)
	status=0; \
	TODOSCALE_CHAOS=full TODOSCALE_CHAOS_FIGURES=$(CURDIR)/$(CHAOS_FIGURES) \
		$(BIN)/pytest -p no:cacheprovider $(CHAOS_TESTS) || status=1; \
	TODOSCALE_CHAOS=full TODOSCALE_CHAOS_FIGURES=$(CURDIR)/$(CHAOS_FIGURES) \
		TODOSCALE_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) \
		$(BIN)/pytest -p no:cacheprovider -m "not database_free" $(CHAOS_TESTS) || status=1; \
	$(BIN)/python -m tests.chaos.reliability $(CHAOS_FIGURES) docs/RELIABILITY.md || status=1; \
	exit $$status

## config-table: render README.md's configuration table from src/todoscale/config/settings.py
config-table: $(VENV)/.dev-installed
	$(BIN)/python -m todoscale.config README.md

## deploy-files: render deploy/'s example configurations (nginx's sites, supervisor's drop-in)
## from the package (src/todoscale/deploy/examples.py)
deploy-files: $(VENV)/.dev-installed
	$(BIN)/python -m todoscale.deploy.examples deploy

I18N := src/todoscale/translations

## translations: extract the UI's messages, merge them into the catalogs, compile (commit all)
translations: $(VENV)/.dev-installed
	$(BIN)/pybabel extract -F $(I18N)/babel.cfg -k _l -k lazy_gettext -k Message \
		--no-location --sort-output --project todoscale -o $(I18N)/messages.pot .
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) --width 100 \
		--ignore-obsolete
	$(BIN)/pybabel compile -d $(I18N) --statistics

SOCKETIO_CLIENT ?= 4.8.4
# The flame graph viewer of the admin console's profiles.
SPEEDSCOPE ?= 1.25.0
VENDOR := src/todoscale/static/vendor

# The common passwords refused at sign-up and password change: Django's list (20,000 most
# common, lowercased, by Royce Williams), taken from its wheel on PyPI with its licence.
DJANGO_PASSWORDS ?= 5.2.19
PASSWORD_DATA := src/todoscale/services/data

## vendor: fetch the Socket.IO browser client and speedscope (npm) into static/vendor, and the
## common-password list (from Django's wheel) into services/data (commit them)
vendor: $(VENV)/.run-installed
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent socket.io-client@$(SOCKETIO_CLIENT) >/dev/null && \
		tar xzf socket.io-client-*.tgz) && \
	mkdir -p $(VENDOR) && \
	cp "$$tmp/package/dist/socket.io.min.js" $(VENDOR)/socket.io.min.js && \
	cp "$$tmp/package/LICENSE" $(VENDOR)/socket.io.LICENSE
	head -n 2 $(VENDOR)/socket.io.min.js
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/pip download --quiet --no-deps --only-binary :all: -d "$$tmp" \
		django==$(DJANGO_PASSWORDS) && \
	mkdir -p $(PASSWORD_DATA) && \
	unzip -p "$$tmp"/django-*.whl django/contrib/auth/common-passwords.txt.gz \
		> $(PASSWORD_DATA)/common-passwords.txt.gz && \
	{ echo "common-passwords.txt.gz: django/contrib/auth/common-passwords.txt.gz of Django" \
		"$(DJANGO_PASSWORDS) (PyPI), the 20,000 most common passwords, unhexed, lowercased and" \
		"deduplicated by Royce Williams" \
		"(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce)." \
		"Refetch with make vendor. Django's licence follows."; echo; \
	  unzip -p "$$tmp"/django-*.whl 'django-*.dist-info/licenses/LICENSE'; } \
		> $(PASSWORD_DATA)/common-passwords.LICENSE
	gzip -cd $(PASSWORD_DATA)/common-passwords.txt.gz | wc -l
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent speedscope@$(SPEEDSCOPE) >/dev/null && \
		tar xzf speedscope-*.tgz) && \
	rm -rf $(VENDOR)/speedscope && mkdir -p $(VENDOR)/speedscope && \
	cp "$$tmp"/package/dist/release/index.html "$$tmp"/package/dist/release/speedscope-*.js \
		"$$tmp"/package/dist/release/speedscope-*.css "$$tmp"/package/dist/release/*.woff2 \
		"$$tmp"/package/dist/release/source-code-pro.LICENSE.md $(VENDOR)/speedscope/ && \
	cp "$$tmp/package/LICENSE" $(VENDOR)/speedscope/LICENSE

## cluster: nginx on $(CLUSTER_PORT) in front of $(INSTANCES) app and Socket.IO instances, a Celery
## worker and beat (`todoscale cluster down` stops it)
cluster: $(VENV)/.run-installed
	$(BIN)/todoscale cluster up --instances $(INSTANCES) --port $(CLUSTER_PORT)

BENCH_ARGS ?=
## bench: the articles' scaling ladder on the reference workload (`todoscale bench`; wrk, nginx):
## results in bench/results/<timestamp>/, BENCHMARKS.md and its chart regenerated
bench: $(VENV)/.dev-installed
	$(BIN)/todoscale bench --out bench/results --markdown BENCHMARKS.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
