"""``GET /oauth/authorize/{project_id}`` (redirect to Stripe) and ``GET /oauth/callback``.

The callback stores nothing unless ``state`` is genuine, fresh and unused, the project is not
connected (or bound to another Stripe account), and Stripe exchanges the code; every refusal is
JSON ``{"error": "<one line: what went wrong and the fix>"}``: 409 when the project's state
forbids it, 502 when Stripe Connect failed, 400 otherwise.
"""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth import (
    OAuthSettings,
    StripeConnectFailed,
    authorize_url,
    complete_authorization,
    ensure_not_active,
    verify_state,
)
from stripe_warehouse.registry import (
    AccountMismatch,
    AlreadyConnected,
    ConnectionStore,
    KeyMismatch,
)

# Refusals caused by what the project already is, not by the request itself.
_CONFLICTS = (AlreadyConnected, AccountMismatch, KeyMismatch)


def _refusal(error: WarehouseError) -> JSONResponse:
    if isinstance(error, _CONFLICTS):
        status = 409
    elif isinstance(error, StripeConnectFailed):
        status = 502
    else:
        status = 400
    return JSONResponse({"error": str(error)}, status_code=status)


def oauth_routes(store: ConnectionStore) -> list[Route]:
    """The two OAuth routes, bound to a registry; settings are read from the environment."""

    async def authorize(request: Request) -> Response:
        project_id = request.path_params["project_id"]
        tier = request.query_params.get("tier")
        try:
            await run_in_threadpool(ensure_not_active, store, project_id)
            if tier is None:  # reconnecting an existing project keeps its tier
                tier = (await run_in_threadpool(store.get, project_id)).tier
            url = authorize_url(project_id, tier, OAuthSettings.from_env(need_platform_key=False),
                                home=store.home)
        except WarehouseError as error:
            return _refusal(error)
        return RedirectResponse(url, status_code=302)

    async def callback(request: Request) -> Response:
        params = request.query_params
        if "error" in params:  # the account owner declined, or Stripe refused the request
            reason = params.get("error_description") or params["error"]
            return JSONResponse({"error": f"Stripe did not authorize the connection ({reason}): "
                                 "nothing was stored; start again if this was a mistake"},
                                status_code=400)
        state, code = params.get("state", ""), params.get("code", "")
        try:
            # refuse forged or expired links before any call to Stripe
            verify_state(state, home=store.home)
            if not code:
                raise WarehouseError("the callback has no authorization code: nothing was "
                                     "stored; start again from the authorize link")
            connection = await run_in_threadpool(complete_authorization, store, state, code)
        except WarehouseError as error:
            return _refusal(error)
        return JSONResponse({
            "connected": connection.project_id,
            "stripe_user_id": connection.stripe_user_id,
            "mode": connection.mode,
            "tier": connection.tier,
        })

    return [
        Route("/oauth/authorize/{project_id}", authorize, methods=["GET"]),
        Route("/oauth/callback", callback, methods=["GET"]),
    ]
