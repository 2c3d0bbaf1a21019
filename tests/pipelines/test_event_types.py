"""The event types a sync lists (pipelines/event_types.py) cover what the models read."""

import re
import typing
from pathlib import Path

from pipelines.event_types import (
    EVENT_TYPE_GROUPS,
    LISTED_EVENT_TYPES,
    MAX_TYPES_PER_REQUEST,
    MODEL_EVENT_TYPES,
    SUBSCRIPTION_EVENT_TYPES,
    type_groups,
)
from pipelines.webhooks_apply import APPLIED_TYPES

DBT = Path(__file__).resolve().parents[2] / "dbt_project"
# `event_type = 'x'`, `type like 'x.%'`, `event_type in ('x', 'y')`, `not in (...)`
COMPARISON = re.compile(r"\b(?:event_)?type\s+(?:=|!=|<>|(?:not\s+)?like|(?:not\s+)?in)\s*"
                        r"(\([^)]*\)|'[^']*')", re.IGNORECASE)
# A prefix a model reads -> every type Stripe sends under it (exact names are listed).
PREFIXES = {"customer.subscription.%": SUBSCRIPTION_EVENT_TYPES}


def event_type_literals() -> dict[str, set[Path]]:
    """Every quoted literal an event type is compared with in the dbt SQL, and where."""
    found: dict[str, set[Path]] = {}
    for path in [*DBT.rglob("*.sql")]:
        sql = re.sub(r"--[^\n]*", "", path.read_text())
        for match in COMPARISON.finditer(sql):
            for literal in re.findall(r"'([^']*)'", match.group(1)):
                found.setdefault(literal, set()).add(path.relative_to(DBT))
    return found


def test_every_event_type_a_model_reads_is_listed():
    literals = event_type_literals()
    # the scan sees the models it must see (a scan that finds nothing proves nothing)
    assert {"customer.deleted", "charge.succeeded", "customer.subscription.%"} <= set(literals)
    exact = {t for t in literals if "%" not in t}
    assert exact <= MODEL_EVENT_TYPES, {t: literals[t] for t in exact - MODEL_EVENT_TYPES}
    patterns = {t for t in literals if "%" in t}
    assert patterns <= set(PREFIXES), {t: literals[t] for t in patterns - set(PREFIXES)}
    read = exact | {t for p in patterns for t in PREFIXES[p]}
    # and nothing stale: every model type is read by some model
    assert read == MODEL_EVENT_TYPES
    assert MODEL_EVENT_TYPES <= set(LISTED_EVENT_TYPES)


def test_the_webhook_applier_and_the_sync_use_the_same_types():
    assert APPLIED_TYPES <= set(LISTED_EVENT_TYPES)


def test_listings_hold_each_type_once_and_at_most_twenty_exact_names():
    assert len(LISTED_EVENT_TYPES) == 41
    assert [len(group) for group in EVENT_TYPE_GROUPS] == [14, 14, 13]
    flat = [t for group in EVENT_TYPE_GROUPS for t in group]
    assert sorted(flat) == list(LISTED_EVENT_TYPES) and len(set(flat)) == len(flat)
    assert not any("*" in t or "%" in t for t in flat)  # types[] takes exact names only
    assert [len(g) for g in type_groups(tuple(f"t{i}" for i in range(41)))] == [14, 14, 13]
    assert max(len(g) for g in type_groups(tuple(f"t{i}" for i in range(61)))) \
        <= MAX_TYPES_PER_REQUEST
    assert type_groups(()) == []


def stripe_event_types() -> set[str]:
    """Every event type a webhook endpoint can enable, as the pinned `stripe` SDK spells them
    (generated from Stripe's OpenAPI spec)."""
    from stripe.params._webhook_endpoint_create_params import WebhookEndpointCreateParams
    enabled = WebhookEndpointCreateParams.__annotations__["enabled_events"]
    return set(typing.get_args(typing.get_args(enabled)[0])) - {"*"}


def test_every_listed_type_is_one_stripe_sends():
    known = stripe_event_types()
    assert len(known) > 200 and "invoice_payment.paid" in known  # the SDK's list was read
    assert set(LISTED_EVENT_TYPES) <= known, set(LISTED_EVENT_TYPES) - known


def test_partial_payments_of_an_invoice_are_applied_by_webhook():
    """A payment that leaves part of an invoice to pay sends `invoice_payment.paid` and
    `invoice.updated`, never `invoice.paid` (tests/dbt/test_collected_revenue.py, shape N)."""
    assert {"invoice_payment.paid", "invoice.updated"} <= APPLIED_TYPES
