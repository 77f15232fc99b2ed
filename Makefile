# The two README commands: `make run` (set up, ingest seeds/, start the chatbot) and
# `make test` (set up, lint, run the whole test suite). Both are idempotent: the environment
# is rebuilt only when pyproject.toml changes, and seeds/ is reingested only by difference.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False
export GRADIO_ANALYTICS_ENABLED ?= False

.PHONY: install run ingest test test-quick lint bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 (pinned in pyproject) is the CPU wheel on this machine's disk.
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	touch $(STAMP)

ingest: install
	$(PY) -m ingest seeds/

run: ingest
	$(PY) -m chatbot $(ARGS)

lint: install
	$(PY) -m ruff check .

# The browser test drives Debian's Chromium (Playwright's own browser download is not
# available offline); install it when missing.
browser:
	command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint browser
	$(PY) -m pytest $(PYTEST_ARGS)

# While developing: the same without the tests marked slow (the 20-client load test, the
# crash, no-network and browser tests). `make test` and CI still run everything.
test-quick: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) bench/ingest_bench.py

clean:
	rm -rf .index .pytest_cache .ruff_cache
