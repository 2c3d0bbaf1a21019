"""Stripe webhook signatures: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 and the endpoint's signing secret. During a
secret roll it sends one ``v1`` per active secret, so any matching ``v1`` is enough.
"""

import hashlib
import hmac
import re
import time

TOLERANCE_SECONDS = 300  # Stripe's default; applied to future timestamps too (clock skew)
SCHEME = "v1"
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds; more digits are no time we could check


class SignatureError(ValueError):
    """The request is not signed by the project's secret; ``str()`` is a one-line reason."""


def compute_signature(timestamp: int, payload: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<payload>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, as Stripe would send it."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={compute_signature(t, payload, secret)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not TIMESTAMP.fullmatch(value):
                raise SignatureError("Stripe-Signature has a t= that is not a Unix time")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature has no t= timestamp")
    if not signatures:
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

    Raises :class:`SignatureError` otherwise. Every candidate is compared in constant time.
    """
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp, signatures = _parse_header(header)
    expected = compute_signature(timestamp, payload, secret)
    # No early exit: the time taken does not depend on which candidate matched.
    matched = False
    for candidate in signatures:
        # Bytes: compare_digest refuses str with non-ASCII characters (headers are latin-1).
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError(
            "no Stripe-Signature v1 matches this project's signing secret: "
            "check the endpoint secret stored with `stripe-warehouse connect`"
        )
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance:
        raise SignatureError(
            f"Stripe-Signature timestamp is {abs(int(skew))} s off (tolerance {tolerance} s): "
            "check the server clock; Stripe retries with a fresh signature"
        )
    return timestamp
