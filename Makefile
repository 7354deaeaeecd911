# piwarden — the two commands a newcomer needs: `make run` and `make test`.

SHELL := /bin/bash
# The first interpreter that really is 3.12+ (a pyenv shim may exist and still fail).
PYTHON ?= $(shell for c in python3.12 python3.13 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	"$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$c"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
UV := UV_PYTHON_DOWNLOADS=never $(BIN)/uv
# `make run` installs what the site needs to run; `make test` (and `make install`) adds the dev
# group: pytest, mypy, ruff, Playwright, stubs, aiosmtpd.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
LOCALE := src/piwarden/locale/zh_Hans/LC_MESSAGES
PYTEST_ARGS ?= -n 2 --duty-report=var/duty-report.md --duty-json=var/duty-report.json

.PHONY: run test lint types unit bench bench-rights install install-run venv messages clean

venv:
	@test -n "$(PYTHON)" || { echo "piwarden needs Python 3.12+ and none was found; set PYTHON=/path/to/python3.12"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8

$(STAMP_RUN): pyproject.toml uv.lock
	@$(MAKE) --no-print-directory venv
	$(UV) sync --frozen --inexact --no-dev --python $(BIN)/python
	@touch $(STAMP_RUN)

$(STAMP_DEV): pyproject.toml uv.lock
	@$(MAKE) --no-print-directory venv
	$(UV) sync --frozen --inexact --python $(BIN)/python
	@touch $(STAMP_DEV) $(STAMP_RUN)

install-run: $(STAMP_RUN) messages
install: $(STAMP_DEV) messages

# Compiled translations are build output, made from the committed .po file.
messages: $(LOCALE)/django.mo
$(LOCALE)/django.mo: $(LOCALE)/django.po
	msgfmt --check --output-file=$@ $<

run: install-run
	$(BIN)/piwarden serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy src

unit: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint types unit

bench: install
	$(BIN)/python bench/consultation.py
	$(BIN)/python bench/audit.py

# Issue 7's rights benchmark on a demo database of 1,000,000 people and 10,000,000 activity rows
# (about 45 minutes here, 40 of them filling: not part of `make bench`).  RIGHTS_BENCH_ARGS="--persons 10000" for a smaller one;
# DATABASE_URL=postgres://…/EMPTY_DB for PostgreSQL.
RIGHTS_BENCH_ARGS ?= --persons 1000000 --activity 10000000
bench-rights: install
	$(BIN)/python bench/rights.py $(RIGHTS_BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
