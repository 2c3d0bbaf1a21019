"""Stripe SDK debug logs (whole response bodies) never carry a token, key or code."""

import logging

import pytest

from stripe_warehouse.redaction import redact, redact_stripe_sdk_logs

TOKEN_ANSWER = ('{"access_token": "sk_live_oauth1a2b3c", "refresh_token": "rt_9f8e7d", '
                '"stripe_user_id": "acct_1ABC", "scope": "read_only"}')


def test_redact_replaces_keys_tokens_codes_and_signing_secrets_only() -> None:
    assert redact(f"{TOKEN_ANSWER} rk_test_x1 whsec_y2 code=ac_z3 id=cus_4") == (
        '{"access_token": "[redacted]", "refresh_token": "[redacted]", '
        '"stripe_user_id": "acct_1ABC", "scope": "read_only"} [redacted] [redacted] '
        "code=[redacted] id=cus_4")


def test_stripe_logger_redacts_response_bodies_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redact_stripe_sdk_logs()
    redact_stripe_sdk_logs()  # idempotent: one filter
    logger = logging.getLogger("stripe")
    caplog.set_level(logging.DEBUG, logger="stripe")
    logger.debug("body=%s message='API response body'", TOKEN_ANSWER)
    assert "sk_live_oauth1a2b3c" not in caplog.text and "rt_9f8e7d" not in caplog.text
    assert "acct_1ABC" in caplog.text
    assert sum(type(f).__name__ == "RedactSecrets" for f in logger.filters) == 1
