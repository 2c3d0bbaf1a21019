"""One sandbox company end to end, shaped so that every alert rule crosses its threshold on a
known day: the real SDK syncs it through the CLI (Dagster's jobs in process), dbt builds the
marts, the ``revenue_alerts`` check evaluates the project's rules after each build, and what
fires reaches a loopback signed webhook once. Synced and built once for the module; each test
reads it.

The company: 15 customers whose generated history ends nine days before today (D), so nothing
of its own happens from D-8 to D (the fixture checks no subscription ends or leaves its trial
then, and that the backfill published no failed payment on D-1 or D): MRR(D-9) = ... = MRR(D-1)
before the changes. Then, on D:
- one customer with a single plain monthly USD subscription cancels it (its MRR, ``lost``, is
  unit_amount x quantity / 100);
- two other customers' renewals fail (``fail_payment``): 2 failed payments on D;
- after the transform, the account's key loses every permission (Stripe answers 403: the sync
  fails, ``sync_failing``); then the key is rolled (401: ``connection_revoked``).
"""

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from orchestration.ui import dagster_home
from pipelines.revocation import sync_or_revoke
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.alert_delivery import SIGNATURE_HEADER, verify_signature
from stripe_warehouse.alerts import evaluate
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import Connection, ConnectionStore
from tests.alerts.receivers import HttpReceiver, http_receiver
from tests.command_env import command_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

PROJECT = "shop"
API_KEY = "sk_test_alerts"
SIGNING_SECRET = "whsec_e2e_alerts"
FAILED_RENEWALS = 2  # failed payments made on D
QUIET_DAYS = 9  # the generated history ends on D-9: D-8..D-1 see no change (week over week)


def plain_monthly_subscriptions(company: Company) -> list[tuple[dict[str, Any], Decimal]]:
    """Customers' only live subscriptions made of one licensed per-unit monthly USD item, no
    discount; each with its MRR, unit_amount x quantity / 100 (what its churn loses)."""
    subs = company.objects["subscription"]
    live = [s for s in subs if s["status"] in ("active", "past_due", "trialing")]
    discounted = {c["id"] for c in company.objects["customer"] if c.get("discount")}
    found = []
    for sub in live:
        [item] = sub["items"]["data"] if len(sub["items"]["data"]) == 1 else [None]
        price = item and item["price"]
        if (price and sub["status"] == "active" and not sub["discounts"]
                and not sub["cancel_at"] and sub["customer"] not in discounted
                and sum(s["customer"] == sub["customer"] for s in live) == 1
                and sub["currency"] == price["currency"] == "usd"
                and price["billing_scheme"] == "per_unit"
                and price["recurring"]["interval"] == "month" and item["quantity"]
                and price["recurring"]["usage_type"] == "licensed"
                and price["recurring"]["interval_count"] == 1):
            found.append((sub, Decimal(price["unit_amount"] * item["quantity"]) / 100))
    return found


def scenario_company(start_of_today: float) -> tuple[Company, list[tuple[dict[str, Any], Decimal]]]:
    """The first seeded 15-customer company (history ending nine days before today) with three
    plain monthly subscriptions (one to cancel, two to fail) and none of its subscriptions
    ending, or leaving a trial, after its history ends."""
    history_end = int(start_of_today) - QUIET_DAYS * 86400 + 3600
    for seed in range(1, 80):
        company = generate_company(CompanyConfig(customers=15, years=1, seed=seed,
                                                 now=history_end))
        if [s for s in company.objects["subscription"]
                if (s["cancel_at"] or 0) >= history_end
                or (s["status"] == "trialing" and (s["trial_end"] or 0) >= history_end)]:
            continue
        plain = plain_monthly_subscriptions(company)
        if len(plain) >= 1 + FAILED_RENEWALS:
            return company, plain[:1 + FAILED_RENEWALS]
    raise AssertionError("no seed gives the scenario's company")


@dataclass
class Scenario:
    home: Path
    lost_mrr: Decimal
    customer_id: str
    mrr_before: Decimal  # MRR of D-1 (and of D) as the backfill published it
    failed_average: Decimal  # the backfill's failed payments per day over D-28..D-1
    percent_threshold: Decimal
    outputs: dict[str, subprocess.CompletedProcess[str]]
    failures: dict[str, str]  # the in-process syncs that failed: their one-line errors
    hook: HttpReceiver
    hook_requests: dict[str, int]  # requests received after each step
    fresh: Connection  # the registry's entry after the last successful sync
    today: dt.date  # D, the UTC day the whole scenario ran on

    def quiet_then_fired(self) -> dict[str, int]:
        """A rule's state per day: quiet on D-1, firing on D."""
        return {(self.today - dt.timedelta(days=1)).isoformat(): 0, self.today.isoformat(): 1}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


def published(home: Path, sql: str, params: list[Any]) -> Any:
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        return con.execute(sql, params).fetchone()[0]


def failing_sync(home: Path, url: str) -> str:
    """A refresh as Dagster's sync asset and the batch run it (``sync_or_revoke``), in process;
    its one-line error."""
    with pytest.raises(WarehouseError) as failed:
        sync_or_revoke(ConnectionStore(home), PROJECT, "refresh", api_base=url)
    return str(failed.value)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The scenario, run within one UTC day: its subprocesses (sync, transform, alerts) read
    the wall clock, so a run that crosses midnight is run again, once, on the new day."""
    for _ in range(2):
        with ExitStack() as stack:
            today = utc_today()
            try:
                ran = run_scenario(stack, tmp_path_factory, today)
            except Exception:
                if utc_today() == today:
                    raise
                continue  # its checks met the next day: run it again on that day
            if utc_today() == today:
                yield ran
                return
    raise AssertionError("the alerts scenario crossed midnight UTC twice")


def run_scenario(stack: ExitStack, tmp_path_factory: pytest.TempPathFactory,
                 today: dt.date) -> Scenario:
    """Sync, build and alert the scenario's company with D = ``today``; the sandbox and the
    webhook receiver stay open on ``stack``."""
    yesterday = today - dt.timedelta(days=1)
    start_of_today = dt.datetime.combine(today, dt.time(), dt.UTC).timestamp()
    company, [(cancelled, lost), *renewing] = scenario_company(start_of_today)
    home = tmp_path_factory.mktemp("alerts-e2e") / "state"
    secret_key = generate_key()
    sandbox = stack.enter_context(SandboxServer(accounts={API_KEY: company}))
    hook = stack.enter_context(http_receiver())
    mp = stack.enter_context(pytest.MonkeyPatch.context())
    mp.setenv(SECRET_KEY_ENV, secret_key)  # for the in-process syncs
    env = command_env(STRIPE_WAREHOUSE_HOME=str(home), **{SECRET_KEY_ENV: secret_key},
                      STRIPE_API_BASE=sandbox.url, SHOP_KEY=API_KEY,
                      HOOK_SECRET=SIGNING_SECRET)
    outputs = {"connect": cli(env, "connect", PROJECT, "--tier", "pro",
                              "--api-key-env", "SHOP_KEY")}
    for n, rule in enumerate([("churned_mrr", f"${lost - 1}"),
                              ("customer_loss", f"${lost - 1}"),
                              ("mrr_change", f"${lost - 1}"),
                              ("mrr_change", f"${lost - 1}", "--period", "week"),
                              ("failed_payments", str(FAILED_RENEWALS - 1)),
                              ("stale_data",), ("sync_failing",), ("connection_revoked",)]):
        outputs[f"rule{n}"] = cli(env, "alerts", "add", PROJECT, *rule)
    outputs["channel"] = cli(env, "alerts", "channel", PROJECT, "webhook", "--url",
                             f"{hook.url}/hook", "--signing-secret-env", "HOOK_SECRET")
    requests: dict[str, int] = {}
    outputs["backfill"] = cli(env, "sync", PROJECT, "--backfill")
    requests["backfill"] = len(hook.requests)
    # the two rules whose thresholds need the company's own figures, as the backfill
    # published them (nothing of the company changes them on D-1 or D)
    mrr_before = Decimal(published(
        home, "select value from marts.metrics_daily where metric = 'stripe_mrr' "
        "and metric_date = ?", [yesterday]))
    failed_average = Decimal(published(
        home, "select sum(value) / count(*) from marts.metrics_daily where "
        "metric = 'stripe_failed_payments' and metric_date >= ? and metric_date < ?",
        [today - dt.timedelta(days=28), today])).quantize(Decimal("0.000001"))
    assert published(home, "select coalesce(sum(value), 0) from marts.metrics_daily where "
                     "metric = 'stripe_failed_payments' and metric_date >= ?",
                     [yesterday]) == 0
    assert failed_average < FAILED_RENEWALS  # so that "1x" fires on D
    percent = (lost / mrr_before * 100 - Decimal("0.01")).quantize(Decimal("0.01"),
                                                                    ROUND_DOWN)
    outputs["percent"] = cli(env, "alerts", "add", PROJECT, "mrr_change", f"{percent}%")
    outputs["times"] = cli(env, "alerts", "add", PROJECT, "failed_payments", "1x")
    now = max(int(time.time()) - 60, int(start_of_today))  # on D, even just after 00:00
    company.cancel_subscription(cancelled["id"], at=now)
    for sub, _ in renewing:
        company.fail_payment(sub["id"], at=now)
    outputs["refresh"] = cli(env, "sync", PROJECT, "--refresh")
    requests["refresh"] = len(hook.requests)
    outputs["transform"] = cli(env, "transform")
    requests["transform"] = len(hook.requests)
    fresh = ConnectionStore(home).get(PROJECT)
    failures = {}
    sandbox.permissions[API_KEY] = set()  # every endpoint: 403
    failures["forbidden"] = failing_sync(home, sandbox.url)
    requests["forbidden"] = len(hook.requests)
    del sandbox.accounts[API_KEY]  # the key was rolled: 401
    failures["rolled"] = failing_sync(home, sandbox.url)
    requests["rolled"] = len(hook.requests)
    return Scenario(home, lost, cancelled["customer"], mrr_before, failed_average, percent,
                    outputs, failures, hook, requests, fresh, today)


def alert_states(home: Path) -> dict[str, dict[str, int]]:
    """Each rule's state per day in alerts.sqlite: {rule_id: {day: firing}}."""
    states: dict[str, dict[str, int]] = {}
    with sqlite3.connect(home / "alerts.sqlite") as con:
        for rule, day, firing in con.execute("select rule_id, day, firing from alert_state"):
            states.setdefault(rule, {})[day] = firing
    return states


def fired(home: Path, rule: str) -> list[tuple[str, str, Decimal, str | None, list[Any]]]:
    """The alerts logged for ``rule``: (event, day, value, compared_to, customers)."""
    with sqlite3.connect(home / "alerts.sqlite") as con:
        rows = con.execute("select event, day, value, compared_to, customers from alert_log "
                           "where rule_id = ? order by id", [rule]).fetchall()
    return [(e, d, Decimal(v), c, json.loads(cs)) for e, d, v, c, cs in rows]


def test_every_step_of_the_scenario_ran(scenario: Scenario) -> None:
    for name, output in scenario.outputs.items():
        assert output.returncode == 0, (name, output.stderr)


def test_churned_mrr_fires_on_the_day_of_the_cancellation_naming_the_customer(
        scenario: Scenario) -> None:
    """D-1: no churn. D: the cancelled subscription's MRR (``lost``, unit_amount x quantity /
    100) churns, $1 above the rule's threshold: fired for D, naming its customer. The
    transform after the refresh changes no number and sends nothing new."""
    assert alert_states(scenario.home)["churned_mrr-1"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "churned_mrr-1") == [
        ("fired", scenario.today.isoformat(), scenario.lost_mrr, None,
         [{"customer_id": scenario.customer_id, "lost_mrr": f"{scenario.lost_mrr:.6f}"}])]


def test_customer_loss_fires_for_the_customer_who_cancelled(scenario: Scenario) -> None:
    """D-1: no customer lost MRR. D: the cancelling customer loses ``lost`` > lost - $1; the
    two failed renewals lose nothing (past_due still counts in MRR)."""
    assert alert_states(scenario.home)["customer_loss-1"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "customer_loss-1") == [
        ("fired", scenario.today.isoformat(), scenario.lost_mrr, None,
         [{"customer_id": scenario.customer_id, "lost_mrr": f"{scenario.lost_mrr:.6f}"}])]


def test_mrr_change_day_over_day_in_dollars(scenario: Scenario) -> None:
    """D-1: MRR(D-1) - MRR(D-2) = $0 (nothing happens after the history ends on D-9). D:
    MRR(D) - MRR(D-1) = -lost, beyond +/-(lost - $1): fired with MRR(D-1) as compared_to."""
    assert alert_states(scenario.home)["mrr_change-1"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "mrr_change-1") == [
        ("fired", scenario.today.isoformat(), scenario.mrr_before - scenario.lost_mrr,
         f"{scenario.mrr_before:.6f}", [])]


def test_mrr_change_week_over_week_in_dollars(scenario: Scenario) -> None:
    """D-1: MRR(D-1) - MRR(D-8) = $0 (the history ended on D-9). D: MRR(D) - MRR(D-7) = -lost,
    beyond +/-(lost - $1): fired, compared with MRR(D-7) = MRR(D-1)."""
    assert alert_states(scenario.home)["mrr_change-2"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "mrr_change-2") == [
        ("fired", scenario.today.isoformat(), scenario.mrr_before - scenario.lost_mrr,
         f"{scenario.mrr_before:.6f}", [])]


def test_mrr_change_day_over_day_in_percent(scenario: Scenario) -> None:
    """The threshold is lost / MRR(D-1) x 100 less 0.01, rounded down to 2 decimals (MRR(D-1)
    as the backfill published it). D-1: 0%. D: -lost / MRR(D-1) x 100: beyond it."""
    assert Decimal(0) < scenario.percent_threshold < (
        scenario.lost_mrr / scenario.mrr_before * 100)
    assert alert_states(scenario.home)["mrr_change-3"] == scenario.quiet_then_fired()
    [(event, day, value, before, _)] = fired(scenario.home, "mrr_change-3")
    assert (event, day, value, Decimal(before)) == (
        "fired", scenario.today.isoformat(), scenario.mrr_before - scenario.lost_mrr,
        scenario.mrr_before)


def test_failed_payments_above_a_count(scenario: Scenario) -> None:
    """D-1: 0 failed payments (the backfill published none on D-1 or D). D: the 2 failed
    renewals, above 1."""
    assert alert_states(scenario.home)["failed_payments-1"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "failed_payments-1") == [
        ("fired", scenario.today.isoformat(), Decimal(FAILED_RENEWALS), None, [])]


def test_failed_payments_above_k_times_the_trailing_average(scenario: Scenario) -> None:
    """D-1: 0 failed payments is above no average. D: 2, above 1 x the average of D-28..D-1
    (the company's own history as the backfill published it, under 2: the fixture checks)."""
    assert alert_states(scenario.home)["failed_payments-2"] == scenario.quiet_then_fired()
    assert fired(scenario.home, "failed_payments-2") == [
        ("fired", scenario.today.isoformat(), Decimal(FAILED_RENEWALS),
         f"{scenario.failed_average:.6f}", [])]


def test_stale_data_fires_once_the_tier_cadence_x_2_has_passed(scenario: Scenario) -> None:
    """Pro refreshes every 3 h and allows 6 h: the registry after the last successful sync is
    fresh 5 h later and stale 7 h later. Every build that day judged it fresh."""
    synced = dt.datetime.fromtimestamp(scenario.fresh.last_sync_at or 0, dt.UTC)
    judged = {hours: {f.rule.kind: f.firing for f in evaluate(
        scenario.home, [scenario.fresh], synced + dt.timedelta(hours=hours))[0]}["stale_data"]
        for hours in (5, 7)}
    assert judged == {5: False, 7: True}
    assert alert_states(scenario.home)["stale_data-1"] == {scenario.today.isoformat(): 0}


def test_a_failing_sync_is_recorded_and_fires_sync_failing(scenario: Scenario) -> None:
    """Every successful sync left the rule quiet. The sync Stripe answers 403 fails: the
    registry records its time, its one-line error and 1 failure since the last success, and
    sync_failing fires (value 1) at once, without a build. The next failure (401, revoked)
    makes it 2, not a material change (it must move by more than 1): nothing new for it."""
    store = ConnectionStore(scenario.home)
    connection = store.get(PROJECT)
    assert "403" in scenario.failures["forbidden"], scenario.failures
    assert connection.failures_since_success == 2
    # the last failure recorded is the sync's own error (the 401), not the revocation's advice
    assert "401" in (connection.last_failure_error or ""), connection.last_failure_error
    assert "\n" not in (connection.last_failure_error or "")
    assert (connection.last_failure_at or 0) > (connection.last_sync_at or 0)
    assert connection.last_sync_at == scenario.fresh.last_sync_at
    [(event, day, value, _, _)] = fired(scenario.home, "sync_failing-1")
    assert (event, day, value) == ("fired", scenario.today.isoformat(), Decimal(1))
    assert scenario.hook_requests["forbidden"] == scenario.hook_requests["transform"] + 1
    message = json.loads(scenario.hook.requests[-2][2])["message"]
    assert "sync_failing" in message and "1 failed sync(s)" in message


def test_a_rejected_key_revokes_the_project_and_fires_connection_revoked(
        scenario: Scenario) -> None:
    """Stripe answers 401: the project is revoked (no more syncs) and connection_revoked
    fires, sent at once."""
    assert ConnectionStore(scenario.home).get(PROJECT).status == "revoked"
    assert "reconnect" in scenario.failures["rolled"]
    [(event, day, value, _, _)] = fired(scenario.home, "connection_revoked-1")
    assert (event, day, value) == ("fired", scenario.today.isoformat(), Decimal(1))
    assert scenario.hook_requests["rolled"] == scenario.hook_requests["forbidden"] + 1


def test_each_alert_reaches_the_signed_webhook_once(scenario: Scenario) -> None:
    """The backfill sends nothing; the refresh sends the seven rules that cross on D; the
    transform (same numbers) nothing new; each failed sync one."""
    assert scenario.hook_requests == {"backfill": 0, "refresh": 7, "transform": 7,
                                      "forbidden": 8, "rolled": 9}
    for _, headers, body in scenario.hook.requests:
        assert verify_signature(body, headers[SIGNATURE_HEADER], SIGNING_SECRET)
    assert sorted(json.loads(body)["rule"] for _, _, body in scenario.hook.requests) == [
        "churned_mrr-1", "connection_revoked-1", "customer_loss-1", "failed_payments-1",
        "failed_payments-2", "mrr_change-1", "mrr_change-2", "mrr_change-3", "sync_failing-1"]


def check_evaluations(home: Path, job: str) -> list[Any]:
    """The ``revenue_alerts`` results of each run of ``job``, oldest first."""
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        runs = reversed(instance.get_runs(RunsFilter(job_name=job)))
        return [record.dagster_event.event_specific_data
                for run in runs
                for record in instance.all_logs(
                    run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
                if record.dagster_event.event_specific_data.check_name == "revenue_alerts"]


def test_dagster_records_each_build_as_the_revenue_alerts_check(scenario: Scenario) -> None:
    """Each run's check result: passed before the churn; WARN after it, with the rule, the
    value and the threshold in its metadata (the UI's timeline; the first firing rule on top,
    every one in ``firing``)."""
    backfill = check_evaluations(scenario.home, "backfill")
    refresh = check_evaluations(scenario.home, "refresh")
    transform = check_evaluations(scenario.home, "transform")
    assert [e.passed for e in backfill + refresh + transform] == [True, False, False]
    metadata = refresh[0].metadata
    assert (metadata["rule"].value, metadata["value"].value, metadata["threshold"].value,
            metadata["day"].value) == ("churned_mrr-1", f"{scenario.lost_mrr:.6f}",
                                       f"${scenario.lost_mrr - 1}", scenario.today.isoformat())
    assert metadata["rules_firing"].value == 7
    assert metadata["alerts_sent"].value == 7
    assert transform[0].metadata["alerts_sent"].value == 0
