"""The Stripe-Signature verifier: the stripe SDK's, with one-line refusals and stricter input."""

import json
import time

import pytest
import stripe

from sandbox.webhook_sender import sign as signature_header
from service.signature import SignatureError, verify_signature

from .events import subscription_event

SECRET = "whsec_signature_tests"
BODY = json.dumps(subscription_event()).encode()


def test_valid_signature_is_accepted_by_us_and_by_the_stripe_sdk():
    header = signature_header(BODY, SECRET)
    assert verify_signature(BODY, header, SECRET) == int(header.split(",")[0][2:])
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300) is True


def test_header_made_by_the_stripe_sdk_is_accepted():
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    assert verify_signature(BODY, header, SECRET) > 0


def test_wrong_secret_is_refused_by_us_and_by_the_stripe_sdk():
    header = signature_header(BODY, "whsec_someone_else")
    with pytest.raises(SignatureError, match="no Stripe-Signature v1 matches"):
        verify_signature(BODY, header, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)


def test_tampered_body_is_refused():
    header = signature_header(BODY, SECRET)
    tampered = BODY.replace(b'"active"', b'"canceled"')
    assert tampered != BODY
    with pytest.raises(SignatureError, match="no Stripe-Signature v1 matches"):
        verify_signature(tampered, header, SECRET)


def test_timestamp_older_than_tolerance_is_refused():
    stale = int(time.time()) - 301
    with pytest.raises(SignatureError, match="tolerance 300 s"):
        verify_signature(BODY, signature_header(BODY, SECRET, stale), SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            BODY, signature_header(BODY, SECRET, stale), SECRET, tolerance=300)


def test_timestamp_in_the_future_beyond_tolerance_is_refused():
    future = int(time.time()) + 301
    with pytest.raises(SignatureError, match="tolerance 300 s"):
        verify_signature(BODY, signature_header(BODY, SECRET, future), SECRET)


def test_timestamp_within_tolerance_either_side_is_accepted():
    now = time.time()
    for skew in (-299, 299):
        t = int(now) + skew
        assert verify_signature(BODY, signature_header(BODY, SECRET, t), SECRET, now=now) == t


def test_any_matching_v1_among_several_is_enough():
    t = int(time.time())
    good = signature_header(BODY, SECRET, t).split("v1=")[1]
    old_secret = signature_header(BODY, "whsec_rolled_out", t).split("v1=")[1]
    header = f"t={t},v1={old_secret},v1={good},v0=ignored"
    assert verify_signature(BODY, header, SECRET) == t
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300) is True


def test_only_v0_signature_is_refused():
    t = int(time.time())
    header = signature_header(BODY, SECRET, t).replace("v1=", "v0=")
    with pytest.raises(SignatureError, match="no v1= signature"):
        verify_signature(BODY, header, SECRET)


@pytest.mark.parametrize("header", [None, "", "garbage", "v1=abc", "t=notanumber,v1=abc"])
def test_missing_or_malformed_header_is_refused(header):
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, SECRET)


def test_the_signature_is_checked_by_the_stripe_sdk(monkeypatch):
    calls = []

    def refuse(payload, header, secret, tolerance=None):
        calls.append((payload, secret))
        raise stripe.SignatureVerificationError("refused by the SDK", header, payload)

    monkeypatch.setattr(stripe.WebhookSignature, "verify_header", refuse)
    with pytest.raises(SignatureError, match="no Stripe-Signature v1 matches"):
        verify_signature(BODY, signature_header(BODY, SECRET), SECRET)
    assert calls == [(BODY, SECRET)]


@pytest.mark.parametrize("header", [
    "t=1{now},v1=00", "t=+{now},v1={sig}", "t=\u0661{now},v1={sig}", "t={now},v1=\u00e9\u00e9",
    "t=" + "9" * 5000 + ",v1=00", "t={now},v1={sig}\u00e9",
])
def test_headers_the_sdk_would_crash_on_or_read_loosely_are_refused_in_one_line(header):
    now = int(time.time())
    sig = signature_header(BODY, SECRET, now).split("v1=")[1]
    with pytest.raises(SignatureError) as refused:
        verify_signature(BODY, header.format(now=now, sig=sig), SECRET)
    assert "\n" not in str(refused.value)


def test_a_non_ascii_v1_beside_the_right_one_does_not_stop_it_matching():
    header = signature_header(BODY, SECRET)
    assert verify_signature(BODY, header + ",v1=\u00e9\u00e9", SECRET) > 0


def test_a_signed_body_that_is_not_utf8_is_refused_in_one_line():
    body = BODY + b"\xff"
    with pytest.raises(SignatureError, match="body is not UTF-8"):
        verify_signature(body, signature_header(body, SECRET), SECRET)
