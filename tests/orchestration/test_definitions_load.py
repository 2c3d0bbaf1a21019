"""Loading the Dagster definitions does no work: no subprocess, no file written, no dlt pipeline.

`dagster dev`, the daemon, every run worker and the CLI's in-process runs import
``orchestration.definitions``; work at import time would run on each of them.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dlt
from dagster_dlt import build_dlt_asset_specs

from orchestration.assets import RAW_TABLE_SPECS
from orchestration.resources import dbt_project
from orchestration.translators import StripeDltTranslator, raw_table_key
from pipelines.source import RAW_TABLES, stripe_source
from stripe_warehouse.state_dir import HOME_ENV, StateDir
from stripe_warehouse.transform import DAGSTER_TARGET
from tests.paths import REPO_ROOT

# Run in a fresh interpreter. croniter (imported by dagster) asks platform.architecture() whether
# it runs on 32 bits, which runs `file` on the interpreter: answered here, so that any process
# started after it is the definitions' own, and fails the import.
IMPORT_WITHOUT_PROCESSES = """
import platform, subprocess
platform.architecture = lambda *args, **kwargs: ("64bit", "ELF")
def refuse(*args, **kwargs):
    raise AssertionError(f"a process was started while the definitions loaded: {args[:1]}")
subprocess.Popen = refuse
import orchestration.definitions
print("loaded", len(orchestration.definitions.defs.resolve_asset_graph().get_all_asset_keys()))
"""


def _files(*roots: Path) -> dict[str, tuple[int, float]]:
    """Every file and directory under ``roots``: size and modification time."""
    seen = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            info = path.stat()
            seen[str(path)] = (info.st_size, info.st_mtime)
    return seen


def test_importing_the_definitions_starts_no_process_and_writes_no_file(tmp_path: Path) -> None:
    """A state directory whose Dagster manifest is current (copied from this process's, so
    newer than the project's files): a fresh interpreter imports the definitions with every
    process start refused, and nothing under the state directory, the user's home (dlt writes
    ``~/.dlt``) or the working directory changes."""
    state = StateDir.resolve(tmp_path / "state").create()
    target = state.dbt / DAGSTER_TARGET
    target.mkdir(parents=True)
    for name in ("manifest.json", "partial_parse.msgpack"):
        shutil.copy(dbt_project.manifest_path.with_name(name), target / name)
    user_home, cwd = tmp_path / "user", tmp_path / "cwd"
    user_home.mkdir()
    cwd.mkdir()
    before = _files(state.root, user_home, cwd)
    environment = {**os.environ, HOME_ENV: str(state.root), "HOME": str(user_home),
                   "PYTHONPATH": str(REPO_ROOT), "DAGSTER_HOME": str(state.dagster)}
    loaded = subprocess.run([sys.executable, "-c", IMPORT_WITHOUT_PROCESSES], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.startswith("loaded ")
    assert _files(state.root, user_home, cwd) == before


def test_raw_table_specs_are_the_ones_dagster_dlt_makes_of_the_source() -> None:
    """The specs are written from the table names so that no dlt source or pipeline is built on
    import; they must stay what dagster-dlt's translator makes of the real source (keys, group,
    kinds, table metadata), less the source and pipeline objects it attaches."""
    source = stripe_source("asset_specs", reader=None, kind="refresh")  # type: ignore[arg-type]
    pipeline = dlt.pipeline(pipeline_name="stripe_asset_specs", destination="duckdb",
                            dataset_name="stripe_raw")
    expected = {
        spec.key: (spec.group_name, spec.kinds, spec.description, spec.deps,
                   {k: v for k, v in spec.metadata.items() if not k.startswith("dagster_dlt/")})
        for spec in build_dlt_asset_specs(source, pipeline, StripeDltTranslator())
    }
    written = {
        spec.key: (spec.group_name, spec.kinds, spec.description, spec.deps, dict(spec.metadata))
        for spec in RAW_TABLE_SPECS if spec.key != raw_table_key("sync_runs")
    }
    assert set(written) == {raw_table_key(table) for table in RAW_TABLES}
    assert written == expected
