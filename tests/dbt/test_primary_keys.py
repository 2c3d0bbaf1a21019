"""`primary_key`: each staging model's key is never null and unique (one test node per model).

The scenario build (conftest's `scenario_home`, a real `dbt build`) runs every one of them, so
the keys hold there; this module proves that a broken key fails its model's test and names it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.transform import TransformError, run_dbt

CUSTOMERS_KEY = "primary_key_stg_stripe__customers_project_id__customer_id"
CHARGES_KEY = "primary_key_stg_stripe__charges_project_id__charge_id"


def test_every_staging_model_has_a_primary_key_test(
    scenario_home: Path, dbt_target_path: Path
) -> None:
    """The manifest of the scenario build attaches one primary_key test to each staging model."""
    manifest = json.loads((dbt_target_path / "manifest.json").read_text())
    staging = {node["name"] for node in manifest["nodes"].values()
               if node["resource_type"] == "model" and node["name"].startswith("stg_")}
    tested = {node["attached_node"].split(".")[-1] for node in manifest["nodes"].values()
              if node["resource_type"] == "test"
              and node.get("test_metadata", {}).get("name") == "primary_key"}
    assert staging and tested == staging


def test_a_duplicated_key_and_a_null_key_fail_their_models_tests(
    scenario_home: Path, dbt_target_path: Path, tmp_path: Path
) -> None:
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        (project_id, customer_id), = con.execute(
            "select project_id, customer_id from staging.stg_stripe__customers "
            "order by customer_id limit 1").fetchall()
        con.execute("insert into staging.stg_stripe__customers "
                    "select * from staging.stg_stripe__customers where customer_id = ?",
                    [customer_id])
        con.execute("insert into staging.stg_stripe__charges select * replace "
                    "(null as charge_id) from staging.stg_stripe__charges limit 1")

    with pytest.raises(TransformError, match="primary_key_stg_stripe__"):
        run_dbt(["test", "--select", "test_name:primary_key"], home=tmp_path)

    results = json.loads((dbt_target_path / "run_results.json").read_text())["results"]
    failed = {r["unique_id"].split(".")[2]: r for r in results if r["status"] == "fail"}
    assert set(failed) == {CUSTOMERS_KEY, CHARGES_KEY}
    # the failing rows name the key and the rule it breaks
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        duplicated = con.execute(failed[CUSTOMERS_KEY]["compiled_code"]).fetchall()
        null_key = con.execute(failed[CHARGES_KEY]["compiled_code"]).fetchall()
    assert duplicated == [(project_id, customer_id, 2, "duplicate key")]
    assert [(charge_id, rule) for _, charge_id, _, rule in null_key] == [(None, "null in key")]
