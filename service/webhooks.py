"""``POST /webhooks/stripe/{project_id}``: verify, store durably in the inbox, answer at once.

Nothing touches the warehouse here: applying happens later (``pipelines.webhooks_apply``), so
a sync or dbt build holding the DuckDB lock never delays or loses an acknowledgement.
Refusals are JSON ``{"error": "<one line: what went wrong and the fix>"}``, store nothing and
never name a file. An unknown project, a project without a signing secret and a disconnected
or revoked one (whose secret was deleted) get the same 404, so the route tells no one which
project ids exist. Nothing here answers 500: a registry the service cannot read is a 503
(Stripe retries), and so is anything unforeseen, logged on one line.
"""

import json
import logging
from collections.abc import Callable
from typing import Any, NoReturn

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.privacy import allowlist_keeping
from service.signature import SignatureError, verify_signature
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.event_shape import event_problem
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import PROJECT_ID_PATTERN, ConnectionStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Stripe events are a few KiB; 1 MiB leaves ample room
NO_ENDPOINT = ("no webhook endpoint for this project: check the endpoint URL, and store the "
               "endpoint's whsec_ secret with `stripe-warehouse connect`")
REGISTRY_UNREADABLE = ("the service cannot read its connection registry: run "
                       "`stripe-warehouse doctor` on the server; Stripe retries this delivery")
UNEXPECTED = ("the service could not handle this delivery (logged): Stripe retries it; "
              "if it persists, check the service log")


class Refusal(Exception):
    """A request we answer with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _signing_secret(store: ConnectionStore, project_id: str
                    ) -> tuple[str, dict[str, tuple[str, ...]] | None]:
    """The secret of an active project, and the metadata keys its allowlist keeps; the same
    404 for every other case."""
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise Refusal(404, NO_ENDPOINT)
    try:
        connection = {c.project_id: c for c in store.list()}.get(project_id)
        if connection is None or connection.status != "active":
            raise Refusal(404, NO_ENDPOINT)
        secret = store.webhook_secret(project_id)
    except WarehouseError as error:  # its message may name files: logged, never answered
        log.error("webhook for a project refused, registry unreadable: %s", error)
        raise Refusal(503, REGISTRY_UNREADABLE) from None
    if not secret:
        raise Refusal(404, NO_ENDPOINT)
    return secret, connection.segment_keys


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Refusal(415, "the content type is not application/json: "
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


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_event(body: bytes) -> dict[str, Any]:
    """The event in ``body``; :class:`Refusal` 400 unless it is a storable Stripe event."""
    try:
        event = json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, NaN, a 5,000-digit number, [[[[..
        raise Refusal(400, "body is not valid JSON: send the Stripe event unchanged") from None
    problem = event_problem(event)
    if problem:
        raise Refusal(400, f"body is not a storable Stripe event: {problem}; "
                           "send the Stripe event unchanged")
    return event


async def _receive(
    request: Request, store: ConnectionStore, inbox: Inbox,
    on_stored: Callable[[], None] | None,
) -> JSONResponse:
    project_id = request.path_params["project_id"]
    try:
        secret, segment_keys = await run_in_threadpool(_signing_secret, store, project_id)
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
    stored = await run_in_threadpool(inbox.store, project_id,
                                     allowlist_keeping(event, segment_keys))
    if stored and on_stored is not None:
        on_stored()
    return JSONResponse({"received": True, "duplicate": not stored})


def webhook_routes(
    store: ConnectionStore, inbox: Inbox, on_stored: Callable[[], None] | None = None
) -> list[Route]:
    """The webhook route, bound to a registry and an inbox; ``on_stored`` runs after a store."""

    async def receive(request: Request) -> JSONResponse:
        try:
            return await _receive(request, store, inbox, on_stored)
        except Exception as error:  # a bug or a failing disk: Stripe retries a 503, not a 500
            log.error("webhook delivery not stored (%s: %s)", type(error).__name__,
                      " ".join(str(error).split())[:200])
            return JSONResponse({"error": UNEXPECTED}, status_code=503)

    return [Route("/webhooks/stripe/{project_id}", receive, methods=["POST"])]
