"""Renewal invoices of a subscription a shape generator started in the past.

The pricing and VAT shapes (sandbox/pricing_shapes.py, sandbox/taxes.py) start their
subscriptions at any time of the customer's life, as real accounts do: each period from the
first one's end up to the one holding `now` is invoiced and paid at its start
(`subscription_cycle`), at the items' prices and quantities, with the discounts still in force
and the subscription's tax rates, and the items' current period moved along. (Starting them
all in the last weeks made the demo's MRR jump a quarter month over month.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import line_amount, period_end
from sandbox.objects import Obj

if TYPE_CHECKING:
    from sandbox.company import Company


def renew_until_now(company: Company, sub: Obj, until: int | None = None) -> None:
    """Invoice and pay each renewal of `sub` up to the period holding `company.now` (or
    `until`, if earlier: a change at that moment comes next, then the later renewals)."""
    items = sub["items"]["data"]
    recurring = items[0]["price"]["recurring"]
    start = items[0]["current_period_end"]
    last = company.now if until is None else min(until, company.now)
    while start <= last:
        end = period_end(start, recurring["interval"], recurring["interval_count"])
        for item in items:
            item["current_period_start"], item["current_period_end"] = start, end
        lines = [Line(item["price"], item["quantity"],
                      line_amount(company.plan(item["price"]["lookup_key"]), item["quantity"],
                                  sub["currency"]),
                      (start, end), item["id"])
                 for item in items if item["quantity"] is not None]
        in_force = [d for d in discounts_of(sub)
                    if d["source"]["coupon"]["duration"] != "once"
                    and (d["end"] is None or d["end"] > start)]
        invoice = create_invoice(company, sub["customer"], sub["currency"], start,
                                 "subscription_cycle", sub["id"], lines, in_force,
                                 Collection([Attempt(start)]))
        sub["latest_invoice"] = invoice["id"]
        start = end
    company.touch("subscription")


def discounts_of(sub: Obj) -> list[Obj]:
    """The subscription's discounts and its items' own ones (objects): what its next invoice
    applies (an item's own ones on that item's lines)."""
    found = [d for d in sub.get("discounts") or [] if isinstance(d, dict)]
    for item in sub["items"]["data"]:
        found += [d for d in item.get("discounts") or [] if isinstance(d, dict)]
    return found
