# The two commands: `make demo` and `make test`. Both start from a clean clone with only Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Scoring code gets its parallelism from processes; one BLAS thread each (see bench/README).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
HOST ?= 127.0.0.1
PORT ?= 8000
# The demos turn Django's debug pages on only while they listen on a loopback address;
# `DJANGO_DEBUG=false make demo` (or any other HOST) keeps them off. Debug is off otherwise.
DEMO_DEBUG := $(if $(DJANGO_DEBUG),$(DJANGO_DEBUG),$(if $(filter 127.0.0.1 localhost ::1,$(HOST)),true,false))
PYTEST_WORKERS ?= auto

.PHONY: demo demo-distributed test lint bench worker beat serve migrate install clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

STRIPE_PORT ?= 12111
DEMO_ITEMS ?= 600

# Every step of the demos uses the site's real address (SITE_URL: links in emails, webhooks,
# Stripe return links), also with another HOST or PORT, and writes its emails to files in
# demo-output/emails/ rather than into the terminal.
DEMO_EMAILS ?= demo-output/emails
DEMO_ENV = SITE_URL=http://$(HOST):$(PORT) EMAIL_FILE_PATH=$(DEMO_EMAILS)

demo: migrate
	@mkdir -p $(DEMO_EMAILS)
	$(DEMO_ENV) $(PY) manage.py simulate --seed 7 --items $(DEMO_ITEMS)
	$(DEMO_ENV) $(PY) manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: /api/v1/docs/, health: /healthz)"
	@echo "Emails are written to $(DEMO_EMAILS)/"
	@# The local Stripe-compatible server runs beside the site and stops with it.
	export $(DEMO_ENV); \
	  $(PY) manage.py stripe_local --port $(STRIPE_PORT) --balance 100000000 & \
	  STRIPE_PID=$$!; trap "kill $$STRIPE_PID 2>/dev/null" EXIT INT TERM; \
	  DJANGO_DEBUG=$(DEMO_DEBUG) $(PY) manage.py runserver $(HOST):$(PORT) --noreload

# The same simulation on PostgreSQL + Redis with a separate Celery worker: scoring runs fan
# their Shapley batches out over the worker. Needs the local PostgreSQL and Redis services.
DEMO_DB ?= marketplace_demo
DEMO_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/$(DEMO_DB)
demo-distributed: $(STAMP)
	psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$(DEMO_DB)'" | grep -q 1 \
	  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE $(DEMO_DB)"
	@mkdir -p var $(DEMO_EMAILS)
	export DATABASE_URL=$(DEMO_DATABASE_URL) REDIS_URL=redis://127.0.0.1:6379/0 \
	  CELERY_BROKER_URL=redis://127.0.0.1:6379/2 $(DEMO_ENV); \
	$(PY) manage.py migrate --no-input && \
	{ $(BIN)/celery -A marketplace worker --concurrency 2 --loglevel=WARNING & WORKER=$$!; \
	  $(PY) manage.py stripe_local --port $(STRIPE_PORT) --balance 100000000 & STRIPE_PID=$$!; \
	  trap "kill $$WORKER $$STRIPE_PID 2>/dev/null" EXIT INT TERM; \
	  $(PY) manage.py simulate --seed 7 --items $(DEMO_ITEMS) && $(PY) manage.py seed_demo && \
	  echo "Serving on http://$(HOST):$(PORT)/ (PostgreSQL + Redis + Celery worker)" && \
	  echo "Emails are written to $(DEMO_EMAILS)/" && \
	  DJANGO_DEBUG=$(DEMO_DEBUG) $(BIN)/gunicorn marketplace.wsgi --bind $(HOST):$(PORT) \
	    --workers 2 --threads 4; }

serve: migrate
	$(BIN)/gunicorn marketplace.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4

test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy marketplace contributors projects payouts scoring demo
	$(BIN)/lint-imports

bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[dev,bench]"
	$(PY) -m bench $(BENCH)

worker: $(STAMP)
	$(BIN)/celery -A marketplace worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A marketplace beat --loglevel=INFO

clean:
	rm -rf $(VENV) .venv-pydvl var staticfiles demo-output test-output
