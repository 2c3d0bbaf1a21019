"""One Stripe account per project for life; `purge` is the only way to release a project id."""

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from commands.cli import main
from sandbox.company import Company
from sandbox.server import SandboxServer
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import small_company

pytestmark = pytest.mark.e2e

KEYS = {"KEY_A": "rk_test_account_a", "KEY_A2": "rk_test_account_a_second",
        "KEY_B": "rk_test_account_b", "KEY_C": "rk_test_account_c"}


@pytest.fixture(scope="module")
def companies() -> dict[str, Company]:
    """Three Stripe accounts, each with its own account id and object ids."""
    return {name: small_company(seed=seed) for name, seed in (("a", 4), ("b", 5), ("c", 6))}


@pytest.fixture
def accounts(home: Path, companies: dict[str, Company], monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[dict[str, Company]]:
    """A sandbox serving account a (two keys), b and c; the keys exported as KEY_*."""
    served = {KEYS["KEY_A"]: companies["a"], KEYS["KEY_A2"]: companies["a"],
              KEYS["KEY_B"]: companies["b"], KEYS["KEY_C"]: companies["c"]}
    with SandboxServer(accounts=served) as server:
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        for variable, key in KEYS.items():
            monkeypatch.setenv(variable, key)
        yield companies


def connect(project: str, variable: str) -> int:
    return main(["connect", project, "--tier", "pro", "--api-key-env", variable])


def customer_ids(home: Path, project: str) -> set[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select id from stripe_raw.customers where project_id = ?",
                           [project]).fetchall()
    return {customer_id for (customer_id,) in rows}


def ids_of(company: Company) -> set[str]:
    return {customer["id"] for customer in company.objects["customer"]}


def test_reconnecting_a_project_to_another_stripe_account_is_refused(
    home: Path, accounts: dict[str, Company], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = accounts["a"].account_id, accounts["b"].account_id
    assert a != b  # the sandbox answers GET /v1/account with each company's own id
    assert connect("shop", "KEY_A") == 0
    assert main(["sync", "shop", "--backfill", "--no-transform"]) == 0
    synced = ConnectionStore(home).get("shop")
    assert main(["disconnect", "shop"]) == 0
    capsys.readouterr()

    assert connect("shop", "KEY_B") == 2
    assert capsys.readouterr().err == (
        f"error: project shop holds data of Stripe account {a}, not {b}: nothing was stored; "
        f"connect {b} under a new project id, or delete shop's data first with "
        "`stripe-warehouse purge shop`\n")
    shop = ConnectionStore(home).get("shop")
    assert (shop.status, shop.account_id, shop.api_key) == ("disconnected", a, None)

    # Another key of the same account reconnects, and the refresh continues where it stopped.
    assert connect("shop", "KEY_A2") == 0
    shop = ConnectionStore(home).get("shop")
    assert (shop.status, shop.account_id) == ("active", a)
    assert (shop.last_sync_at, shop.last_event_created) == (
        synced.last_sync_at, synced.last_event_created)
    assert main(["sync", "shop", "--refresh", "--no-transform"]) == 0
    loaded = customer_ids(home, "shop")
    assert loaded and loaded <= ids_of(accounts["a"])

    # Replacing the key of a connected project with another account's key is refused too.
    capsys.readouterr()
    assert connect("shop", "KEY_B") == 2
    assert "holds data of Stripe account" in capsys.readouterr().err
    assert ConnectionStore(home).api_key("shop") == KEYS["KEY_A2"]


def project_rows(home: Path, project: str) -> dict[str, int]:
    """Rows of ``project`` in every table (not view: its rows are not stored) of the warehouse
    and the published copy, and the inbox; dlt child tables are counted through their root
    row, pipeline state by name."""
    counts: dict[str, int] = {}
    for database in ("warehouse", "reporting"):
        with duckdb.connect(str(home / f"{database}.duckdb"), read_only=True) as con:
            tables = con.execute(
                "select table_schema, table_name, list(column_name) "
                "from information_schema.columns join information_schema.tables "
                "using (table_catalog, table_schema, table_name) "
                "where table_catalog = current_database() and table_type = 'BASE TABLE' "
                "group by all").fetchall()
            for schema, table, columns in tables:
                name = f'"{schema}"."{table}"'
                if "project_id" in columns:
                    where = "project_id = ?"
                elif "_dlt_root_id" in columns:
                    root = f'"{schema}"."{table.split("__")[0]}"'
                    where = f"_dlt_root_id in (select _dlt_id from {root} where project_id = ?)"
                elif table == "_dlt_pipeline_state":
                    where, project = "pipeline_name = 'stripe_' || ?", project
                else:
                    continue
                counts[f"{database} {schema}.{table}"] = con.execute(
                    f"select count(*) from {name} where {where}", [project]).fetchone()[0]
    with Inbox(home) as inbox:
        counts["inbox"] = inbox.counts(project)["stored"]
    return counts


def add_child_table(home: Path) -> None:
    """A dlt child table (``invoices__discounts``): no project_id, linked by ``_dlt_root_id``."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("create table stripe_raw.invoices__discounts as select _dlt_id as "
                    "_dlt_root_id, _dlt_id as _dlt_parent_id, 'di_' || id as value "
                    "from stripe_raw.invoices")


def store_event(home: Path, project: str, event_id: str) -> None:
    with Inbox(home) as inbox:
        assert inbox.store(project, {"id": event_id, "type": "customer.updated",
                                     "created": 1_790_000_000, "data": {"object": {}}})


def test_purge_deletes_one_projects_rows_everywhere_and_frees_its_id(
    home: Path, accounts: dict[str, Company], capsys: pytest.CaptureFixture[str]
) -> None:
    assert connect("shop", "KEY_A") == 0 and connect("other", "KEY_C") == 0
    assert main(["sync", "shop", "--backfill", "--no-transform"]) == 0
    assert main(["sync", "other", "--backfill", "--no-transform"]) == 0
    assert main(["transform"]) == 0
    assert main(["report", "shop"]) == 0 and main(["report", "other"]) == 0
    add_child_table(home)
    store_event(home, "shop", "evt_shop_1")
    store_event(home, "other", "evt_other_1")
    shop_before, other_before = project_rows(home, "shop"), project_rows(home, "other")
    for place in ("warehouse stripe_raw.customers", "warehouse stripe_raw.invoices__discounts",
                  "warehouse marts.metrics_daily", "warehouse intermediate.int_reporting_days",
                  "warehouse stripe_raw._dlt_pipeline_state", "reporting marts.metrics_daily",
                  "inbox"):
        assert shop_before[place] > 0 and other_before[place] > 0, place
    capsys.readouterr()

    assert main(["purge", "shop"]) == 2  # a connected project is never purged
    assert capsys.readouterr().err == (
        "error: project shop is connected: run `stripe-warehouse disconnect shop` first, "
        "then purge it\n")
    assert project_rows(home, "shop") == shop_before

    assert main(["disconnect", "shop"]) == 0
    capsys.readouterr()
    assert main(["purge", "shop"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"purged shop: deleted {sum(shop_before.values()):,} rows from ")
    assert " and reports/shop.html; its registry entry and account binding are removed: it " \
           "can be connected to any Stripe account\n" in out
    assert not (home / "reports" / "shop.html").exists()
    assert (home / "reports" / "other.html").exists()
    assert set(project_rows(home, "shop").values()) == {0}
    assert project_rows(home, "other") == other_before
    assert not (home / ".dlt" / "stripe_shop").exists()
    assert (home / ".dlt" / "stripe_other").is_dir()
    assert [c.project_id for c in ConnectionStore(home).list()] == ["other"]

    # The id is free: another account connects, and only its data is loaded.
    assert connect("shop", "KEY_B") == 0
    assert ConnectionStore(home).get("shop").last_sync_at is None
    assert main(["sync", "shop", "--backfill", "--no-transform"]) == 0
    loaded = customer_ids(home, "shop")
    assert loaded and loaded <= ids_of(accounts["b"])
