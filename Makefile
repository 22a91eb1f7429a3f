# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create .venv and install the project (with its test tools) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Emulator + gateway on loopback, one MediaInfo job submitted over gRPC and printed; keeps serving.
demo: $(STAMP)
	$(BIN)/ci-gateway demo

# The whole suite: lint, types, then every test (the last line is pytest's summary).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Regenerate ci/ from protos/ (the test suite fails when they disagree).
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
