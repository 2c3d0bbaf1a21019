"""sqlfluff on the dbt project (dbt templater, rules in .sqlfluff), on a throwaway warehouse.

The dbt templater renders each model the way dbt compiles it, over a live connection: the date
spine of int_reporting_days queries stripe_raw.sync_runs while compiling, and
`is_incremental()` asks whether the model's table exists. A fresh warehouse holding only the
empty raw tables gives every model its first-build SQL, the same on every machine, and leaves
the user's state directory alone. Offline; run by `make lint` and `make test`.

Usage: .venv/bin/python scripts/lint_sql.py [sqlfluff lint arguments]  (default: dbt_project)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipelines.load import ensure_warehouse  # noqa: E402
from stripe_warehouse.state_dir import WAREHOUSE_FILE  # noqa: E402
from stripe_warehouse.transform import dbt_invocation  # noqa: E402


def main() -> int:
    """Lints the given paths (default: the whole dbt project); sqlfluff's exit code."""
    with tempfile.TemporaryDirectory(prefix="sql-lint-") as home:
        ensure_warehouse(Path(home) / WAREHOUSE_FILE)
        _, environment = dbt_invocation([], home=Path(home))  # dbt's state dirs under `home`
        sqlfluff = Path(sys.executable).with_name("sqlfluff")
        paths = sys.argv[1:] or ["dbt_project"]
        # one process per core: 137 s -> 89 s on 2 cores (each compiles the dbt project once)
        processes = [] if "--processes" in paths else ["--processes", str(os.cpu_count() or 1)]
        # the workers' shared-memory lock is reported as leaked at exit: noise, not a finding
        environment["PYTHONWARNINGS"] = "ignore::UserWarning:multiprocessing.resource_tracker"
        return subprocess.call([str(sqlfluff), "lint", *processes, *paths], cwd=REPO_ROOT,
                               env=environment)


if __name__ == "__main__":
    sys.exit(main())
