# The same commands run locally and in CI (.ci/run calls `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when the project's metadata changes.
INSTALLED := $(VENV)/.installed

.PHONY: test lint typecheck pytest kafka-jars kafka run bench clean

test: lint typecheck pytest

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

kafka-jars: $(INSTALLED)
	$(BIN)/python -m tools.devkafka --fetch-only

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED) kafka-jars
	$(BIN)/pytest $(PYTEST_ARGS)

# A broker in the foreground on 127.0.0.1:9092, for trying things by hand.
kafka: kafka-jars
	$(BIN)/python -m tools.devkafka --port 9092

# Kafka (embedded, unless KAFKA_BOOTSTRAP_SERVERS is set), topics, ingest on 127.0.0.1:8080 and
# one processor, in the foreground; Ctrl-C stops everything.
run: $(INSTALLED)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then $(BIN)/python -m tools.devkafka --fetch-only; fi
	$(BIN)/python -m tools.devkafka.stack

# Throughput figures, each against a baseline measured in the same run (see README).
bench: $(INSTALLED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
