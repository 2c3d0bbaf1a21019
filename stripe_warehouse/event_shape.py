"""What a storable Stripe event looks like: checked at the door and again before applying.

The web service refuses (4xx) a signed body that fails :func:`event_problem`; the applier
quarantines a stored event that fails it (events stored before these checks existed). Every
bound is far beyond what Stripe sends, and each one keeps a value the applier, SQLite or
DuckDB cannot take (a year past 9999, an integer past 64 bits, JSON nested a thousand deep)
out of the inbox.
"""

import math
import re
import time
from typing import Any

# Stripe's first events date from 2011; 2010-01-01 leaves room for imported test data.
EARLIEST_CREATED = 1_262_304_000
# A signed event is fresh (±300 s); a day covers a badly set clock on either side.
FUTURE_CREATED_SECONDS = 86_400
MAX_DEPTH = 64  # Stripe objects nest about ten deep
INT64 = 2**63
EVENT_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")
EVENT_TYPE = re.compile(r"[a-z0-9_.\-]{1,100}")
OBJECT_FIELD = re.compile(r"[A-Za-z0-9_.\-]{1,255}")  # data.object's "id" and "object"


def _value_problem(value: Any) -> str | None:
    """Too deep, a number no database column takes, or not JSON: iteratively, no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not -INT64 <= item < INT64:
                return "holds an integer beyond 64 bits"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "holds a number that is not finite"
        else:
            return f"holds a {type(item).__name__}, which is not JSON"
    return None


def event_problem(event: Any, now: float | None = None) -> str | None:
    """Why ``event`` cannot be stored or applied (one line), or None if it can."""
    if not isinstance(event, dict) or event.get("object") != "event":
        return "not a Stripe event (needs object 'event', id, type, created and data.object)"
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not (isinstance(event_id, str) and EVENT_ID.fullmatch(event_id)):
        return "the event id is not a Stripe id (1-255 letters, digits, '_' or '-')"
    if not (isinstance(event_type, str) and EVENT_TYPE.fullmatch(event_type)):
        return "the event type is not a Stripe event type (like customer.subscription.updated)"
    if isinstance(created, bool) or not isinstance(created, int):
        return "created is not an integer Unix time"
    latest = (time.time() if now is None else now) + FUTURE_CREATED_SECONDS
    if not EARLIEST_CREATED <= created <= latest:
        return f"created {created} is not a plausible Unix time (2010 to now)"
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return "data.object is missing or not an object"
    for name in ("id", "object"):  # either may be absent (a balance has no id): then ignored
        if name in obj and not (isinstance(obj[name], str) and OBJECT_FIELD.fullmatch(obj[name])):
            return f"data.object.{name} is not a Stripe {'id' if name == 'id' else 'type'}"
    problem = _value_problem(event)
    return f"the event {problem}" if problem else None
