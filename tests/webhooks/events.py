"""Stripe-shaped events for tests, from Stripe's own sample subscription (fixtures3.json)."""

import copy
import json
import time
from functools import cache
from typing import Any

from tests.paths import STRIPE_FIXTURES

FIXTURES = STRIPE_FIXTURES


@cache
def _sample_subscription() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]["subscription"]


def subscription_event(
    event_id: str = "evt_test_1", created: int | None = None, status: str = "active",
    event_type: str = "customer.subscription.updated",
) -> dict[str, Any]:
    """A ``customer.subscription.*`` event around Stripe's sample subscription."""
    subscription = copy.deepcopy(_sample_subscription())
    subscription["status"] = status
    return {
        "id": event_id, "object": "event", "api_version": "2025-09-30.clover",
        "created": int(time.time()) if created is None else created, "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": event_type, "data": {"object": subscription},
    }
