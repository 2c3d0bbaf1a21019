"""The token-bucket limiter, driven by an injected clock (no real waiting)."""

from pipelines.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def granted_within(limiter: RateLimiter, endpoint: str, clock: FakeClock, seconds: float) -> int:
    """How many acquires of ``endpoint`` complete in ``seconds`` of fake time."""
    start, granted = clock.now, 0
    while True:
        limiter.acquire(endpoint)
        if clock.now - start >= seconds:
            return granted
        granted += 1


def test_per_endpoint_rate_caps_one_endpoint() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 25, clock=clock, sleep=clock.sleep)
    granted = granted_within(limiter, "/v1/customers", clock, 10.0)
    assert 249 <= granted <= 252  # 25/s for 10 s, plus the tiny initial burst


def test_global_rate_caps_all_endpoints_together() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 25, clock=clock, sleep=clock.sleep)
    endpoints = ["/v1/customers", "/v1/invoices", "/v1/charges"]
    granted, i = 0, 0
    while clock.now - 1000.0 < 10.0:
        limiter.acquire(endpoints[i % 3])
        granted += 1
        i += 1
    assert 99 <= granted <= 103


def test_endpoints_have_separate_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 1, clock=clock, sleep=clock.sleep)
    assert limiter.try_acquire("/v1/customers") == 0
    clock.now += 0.1  # the overall bucket refills; one endpoint's 1/s bucket does not
    assert limiter.try_acquire("/v1/customers") > 0
    assert limiter.try_acquire("/v1/invoices") == 0


def test_try_acquire_returns_the_wait_until_a_token_and_takes_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, 4, clock=clock, sleep=clock.sleep)
    assert limiter.try_acquire("/v1/prices") == 0
    wait = limiter.try_acquire("/v1/prices")
    assert abs(wait - 0.25) < 1e-9
    clock.now += wait
    assert limiter.try_acquire("/v1/prices") == 0


def test_idle_time_does_not_build_a_burst_beyond_capacity() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 25, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # an hour idle
    burst = 0
    while limiter.try_acquire("/v1/customers") == 0:
        burst += 1
    # at most 0.4 s worth (10 of 25/s): within the second's worth Stripe's buckets allow
    assert burst <= 11


def grants_per_endpoint(limiter: RateLimiter, clock: FakeClock, priority: bool) -> dict[str, int]:
    """10 s of six greedy callers polling every ms; /v1/events polls last, with ``priority``."""
    others = ["/v1/customers", "/v1/invoices", "/v1/charges", "/v1/subscriptions", "/v1/refunds"]
    granted = dict.fromkeys([*others, "/v1/events"], 0)
    for _ in range(10_000):
        for endpoint in others:
            if limiter.try_acquire(endpoint) == 0:
                granted[endpoint] += 1
        if limiter.try_acquire("/v1/events", priority=priority) == 0:
            granted["/v1/events"] += 1
        clock.now += 0.001
    return granted


def test_priority_endpoint_keeps_its_own_rate_while_others_fill_the_overall_rate() -> None:
    clock = FakeClock()
    granted = grants_per_endpoint(RateLimiter(100, 25, clock=clock, sleep=clock.sleep), clock,
                                  priority=True)
    assert 245 <= granted["/v1/events"] <= 253  # its full 25/s
    assert 990 <= sum(granted.values()) <= 1012  # and the overall limit still holds
    control = FakeClock()
    unprioritised = grants_per_endpoint(
        RateLimiter(100, 25, clock=control, sleep=control.sleep), control, priority=False)
    assert unprioritised["/v1/events"] < 200  # without priority the others crowd it out


def test_without_priority_callers_others_still_get_the_whole_overall_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 1000, clock=clock, sleep=clock.sleep)
    granted = granted_within(limiter, "/v1/customers", clock, 10.0)
    assert 995 <= granted <= 1012
