"""Alert rules: stored per project by `stripe-warehouse alerts`, validated into one-line errors,
evaluated on the published marts once per rule and day.

The marts here are hand-written (tests/alerts/marts.py): evaluation is SQL over two published
tables, so each rule's threshold crossing is set up in a few rows; the end-to-end path (sandbox,
sync, dbt, Dagster) is tests/alerts/test_end_to_end.py.
"""

import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from commands.cli import main
from stripe_warehouse.alert_state import AlertStore
from stripe_warehouse.alerts import run_alerts
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from tests.alerts.marts import DAY, PROJECT, connected_home, write_marts

BEFORE = DAY - dt.timedelta(days=1)
NOW = dt.datetime(2026, 11, 30, 18, tzinfo=dt.UTC)


def day(n: int) -> dt.date:
    """DAY - n days."""
    return DAY - dt.timedelta(days=n)


# MRR: $1000 from DAY-9 to DAY-2, $1050 on DAY-1, $900 on DAY.
MRR = {**{day(n): "1000" for n in range(2, 10)}, BEFORE: "1050", DAY: "900"}
# Failed payments: 2 a day from DAY-29 to DAY-2, 6 on DAY-1, 21 on DAY.
FAILED = {**{day(n): 2 for n in range(2, 30)}, BEFORE: 6, DAY: 21}
# (day, customer, contraction, churn)
MOVEMENTS = [
    (BEFORE, "cus_a", "0", "500"), (BEFORE, "cus_b", "0", "400"), (BEFORE, "cus_e", "100", "0"),
    (DAY, "cus_c", "0", "700"), (DAY, "cus_d", "0", "350.50"), (DAY, "cus_f", "520", "0"),
]


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = connected_home(tmp_path)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    write_marts(home, MRR, FAILED, MOVEMENTS)
    return home


def add(home: Path, kind: str, threshold: str | None = None, period: str | None = None) -> str:
    return ConnectionStore(home).add_alert_rule(PROJECT, kind, threshold, period).id


def findings_by_day(home: Path) -> dict[tuple[str, dt.date], bool]:
    round_ = run_alerts(home, now=NOW)
    assert round_.problems == []
    return {(f.rule.id, f.day): f.firing for f in round_.findings}


# --- the command line -------------------------------------------------------------------------

def test_rules_are_added_listed_and_removed(home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "add", PROJECT, "mrr_change", "10%", "--period", "week"]) == 0
    assert main(["alerts", "add", PROJECT, "failed_payments", "3x"]) == 0
    assert main(["alerts", "add", PROJECT, "stale_data"]) == 0
    capsys.readouterr()
    assert main(["alerts", "list", PROJECT, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["threshold"], r["period"]) for r in listed["rules"]] == [
        ("mrr_change-1", "10%", "week"), ("failed_payments-1", "3x", "day"),
        ("stale_data-1", None, "day")]
    assert main(["alerts", "remove", PROJECT, "failed_payments-1"]) == 0
    assert [r.id for r in ConnectionStore(home).alert_rules(PROJECT)] == [
        "mrr_change-1", "stale_data-1"]


@pytest.mark.parametrize(("argv", "fragment"), [
    (["alerts", "add", PROJECT, "mrr_drop", "10%"], "unknown alert rule 'mrr_drop': choose one"),
    (["alerts", "add", PROJECT, "mrr_change", "ten"], "malformed threshold 'ten' for rule "
                                                      "mrr_change: give a positive number like"),
    (["alerts", "add", PROJECT, "mrr_change", "--", "-5%"], "malformed threshold '-5%'"),
    (["alerts", "add", PROJECT, "churned_mrr", "3x"], "malformed threshold '3x'"),
    (["alerts", "add", PROJECT, "failed_payments", "20", "--period", "week"],
     "only mrr_change takes --period"),
    (["alerts", "add", PROJECT, "stale_data", "5"], "rule stale_data takes no threshold"),
    (["alerts", "add", "nope", "mrr_change", "10%"], "unknown project 'nope'"),
    (["alerts", "remove", PROJECT, "mrr_change-9"], "has no alert rule or channel"),
])
def test_bad_input_is_one_line_exit_2_and_keeps_what_is_stored(
        home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    add(home, "churned_mrr", "$1000")
    before = ConnectionStore(home).path.read_text()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert ConnectionStore(home).path.read_text() == before


# --- each rule fires on DAY, not on the day before -------------------------------------------

def test_mrr_change_day_over_day_in_percent(home: Path) -> None:
    """DAY-1: $1000 -> $1050 is +5.00%: not beyond 10%. DAY: $1050 -> $900 is -14.29%
    (-150/1050): fires."""
    rule = add(home, "mrr_change", "10%")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}


def test_mrr_change_week_over_week_in_dollars(home: Path) -> None:
    """DAY-1 vs DAY-8: $1050 - $1000 = +$50, not beyond $99. DAY vs DAY-7: $900 - $1000 =
    -$100: fires."""
    rule = add(home, "mrr_change", "$99", "week")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}


def test_failed_payments_above_a_count(home: Path) -> None:
    """DAY-1: 6 failed payments, not above 20; DAY: 21: fires."""
    rule = add(home, "failed_payments", "20")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}


def test_failed_payments_above_k_times_the_trailing_average(home: Path) -> None:
    """DAY-1: the 28 days before average 2 (2 a day), 3 x 2 = 6, and 6 is not above 6.
    DAY: the 28 days before are 27 x 2 + 6 = 60, average 60/28 = 2.142857, x3 = 6.428571;
    21 is above: fires."""
    rule = add(home, "failed_payments", "3x")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}
    fired = AlertStore(home).recent(PROJECT)[0]
    assert (fired["day"], fired["value"], fired["compared_to"]) == (
        DAY.isoformat(), "21.000000", "2.142857")


def test_churned_mrr_names_the_customers_and_their_lost_mrr(home: Path) -> None:
    """DAY-1: cus_a $500 + cus_b $400 = $900 churned (cus_e's $100 is contraction), not above
    $1000. DAY: cus_c $700 + cus_d $350.50 = $1050.50 (cus_f's $520 is contraction): fires,
    naming cus_c and cus_d."""
    rule = add(home, "churned_mrr", "$1000")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}
    fired = AlertStore(home).recent(PROJECT)[0]
    assert fired["value"] == "1050.500000"
    assert fired["customers"] == [{"customer_id": "cus_c", "lost_mrr": "700.000000"},
                                  {"customer_id": "cus_d", "lost_mrr": "350.500000"}]


def test_a_single_customers_contraction_or_churn(home: Path) -> None:
    """DAY-1: the largest loss is cus_a's $500 churn, not above $500. DAY: cus_c churns $700
    and cus_f contracts by $520, both above $500 (cus_d's $350.50 is not): fires naming them."""
    rule = add(home, "customer_loss", "$500")
    assert findings_by_day(home) == {(rule, BEFORE): False, (rule, DAY): True}
    assert [c["customer_id"] for c in AlertStore(home).recent(PROJECT)[0]["customers"]] == [
        "cus_c", "cus_f"]


def test_stale_data_and_a_revoked_connection(home: Path) -> None:
    """Pro allows 6 h between syncs: a sync 5 h before NOW is fresh, 7 h before is stale."""
    stale, revoked = add(home, "stale_data"), add(home, "connection_revoked")
    store = ConnectionStore(home)
    store.record_sync(PROJECT, "refresh", (NOW - dt.timedelta(hours=5)).timestamp(), None)
    assert findings_by_day(home) == {(stale, NOW.date()): False, (revoked, NOW.date()): False}
    store.record_sync(PROJECT, "refresh", (NOW - dt.timedelta(hours=7)).timestamp(), None)
    store.revoke(PROJECT, "Stripe answered 401: reconnect")
    # revoked is not "active": it is not also reported stale
    assert findings_by_day(home) == {(stale, NOW.date()): False, (revoked, NOW.date()): True}


def test_sync_failing_reads_the_failures_the_registry_recorded(home: Path) -> None:
    """No failure: quiet. Two failed syncs after a success: fires with value 2, naming the
    last error (its first line only). A success sets the count to 0: resolved."""
    rule = add(home, "sync_failing")
    store = ConnectionStore(home)
    store.record_sync(PROJECT, "refresh", (NOW - dt.timedelta(hours=20)).timestamp(), None)
    assert findings_by_day(home) == {(rule, NOW.date()): False}
    store.record_sync_failure(PROJECT, (NOW - dt.timedelta(hours=2)).timestamp(), "first")
    store.record_sync_failure(PROJECT, (NOW - dt.timedelta(hours=1)).timestamp(),
                              "cannot reach the Stripe API: check STRIPE_API_BASE\ntraceback")
    [event] = run_alerts(home, now=NOW).events
    assert (event.event, event.finding.value) == ("fired", Decimal(2))
    assert event.message() == (
        f"[ALERT] {PROJECT} {NOW.date()}: sync_failing: 2 failed sync(s), last success "
        "2026-11-29 22:00 UTC; last failure 2026-11-30 17:00 UTC: cannot reach the Stripe "
        "API: check STRIPE_API_BASE")
    store.record_sync(PROJECT, "refresh", NOW.timestamp(), None)
    assert [e.event for e in run_alerts(home, now=NOW).events] == ["resolved"]
    assert store.get(PROJECT).failures_since_success == 0


# --- once per rule and day --------------------------------------------------------------------

def test_a_refresh_sends_nothing_new_unless_the_number_moves_materially(home: Path) -> None:
    """mrr_change 10% fires for DAY at $900. The same numbers again: nothing new. $900.50
    (moved $0.50, under 1% of $900 = $9): nothing new. $800: fired again with the new number.
    $1040 (-0.95% from $1050): resolved, once."""
    add(home, "mrr_change", "10%")
    events = lambda: [(e.event, e.finding.day, e.finding.value)  # noqa: E731
                      for e in run_alerts(home, now=NOW).events]
    assert events() == [("fired", DAY, Decimal("900"))]
    assert events() == []
    write_marts(home, {**MRR, DAY: "900.50"}, FAILED, MOVEMENTS)
    assert events() == []
    write_marts(home, {**MRR, DAY: "800"}, FAILED, MOVEMENTS)
    assert events() == [("fired", DAY, Decimal("800"))]
    write_marts(home, {**MRR, DAY: "1040"}, FAILED, MOVEMENTS)
    assert events() == [("resolved", DAY, Decimal("1040"))]
    assert events() == []
    assert [r["event"] for r in AlertStore(home).recent(PROJECT)] == ["resolved", "fired", "fired"]


def test_the_next_day_is_judged_on_its_own(home: Path) -> None:
    """A later sync adds DAY+1 ($900 again, 0% change): DAY stays fired (it is still judged, and
    unchanged it sends nothing), DAY+1 does not fire."""
    rule = add(home, "mrr_change", "10%")
    run_alerts(home, now=NOW)
    after = DAY + dt.timedelta(days=1)
    write_marts(home, {**MRR, after: "900"}, FAILED, MOVEMENTS)
    round_ = run_alerts(home, now=NOW + dt.timedelta(days=1))
    assert {(f.rule.id, f.day): f.firing for f in round_.findings} == {
        (rule, DAY): True, (rule, after): False}
    assert round_.events == []


def test_the_state_file_is_private(home: Path) -> None:
    add(home, "mrr_change", "10%")
    run_alerts(home, now=NOW)
    assert (home / "alerts.sqlite").stat().st_mode & 0o777 == 0o600
    assert AlertStore(home).recent(PROJECT, now=time.time() + 31 * 86400) == []


def test_the_overview_report_lists_the_last_30_days_of_alerts(home: Path) -> None:
    """The churn alert of DAY (cus_c $700 + cus_d $350.50 = $1050.50 > $1000) appears in the
    report's alert table with its day, rule, value and threshold; one logged 31 days ago
    does not."""
    from stripe_warehouse.metrics import METRIC_ORDER
    from stripe_warehouse.report import REPORTED_ALERT_DAYS, ReportData, render_report

    add(home, "churned_mrr", "$1000")
    run_alerts(home, now=NOW)
    data = ReportData(PROJECT, [BEFORE, DAY], {m: [1.0, 1.0] for m in METRIC_ORDER},
                      {m: "count" for m in METRIC_ORDER}, [], {})
    page = render_report(data, NOW, AlertStore(home).recent(PROJECT, days=REPORTED_ALERT_DAYS),
                         has_rules=True)
    section = page[page.index("Alerts, last 30 days"):]
    assert (f"<tr><td>{DAY}</td><td>churned_mrr-1</td><td>fired</td>\n"
            "<td>1050.500000</td><td>$1000</td>") in section
    assert "cus_c $700.000000, cus_d $350.500000" in section
    assert "no channel" in section
    later = AlertStore(home).recent(PROJECT, days=REPORTED_ALERT_DAYS,
                                    now=time.time() + 31 * 86400)
    quiet = render_report(data, NOW, later, has_rules=True)
    assert "No alert in the last 30 days." in quiet


def test_rules_survive_a_disconnect_and_a_reconnection(home: Path) -> None:
    add(home, "mrr_change", "10%")
    store = ConnectionStore(home)
    store.disconnect(PROJECT)
    store.connect(PROJECT, "pro", "sk_test_alerts", account_id="acct_alerts")
    assert [r.id for r in store.alert_rules(PROJECT)] == ["mrr_change-1"]
