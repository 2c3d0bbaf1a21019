"""Day boundaries are UTC whatever the host's local time zone (METRICS-SPEC: days in UTC).

dlt stores `_synced_at`, `observed_at` and the `sync_runs` times as `timestamp with time zone`,
and DuckDB takes its session time zone from the host. Unpinned, `date(finished_at)` is the
host's local day and a UTC instant compared with a naive timestamp shifts by the zone's
offset. By hand, for the scenario (last sync 2026-11-24 12:00 UTC):
- on a host in Pacific/Kiritimati (UTC+14) the last sync is on 2026-11-25 local time, so the
  reporting window gained a 2026-11-25 that does not exist in UTC (the marts differ);
- on a host in America/New_York (UTC-5) the marts must equal the UTC ones too.
With `TimeZone` pinned to UTC in profiles.yml, both equal the UTC build row for row.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.transform import build
from tests.dbt import raw_tables
from tests.dbt.scenario import build_scenario

MARTS = ("metrics_daily", "fct_mrr_daily", "fct_mrr_movements", "fct_revenue_daily",
         "fct_failed_payments_daily")
# The columns dlt writes as `timestamp with time zone` (pipelines/load.py).
ZONED_COLUMNS = {
    **{table: ("_synced_at",) for table in raw_tables.EXTRA_COLUMNS},
    "subscription_versions": ("_synced_at", "observed_at"),
    "sync_runs": ("window_start", "window_end", "started_at", "finished_at"),
}


def _build_scenario_as_dlt_types_it(home: Path) -> None:
    home.mkdir()
    build_scenario(home)
    with raw_tables.connect(home / "warehouse.duckdb") as con:
        con.execute("set TimeZone = 'UTC'")
        for table, columns in ZONED_COLUMNS.items():
            for column in columns:
                con.execute(f"alter table stripe_raw.{table} alter column {column} "
                            f"type timestamptz using timezone('UTC', {column})")


def _rows(home: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        columns = [name for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_name = ? and column_name <> 'built_as_of' order by column_name",
            [table]).fetchall()]
        return con.execute(
            f"select {', '.join(columns)} from marts.{table} order by all").fetchall()


@pytest.mark.e2e
def test_marts_are_identical_whatever_the_host_time_zone(tmp_path, monkeypatch):
    built = {}
    for zone in ("UTC", "Pacific/Kiritimati", "America/New_York"):
        home = tmp_path / zone.replace("/", "_")
        _build_scenario_as_dlt_types_it(home)
        monkeypatch.setenv("TZ", zone)
        build(home=home)
        built[zone] = home
    for table in MARTS:
        utc_rows = _rows(built["UTC"], table)
        assert utc_rows, table
        for zone in ("Pacific/Kiritimati", "America/New_York"):
            assert _rows(built[zone], table) == utc_rows, (zone, table)
