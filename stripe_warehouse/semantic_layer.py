"""MetricFlow's `mf` on a state directory's warehouse (dbt's semantic layer, issue 22;
docs/semantic-layer.md, dbt_project/models/marts/_semantic_layer.yml).

`mf` reads the semantic manifest at `<dbt project>/target/semantic_manifest.json` and has no
option for another place, while this project's dbt artifacts live in the state directory
(StateDir.dbt_target: every build's parse writes the manifest there). So a directory of the
state directory, `dbt/semantic-layer/`, stands in for the project: links to the repository's
dbt_project.yml and to the build's target directory. A DuckDB warehouse is queried through
the readers' copy (profiles.yml output `reporting`, read-only), so a query never holds the
lock that syncs and builds take; a PostgreSQL one on its server, as dbt reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import DBT_PROFILES_DIR, DBT_PROJECT_DIR, script_beside_python

MF_PROJECT_DIR = "semantic-layer"  # under StateDir.dbt
SEMANTIC_MANIFEST = "semantic_manifest.json"
READERS_OUTPUT = "reporting"  # profiles.yml: the readers' copy of a DuckDB warehouse


def mf_invocation(args: list[str], home: Path | StateDir) -> tuple[list[str], dict[str, str], Path]:
    """The command line, environment and working directory that run `mf <args>` on the
    warehouse of `home` (its last build's semantic manifest)."""
    state = StateDir.of(home)
    if not (state.dbt_target / SEMANTIC_MANIFEST).exists():
        raise WarehouseError(f"no semantic manifest in {state.dbt_target}: build the marts "
                             "first (`stripe-warehouse transform`, or a sync)")
    # as for dbt (stripe_warehouse.transform.dbt_invocation): profiles.yml finds the warehouse
    environment = {**state.target.dbt_process_env(os.environ), **state.dbt_env()}
    if not state.target.is_postgres:
        if not state.reporting.exists():
            raise WarehouseError(f"no published marts at {state.reporting}: build the marts "
                                 "first (`stripe-warehouse transform`, or a sync)")
        environment["DBT_TARGET"] = READERS_OUTPUT
    project = _stand_in_project(state)
    environment.update(DBT_PROJECT_DIR=str(project), DBT_PROFILES_DIR=str(DBT_PROFILES_DIR))
    return [*mf_executable(), *args], environment, project


def _stand_in_project(state: StateDir) -> Path:
    """`dbt/semantic-layer/` with its two links, each (re)made atomically: the target
    directory may be another than at the last call (DBT_TARGET_PATH)."""
    project = state.dbt / MF_PROJECT_DIR
    project.mkdir(parents=True, exist_ok=True)
    for name, points_to in (("dbt_project.yml", DBT_PROJECT_DIR / "dbt_project.yml"),
                            ("target", state.dbt_target)):
        link = project / name
        if link.is_symlink() and Path(os.readlink(link)) == points_to:
            continue
        fresh = project / f".{name}.{os.getpid()}"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(points_to)
        os.replace(fresh, link)
    return project


def mf_executable() -> list[str]:
    """The `mf` of this interpreter's environment (works without an activated venv)."""
    return script_beside_python("mf", "from dbt_metricflow.cli.main import cli; cli()")
