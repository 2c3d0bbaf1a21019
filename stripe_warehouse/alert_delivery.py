"""Sending alerts: email over SMTP, a Slack-style incoming webhook, a signed JSON webhook.

Every failure is one line naming the channel and the fix, never its secret (a Slack webhook
URL is itself a secret, so it is never in a message). HTTP deliveries are retried with backoff
on a network error or a 5xx; a 4xx is final.

The signed webhook carries ``Stripe-Warehouse-Signature: t=<unix time>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<body>"`` under the channel's signing secret, as Stripe signs its own
webhooks; :func:`verify_signature` is what a receiver runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from stripe_warehouse.errors import WarehouseError

SIGNATURE_HEADER = "Stripe-Warehouse-Signature"
TIMEOUT_SECONDS = 10
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0  # then doubled: 1 s, 2 s between three attempts
SIGNATURE_TOLERANCE_SECONDS = 300


class DeliveryFailed(WarehouseError):
    """A channel could not be reached or refused the alert; the message names the fix."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class Delivery:
    """One channel's outcome for one alert."""

    channel_id: str
    delivered: bool
    attempts: int
    error: str | None = None


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(body: bytes, header: str, secret: str, now: float | None = None,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def post_json(url: str, payload: dict[str, Any], what: str, headers: dict[str, str] | None = None,
              *, attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS,
              signer: Callable[[bytes], dict[str, str]] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """POST ``payload``; retried on a network error or 5xx. The attempts made; DeliveryFailed
    (naming ``what``, never the URL) when none succeeded."""
    body = json.dumps(payload, sort_keys=True).encode()
    problem = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "stripe-warehouse-alerts",
            **(headers or {}), **(signer(body) if signer else {})})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                answer.read()
            return attempt
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code}"
            if error.code < 500 and error.code != 429:
                raise DeliveryFailed(f"{what} refused the alert ({problem}): check its "
                                     "address and secret with `stripe-warehouse alerts list`",
                                     attempt) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            problem = f"unreachable: {type(reason).__name__}"
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise DeliveryFailed(f"{what} failed after {attempts} attempts ({problem}): the alert is "
                         "recorded; check the receiver is up", attempts)


def send_email(settings: dict[str, Any], password: str | None, subject: str, text: str) -> None:
    """Send one message over SMTP (``tls``: ``starttls``, ``ssl`` or ``none``; login when a
    user is set); DeliveryFailed naming the host when it cannot be done."""
    host, port = settings["host"], int(settings["port"])
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings["from"], settings["to"], subject
    message.set_content(text)
    tls = settings.get("tls", "starttls")
    # a private CA (an internal relay's certificate) when one is named, else the system's
    context = ssl.create_default_context(cafile=settings.get("ca_file"))
    try:
        if tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS,
                                                    context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with client:
            if tls == "starttls":
                client.starttls(context=context)
            if settings.get("user"):
                client.login(settings["user"], password or "")
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise DeliveryFailed(f"SMTP server {host}:{port} refused the login of "
                             f"{settings.get('user')!r}: check --smtp-user and the password "
                             "variable") from None
    except (smtplib.SMTPException, ssl.SSLError) as error:
        raise DeliveryFailed(f"SMTP server {host}:{port} refused the alert "
                             f"({type(error).__name__}): check --tls and the addresses") from None
    except OSError as error:
        raise DeliveryFailed(f"cannot reach SMTP host {host}:{port} "
                             f"({getattr(error, 'strerror', None) or type(error).__name__}): "
                             "check --smtp-host and --smtp-port") from None


def deliver(channel: dict[str, Any], secret: str | None, subject: str,
            payload: dict[str, Any], *, backoff: float = BACKOFF_SECONDS) -> Delivery:
    """Send one alert to one channel; a failure is returned, never raised."""
    kind, settings, channel_id = channel["kind"], channel["settings"], channel["id"]
    attempts = 1
    try:
        if kind == "email":
            send_email(settings, secret, subject, payload["message"])
        elif kind == "slack":
            attempts = post_json(secret or "", {"text": payload["message"]},
                                 f"Slack channel {channel_id}", backoff=backoff)
        else:
            def signer(body: bytes) -> dict[str, str]:
                return {SIGNATURE_HEADER: sign(body, secret or "", int(time.time()))}

            attempts = post_json(settings["url"], payload, f"webhook channel {channel_id}",
                                 backoff=backoff, signer=signer)
    except DeliveryFailed as error:
        return Delivery(channel_id, False, error.attempts, str(error))
    return Delivery(channel_id, True, attempts)
