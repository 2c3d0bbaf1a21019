"""Token buckets shared by all threads reading one Stripe account (overall + per endpoint)."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PRIORITY_HEADROOM = 5.0  # overall tokens only priority callers may take


@dataclass
class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; time is passed in by the caller."""

    rate: float
    capacity: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last refill."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_time(self, needed: float = 1.0) -> float:
        """Seconds until ``needed`` tokens are available (0 if they are)."""
        # The tolerance and the floor keep float rounding from producing endless tiny waits.
        if self.tokens >= needed - 1e-9:
            return 0.0
        return max((needed - self.tokens) / self.rate, 1e-6)


class RateLimiter:
    """Blocks callers so requests stay under an overall rate and a per-endpoint rate.

    Buckets start nearly empty and hold at most ``burst_seconds`` of tokens. Stripe (and the
    sandbox) limit with token buckets holding a second's worth, so that burst is always
    allowed; it is there because a thread due for a token wakes late when the syncing process
    is busy (dozens of threads share the GIL), and with a 0.1 s bucket the tokens earned
    meanwhile overflowed: each listing ran at ~22 of its 25 requests/s.

    Priority callers (the listing on the critical path) take an overall token as soon as
    there is one; the others leave ``PRIORITY_HEADROOM`` tokens in the overall bucket (50 ms
    of the live rate, so a priority caller that wakes a little late still finds its token). So a
    priority endpoint always gets its full per-endpoint rate, the others share the rest, and
    without priority callers the others still get the whole overall rate.
    """

    def __init__(
        self,
        global_rate: float,
        per_endpoint_rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst_seconds: float = 0.4,
    ) -> None:
        self.global_rate = global_rate
        self.per_endpoint_rate = per_endpoint_rate
        self._clock = clock
        self._sleep = sleep
        self._burst_seconds = burst_seconds
        self._lock = threading.Lock()
        start = clock()
        self._global = self._bucket(global_rate, start, PRIORITY_HEADROOM)
        self._endpoints: dict[str, TokenBucket] = {}

    def _bucket(self, rate: float, now: float, headroom: float = 0.0) -> TokenBucket:
        # One token to start with (plus the headroom), enough capacity for both.
        capacity = max(1.0 + headroom + 0.5 * (headroom > 0), rate * self._burst_seconds)
        return TokenBucket(rate=rate, capacity=capacity, tokens=1.0 + headroom, updated=now)

    def try_acquire(self, endpoint: str, priority: bool = False) -> float:
        """Take a token for ``endpoint`` if both buckets have one (returns 0), else the wait."""
        needed = 1.0 if priority else 1.0 + PRIORITY_HEADROOM
        with self._lock:
            now = self._clock()
            bucket = self._endpoints.get(endpoint)
            if bucket is None:
                bucket = self._endpoints[endpoint] = self._bucket(self.per_endpoint_rate, now)
            self._global.refill(now)
            bucket.refill(now)
            wait = max(self._global.wait_time(needed), bucket.wait_time())
            if wait == 0:
                self._global.tokens -= 1
                bucket.tokens -= 1
            return wait

    def acquire(self, endpoint: str, priority: bool = False) -> None:
        """Block until a request to ``endpoint`` may be sent."""
        while (wait := self.try_acquire(endpoint, priority)) > 0:
            self._sleep(wait)
