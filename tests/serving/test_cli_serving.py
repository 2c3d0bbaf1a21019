"""`stripe-warehouse metrics` and `report` as a user runs them, against the published marts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from stripe_warehouse.publish import published_path

from .conftest import PROJECT, BuiltWarehouse


def _cli(built: BuiltWarehouse, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRIPE_WAREHOUSE_HOME": str(built.home)}
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


@pytest.mark.e2e
def test_metrics_json_equals_metrics_daily_for_the_chosen_day(built: BuiltWarehouse) -> None:
    with duckdb.connect(str(published_path(built.home)), read_only=True) as con:
        day, expected = con.execute(
            "select metric_date, map(list(metric), list(cast(value as double))) "
            "from marts.metrics_daily "
            "where project_id = ? group by metric_date order by metric_date desc limit 1 offset 10",
            [PROJECT],
        ).fetchone()
    result = _cli(built, "metrics", PROJECT, "--date", day.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["date"] == day.isoformat()
    assert {m["metric"]: m["value"] for m in payload["metrics"]} == pytest.approx(dict(expected))
    assert len(payload["metrics"]) == 6


@pytest.mark.e2e
def test_metrics_for_unknown_project_or_empty_day_fail_with_one_line(built: BuiltWarehouse) -> None:
    unknown = _cli(built, "metrics", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "stripe-warehouse status" in unknown.stderr
    empty = _cli(built, "metrics", PROJECT, "--date", "2001-01-01")
    assert empty.returncode == 2 and "pick a day inside the synced window" in empty.stderr
    bad = _cli(built, "metrics", PROJECT, "--date", "yesterday")
    assert bad.returncode == 2 and "use YYYY-MM-DD" in bad.stderr


@pytest.mark.e2e
def test_report_command_writes_a_self_contained_page(built: BuiltWarehouse) -> None:
    out = built.home / "cli-report.html"
    result = _cli(built, "report", PROJECT, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 6
