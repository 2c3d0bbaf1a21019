"""Keep Stripe secrets out of logs: the SDK logs whole response bodies at DEBUG level.

An OAuth token answer holds the access and refresh tokens, so a process logging at DEBUG
(a Dagster run, a service started with verbose logging) would write them to its logs.
"""

import logging
import re

SECRET_PATTERN = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\b(?:rt|whsec)_[A-Za-z0-9]+|\bac_[A-Za-z0-9]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every Stripe key, token, code or signing secret replaced."""
    return SECRET_PATTERN.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """A filter that rewrites each record's message with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact, never drop."""
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def redact_stripe_sdk_logs() -> None:
    """Install :class:`RedactSecrets` on the ``stripe`` logger (once)."""
    logger = logging.getLogger("stripe")
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
