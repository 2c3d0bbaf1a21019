"""`stripe-warehouse verify PROJECT`: the published marts against figures recomputed in Python
straight from the Stripe API (verify_stripe.py), one line per check, both figures and the
difference. A money difference above one cent, or any count difference, fails the check;
`--explain` lists the objects behind each failed one.

Stocks (MRR, active subscriptions, customers) are what Stripe lists now, so they are compared
with the last synced day only. Flows (revenue over 7 and 30 days, failed payments over 7) are
sums over complete days ending the day before the last sync (or on `--date`), days of the
project's reporting time zone as in the marts (`stripe-warehouse timezone`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from commands.verify_marts import MartFigures, read_marts, read_rates
from commands.verify_pricing import round_money
from commands.verify_stripe import StripeFigures
from stripe_warehouse.errors import WarehouseError

CENT = Decimal("0.01")


@dataclass
class Check:
    """One line of the report: Stripe's figure, the warehouse's, and what explains a gap."""

    name: str
    unit: str  # "USD" or "count"
    stripe: Decimal
    warehouse: Decimal
    explanation: list[str] = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        return self.warehouse - self.stripe

    @property
    def failed(self) -> bool:
        limit = CENT if self.unit == "USD" else Decimal(0)
        return abs(self.difference) > limit


def verify(home: Path, project_id: str, figures_from: Callable[[int, int, int], StripeFigures],
           day: date | None = None, zone: tzinfo = UTC) -> tuple[list[Check], list[str]]:
    """The checks of one project, and notes (skipped checks, currencies without a rate).

    ``figures_from(now, flows_from, flows_to)`` reads Stripe (verify_stripe.read_figures);
    ``zone``: the project's reporting time zone, whose midnights bound the flows' days."""
    probe = read_marts(home, project_id, None, date.today(), date.today())
    last_day = probe.last_day
    day = day or last_day
    if day > last_day:
        raise WarehouseError(f"--date {day} is after the last synced day {last_day}: "
                             "pick a day inside the synced window")
    flows_end = day - timedelta(days=1) if day == last_day else day
    flows_start = flows_end - timedelta(days=29)
    stock_day = day if day == last_day else None
    marts = read_marts(home, project_id, stock_day, flows_start, flows_end)
    rates = read_rates(home, flows_start, day)
    now = _timestamp(marts.as_of) or int(time.time())
    stripe = figures_from(now, _midnight(flows_start, zone),
                          _midnight(flows_end + timedelta(days=1), zone))

    notes: list[str] = []
    checks: list[Check] = []
    if stock_day is None:
        notes.append(f"MRR, active subscriptions and customers are checked for the last synced "
                     f"day ({last_day}) only: Stripe lists them as they are now")
    else:
        checks += _stock_checks(stripe, marts, rates, stock_day, notes)
    checks += _revenue_checks(stripe, marts, rates, flows_end, notes)
    checks.append(_failed_payments_check(stripe, marts, flows_end))
    return checks, notes


def _stock_checks(stripe: StripeFigures, marts: MartFigures,
                  rates: dict[tuple[str, date], Decimal], day: date,
                  notes: list[str]) -> list[Check]:
    usd: dict[str, Decimal] = {}
    unconverted = set()
    for sub_id, money in stripe.subscription_mrr.items():
        if sub_id in stripe.mrr_left_out:
            continue
        rate = rates.get((money.currency, day))
        if rate is None:
            unconverted.add(money.currency)
            continue
        usd[sub_id] = round_money(money.amount * rate)
    for currency in sorted(unconverted):
        notes.append(f"no FX rate for {currency}: its subscriptions are left out of MRR on "
                     "both sides (see the build's warning)")
    # counted on both sides, but their MRR is not recomputed: taken off the warehouse's total
    left_out = {s: v for s, v in marts.subscription_mrr_usd.items()
                if s in stripe.mrr_left_out and v is not None}
    by_reason: dict[str, list[str]] = defaultdict(list)
    for sub_id, why in sorted(stripe.mrr_left_out.items()):
        by_reason[why].append(sub_id)
    for why, sub_ids in by_reason.items():
        valued = sum((left_out.get(s, Decimal(0)) for s in sub_ids), Decimal(0))
        notes.append(f"{len(sub_ids)} subscription(s) left out of the MRR comparison on both "
                     f"sides ({why}; the warehouse values them at {_figure(valued)} USD): "
                     + ", ".join(sub_ids))
    mrr = Check(f"MRR {day}", "USD", sum(usd.values(), Decimal(0)),
                marts.daily.get(("stripe_mrr", day), Decimal(0))
                - sum(left_out.values(), Decimal(0)))
    converted = {s: v for s, v in marts.subscription_mrr_usd.items()
                 if v is not None and s not in stripe.mrr_left_out}
    for sub_id in sorted(set(usd) | set(converted)):
        ours, theirs = usd.get(sub_id), converted.get(sub_id)
        if ours is None or theirs is None or abs(ours - theirs) > CENT:
            mrr.explanation.append(f"{sub_id}: Stripe {_figure(ours)}, warehouse {_figure(theirs)}")
    active = Check(f"active subscriptions {day}", "count", Decimal(len(stripe.subscription_mrr)),
                   marts.daily.get(("stripe_active_subscriptions", day), Decimal(0)))
    listed, built = set(stripe.subscription_mrr), set(marts.subscription_mrr_usd)
    active.explanation += [f"{s}: counted by Stripe's listing, not in the warehouse"
                           for s in sorted(listed - built)]
    active.explanation += [f"{s}: counted in the warehouse, not by Stripe's listing"
                           for s in sorted(built - listed)]
    customers = Check(f"customers {day}", "count", Decimal(len(stripe.customer_ids)),
                      marts.daily.get(("stripe_customers", day), Decimal(0)))
    customers.explanation += [f"{c}: listed by Stripe, not existing in the warehouse"
                              for c in sorted(stripe.customer_ids - marts.customer_ids)]
    customers.explanation += [f"{c}: existing in the warehouse, not listed by Stripe"
                              for c in sorted(marts.customer_ids - stripe.customer_ids)]
    return [mrr, active, customers]


def _revenue_checks(stripe: StripeFigures, marts: MartFigures,
                    rates: dict[tuple[str, date], Decimal], end: date,
                    notes: list[str]) -> list[Check]:
    # converted per day and currency, then rounded, as fct_revenue_daily does
    by_day_currency: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for entry in stripe.ledger:
        by_day_currency[(entry.day, entry.money.currency)] += entry.money.amount
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    unconverted = set()
    for (day, currency), amount in by_day_currency.items():
        rate = rates.get((currency, day))
        if rate is None:
            unconverted.add(currency)
            continue
        by_day[day] += round_money(amount * rate)
    for currency in sorted(unconverted):
        notes.append(f"no FX rate for {currency}: its revenue is left out on both sides")
    checks = []
    for days in (7, 30):
        window = [end - timedelta(days=n) for n in range(days)]
        check = Check(f"revenue {days} days {window[-1]}..{end}", "USD",
                      sum((by_day.get(d, Decimal(0)) for d in window), Decimal(0)),
                      sum((marts.daily.get(("stripe_revenue", d), Decimal(0)) for d in window),
                          Decimal(0)))
        for d in sorted(window):
            ours, theirs = by_day.get(d, Decimal(0)), marts.daily.get(("stripe_revenue", d),
                                                                         Decimal(0))
            if abs(ours - theirs) > CENT:
                check.explanation.append(f"{d}: Stripe's ledger {_figure(ours)}, warehouse "
                                         f"{_figure(theirs)}; the ledger that day:")
                check.explanation += [
                    f"  {e.source_id} ({e.txn_id}) {e.money.amount:+} {e.money.currency}"
                    for e in sorted(stripe.ledger, key=lambda e: e.source_id) if e.day == d]
        checks.append(check)
    return checks


def _failed_payments_check(stripe: StripeFigures, marts: MartFigures, end: date) -> Check:
    window = [end - timedelta(days=n) for n in range(7)]
    per_day = Counter(stripe.failed_attempts.values())
    check = Check(f"failed payments 7 days {window[-1]}..{end}", "count",
                  Decimal(sum(per_day[d] for d in window)),
                  sum((marts.daily.get(("stripe_failed_payments", d), Decimal(0))
                       for d in window), Decimal(0)))
    for d in sorted(window):
        theirs = marts.daily.get(("stripe_failed_payments", d), Decimal(0))
        if per_day[d] != theirs:
            failed = sorted(c for c, day in stripe.failed_attempts.items() if day == d)
            check.explanation.append(f"{d}: Stripe {per_day[d]} failed attempts "
                                     f"({', '.join(failed) or 'none'}), warehouse {int(theirs)}")
    return check


def format_report(project_id: str, checks: list[Check], notes: list[str],
                  explain: bool = False) -> str:
    """One line per check: ok/DIFF, name, Stripe's figure, the warehouse's, the difference."""
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"verify {project_id}: Stripe API (recomputed) vs published marts"]
    for check in checks:
        status = "DIFF" if check.failed else "ok  "
        lines.append(f"{status} {check.name:<{width}}  Stripe {_figure(check.stripe, check.unit)}"
                     f"  warehouse {_figure(check.warehouse, check.unit)}"
                     f"  difference {_figure(check.difference, check.unit, signed=True)}")
        if explain and check.failed:
            lines += [f"       {line}" for line in check.explanation or ["(no single object)"]]
    lines += [f"note: {note}" for note in notes]
    failed = sum(c.failed for c in checks)
    if failed and not explain:
        lines.append(f"{failed} check(s) differ: run with --explain to list the objects")
    return "\n".join(lines)


def _figure(value: Decimal | None, unit: str = "USD", signed: bool = False) -> str:
    if value is None:
        return "-"
    if unit == "count":
        return f"{int(value):+d}" if signed else f"{int(value)}"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _midnight(day: date, zone: tzinfo) -> int:
    """The unix time of `day`'s first instant in `zone`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def _timestamp(value: object) -> int | None:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    return None


def run_verify(home: Path, project_id: str, day: date | None = None, explain: bool = False,
               api_base: str | None = None) -> tuple[str, int]:
    """Verify one project with its stored key: the report and the exit code (1 on a DIFF)."""
    from commands.verify_stripe import read_figures
    from pipelines.client import StripeReader
    from stripe_warehouse.registry import ConnectionStore

    store = ConnectionStore(home)
    api_key = store.api_key(project_id)
    # the zone the project's last sync wrote, which the marts' days follow
    zone = ZoneInfo(store.get(project_id).time_zone)
    with StripeReader(api_key, api_base, project_id=project_id) as reader:
        checks, notes = verify(home, project_id,
                               lambda now, lo, hi: read_figures(reader, now, lo, hi, zone), day,
                               zone)
    report = format_report(project_id, checks, notes, explain)
    return report, 1 if any(c.failed for c in checks) else 0
