"""The event types a sync lists (pipelines/event_types.py) cover what the models read."""

import re
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
    assert len(LISTED_EVENT_TYPES) == 39
    assert [len(group) for group in EVENT_TYPE_GROUPS] == [20, 19]
    flat = [t for group in EVENT_TYPE_GROUPS for t in group]
    assert sorted(flat) == list(LISTED_EVENT_TYPES) and len(set(flat)) == len(flat)
    assert not any("*" in t or "%" in t for t in flat)  # types[] takes exact names only
    assert [len(g) for g in type_groups(tuple(f"t{i}" for i in range(41)))] == [14, 14, 13]
    assert max(len(g) for g in type_groups(tuple(f"t{i}" for i in range(61)))) \
        <= MAX_TYPES_PER_REQUEST
    assert type_groups(()) == []
