"""Retry decisions: exponential backoff with jitter, Stripe-Should-Retry, Retry-After."""

from pipelines.client import endpoint_key, retry_delay
from pipelines.settings import MAX_ATTEMPTS


def test_rate_limited_requests_back_off_exponentially() -> None:
    delays = [retry_delay(n, 429, {}, rng=lambda: 1.0) for n in range(1, 5)]
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped_and_jittered_within_half_to_full_step() -> None:
    assert retry_delay(7, 500, {}, rng=lambda: 0.0) == 4.0
    assert retry_delay(7, 500, {}, rng=lambda: 1.0) == 8.0


def test_should_retry_false_stops_even_a_429() -> None:
    assert retry_delay(1, 429, {"Stripe-Should-Retry": "false"}) is None


def test_should_retry_true_makes_a_409_retryable() -> None:
    assert retry_delay(1, 409, {"stripe-should-retry": "true"}, rng=lambda: 0.0) == 0.25
    assert retry_delay(1, 409, {}) is None


def test_retry_after_is_a_minimum_wait() -> None:
    assert retry_delay(1, 429, {"Retry-After": "3"}, rng=lambda: 0.0) == 3.0


def test_client_errors_are_not_retried() -> None:
    for status in (400, 401, 403, 404):
        assert retry_delay(1, status, {}) is None


def test_gives_up_after_the_attempt_budget() -> None:
    assert retry_delay(MAX_ATTEMPTS - 1, 503, {}) is not None
    assert retry_delay(MAX_ATTEMPTS, 503, {}) is None


def test_refused_connections_get_few_attempts() -> None:
    assert retry_delay(1, None, {}) is not None
    assert retry_delay(3, None, {}) is None


def test_rate_limit_bucket_ignores_object_ids() -> None:
    assert endpoint_key("/v1/invoices/in_123/lines") == "/v1/invoices"
    assert endpoint_key("/v1/customers/cus_1") == "/v1/customers"
    assert endpoint_key("/v1/customers") == "/v1/customers"
