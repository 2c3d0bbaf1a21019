"""``POST /webhooks/stripe/{project_id}``: verify, store durably in the inbox, answer at once.

Nothing touches the warehouse here: applying happens later (``pipelines.webhooks_apply``), so
a sync or dbt build holding the DuckDB lock never delays or loses an acknowledgement.
Refusals are JSON ``{"error": "<one line: what went wrong and the fix>"}`` and store nothing.
"""

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.privacy import allowlist
from service.inbox import Inbox
from service.signature import SignatureError, verify_signature
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import PROJECT_ID_PATTERN, ConnectionStore

MAX_BODY_BYTES = 1024 * 1024  # Stripe events are a few KiB; 1 MiB leaves ample room


class Refusal(Exception):
    """A request we answer with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _signing_secret(store: ConnectionStore, project_id: str) -> str:
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise Refusal(404, f"unknown project {project_id!r}: check the webhook endpoint URL")
    try:
        secret = store.webhook_secret(project_id)
    except WarehouseError as error:
        if "unknown project" in str(error):
            raise Refusal(404, f"unknown project {project_id!r}: "
                               "check the webhook endpoint URL") from None
        raise Refusal(500, str(error)) from None
    if not secret:
        raise Refusal(404, f"project {project_id!r} has no webhook signing secret: "
                           "store the endpoint's whsec_ secret with `stripe-warehouse connect`")
    return secret


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Refusal(415, f"content type {media_type or 'none'!r} is not application/json: "
                           "send the Stripe event as JSON")


async def _read_body(request: Request) -> bytes:
    too_large = Refusal(413, f"body exceeds {MAX_BODY_BYTES} bytes: "
                             "this is not a Stripe event; check the sender")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:  # a chunked body announces no length: count as it arrives
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refusal(400, "the sender disconnected before the body ended: resend") from None
    return b"".join(chunks)


def parse_event(body: bytes) -> dict[str, Any]:
    """The event in ``body``; :class:`Refusal` 400 unless it is a JSON Stripe event."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refusal(400, "body is not valid JSON: send the Stripe event unchanged") from None
    data = event.get("data") if isinstance(event, dict) else None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str) and event["id"]
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(data, dict) and isinstance(data.get("object"), dict)
    ):
        raise Refusal(400, "body is not a Stripe event (needs object 'event', id, type, created "
                           "and data.object): send the Stripe event unchanged")
    return event


def webhook_routes(
    store: ConnectionStore, inbox: Inbox, on_stored: Callable[[], None] | None = None
) -> list[Route]:
    """The webhook route, bound to a registry and an inbox; ``on_stored`` runs after a store."""

    async def receive(request: Request) -> JSONResponse:
        project_id = request.path_params["project_id"]
        try:
            secret = await run_in_threadpool(_signing_secret, store, project_id)
            _check_content_type(request)
            body = await _read_body(request)
            try:
                verify_signature(body, request.headers.get("stripe-signature"), secret)
            except SignatureError as error:
                raise Refusal(400, str(error)) from None
            event = parse_event(body)
        except Refusal as refusal:
            return JSONResponse({"error": refusal.message}, status_code=refusal.status)
        # Only allowlisted fields reach the disk: the inbox never holds names or addresses.
        stored = await run_in_threadpool(inbox.store, project_id, allowlist(event))
        if stored and on_stored is not None:
            on_stored()
        return JSONResponse({"received": True, "duplicate": not stored})

    return [Route("/webhooks/stripe/{project_id}", receive, methods=["POST"])]
