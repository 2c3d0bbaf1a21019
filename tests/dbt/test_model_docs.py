"""The dbt docs describe what the models build: every column users or the next model read has a
description, none describes a column that is gone, and every file they point to exists here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from tests.paths import REPO_ROOT

DOCUMENTED_SCHEMAS = ("intermediate", "marts")
# a path a description or a model comment names: docs/metrics-spec.md, macros/fx.sql, ...
FILE_REFERENCE = re.compile(r"[\w./-]*/[\w.-]+\.(?:md|py|sql|csv|yml|json)\b")


def model_columns(manifest: dict) -> dict[str, dict[str, str]]:
    """Documented columns of each intermediate and mart model: {model: {column: description}}."""
    return {node["name"]: {name: column["description"].strip()
                           for name, column in node["columns"].items()}
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["schema"] in DOCUMENTED_SCHEMAS}


def built_columns(warehouse: Path, models: set[str]) -> dict[str, list[str]]:
    """The columns each model's table or view has in a built warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name from information_schema.columns "
            f"where table_schema in {DOCUMENTED_SCHEMAS} order by ordinal_position").fetchall()
    built: dict[str, list[str]] = {}
    for table, column in rows:
        if table in models:
            built.setdefault(table, []).append(column)
    return built


def test_every_intermediate_and_mart_column_is_documented_and_exists(
    scenario_home: Path, dbt_target_path: Path
) -> None:
    documented = model_columns(json.loads((dbt_target_path / "manifest.json").read_text()))
    built = built_columns(scenario_home / "warehouse.duckdb", set(documented))
    assert set(built) == set(documented)  # every model was built by the scenario
    undocumented = {model: [c for c in columns if not documented[model].get(c)]
                    for model, columns in built.items()}
    stale = {model: sorted(set(docs) - set(built[model])) for model, docs in documented.items()}
    assert {m: c for m, c in undocumented.items() if c} == {}
    assert {m: c for m, c in stale.items() if c} == {}


def test_files_named_by_the_dbt_project_exist_in_the_repository() -> None:
    named: dict[str, set[str]] = {}
    for path in (REPO_ROOT / "dbt_project").rglob("*"):
        if path.suffix in {".sql", ".yml", ".md"} and "target" not in path.parts:
            for reference in FILE_REFERENCE.findall(path.read_text()):
                named.setdefault(reference, set()).add(path.name)
    assert "docs/metrics-spec.md" in named
    missing = {reference: sorted(files) for reference, files in named.items()
               if not ((REPO_ROOT / reference).exists()
                       or (REPO_ROOT / "dbt_project" / reference).exists())}
    outside = sorted(r for r in named if r.startswith(("/", "../")))
    assert missing == {} and outside == []
