"""The web service: routes composed from small modules (webhooks, Stripe Connect OAuth)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from service.applier import InboxApplier
from service.inbox import Inbox
from service.oauth_routes import oauth_routes
from service.webhooks import webhook_routes
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.settings import home_dir, use_private_file_modes


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"ok": True})


def create_app(
    home: Path | str | None = None, realtime: bool = False, api_base: str | None = None
) -> Starlette:
    """The ASGI app for the state directory ``home`` (default ``STRIPE_WAREHOUSE_HOME``).

    ``realtime``: also apply stored events and refresh the marts in the background
    (:mod:`service.applier`); otherwise the scheduled refresh or a sensor applies them.
    """
    state = home_dir(home)
    inbox = Inbox(state)
    applier = InboxApplier(state, api_base) if realtime else None
    store = ConnectionStore(state)
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

    return Starlette(routes=routes, lifespan=lifespan)


def run(
    home: Path | str | None = None, host: str = "127.0.0.1", port: int = 8787,
    realtime: bool = False, api_base: str | None = None,
) -> None:
    """Serve until interrupted (``stripe-warehouse serve [--realtime]``)."""
    use_private_file_modes()  # the applier writes the warehouse and its .wal
    uvicorn.run(create_app(home, realtime, api_base), host=host, port=port, access_log=False,
                log_level="warning")
