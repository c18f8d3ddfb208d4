# edgepick: `make demo` and `make test` work from a fresh clone (they build what they need).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SDK_WHEEL := build/wheels/workers_runtime_sdk-1.9.5-py3-none-any.whl
OBD_ARCHIVE := build/obd/obp-0.5.7.tar.gz
export WRANGLER_SEND_METRICS := false

.PHONY: setup demo test lint typecheck unit bench clean dev dev-vars system-deps

setup: $(STAMP) $(NODE_STAMP) $(SDK_WHEEL) $(OBD_ARCHIVE)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# the current Python Workers SDK, run under Pyodide by tests/edge/test_pyodide.py
$(SDK_WHEEL): $(STAMP)
	$(PY) -m pip download --quiet --no-deps workers-runtime-sdk==1.9.5 -d build/wheels

# the Open Bandit Dataset sample ships inside obp's source archive (read, never installed)
$(OBD_ARCHIVE): $(STAMP)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: --ignore-requires-python obp==0.5.7 -d build/obd

demo: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/edgepick demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) $(NODE_STAMP) $(SDK_WHEEL) $(OBD_ARCHIVE)
	$(PY) -m pytest

test: lint typecheck unit

bench: $(STAMP) $(NODE_STAMP) $(SDK_WHEEL)
	$(PY) bench/decide.py
	$(PY) bench/peers.py
	$(PY) bench/edge_pyodide.py

# Debian packages the tests use: wrk (load tests) and chromium (the report's browser test).
system-deps:
	@missing=""; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

dev-vars:
	test -f .dev.vars || printf 'COOKIE_KEYS=dev:%s\nEVENTS_SECRET=%s\nPREVIEW_KEY=%s\nIDENTITY_KEY=%s\n' \
		$$(openssl rand -hex 16) $$(openssl rand -hex 16) $$(openssl rand -hex 16) \
		$$(openssl rand -hex 16) > .dev.vars

dev: setup dev-vars
	$(PY) -m compile.devstack

clean:
	rm -rf $(VENV) node_modules out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
