# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app webapp
STAMP := $(VENV)/.installed-stamp

.PHONY: install run serve test test-pgbouncer lint format db-upgrade seed clean soak bench bench-import online-migration failover-drill replica-demo

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

db-upgrade: install
	$(FLASK) db upgrade

run: db-upgrade  ## create .venv, install, migrate the SQLite database, serve on :5000
	$(FLASK) run --host 127.0.0.1 --port 5000

# serve: production: migrate DATABASE_URL, then serve it with gunicorn. Mail is sent by a
# second process beside it, with the same environment (MAIL_SERVER, ...): run
#   $(FLASK) mail deliver          (until SIGTERM; one JSON line per attempt on stdout)
# under your process manager; on PostgreSQL several may run. See README "Mail through the outbox".
serve: install  ## production: migrate DATABASE_URL, then serve it with gunicorn (+ `flask mail deliver` beside it)
	@test -n "$$DATABASE_URL" || { echo "make serve: set DATABASE_URL (postgresql://...)" >&2; exit 2; }
	@echo "make serve: mail waits in the outbox until a deliverer runs: $(FLASK) mail deliver" >&2
	WEBAPP_ENV=$${WEBAPP_ENV:-production} $(FLASK) db upgrade
	WEBAPP_ENV=$${WEBAPP_ENV:-production} exec $(VENV)/bin/gunicorn -c python:webapp.gunicorn_conf wsgi:app

test: install  ## the whole suite, on SQLite and PostgreSQL, browser journeys included
	$(PY) -m pytest $(PYTEST_ARGS)

# The request-level tests and the replica tests once more, through a PgBouncer of their own in
# pool_mode = transaction (TEST_VIA_PGBOUNCER=1); the rest of the suite adds nothing there.
PGBOUNCER_TESTS ?= tests/test_auth.py tests/test_items.py tests/test_posts.py tests/test_admin.py tests/test_replicas.py tests/test_pgbouncer.py
test-pgbouncer: install  ## the PgBouncer pass (Debian's pgbouncer must be installed)
	TEST_VIA_PGBOUNCER=1 $(PY) -m pytest $(PGBOUNCER_TESTS) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy webapp

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

seed: db-upgrade
	$(FLASK) seed

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache tests/browser/screenshots

soak: install  ## fault and load run on PostgreSQL (SOAK_ARGS="--duration 60 --clients 32")
	$(PY) -m tests.soak.soak $(SOAK_ARGS)

# Private servers on free ports (tests/pgcluster.py); the shared PostgreSQL is never touched.
failover-drill: install  ## kill the primary under write load, promote its standby; sync, then async (DRILL_ARGS)
	$(PY) -m tests.failover.drill $(DRILL_ARGS)

# A primary, a streaming standby and PgBouncer on free ports, the app served on them, until Ctrl-C.
replica-demo: install  ## the app on a local primary + standby + PgBouncer; reads move to the replica
	$(PY) -m tests.replica_demo $(DEMO_ARGS)

bench: install  ## pages vs a raw-driver floor on PostgreSQL at 1M rows (BENCH_DATABASE_URL, BENCH_ARGS)
	$(PY) -m tests.bench.bench $(BENCH_ARGS)

bench-import: install  ## 100,000 users through the admin import beside a plain COPY, on PostgreSQL (BENCH_DATABASE_URL)
	$(PY) -m tests.bench.import_bench $(BENCH_IMPORT_ARGS)

online-migration: install  ## a migration on 1M items under load, safe or naive (BENCH_DATABASE_URL, ONLINE_MIGRATION_ARGS="--both")
	$(PY) -m tests.online_migration.run $(ONLINE_MIGRATION_ARGS)
