"""What a sync should load, computed from the sandbox company's own objects (not via the API)."""

from typing import Any

from pipelines.event_types import LISTED_EVENT_TYPES
from sandbox.company import Company

DAY = 86_400


def expected_backfill_ids(company: Company, now: int) -> dict[str, set[str]]:
    """Ids per raw table that a backfill at ``now`` must load (docs/architecture.md windows)."""
    end = now + 1
    activity_start, events_start = now - 90 * DAY, now - 30 * DAY
    objs = company.objects

    def created_in(kind: str, start: int) -> set[str]:
        return {o["id"] for o in objs[kind] if start <= o["created"] < end}

    subscriptions = objs["subscription"]
    invoice_ids = created_in("invoice", activity_start) | {
        _id(s["latest_invoice"]) for s in subscriptions if s.get("latest_invoice")}
    invoices = [company.get("invoice", i) for i in invoice_ids]
    return {
        "customers": {o["id"] for o in objs["customer"] if not o.get("deleted")},
        "subscriptions": {s["id"] for s in subscriptions},
        "subscription_items": {i["id"] for s in subscriptions for i in s["items"]["data"]},
        "invoices": invoice_ids,
        "invoice_lines": {ln["id"] for inv in invoices for ln in inv["lines"]["data"]},
        "charges": created_in("charge", activity_start),
        "refunds": created_in("refund", activity_start),
        "disputes": created_in("dispute", activity_start),
        "credit_notes": created_in("credit_note", activity_start),
        "prices": {o["id"] for o in objs["price"]},
        "products": {o["id"] for o in objs["product"]},
        "coupons": {o["id"] for o in objs["coupon"]},
        "events": {e["id"] for e in objs["event"]
                   if e["type"] in LISTED_EVENT_TYPES and events_start <= e["created"] < end},
        "subscription_versions": {s["id"] for s in subscriptions},
    }


def _id(value: Any) -> str:
    return value["id"] if isinstance(value, dict) else value
