# The front door. `make run` serves the API; `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test lint pytest test-guest chaos bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/vps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

# The libvirt driver's extra builds against libvirt's headers: installed from Debian's
# packages when we can (root with apt), otherwise its tests are skipped with a message.
$(VENV)/.dev: $(BIN)/vps
	$(BIN)/pip install --quiet -e '.[dev]'
	@pkg-config --exists libvirt 2>/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -qq --no-install-recommends libvirt-dev pkg-config >/dev/null 2>&1 || \
		  { apt-get update -qq && apt-get install -y -qq --no-install-recommends libvirt-dev pkg-config >/dev/null; }; }; } || true
	@if pkg-config --exists libvirt 2>/dev/null; then $(BIN)/pip install --quiet -e '.[dev,libvirt]'; \
	else echo "(no libvirt headers: install libvirt-dev and pkg-config to test the libvirt driver)"; fi
	@# The panel's browser tests drive Debian's headless Chromium (tests/browser).
	@[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
		  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }; }; } || \
		echo "(no Chromium: install chromium and chromium-driver to run the panel's browser tests)"
	@touch $@

run: $(BIN)/vps ## Set up and run the service (SQLite + simulated hypervisor) on 127.0.0.1:8000
	$(BIN)/vps serve

lint: $(VENV)/.dev ## ruff, mypy --strict and the layer contracts
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(VENV)/.dev ## The suite on SQLite, then on PostgreSQL if VPS_TEST_POSTGRES_URL is set (Redis tests: VPS_TEST_REDIS_URL)
	$(BIN)/pytest
	@if [ -n "$$VPS_TEST_POSTGRES_URL" ]; then \
		echo "== the same suite on PostgreSQL"; \
		VPS_TEST_DATABASE_URL="$$VPS_TEST_POSTGRES_URL" $(BIN)/pytest; \
	else \
		echo "(set VPS_TEST_POSTGRES_URL=postgresql://user@host/db to run it on PostgreSQL too)"; \
	fi

# Real guests: needs root and apt (installs libvirt and QEMU from Debian), else it says why
# it is skipped; VPS_TEST_GUESTS=required turns that skip into a failure (CI does).
test-guest: $(VENV)/.dev ## Real guests under libvirt (QEMU/TCG, KVM where it boots): tests/guest/README.md
	PYTHON=$(BIN)/python tests/guest/run.sh

test: lint pytest test-guest ## Set up and run every check

chaos: $(VENV)/.dev ## Kill workers at random under load and check every promise (see bench/chaos.py)
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

bench: $(VENV)/.dev ## wrk scenarios, scale to 1M servers, lifecycle throughput (bench/run.py)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache build src/*.egg-info
