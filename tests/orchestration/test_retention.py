"""Retention deletes what a tier no longer keeps and nothing that today's numbers need."""

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipelines.retention import apply_retention, retention_cutoff
from stripe_warehouse.errors import WarehouseError

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
COMMON = ("project_id varchar not null, id varchar not null, created bigint, livemode boolean, "
          "data json, api_version varchar, _synced_at timestamp")
EXTRA = {
    "customers": ", deleted boolean", "subscriptions": "",
    "subscription_items": ", subscription varchar",
    "invoices": "", "invoice_lines": ", invoice varchar", "charges": "", "refunds": "",
    "disputes": "", "credit_notes": "", "prices": "", "products": "", "coupons": "",
    "events": ", type varchar",
    "subscription_versions": ", version_hash varchar, observed_at timestamp, source varchar",
}
RAW_TABLES = [*EXTRA, "sync_runs"]


def ago(days: float) -> int:
    return int((NOW - dt.timedelta(days=days)).timestamp())


def naive(days_ago: float) -> dt.datetime:
    return (NOW - dt.timedelta(days=days_ago)).replace(tzinfo=None)


def insert(con, table: str, project: str, obj: dict, *extra) -> None:
    values = [project, obj["id"], obj.get("created"), False, json.dumps(obj), "x", naive(0), *extra]
    con.execute(f"insert into stripe_raw.{table} values ({', '.join('?' * len(values))})", values)


def add_project_rows(con, project: str) -> None:
    """One project's rows, named for what each tier should do with them."""
    subs = {
        "sub_current_annual": {"created": ago(300), "latest_invoice": {"id": "in_annual"}},
        "sub_ended_100d": {"created": ago(200), "ended_at": ago(100), "latest_invoice": "in_60d"},
        "sub_ended_10d": {"created": ago(40), "ended_at": ago(10)},
        "sub_ended_1d": {"created": ago(50), "ended_at": ago(1)},
    }
    for sub_id, fields in subs.items():
        insert(con, "subscriptions", project, {"id": sub_id, **fields})
        item = {"id": f"si_{sub_id}", "created": fields["created"]}
        insert(con, "subscription_items", project, item, sub_id)
    # (invoice, created days ago, line period end days ago; negative = in the future)
    for invoice, created, period_end in [("in_annual", 200, -165), ("in_60d", 60, 35),
                                         ("in_10d", 10, 5), ("in_1d", 1, -29)]:
        insert(con, "invoices", project, {"id": invoice, "created": ago(created)})
        insert(con, "invoice_lines", project,
               {"id": f"il_{invoice}", "created": ago(created), "period": {"end": ago(period_end)}},
               invoice)
    for table in ("charges", "refunds", "disputes", "credit_notes", "events"):
        for days in (60, 10, 1):
            extra = ("invoice.paid",) if table == "events" else ()
            insert(con, table, project, {"id": f"{table}_{days}d", "created": ago(days)}, *extra)
    for table in ("customers", "prices", "products", "coupons"):
        extra = (False,) if table == "customers" else ()
        insert(con, table, project, {"id": f"{table}_400d", "created": ago(400)}, *extra)
    for sub_id, days in [("sub_current_annual", 300), ("sub_current_annual", 100),
                         ("sub_current_annual", 10), ("sub_current_annual", 1),
                         ("sub_ended_100d", 150)]:
        insert(con, "subscription_versions", project, {"id": sub_id, "created": ago(300)},
               f"h{days}", naive(days), "sync")
    con.execute("insert into stripe_raw.sync_runs values (?, 'r1', 'backfill', ?, ?, ?, ?, "
                "'succeeded', 1, 'x', true)",
                [project, naive(90), naive(0), naive(0), naive(0)])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema stripe_raw")
    for table, extra in EXTRA.items():
        con.execute(f"create table stripe_raw.{table} ({COMMON}{extra})")
    con.execute("create table stripe_raw.sync_runs (project_id varchar, run_id varchar, "
                "kind varchar, window_start timestamp, window_end timestamp, started_at timestamp, "
                "finished_at timestamp, status varchar, objects_loaded bigint, "
                "api_version varchar, test_mode boolean)")
    add_project_rows(con, "acme")
    add_project_rows(con, "other")
    con.close()
    return tmp_path


def ids(home: Path, table: str, project: str = "acme") -> set[str]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        column = "run_id" if table == "sync_runs" else "id"
        rows = con.execute(f"select {column} from stripe_raw.{table} where project_id = ?",
                           [project]).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def snapshot(home: Path, project: str) -> dict[str, set[str]]:
    return {table: ids(home, table, project) for table in RAW_TABLES}


def versions(home: Path) -> set[str]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    rows = con.execute("select version_hash from stripe_raw.subscription_versions "
                       "where project_id = 'acme'").fetchall()
    con.close()
    return {r[0] for r in rows}


def window_start(home: Path) -> dt.datetime:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    row = con.execute("select window_start from stripe_raw.sync_runs "
                      "where project_id = 'acme'").fetchone()
    con.close()
    return row[0]


def test_starter_keeps_three_days_plus_what_current_mrr_needs(home: Path) -> None:
    before = snapshot(home, "acme")
    result = apply_retention("acme", "starter", home=home, now=NOW)

    assert result.cutoff == dt.datetime(2026, 6, 12, tzinfo=dt.UTC)
    assert ids(home, "subscriptions") == {"sub_current_annual", "sub_ended_1d"}
    assert ids(home, "subscription_items") == {"si_sub_current_annual", "si_sub_ended_1d"}
    assert ids(home, "invoices") == {"in_annual", "in_1d"}
    assert ids(home, "invoice_lines") == {"il_in_annual", "il_in_1d"}
    for table in ("charges", "refunds", "disputes", "credit_notes", "events"):
        assert ids(home, table) == {f"{table}_1d"}
    for table in ("customers", "prices", "products", "coupons"):
        assert ids(home, table) == before[table]
    # The state at the cutoff (observed 10 days ago) stays so the window's first day is right.
    assert versions(home) == {"h10", "h1"}
    assert window_start(home) == dt.datetime(2026, 6, 12)
    assert result.deleted == {"subscriptions": 2, "subscription_items": 2,
                              "subscription_versions": 3, "invoices": 2, "invoice_lines": 2,
                              "charges": 2, "refunds": 2, "disputes": 2, "credit_notes": 2,
                              "events": 2}
    assert result.clipped_sync_runs == 1


def test_basic_keeps_thirty_days(home: Path) -> None:
    result = apply_retention("acme", "basic", home=home, now=NOW)

    assert result.cutoff == dt.datetime(2026, 5, 16, tzinfo=dt.UTC)
    assert ids(home, "subscriptions") == {"sub_current_annual", "sub_ended_10d", "sub_ended_1d"}
    assert ids(home, "invoices") == {"in_annual", "in_10d", "in_1d"}
    assert ids(home, "invoice_lines") == {"il_in_annual", "il_in_10d", "il_in_1d"}
    assert ids(home, "charges") == {"charges_10d", "charges_1d"}
    assert versions(home) == {"h100", "h10", "h1"}
    assert window_start(home) == dt.datetime(2026, 5, 16)


def test_retention_leaves_other_projects_untouched(home: Path) -> None:
    before = snapshot(home, "other")
    apply_retention("acme", "starter", home=home, now=NOW)
    assert snapshot(home, "other") == before


@pytest.mark.parametrize("tier", ["pro", "scale"])
def test_pro_and_scale_keep_everything(home: Path, tier: str) -> None:
    before = snapshot(home, "acme")
    result = apply_retention("acme", tier, home=home, now=NOW)
    assert result.cutoff is None and result.deleted == {}
    assert snapshot(home, "acme") == before
    assert window_start(home) == naive(90)


def test_cutoff_is_utc_midnight_days_before_now() -> None:
    late_evening = dt.datetime(2026, 6, 15, 23, 59, tzinfo=dt.UTC)
    assert retention_cutoff("starter", late_evening) == dt.datetime(2026, 6, 12, tzinfo=dt.UTC)
    assert retention_cutoff("pro", late_evening) is None


def test_unknown_tier_is_a_one_line_error(home: Path) -> None:
    with pytest.raises(WarehouseError, match="unknown tier 'gold': choose one of"):
        apply_retention("acme", "gold", home=home, now=NOW)


def test_missing_warehouse_is_left_alone(tmp_path: Path) -> None:
    result = apply_retention("acme", "starter", home=tmp_path, now=NOW)
    assert result.deleted == {}
    assert not (tmp_path / "warehouse.duckdb").exists()
