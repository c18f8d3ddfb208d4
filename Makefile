# edgepick: `make demo` and `make test` work from a fresh clone (they build what they need).
PYTHON ?= python3
UV_VERSION := 0.13.8
UV_HOME := build/uv
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SDK_WHEEL := build/wheels/workers_runtime_sdk-1.9.5-py3-none-any.whl
OBD_ARCHIVE := build/obd/obp-0.5.7.tar.gz
export WRANGLER_SEND_METRICS := false
# uv uses the machine's Python (never downloads one) and installs exactly what uv.lock says
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: conformance setup demo test lint typecheck unit bench clean dev dev-vars system-deps lock nats scale

setup: $(STAMP) $(NODE_STAMP) $(SDK_WHEEL) $(OBD_ARCHIVE)

# uv itself, pinned, in its own small virtualenv under build/ (never committed)
$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# every Python dependency (all extras) from the lock file, the project itself editable
$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV) sync --quiet --frozen --all-extras
	touch $(STAMP)

# refresh uv.lock on purpose (after changing a dependency in pyproject.toml)
lock: $(UV)
	$(UV) lock --upgrade

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# the current Python Workers SDK, run under Pyodide by tests/edge/test_pyodide.py
$(SDK_WHEEL): $(UV)
	$(UV_HOME)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps workers-runtime-sdk==1.9.5 -d build/wheels

# the Open Bandit Dataset sample ships inside obp's source archive (read, never installed)
$(OBD_ARCHIVE): $(UV)
	$(UV_HOME)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: --ignore-requires-python obp==0.5.7 -d build/obd

demo: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/edgepick demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: system-deps $(STAMP) $(NODE_STAMP) $(SDK_WHEEL) $(OBD_ARCHIVE)
	$(PY) -m pytest

test: lint typecheck unit

# the differential run against GrowthBook's JS SDK at full size: 15,000 conditions x 8 documents
conformance: $(STAMP) $(NODE_STAMP)
	EDGEPICK_DIFF_EXAMPLES=15000 $(PY) -m pytest -q tests/core/test_differential.py

bench: $(STAMP) $(NODE_STAMP) $(SDK_WHEEL)
	$(PY) bench/decide.py
	$(PY) bench/peers.py
	$(PY) bench/edge_pyodide.py
	$(PY) bench/exploration.py
	$(PY) bench/edge_vs_js.py
	$(PY) bench/edge_scaling.py
	$(PY) bench/ttfb.py

# NATS with JetStream for `edgepick lake serve` / `lake consume` (docs/scale.md): 127.0.0.1:4222,
# stream files under out/nats, every write fsynced; Ctrl-C stops it
nats: $(STAMP)
	mkdir -p out/nats
	printf 'listen: 127.0.0.1:4222\njetstream { store_dir: "%s", sync_interval: always }\n' \
		"$(CURDIR)/out/nats" > out/nats/nats.conf
	$(VENV)/bin/nats-server -c out/nats/nats.conf

# the origin at scale (docs/scale.md): lake rounds, incremental rounds, JetStream (minutes)
scale: $(STAMP)
	$(PY) bench/scale.py

# Debian packages the tests use, as command:package: wrk (load tests), chromium (the browser
# tests) and a Java runtime (Spark local mode). Installed when missing if we are root;
# otherwise make stops with the exact command to run.
SYSTEM_PACKAGES := wrk:wrk chromium:chromium java:default-jre-headless
system-deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do command -v $${p%%:*} >/dev/null || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; \
		fi; \
	fi

dev-vars:
	test -f .dev.vars || printf 'COOKIE_KEYS=dev:%s\nEVENTS_SECRET=%s\nPREVIEW_KEY=%s\nIDENTITY_KEY=%s\nHEALTH_KEY=%s\n' \
		$$(openssl rand -hex 16) $$(openssl rand -hex 16) $$(openssl rand -hex 16) \
		$$(openssl rand -hex 16) $$(openssl rand -hex 16) > .dev.vars

# the whole local loop in one command: the sample store (:8788), the collector (`edgepick serve`
# on :8790, store out/events.db, signing with .dev.vars' EVENTS_SECRET: wrangler.toml's
# COLLECTOR_URL) and the worker under wrangler dev (:8787); Ctrl-C stops all three. It serves
# the registry's live snapshot (out/registry) if there is one; FRESH=1: the fixture again
dev: setup dev-vars
	$(PY) -m cli.devstack $(if $(FRESH),--fresh)

clean:
	rm -rf $(VENV) node_modules out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
