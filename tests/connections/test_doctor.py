"""`stripe-warehouse doctor`: a healthy, a test-mode, a never-synced, a revoked, a 403 project."""

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.cli import main
from commands.doctor import FAIL, OK, WARN, Check, run_doctor
from pipelines.load import ensure_warehouse, sync_project
from pipelines.revocation import sync_or_revoke
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.demo_project import DemoProjectNotSyncable, mark_demo
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from tests.connections.conftest import small_company

pytestmark = pytest.mark.e2e

EVERY_FAMILY = {"customers", "subscriptions", "subscription_items", "invoices", "charges",
                "refunds", "disputes", "credit_notes", "prices", "products", "coupons", "events",
                "account"}
LIVE_KEY = "rk_live_doctor_healthy_0001"
NO_INVOICES_KEY = "rk_live_doctor_noinvoices_02"
TEST_KEY = "sk_test_doctor_testmode_0003"
WEBHOOK_SECRET = "whsec_doctor_0004"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One state dir with five projects; `healthy` and `testmode` synced for real."""
    live, test = small_company(seed=5, livemode=True), small_company(seed=6)
    accounts = {LIVE_KEY: live, NO_INVOICES_KEY: live, TEST_KEY: test}
    permissions = {LIVE_KEY: EVERY_FAMILY, NO_INVOICES_KEY: EVERY_FAMILY - {"invoices"}}
    state = tmp_path_factory.mktemp("doctor") / "home"
    with SandboxServer(accounts=accounts, permissions=permissions) as sandbox, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_KEY_ENV, generate_key())
        mp.setenv("STRIPE_WAREHOUSE_HOME", str(state))
        mp.setenv("STRIPE_API_BASE", sandbox.url)
        store = ConnectionStore(state)
        store.connect("healthy", "pro", LIVE_KEY, webhook_secret=WEBHOOK_SECRET)
        store.connect("testmode", "basic", TEST_KEY)
        store.connect("fresh", "pro", LIVE_KEY)
        store.connect("restricted", "basic", NO_INVOICES_KEY)
        store.connect("gone", "scale", LIVE_KEY)
        store.revoke("gone", "Stripe no longer accepts the credentials of project gone")
        sync_project(store, "healthy", "backfill")
        sync_project(store, "testmode", "backfill")
        with Inbox(state) as inbox:
            inbox.store("healthy", {"id": "evt_doctor_1", "type": "customer.updated",
                                    "created": 1_790_000_000, "data": {"object": {}}})
        yield state


def outcomes(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.outcome for c in checks}


def detail(checks: list[Check], name: str) -> str:
    return next(c.detail for c in checks if c.name == name)


def test_healthy_live_project_passes_every_check_and_exits_0(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = run_doctor("healthy", home)
    assert outcomes(checks) == {
        "connection": OK, "credentials decrypt": OK, "stripe reachable": OK,
        "credentials valid": OK, "key": OK, "read permission": OK, "mode": OK,
        "active subscriptions": OK, "warehouse file": OK, "initial sync": OK, "freshness": OK,
        "webhooks": OK,
    }
    assert main(["doctor", "healthy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and all(line.startswith("OK ") for line in lines)


def test_test_mode_project_is_flagged_and_full_access_key_warned(home: Path) -> None:
    checks = run_doctor("testmode", home)
    assert outcomes(checks)["mode"] == WARN
    assert detail(checks, "mode").startswith("test mode: the numbers are test data")
    assert outcomes(checks)["key"] == WARN
    assert "a read-only restricted key (rk_live_...) is safer" in detail(checks, "key")
    assert FAIL not in outcomes(checks).values()
    assert main(["doctor", "testmode"]) == 0  # warnings do not fail


def test_never_synced_project_fails_the_initial_sync_check(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = run_doctor("fresh", home)
    assert [c.name for c in checks if c.outcome == FAIL] == ["initial sync"]
    assert detail(checks, "initial sync").startswith(
        "never synced: run `stripe-warehouse sync fresh --backfill`")
    assert main(["doctor", "fresh"]) == 1
    assert "FAIL initial sync" in capsys.readouterr().out


def test_revoked_project_fails_with_the_reason_and_no_stripe_call(home: Path) -> None:
    checks = run_doctor("gone", home)
    assert outcomes(checks) == {"connection": FAIL, "credentials decrypt": FAIL}
    assert detail(checks, "connection") == (
        "Stripe no longer accepts the credentials of project gone")
    assert main(["doctor", "gone"]) == 1


def test_missing_read_permission_names_the_object_type(home: Path) -> None:
    checks = run_doctor("restricted", home)
    assert outcomes(checks)["read permission"] == FAIL
    assert detail(checks, "read permission").startswith(
        "no read permission on invoices (403): grant read access")


def test_stale_data_fails_freshness_for_the_tier(home: Path) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)
    checks = run_doctor("healthy", home, now=later)
    assert outcomes(checks)["freshness"] == FAIL
    assert "tier pro promises 6.0 h" in detail(checks, "freshness")


def test_unreachable_stripe_fails_reachability_in_one_line(home: Path) -> None:
    checks = run_doctor("healthy", home, api_base="http://127.0.0.1:9")
    assert outcomes(checks)["stripe reachable"] == FAIL
    assert detail(checks, "stripe reachable") == (
        "no answer from http://127.0.0.1:9: check STRIPE_API_BASE and the network")


def test_doctor_json_lists_every_check_and_whether_any_failed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "fresh", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["project"], report["ok"]) == ("fresh", False)
    assert {"name": "initial sync", "outcome": FAIL,
            "detail": detail(run_doctor("fresh", home), "initial sync")} in report["checks"]
    assert main(["doctor", "healthy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.fixture
def demo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectionStore:
    """A state dir as `stripe-warehouse demo` leaves it: `demo` synced, marked, sandbox gone."""
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)  # the real Stripe API's address
    store = ConnectionStore(tmp_path)
    mark_demo(tmp_path, store.connect("demo", "pro", "sk_test_demo"), "http://127.0.0.1:9")
    ensure_warehouse(tmp_path / "warehouse.duckdb")  # the demo's sync wrote it
    store.record_sync("demo", "backfill", time.time(), None)
    return store


def test_demo_project_after_the_demo_is_all_ok_or_warn_and_says_what_to_do(
    demo_home: ConnectionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = run_doctor("demo", demo_home.home)
    assert outcomes(checks) == {
        "connection": WARN, "credentials decrypt": OK, "stripe reachable": WARN,
        "initial sync": OK, "freshness": OK, "webhooks": WARN, "warehouse file": OK}
    assert "the demo's sandbox company" in detail(checks, "connection")
    assert detail(checks, "stripe reachable") == (
        "the demo's sandbox (http://127.0.0.1:9) ran only during the demo: run "
        "`stripe-warehouse demo` again for fresh data")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert outcomes(run_doctor("demo", demo_home.home, now=later))["freshness"] == WARN
    assert main(["doctor", "demo"]) == 0


def test_demo_project_is_never_synced_against_the_real_stripe_api(
    demo_home: ConnectionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DemoProjectNotSyncable, match="run `stripe-warehouse demo` again"):
        sync_or_revoke(demo_home, "demo", "refresh")
    assert main(["sync", "demo", "--refresh"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: project demo is the demo's sandbox company")
    assert demo_home.get("demo").status == "active"  # not revoked by a 401 from Stripe


def test_demo_project_is_checked_at_its_sandbox_while_the_demo_runs(
    demo_home: ConnectionStore,
) -> None:
    with SandboxServer(accounts={"sk_test_demo": small_company(seed=7)}) as sandbox:
        mark_demo(demo_home.home, demo_home.get("demo"), sandbox.url)
        checks = run_doctor("demo", demo_home.home)
    assert detail(checks, "stripe reachable") == sandbox.url
    assert outcomes(checks)["mode"] == WARN and FAIL not in outcomes(checks).values()
