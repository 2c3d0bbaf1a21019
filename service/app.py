"""The web service: routes composed from small modules (webhooks, Stripe Connect OAuth)."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.applier import InboxApplier, OnRefreshed
from service.oauth_routes import oauth_routes
from service.server import (
    KEEP_ALIVE_SECONDS,
    MAX_HEADER_BYTES,
    ServerLimits,
    bounded_protocol,
    logging_config,
)
from service.webhooks import webhook_routes
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.settings import use_private_file_modes
from stripe_warehouse.state_dir import StateDir

log = logging.getLogger(__name__)


def health(inbox: Inbox, applier: InboxApplier | None) -> tuple[bool, dict]:
    """Whether the service is healthy, and what ``/healthz`` reports.

    ``applier``: ``off`` (Dagster's sensor applies the inbox), ``running`` or ``dead`` (the
    real-time applier's thread ended: unhealthy). ``backlog``: events waiting to be applied
    and the age of the oldest; ``failed``: events quarantined because they cannot be applied.
    """
    waiting, oldest = inbox.backlog()
    state = "off" if applier is None else ("running" if applier.alive else "dead")
    report = {
        "ok": state != "dead",
        "applier": state,
        "backlog": {"events": waiting,
                    "oldest_seconds": None if oldest is None else round(time.time() - oldest, 1)},
        "failed": len(inbox.failed()),
    }
    if applier is not None and applier.last_round_at is not None:
        report["applier_last_round_seconds"] = round(time.time() - applier.last_round_at, 1)
    return report["ok"], report


async def _unexpected(request: Request, error: Exception) -> Response:
    # Backstop for any route: one line, no path, and 503 (a client may retry) instead of 500.
    log.error("request to %s failed (%s)", request.url.path, type(error).__name__)
    return JSONResponse({"error": "the service could not handle this request (logged): "
                                  "retry later"}, status_code=503)


def create_app(
    home: Path | str | None = None, realtime: bool = False, api_base: str | None = None,
    on_refreshed: OnRefreshed | None = None,
) -> Starlette:
    """The ASGI app for the state directory ``home`` (default ``STRIPE_WAREHOUSE_HOME``).

    ``realtime``: also apply stored events and refresh the marts in the background
    (:mod:`service.applier`); otherwise the scheduled refresh or a sensor applies them.
    ``on_refreshed``: told of each real-time refresh once published (the commands layer
    passes :func:`orchestration.webhook_events.report_webhook_refresh`).
    """
    state = StateDir.resolve(home).create().root  # this entry point's one resolution
    inbox = Inbox(state)
    applier = InboxApplier(state, api_base, on_refreshed=on_refreshed) if realtime else None
    store = ConnectionStore(state)

    async def healthz(request: Request) -> JSONResponse:
        """Liveness: the process answers and, in real-time mode, the applier runs."""
        ok, report = await run_in_threadpool(health, inbox, applier)
        return JSONResponse(report, status_code=200 if ok else 503)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        *webhook_routes(store, inbox, applier.notify if applier else None),
        *oauth_routes(store),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if applier is not None:
            applier.start()
        yield
        if applier is not None:
            await run_in_threadpool(applier.stop)
        inbox.close()

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={Exception: _unexpected})


def server_config(
    app: Starlette, host: str = "127.0.0.1", port: int = 8787,
    limits: ServerLimits | None = None,
) -> uvicorn.Config:
    """uvicorn's settings for the service: bounded reads, a connection cap, one-line logs."""
    return uvicorn.Config(
        app, host=host, port=port, http=bounded_protocol(limits or ServerLimits()),
        timeout_keep_alive=KEEP_ALIVE_SECONDS, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        access_log=False, log_level="warning", log_config=logging_config(),
    )


def run(
    home: Path | str | None = None, host: str = "127.0.0.1", port: int = 8787,
    realtime: bool = False, api_base: str | None = None, limits: ServerLimits | None = None,
    on_refreshed: OnRefreshed | None = None,
) -> None:
    """Serve until interrupted (``stripe-warehouse serve [--realtime]``)."""
    use_private_file_modes()  # the applier writes the warehouse and its .wal
    app = create_app(home, realtime, api_base, on_refreshed)
    uvicorn.Server(server_config(app, host, port, limits)).run()
