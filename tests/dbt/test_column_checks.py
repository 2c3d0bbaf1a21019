"""`column_checks`: a model's not-null and non-negative rules, one test node per model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.transform import TransformError, run_dbt

MODEL = "int_subscription_item_mrr_daily"


def test_a_null_key_and_a_negative_amount_fail_the_check_naming_both_columns(
    scenario_home: Path, dbt_target_path: Path, tmp_path: Path
) -> None:
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        table = f"intermediate.{MODEL}"
        con.execute(f"insert into {table} select * replace (null as subscription_item_id) "
                    f"from {table} limit 1")
        con.execute(f"insert into {table} select * replace (-1.0 as gross_mrr) "
                    f"from {table} limit 1")

    with pytest.raises(TransformError, match=f"column_checks_{MODEL}"):
        run_dbt(["test", "--select", f"{MODEL},test_name:column_checks"], home=tmp_path)

    # the failing rows name the rule and the column
    results = json.loads((dbt_target_path / "run_results.json").read_text())["results"]
    (failed,) = [r for r in results if r["status"] == "fail"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        failures = con.execute(failed["compiled_code"]).fetchall()
    assert sorted(failures) == [("non_negative", "gross_mrr", 1),
                                ("not_null", "subscription_item_id", 1)]


def test_the_check_passes_on_the_built_scenario(scenario_home: Path, tmp_path: Path) -> None:
    shutil.copy(scenario_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    run_dbt(["test", "--select", "test_name:column_checks"], home=tmp_path)
