# Refrain: `make run` serves the demo, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test install install-dev bench lint format clean-var

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: export REFRAIN_HOST = $(HOST)
run: export REFRAIN_PORT = $(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Refrain is starting on http://$(HOST):$(PORT)/"
	@echo "  Demo logins (password: refrain-demo):"
	@echo "    indie@example.com    independent artist"
	@echo "    signed@example.com   label-signed artist"
	@echo "    auditor@example.com  staff, auditors (read-only)"
	@echo "    admin@example.com    superuser, policy-admins"
	@echo "  E-mails are written to var/mail/. Press Ctrl-C to stop."
	@echo ""
	$(BIN)/python -m config.procfile Procfile

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suite twice, so every change exercises both write paths: on PostgreSQL
# and Redis with Chromium (the embedded default when they are unreachable,
# unless REQUIRE_SERVICES=1), then on the embedded default even when they are
# reachable, without the tests that need PostgreSQL or a browser.
EMBEDDED_PASS := not postgres and not browser

test: install-dev lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	@echo "== make test: pass 1 of 2, PostgreSQL + Redis + Chromium"
	REFRAIN_TEST_STACK=auto $(BIN)/pytest
	@echo "== make test: pass 2 of 2, embedded (SQLite + filesystem broker)"
	REFRAIN_TEST_STACK=embedded $(BIN)/pytest -m "$(EMBEDDED_PASS)"

bench: install-dev
	$(BIN)/python bench/run.py

clean-var:
	rm -rf var/
