"""Rate limiting (token buckets) and deterministic failure injection for the sandbox server."""

from __future__ import annotations

import random
import threading
import time

# CLI presets: (global requests/s, per-endpoint requests/s), as Stripe documents them.
RATE_LIMIT_PRESETS: dict[str, tuple[float | None, float | None]] = {
    "live": (100.0, 25.0),
    "test": (25.0, 25.0),
    "none": (None, None),
}


class TokenBucket:
    """Allows `rate` requests per second on average, with bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def has_token(self) -> bool:
        """Refill for the time elapsed; whether a token is available (not thread-safe)."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return self._tokens >= 1

    def consume(self) -> None:
        """Take one token (after `has_token` said yes)."""
        self._tokens -= 1


class RateLimiter:
    """Per-account global bucket plus one bucket per endpoint family."""

    def __init__(self, global_rate: float | None, per_endpoint_rate: float | None) -> None:
        self.global_rate = global_rate
        self.per_endpoint_rate = per_endpoint_rate
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, account: str, family: str) -> bool:
        """Whether a request of `account` to endpoint `family` may proceed now."""
        checks = []
        if self.global_rate is not None:
            checks.append(self._bucket((account, "*"), self.global_rate))
        if self.per_endpoint_rate is not None:
            checks.append(self._bucket((account, family), self.per_endpoint_rate))
        with self._lock:
            # A refused request spends no token of any bucket, as with Stripe.
            if not all([bucket.has_token() for bucket in checks]):
                return False
            for bucket in checks:
                bucket.consume()
            return True

    def _bucket(self, key: tuple[str, str], rate: float) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate)
            return bucket


class FailureInjector:
    """Decides which requests fail with a 500: the same sequence for the same seed."""

    def __init__(self, failure_rate: float, seed: int) -> None:
        self.failure_rate = failure_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def should_fail(self) -> bool:
        """Draw the next request's fate."""
        if self.failure_rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < self.failure_rate
