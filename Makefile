# The two commands a newcomer needs: `make demo` and `make test`. Each creates the virtualenv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-extended test-fast lint bench clean chromium

# uv installs the locked packages (the same set pip would), bytecode compiled, in ~30 s where
# pip took ~140 s on this 2-core machine: it fetches in parallel. It comes from the registry.
UV_VERSION := 0.13.10

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Browser tests drive Debian's headless Chromium (Playwright's own browser download fails offline).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(STAMP)
	$(BIN)/stripe-warehouse demo

# Two workers, one test module each at a time (--dist loadfile keeps a module's fixtures in one
# process): the suite is mostly dbt builds and sandbox HTTP. tests/scheduling.py orders the units
# (slowest first) and groups the change modules. `make test PYTEST_PARALLEL=` runs it in one
# process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

# `make test`: the linters, then the suite but for the scenario modules' PostgreSQL variants
# (marker `extended`, tests/scheduling.py), which `make test-extended` runs; CI runs both.
# On a fresh machine Debian's chromium downloads and unpacks while the virtualenv installs and
# the linters run (-j2: mostly waiting on the network and the disk, not on both cores).
test:
	$(MAKE) --no-print-directory -j2 lint chromium
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not extended"

test-extended: $(STAMP)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m extended

test-fast: $(STAMP)
	$(BIN)/pytest -m "not e2e and not browser"

# ruff on the Python; lint-imports: the layers of docs/architecture.md ([tool.importlinter] in
# pyproject.toml); sqlfluff (dbt templater, .sqlfluff) on the dbt models, ~1 min offline.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/lint_sql.py

clean:
	rm -rf $(VENV) data .pytest_cache dbt_project/target dbt_project/logs
