"""Where a sandbox company's customers are: the country of their billing address.

Weights per billing currency, roughly as a US-based SaaS sells: dollar customers mostly in the
US, euro customers across the euro area. Some customers give no address at all (self-serve
sign-ups with a card only): their country is null, as Stripe renders it.
"""

from __future__ import annotations

import random

NO_ADDRESS = None
COUNTRY_WEIGHTS: dict[str, tuple[tuple[str | None, int], ...]] = {
    "usd": (("US", 70), ("CA", 7), ("AU", 4), ("IN", 3), ("BR", 3), ("MX", 2), ("SG", 2),
            ("IL", 2), ("CH", 1), (NO_ADDRESS, 6)),
    "eur": (("DE", 30), ("FR", 20), ("NL", 12), ("ES", 10), ("IT", 9), ("IE", 5), ("BE", 5),
            ("AT", 4), ("FI", 2), (NO_ADDRESS, 3)),
    "gbp": (("GB", 95), (NO_ADDRESS, 5)),
    "jpy": (("JP", 97), (NO_ADDRESS, 3)),
    "kwd": (("KW", 100),),
}


def pick_country(rng: random.Random, currency: str) -> str | None:
    """A customer's billing country for its currency (None: no address)."""
    weights = COUNTRY_WEIGHTS.get(currency, (("US", 1),))
    return rng.choices([c for c, _ in weights], [w for _, w in weights])[0]
