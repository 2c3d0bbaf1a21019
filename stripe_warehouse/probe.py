"""Single GET requests that report the HTTP status instead of raising: for checks, not syncs."""

import json
from dataclasses import dataclass
from typing import Any

import stripe

from stripe_warehouse.settings import api_base as configured_api_base
from stripe_warehouse.stripe_api import STRIPE_API_VERSION


@dataclass(frozen=True)
class ProbeResult:
    """``status`` None means Stripe could not be reached; ``body`` is the JSON answer."""

    status: int | None
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether Stripe answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def probe(api_key: str, path: str, api_base: str | None = None, **params: Any) -> ProbeResult:
    """One GET of ``path`` with ``api_key``, no retries; never raises for HTTP answers."""
    client = stripe.StripeClient(
        api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": configured_api_base(api_base)},
        max_network_retries=0,
    )
    try:
        response = client.raw_request("get", path, **params)
    except stripe.APIConnectionError:
        return ProbeResult(None, {})
    except stripe.StripeError as error:
        return ProbeResult(error.http_status, error.json_body or {})
    return ProbeResult(200, json.loads(response.body))
