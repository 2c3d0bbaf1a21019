"""The SaaS-metrics company (issue 22): eight customers whose months are computed by hand in
tests/dbt/test_saas_metrics.py (rates, cohorts) and tests/dbt/test_semantic_layer.py (the
semantic layer's answers), built once per session (tests/dbt/conftest.py `saas_marts`).

Billing countries (customer.address.country): A, B and T1 in the US, C and D in Germany, E in
France, T3 in Great Britain; T2 gave no address (country null).

Per day (fct_saas_metrics_daily, checked by tests/dbt/test_saas_metrics.py), by hand. The
window is Aug 12 .. Nov 10 (Nov 10 partial: today). Each change at 10:00 UTC moves the MRR at
that day's end: Sep 10 D new 19; Sep 19 T1 new 19 (its 14-day trial from Sep 5 ends); Sep 20
B churn 12; Oct 3 E new 12; Oct 15 D churn 19; Oct 20 C expansion 38 (19 -> 57). MRR at the
end of each day, paying customers and ARPA (MRR / paying):
  Aug 12 .. Sep 9   50 (A 19, B 12, C 19)        3   16.666667
  Sep 10 .. Sep 18  69 (+ D 19)                  4   17.25
  Sep 19            88 (+ T1 19)                 5   17.6
  Sep 20 .. Oct 2   76 (- B 12)                  4   19
  Oct 3 .. Oct 14   88 (+ E 12)                  5   17.6
  Oct 15 .. Oct 19  69 (- D 19)                  4   17.25
  Oct 20 .. Nov 10  107 (C 19 -> 57)             4   26.75
Trailing 30 days of day X: the movements of X-29 .. X over the MRR and customers at the end of
X-30 (base). Covered from Sep 11 on (base Aug 12, the window's first day); before, null.
- Sep 10: not covered (base Aug 11 is before the window): rates null, ARPA 17.25.
- Sep 11: base Aug 12: 50, 3; window Aug 13 .. Sep 11: new 19 (D), no loss: customer, gross
  and net churn 0, quick ratio null (no loss).
- Oct 15: base Sep 15: 69 (A, B, C, D), 4; window Sep 16 .. Oct 15: new 31 (T1 19, E 12),
  churn 31 (B 12, D 19), 2 customers churned: customer churn 2 / 4 = 0.5; gross and net MRR
  churn 31 / 69 = 0.449275; quick ratio 31 / 31 = 1. (69 + 31 - 31 = 69, the day's MRR.)
- Oct 19: base Sep 19: 88 (A, B, C, D, T1), 5; window Sep 20 .. Oct 19: new 12 (E), churn 31
  (B, D): customer churn 2 / 5 = 0.4; gross and net 31 / 88 = 0.352273; quick 12 / 31 =
  0.387097.
- Oct 20: base Sep 20: 76 (A, C, D, T1), 4; window Sep 21 .. Oct 20: new 12, expansion 38,
  churn 19 (D): customer churn 1 / 4 = 0.25; gross 19 / 76 = 0.25; net (19 - 38) / 76 =
  -0.25; quick (12 + 38) / 19 = 2.631579 (October's monthly figures: Sep 20's end is Sep 30's).
- Nov 10 (partial day): base Oct 11: 88 (A, C, D, T1, E), 5; window Oct 12 .. Nov 10: churn
  19 (D), expansion 38: customer churn 1 / 5 = 0.2; gross 19 / 88 = 0.215909; net
  (19 - 38) / 88 = -0.215909; quick 38 / 19 = 2; ARPA 107 / 4 = 26.75.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sandbox import trials
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.pricing_shapes import new_customer
from sandbox.renewals import renew_until_now
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build
from tests.dbt.timed_sync import sync_as_of

PROJECT_ID = "saas"
API_KEY = "sk_test_saas_metrics"
NOW = int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp())
SEP, OCT, NOV, AUG = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1), date(2026, 8, 1)


def at(day: str) -> int:
    """Unix seconds of 10:00 UTC on an ISO day of 2026."""
    return int(datetime.fromisoformat(f"2026-{day}T10:00:00+00:00").timestamp())


def subscribe(co: Company, plan: str, start: str, trial_days: int = 0,
              country: str | None = "US") -> dict:
    """A new customer (billing in `country`) subscribing at `start` to one unit of `plan`; its
    subscription."""
    customer = new_customer(co, "usd", at(start), country)
    co.create_subscription(customer["id"], co.price_by_key(plan)["id"], at(start),
                           trial_days=trial_days)
    return co.objects["subscription"][-1]


def paying(co: Company, plan: str, start: str, until: str | None = None,
           country: str = "US") -> dict:
    """A subscription paid at its start and at each monthly renewal (up to `until`)."""
    sub = subscribe(co, plan, start, country=country)
    sub["status"] = "active"
    renew_until_now(co, sub, at(until) if until else None)
    return sub


def saas_company() -> Company:
    co = generate_company(CompanyConfig(customers=0, years=1, seed=22, now=NOW))
    paying(co, "starter_usd_month", "06-01")  # A
    b = paying(co, "pro_usd_month", "06-15", until="09-20")
    co.cancel_subscription(b["id"], at("09-20"))
    c = paying(co, "starter_usd_month", "07-01", until="10-20", country="DE")
    co.change_quantity(c["id"], 3, at("10-20"))
    renew_until_now(co, c)
    d = paying(co, "starter_usd_month", "09-10", until="10-15", country="DE")
    co.cancel_subscription(d["id"], at("10-15"))
    paying(co, "pro_usd_month", "10-03", country="FR")  # E
    t1 = subscribe(co, "starter_usd_month", "09-05", trial_days=14)
    t1["status"] = "active"
    renew_until_now(co, t1)
    t2 = subscribe(co, "starter_usd_month", "09-12", trial_days=14, country=None)
    trials.pause_at_trial_end(co, t2)
    subscribe(co, "starter_usd_month", "10-25", trial_days=30, country="GB")  # T3
    return co


def build_saas_marts(home: Path) -> Path:
    """The company backfilled as of NOW into `home` and built: the warehouse file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_ENV, generate_key())
        patch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        with SandboxServer(accounts={API_KEY: saas_company()}) as server:
            store = ConnectionStore(home)
            store.connect(PROJECT_ID, "pro", API_KEY)
            sync_as_of(store, PROJECT_ID, home, server.url, "backfill", NOW)
            build(home=home)
    return home / "warehouse.duckdb"
