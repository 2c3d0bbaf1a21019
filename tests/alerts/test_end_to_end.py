"""One sandbox scenario end to end: the real SDK syncs a sandbox company through the CLI
(Dagster's jobs in process), dbt builds the marts, and the ``revenue_alerts`` check evaluates
the project's rule after each build; the alert reaches a loopback signed webhook once.

The scenario: a 15-customer company whose generated history ends two days before today (D),
so nothing of its own happens on D-1 or D (the fixture checks no subscription is scheduled to
end then). Then one customer with a single plain monthly USD subscription cancels it on D.
"""

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from orchestration.ui import dagster_home
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.alert_delivery import SIGNATURE_HEADER, verify_signature
from stripe_warehouse.crypto import generate_key
from tests.alerts.receivers import HttpReceiver, http_receiver
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

PROJECT = "shop"
SIGNING_SECRET = "whsec_e2e_alerts"
TODAY = dt.datetime.now(dt.UTC).date()
YESTERDAY = TODAY - dt.timedelta(days=1)


def plain_monthly_customer(company: Company) -> tuple[dict[str, Any], Decimal] | None:
    """A customer's only live subscription: one licensed per-unit monthly USD item, no
    discount; and its MRR, unit_amount x quantity / 100 (what its churn loses)."""
    subs = company.objects["subscription"]
    live = [s for s in subs if s["status"] in ("active", "past_due", "trialing")]
    discounted = {c["id"] for c in company.objects["customer"] if c.get("discount")}
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
            return sub, Decimal(price["unit_amount"] * item["quantity"]) / 100
    return None


@dataclass
class Scenario:
    home: Path
    env: dict[str, str]
    lost_mrr: Decimal
    customer_id: str
    outputs: dict[str, subprocess.CompletedProcess[str]]
    hook: HttpReceiver
    hook_requests: dict[str, int]  # requests received after each step


def scenario_company(start_of_today: float) -> tuple[Company, dict[str, Any], Decimal]:
    """The first seeded 15-customer company (history ending two days before today) with a plain
    monthly subscription to cancel and no subscription of its own scheduled to end on D-1 or
    D; that subscription; and its MRR."""
    for seed in range(1, 50):
        company = generate_company(CompanyConfig(customers=15, years=1, seed=seed,
                                                 now=int(start_of_today) - 2 * 86400 + 3600))
        if [s for s in company.objects["subscription"]
                if (s["cancel_at"] or 0) >= start_of_today - 86400]:
            continue
        found = plain_monthly_customer(company)
        if found is not None:
            return company, *found
    raise AssertionError("no seed gives the scenario's company")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    start_of_today = dt.datetime.combine(TODAY, dt.time(), dt.UTC).timestamp()
    company, sub, lost = scenario_company(start_of_today)
    home = tmp_path_factory.mktemp("alerts-e2e") / "state"
    with SandboxServer(accounts={"sk_test_alerts": company}) as sandbox, \
            http_receiver() as hook:
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT),
               "STRIPE_WAREHOUSE_HOME": str(home), "STRIPE_WAREHOUSE_SECRET_KEY": generate_key(),
               "STRIPE_API_BASE": sandbox.url, "SHOP_KEY": "sk_test_alerts",
               "HOOK_SECRET": SIGNING_SECRET}
        outputs = {"connect": cli(env, "connect", PROJECT, "--tier", "pro",
                                  "--api-key-env", "SHOP_KEY")}
        outputs["rule"] = cli(env, "alerts", "add", PROJECT, "churned_mrr", f"${lost - 1}")
        outputs["channel"] = cli(env, "alerts", "channel", PROJECT, "webhook", "--url",
                                 f"{hook.url}/hook", "--signing-secret-env", "HOOK_SECRET")
        requests: dict[str, int] = {}
        outputs["backfill"] = cli(env, "sync", PROJECT, "--backfill")
        requests["backfill"] = len(hook.requests)
        company.cancel_subscription(sub["id"], at=int(time.time()) - 60)
        outputs["refresh"] = cli(env, "sync", PROJECT, "--refresh")
        requests["refresh"] = len(hook.requests)
        outputs["transform"] = cli(env, "transform")
        requests["transform"] = len(hook.requests)
        yield Scenario(home, env, lost, sub["customer"], outputs, hook, requests)


def check_evaluations(home: Path, job: str) -> list[Any]:
    """The ``revenue_alerts`` results of each run of ``job``, oldest first."""
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        runs = reversed(instance.get_runs(RunsFilter(job_name=job)))
        return [record.dagster_event.event_specific_data
                for run in runs
                for record in instance.all_logs(
                    run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
                if record.dagster_event.event_specific_data.check_name == "revenue_alerts"]


def test_the_churn_alert_fires_on_the_day_of_the_cancellation_and_not_the_day_before(
        scenario: Scenario) -> None:
    """The backfill judges D-1 and D: no churn, nothing sent. The cancellation on D loses the
    subscription's MRR (unit_amount x quantity / 100, the fixture's hand figure), $1 above the
    rule's threshold: the refresh's build fires it for D, naming the customer; D-1 stays quiet.
    The transform after it changes no number and sends nothing new."""
    for name, output in scenario.outputs.items():
        assert output.returncode == 0, (name, output.stderr)
    with sqlite3.connect(scenario.home / "alerts.sqlite") as con:
        states = dict(con.execute("select day, firing from alert_state").fetchall())
        log = con.execute("select event, day, value, customers from alert_log").fetchall()
    assert states == {YESTERDAY.isoformat(): 0, TODAY.isoformat(): 1}
    [(event, day, value, customers)] = log
    assert (event, day, Decimal(value)) == ("fired", TODAY.isoformat(), scenario.lost_mrr)
    assert json.loads(customers) == [{"customer_id": scenario.customer_id,
                                      "lost_mrr": f"{scenario.lost_mrr:.6f}"}]
    assert scenario.hook_requests == {"backfill": 0, "refresh": 1, "transform": 1}
    [(_, headers, body)] = scenario.hook.requests
    assert verify_signature(body, headers[SIGNATURE_HEADER], SIGNING_SECRET)
    assert json.loads(body)["rule"] == "churned_mrr-1"


def test_dagster_records_each_build_as_the_revenue_alerts_check(scenario: Scenario) -> None:
    """Each run's check result: passed before the churn; WARN after it, with the rule, the
    value and the threshold in its metadata (the UI's timeline)."""
    backfill = check_evaluations(scenario.home, "backfill")
    refresh = check_evaluations(scenario.home, "refresh")
    transform = check_evaluations(scenario.home, "transform")
    assert [e.passed for e in backfill + refresh + transform] == [True, False, False]
    metadata = refresh[0].metadata
    assert (metadata["rule"].value, metadata["value"].value, metadata["threshold"].value,
            metadata["day"].value) == ("churned_mrr-1", f"{scenario.lost_mrr:.6f}",
                                       f"${scenario.lost_mrr - 1}", TODAY.isoformat())
    assert metadata["alerts_sent"].value == 1
    assert transform[0].metadata["alerts_sent"].value == 0
