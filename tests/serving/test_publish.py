"""Publishing the marts: the readers' copy equals the warehouse, rewriting only rebuilt days."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import pytest

from stripe_warehouse.publish import publication, publish_marts

BUILD_1 = dt.datetime(2026, 11, 20, 6)
BUILD_2 = dt.datetime(2026, 11, 24, 6)


def _warehouse(home: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("create schema if not exists marts")
    return con


def _day_rows(project: str, first: dt.date, days: int, value: float, built: dt.datetime):
    return [(project, first + dt.timedelta(days=i), value, built) for i in range(days)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A warehouse with a day-grained mart (two projects, 30 days), a small table and a view."""
    with _warehouse(tmp_path) as con:
        con.execute("create table marts.fct_daily (project_id varchar, metric_date date, "
                    "mrr double, built_as_of timestamp)")
        rows = (_day_rows("acme", dt.date(2026, 10, 25), 30, 10.0, BUILD_1)
                + _day_rows("globex", dt.date(2026, 10, 25), 30, 5.0, BUILD_1))
        con.executemany("insert into marts.fct_daily values (?, ?, ?, ?)", rows)
        con.execute("create table marts.dim_small as select 1 as id")
        con.execute("create view marts.v_totals as "
                    "select project_id, sum(mrr) as mrr from marts.fct_daily group by 1")
    publish_marts(tmp_path)
    return tmp_path


def _published(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _assert_copy_equals_warehouse(home: Path) -> None:
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        con.execute(f"attach '{home / 'warehouse.duckdb'}' as w (read_only)")
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = 'w' and table_schema = 'marts'").fetchall()]
        for name in tables:
            copy, source = f"marts.{name}", f"w.marts.{name}"
            for a, b in ((copy, source), (source, copy)):
                extra = con.execute(f"select count(*) from (from {a} except all from {b})")
                assert extra.fetchone()[0] == 0, f"{name} differs"


def test_first_publish_copies_tables_and_turns_views_into_tables(home: Path) -> None:
    _assert_copy_equals_warehouse(home)
    kinds = dict(_published(home, "select table_name, table_type from information_schema.tables "
                                  "where table_schema = 'marts'"))
    assert kinds == {"fct_daily": "BASE TABLE", "dim_small": "BASE TABLE",
                     "v_totals": "BASE TABLE"}


def test_a_refresh_rewrites_only_the_days_the_build_rebuilt(home: Path) -> None:
    # A reader's copy of an old day that the build did not touch: left as published. (It is
    # tampered with here only to see which rows the publish rewrote.)
    with duckdb.connect(str(home / "reporting.duckdb")) as con:
        con.execute("update marts.fct_daily set mrr = -1 where metric_date = '2026-10-25'")
    with _warehouse(home) as con:  # the build rewrote acme's last 8 days, one more day added
        con.execute("delete from marts.fct_daily where project_id = 'acme' "
                    "and metric_date >= '2026-11-16'")
        con.executemany("insert into marts.fct_daily values (?, ?, ?, ?)",
                        _day_rows("acme", dt.date(2026, 11, 16), 9, 12.0, BUILD_2))
    publish_marts(home)
    assert _published(home, "select count(*) from marts.fct_daily where mrr = -1") == [(2,)]
    recent = _published(home, "select min(mrr), max(mrr), count(*) from marts.fct_daily "
                              "where project_id = 'acme' and metric_date >= '2026-11-16'")
    assert recent == [(12.0, 12.0, 9)]
    assert _published(home, "select mrr from marts.v_totals where project_id = 'acme'") == [
        (22 * 10.0 + 9 * 12.0,)]


def test_a_project_removed_from_the_warehouse_is_removed_from_the_copy(home: Path) -> None:
    with _warehouse(home) as con:
        con.execute("delete from marts.fct_daily where project_id = 'globex'")
    publish_marts(home)
    _assert_copy_equals_warehouse(home)
    assert _published(home, "select distinct project_id from marts.fct_daily") == [("acme",)]


def test_expired_days_and_new_columns_are_copied_whole(home: Path) -> None:
    with _warehouse(home) as con:  # retention dropped acme's first 10 days
        con.execute("delete from marts.fct_daily where project_id = 'acme' "
                    "and metric_date < '2026-11-04'")
    publish_marts(home)
    _assert_copy_equals_warehouse(home)
    with _warehouse(home) as con:  # an upgraded model gained a column
        con.execute("alter table marts.fct_daily add column arr double")
        con.execute("update marts.fct_daily set arr = 12 * mrr")
        con.execute("drop table marts.dim_small")
    publish_marts(home)
    _assert_copy_equals_warehouse(home)
    assert _published(home, "select count(*) from information_schema.tables "
                            "where table_name = 'dim_small'") == [(0,)]


def test_an_unreadable_previous_copy_is_replaced(home: Path) -> None:
    (home / "reporting.duckdb").write_bytes(b"not a database")
    publish_marts(home)
    _assert_copy_equals_warehouse(home)


def test_a_full_rebuild_is_published_whole(home: Path) -> None:
    # A full rebuild after replacing the FX table changes old days but keeps their built_as_of
    # (the last sync), so the day-by-day update alone cannot see them.
    with _warehouse(home) as con:
        con.execute("update marts.fct_daily set mrr = mrr * 1.1")
    publish_marts(home)
    assert _published(home, "select max(mrr) from marts.fct_daily") == [(10.0,)]
    publish_marts(home, whole=True)
    _assert_copy_equals_warehouse(home)


def _copies_in_progress(home: Path) -> list[Path]:
    return sorted(home.glob(".publishing-*"))


def test_the_copy_runs_during_the_build_and_the_build_s_changes_are_published(
    home: Path,
) -> None:
    published_bytes = (home / "reporting.duckdb").read_bytes()
    with publication(home) as publish:
        # the byte copy of the published file starts before the build ends, not after it
        deadline = time.monotonic() + 10
        while not (_copies_in_progress(home) and
                   _copies_in_progress(home)[0].read_bytes() == published_bytes):
            assert time.monotonic() < deadline, "the copy did not start during the build"
            time.sleep(0.01)
        with _warehouse(home) as con:  # the build, after the copy started
            con.executemany("insert into marts.fct_daily values (?, ?, ?, ?)",
                            _day_rows("acme", dt.date(2026, 11, 24), 1, 12.0, BUILD_2))
        publish()
    _assert_copy_equals_warehouse(home)
    assert _copies_in_progress(home) == []


def test_a_failed_build_leaves_the_published_copy_as_it_was(home: Path) -> None:
    before = _published(home, "select count(*), sum(mrr) from marts.fct_daily")
    with pytest.raises(RuntimeError, match="dbt failed"):
        with publication(home):
            with _warehouse(home) as con:
                con.execute("update marts.fct_daily set mrr = 0")
            raise RuntimeError("dbt failed")
    assert _published(home, "select count(*), sum(mrr) from marts.fct_daily") == before
    assert _copies_in_progress(home) == []
