"""Deliver events to a webhook endpoint the way Stripe does: signed, and as unreliably.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 and the endpoint secret and sends
``Stripe-Signature: t=<t>,v1=<hex>``. Real deliveries repeat and arrive out of order; the
sender can do both on purpose (seeded), add delays, and deliver from several threads.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.api import unexpanded


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass(frozen=True)
class Delivery:
    """One POST: which event, the answer, and when the answer arrived (``time.time()``)."""

    event_id: str
    status: int
    body: dict[str, Any]
    seconds: float
    answered_at: float


class WebhookSender:
    """POSTs signed events to ``url``, optionally with duplicates, shuffling and delays."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        duplicate_rate: float = 0.0,
        shuffle: bool = False,
        max_delay: float = 0.0,
        concurrency: int = 1,
        seed: int = 0,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path
        self.secret = secret
        self.duplicate_rate = duplicate_rate
        self.shuffle = shuffle
        self.max_delay = max_delay
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self._rng = random.Random(seed)
        self._local = threading.local()

    def plan(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The delivery order: duplicates added, then shuffled if asked (deterministic)."""
        order: list[dict[str, Any]] = []
        for event in events:
            order.append(event)
            if self._rng.random() < self.duplicate_rate:
                order.append(event)
        if self.shuffle:
            self._rng.shuffle(order)
        return order

    def send(self, events: Iterable[dict[str, Any]]) -> list[Delivery]:
        """Deliver ``events`` as planned; answers in delivery order."""
        order = self.plan(events)
        delays = [self._rng.uniform(0, self.max_delay) for _ in order]
        if self.concurrency == 1:
            return [self._deliver(event, delay) for event, delay in zip(order, delays, strict=True)]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-sender") as pool:
            return list(pool.map(self._deliver, order, delays))

    def post(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST raw ``body`` with ``headers`` (no signing): for malformed-request tests."""
        connection = self._connection()
        try:
            connection.request("POST", self.path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
        except (ConnectionError, http.client.HTTPException):
            # A keep-alive connection the server closed: retry once on a fresh one.
            connection.close()
            self._local.connection = None
            connection = self._connection()
            connection.request("POST", self.path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            parsed = {"raw": raw.decode(errors="replace")}
        return response.status, parsed

    def _deliver(self, event: dict[str, Any], delay: float) -> Delivery:
        if delay:
            time.sleep(delay)
        body = json.dumps(unexpanded(event)).encode()  # as Stripe sends it: references as ids
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, self.secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        started = time.perf_counter()
        status, parsed = self.post(body, headers)
        return Delivery(event["id"], status, parsed, time.perf_counter() - started, time.time())

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.connection = connection
        return connection
