"""Stripe webhook signatures, checked by the stripe SDK's ``WebhookSignature.verify_header``.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 and the endpoint's signing secret, in
``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`` (one ``v1`` per active secret during a
roll). The SDK does the HMAC and the constant-time comparison. Around it, this module keeps
what the SDK does not do for a public endpoint: it refuses a header the SDK would crash on or
read loosely (a ``t=`` of thousands of digits, ``+1``, non-ASCII digits; a non-ASCII ``v1=``
makes ``hmac.compare_digest`` raise ``TypeError``), refuses timestamps in the future as well as
the past, and turns every refusal into one line naming the fix.
"""

import re
import time

import stripe

TOLERANCE_SECONDS = 300  # Stripe's default; applied to future timestamps too (clock skew)
SCHEME = stripe.WebhookSignature.EXPECTED_SCHEME  # "v1"
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds; more digits are no time we could check
HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{1,128}")  # anything else can never match a digest


class SignatureError(ValueError):
    """The request is not signed by the project's secret; ``str()`` is a one-line reason."""


def _not_signed_by_project() -> SignatureError:
    return SignatureError(
        "no Stripe-Signature v1 matches this project's signing secret: "
        "check the endpoint secret stored with `stripe-warehouse connect`"
    )


def _parse_header(header: str) -> tuple[int, list[str]]:
    """The header's ``t`` and its ``v1`` candidates that could be a digest (hex, ASCII)."""
    timestamp: int | None = None
    signatures: list[str] = []
    found_scheme = False
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not TIMESTAMP.fullmatch(value):
                raise SignatureError("Stripe-Signature has a t= that is not a Unix time")
            timestamp = int(value)
        elif key == SCHEME:
            found_scheme = True
            if HEX_SIGNATURE.fullmatch(value):
                signatures.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature has no t= timestamp")
    if not found_scheme:
        raise SignatureError(f"Stripe-Signature has no {SCHEME}= signature")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check ``header`` signs ``payload`` with ``secret`` within ``tolerance``; return its ``t``.

    Raises :class:`SignatureError` (never anything else) otherwise.
    """
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp, signatures = _parse_header(header)
    if not signatures:
        raise _not_signed_by_project()
    try:
        payload.decode("utf-8")  # Stripe's bodies are UTF-8 JSON; the SDK decodes strictly
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8: send the Stripe event unchanged") from None
    # The SDK gets the header rebuilt from the checked parts; tolerance is checked below, both
    # ways (the SDK's only refuses timestamps in the past).
    checked = ",".join([f"t={timestamp}"] + [f"{SCHEME}={s}" for s in signatures])
    try:
        stripe.WebhookSignature.verify_header(payload, checked, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise _not_signed_by_project() from None
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance:
        raise SignatureError(
            f"Stripe-Signature timestamp is {abs(int(skew))} s off (tolerance {tolerance} s): "
            "check the server clock; Stripe retries with a fresh signature"
        )
    return timestamp
