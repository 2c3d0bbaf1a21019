"""Read-only, rate-limited, retrying, concurrently paginating access to one Stripe account."""

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import orjson  # pinned in requirements.lock (a dlt dependency); parses pages ~2x faster
import stripe

from pipelines.ratelimit import RateLimiter
from pipelines.settings import (
    ACCOUNT_ENDPOINT,
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    MAX_WORKERS,
    MIN_WORKERS,
    PAGE_SIZE,
    RATE_LIMITS,
)
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import api_base as configured_api_base
from stripe_warehouse.stripe_api import STRIPE_API_VERSION, key_mode

STRIPE_EPOCH = 1_230_768_000  # 2009-01-01: no Stripe object is older
CONNECTION_ATTEMPTS = 3  # a refused connection is rarely transient: fail fast
MIN_SPLIT_SECONDS = 3_600  # don't split created ranges finer than an hour
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

Progress = Callable[[dict[str, int]], None]


def rate_limiter_for(api_key: str) -> RateLimiter:
    """A limiter at Stripe's published rates for the key's mode."""
    overall, per_endpoint = RATE_LIMITS[key_mode(api_key)]
    return RateLimiter(overall, per_endpoint)


def retry_delay(
    attempt: int,
    status: int | None,
    headers: Mapping[str, str],
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based), or None to give up.

    ``Stripe-Should-Retry`` overrides the status; ``Retry-After`` is a minimum wait. ``status``
    None means the connection failed.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    should_retry = lowered.get("stripe-should-retry")
    if should_retry == "false":
        return None
    max_attempts = CONNECTION_ATTEMPTS if status is None else MAX_ATTEMPTS
    retryable = should_retry == "true" or status is None or status in RETRYABLE_STATUSES
    if not retryable or attempt >= max_attempts:
        return None
    # "Equal jitter": half the exponential step is fixed, half random, so threads spread out.
    step = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    delay = step / 2 + rng() * step / 2
    try:
        delay = max(delay, float(lowered.get("retry-after", 0)))
    except ValueError:
        pass
    return delay


def endpoint_key(path: str) -> str:
    """The rate-limit bucket of a path: its resource (``/v1/invoices/{id}/lines``: invoices).

    Sub-resources share their resource's per-endpoint limit (the sandbox counts them so):
    counted apart, invoice lines and invoices together went over it and drew 429s.
    """
    return "/".join(path.split("/")[:3])


@dataclass(frozen=True)
class _Slice:
    """A part of a listing: objects created in ``[gte, lt)``, after ``starting_after``."""

    gte: int
    lt: int
    starting_after: str | None = None


def _even_slices(lo: int, hi: int, count: int) -> list[_Slice]:
    """``[lo, hi)`` cut into ``count`` slices of equal duration (fewer if the range is short)."""
    count = max(1, min(count, (hi - lo) // MIN_SPLIT_SECONDS))
    edges = [lo + (hi - lo) * i // count for i in range(count)] + [hi]
    return [_Slice(a, b) for a, b in zip(edges, edges[1:], strict=False)]


class StripeReader:
    """GET-only access to one Stripe account.

    The underlying SDK client is private and only ever called with the method ``"get"``;
    this class exposes listing and retrieving, nothing that could write.
    """

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        rate_limiter: RateLimiter | None = None,
        *,
        project_id: str | None = None,
        workers: int = MAX_WORKERS,
        parallel_per_listing: int = 4,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> None:
        self.mode = key_mode(api_key)
        self.api_base = configured_api_base(api_base)
        self.label = f"project {project_id}" if project_id else "this Stripe key"
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": self.api_base},
            max_network_retries=0,  # retries are ours: they honour Retry-After and our limiter
        )
        self._limiter = rate_limiter or rate_limiter_for(api_key)
        self._pool = ThreadPoolExecutor(
            max_workers=max(MIN_WORKERS, min(MAX_WORKERS, workers)),
            thread_name_prefix="stripe-reader",
        )
        self._parallel = max(1, parallel_per_listing)
        self._progress = progress
        self._sleep = sleep
        self._decode = decode  # e.g. privacy.AllowlistingDecoder: parses off the GIL
        # True when every answer comes back allowlisted: callers need not allowlist again
        self.delivers_allowlisted = bool(getattr(decode, "allowlists", False))
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.requests = 0
        self.retries = 0
        self.throttled = 0  # 429 answers (each retried): how close a sync ran to the limit
        self.answered: dict[str, int] = {}  # successful requests per rate-limit bucket

    def __enter__(self) -> "StripeReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def retrieve(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """GET one object (``/v1/customers/cus_1``); None if Stripe no longer has it (404)."""
        try:
            return self._get(path, params or {})
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise self._unexpected(path, error) from None

    def account(self) -> dict[str, Any]:
        """The account the key belongs to (checks the key works)."""
        return self._get(ACCOUNT_ENDPOINT, {})

    def list_all(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        priority: bool = False,
        shares: int = 1,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every object of a list endpoint created in ``[created_gte, created_lt)``, page by page.

        Pages are read concurrently by splitting the ``created`` range whenever a slice turns
        out to hold more than a page, so large accounts use several workers per listing.
        ``priority``: this listing is the critical path; it gets the overall rate limit first
        (see RateLimiter). ``shares``: this is one of that many listings of the endpoint run
        together (events of several `types[]` groups): they split its parallel slices, so the
        endpoint has as many requests in flight, and a small account as few partial pages, as
        with one listing.
        """
        base = dict(params or {})
        lo = STRIPE_EPOCH if created_gte is None else created_gte
        # A day ahead so clock skew between us and Stripe never hides a new object.
        hi = int(time.time()) + 86_400 if created_lt is None else created_lt
        pending: dict[Future, _Slice] = {}

        def submit(part: _Slice) -> None:
            # Wait for the rate limit here, not in a worker: a worker sleeping on one
            # endpoint's limit would starve the other listings sharing the pool.
            self._limiter.acquire(endpoint_key(path), priority)
            params = self._slice_params(base, part)
            pending[self._pool.submit(self._get, path, params, True, priority)] = part

        # A critical listing keeps four times the requests in flight, so answers slowed by load
        # never leave its per-endpoint limit unused, and starts on all its slices at once
        # instead of ramping up.
        parallel = max(1, self._parallel * (4 if priority else 1) // max(1, shares))
        for part in _even_slices(lo, hi, parallel if priority else 1):
            submit(part)
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    part = pending.pop(future)
                    page = future.result()
                    items = page.get("data", [])
                    # Next requests first, so they are under way while the caller works.
                    if page.get("has_more") and items:
                        busy = len(pending)
                        for follow_up in self._follow_ups(part, items[-1], busy, parallel):
                            submit(follow_up)
                    if items:
                        self._count(items)
                        yield items
        finally:
            for future in pending:
                future.cancel()

    def list_sequential(
        self, path: str, params: dict[str, Any] | None = None, starting_after: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every object of a small list (invoice lines, subscription items), page by page."""
        cursor = starting_after
        while True:
            query = dict(params or {}, limit=PAGE_SIZE)
            if cursor:
                query["starting_after"] = cursor
            page = self._get(path, query)
            items = page.get("data", [])
            if items:
                self._count(items)
                yield items
            if not (page.get("has_more") and items):
                return
            cursor = items[-1]["id"]

    @staticmethod
    def _follow_ups(part: _Slice, last: dict[str, Any], busy: int, parallel: int) -> list[_Slice]:
        last_created = int(last["created"])
        if busy + 1 < parallel and last_created - part.gte > MIN_SPLIT_SECONDS:
            # Older objects of this slice go to a new slice without cursor; this one goes on
            # from its cursor over the newer half (the cursor object is inside that half).
            middle = (part.gte + last_created) // 2
            return [_Slice(part.gte, middle), _Slice(middle, part.lt, last["id"])]
        return [_Slice(part.gte, part.lt, last["id"])]

    @staticmethod
    def _slice_params(base: dict[str, Any], part: _Slice) -> dict[str, Any]:
        query = dict(base, limit=PAGE_SIZE, created={"gte": part.gte, "lt": part.lt})
        if part.starting_after:
            query["starting_after"] = part.starting_after
        return query

    def _count(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            for item in items:
                kind = item.get("object", "unknown")
                self.counts[kind] = self.counts.get(kind, 0) + 1
            snapshot = dict(self.counts)
        if self._progress:
            self._progress(snapshot)

    def _get(
        self, path: str, params: dict[str, Any], token_taken: bool = False,
        priority: bool = False,
    ) -> dict[str, Any]:
        """One GET with rate limiting and retries; Stripe errors become one-line errors.

        ``token_taken``: the caller already waited for the rate limit of the first attempt.
        """
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 or not token_taken:
                self._limiter.acquire(endpoint_key(path), priority)
            with self._lock:
                self.requests += 1
            try:
                page = self._send_get(path, params)
                with self._lock:
                    bucket = endpoint_key(path)
                    self.answered[bucket] = self.answered.get(bucket, 0) + 1
                return page
            except stripe.APIConnectionError as error:
                delay = retry_delay(attempt, None, {})
                if delay is None:
                    raise WarehouseError(
                        f"cannot reach the Stripe API at {self.api_base} ({type(error).__name__}): "
                        "check STRIPE_API_BASE and the network"
                    ) from None
            except stripe.StripeError as error:
                status = error.http_status
                if status == 429:
                    with self._lock:
                        self.throttled += 1
                delay = retry_delay(attempt, status, error.headers or {})
                if delay is None:
                    raise self._final_error(path, error) from None
            with self._lock:
                self.retries += 1
            self._sleep(delay)

    def _send_get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The only request this class makes, a GET, prepared by the SDK's requestor and sent by
        its HTTP client: what the requestor's ``request_raw`` does, less its log lines.

        `StripeClient.raw_request` would parse every body into OrderedDicts before we parse
        it again; on 100-object pages that is a third of our CPU time. ``request_raw`` formats
        every response body for a debug log line whether debug logging is on or not
        (stripe._util.log_debug: the whole body decoded and searched for whitespace, and
        repr'd when it has some, as Stripe's indented answers do): a twentieth of the syncing
        process's CPU at 20k customers (bench/results/profile_backfill.txt). The SDK's error
        handling is only used for error answers.
        """
        requestor = self._client._requestor
        method, url, headers, post_data, retries, usage, _, _ = (
            requestor._args_for_request_with_retries(
                "get", path, params, {}, base_address="api", api_mode="V1",
                usage=["raw_request"],
            )
        )
        body, status, headers = requestor._get_http_client().request_with_retries(
            method, url, headers, post_data, max_network_retries=retries, _usage=usage,
        )
        if not 200 <= status < 300:
            requestor._interpret_response(body, status, headers, "V1")  # raises StripeError
        return self._decode(body)

    def _final_error(self, path: str, error: stripe.StripeError) -> Exception:
        status = error.http_status
        if status == 401:
            return WarehouseError(
                f"Stripe rejected the API key of {self.label} (401 invalid key): "
                "reconnect with a valid key using `stripe-warehouse connect`"
            )
        if status == 403:
            resource = path.split("/")[2] if path.count("/") >= 2 else path
            return WarehouseError(
                f"the restricted key of {self.label} may not read {resource} (403 on GET {path}): "
                f"grant it read permission on {resource} in the Stripe dashboard, then reconnect"
            )
        if status == 429 or (status or 0) >= 500:
            return WarehouseError(
                f"Stripe kept failing on GET {path} ({status}) after {MAX_ATTEMPTS} attempts: "
                "run the sync again later"
            )
        if isinstance(error, stripe.InvalidRequestError) and status == 404:
            return error  # retrieve() turns a missing object into None
        return self._unexpected(path, error)

    def _unexpected(self, path: str, error: stripe.StripeError) -> WarehouseError:
        message = error.user_message or "no message"
        return WarehouseError(
            f"Stripe refused GET {path} for {self.label} ({error.http_status}: {message}): "
            f"check the key's account and API version {STRIPE_API_VERSION}, or report it"
        )
