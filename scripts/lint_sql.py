"""sqlfluff on the dbt project (dbt templater, rules in .sqlfluff), on a throwaway warehouse.

The dbt templater renders each model the way dbt compiles it, over a live connection: the date
spine of int_reporting_days queries stripe_raw.sync_runs while compiling, and
`is_incremental()` asks whether the model's table exists. A fresh warehouse holding only the
empty raw tables gives every model its first-build SQL, the same on every machine, and leaves
the user's state directory alone. Offline; run by `make lint` and `make test`.

Usage: .venv/bin/python scripts/lint_sql.py [sqlfluff lint arguments]  (default: dbt_project)
"""

from __future__ import annotations

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
        # every core lints (0: sqlfluff's "all CPUs"; the dbt templater still renders in the
        # main process): 137 s -> 83-98 s on 2 cores
        given = any(arg in ("-p", "--processes") or arg.startswith("--processes=")
                    for arg in paths)
        processes = [] if given else ["--processes", "0"]
        # the workers' shared-memory lock is reported as leaked at exit: noise, not a finding
        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
        environment["PYTHONWARNINGS"] = ",".join(
            w for w in (environment.get("PYTHONWARNINGS"), quiet) if w)
        return subprocess.call([str(sqlfluff), "lint", *processes, *paths], cwd=REPO_ROOT,
                               env=environment)


if __name__ == "__main__":
    sys.exit(main())
