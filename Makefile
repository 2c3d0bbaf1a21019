# The two commands a newcomer needs: `make demo` and `make test`. Each creates the virtualenv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-extended test-fast lint bench clean chromium

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
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
test: lint chromium
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
