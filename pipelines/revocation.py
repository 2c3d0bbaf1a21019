"""Ending access: ``disconnect`` by the user, ``revoked`` when Stripe stops accepting the token.

Both stop every sync at once (schedules and sensors only pick ``active`` projects), delete the
stored token, and keep the loaded data (the tier's retention policy still applies to it).
"""

import logging
from typing import Any, Literal

from pipelines.load import SyncResult, sync_project
from stripe_warehouse.alerts import run_alerts_after_build
from stripe_warehouse.demo_project import refuse_demo_sync
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth import OAuthSettings, deauthorize
from stripe_warehouse.probe import probe
from stripe_warehouse.registry import Connection, ConnectionStore

log = logging.getLogger(__name__)


def revoked_message(project_id: str) -> str:
    """Why a project was marked revoked, and the fix."""
    return (
        f"Stripe no longer accepts the credentials of project {project_id} (revoked or "
        f"deauthorized): syncs stopped; reconnect with `stripe-warehouse connect {project_id}`"
    )


def disconnect_project(
    store: ConnectionStore, project_id: str, deauthorize_app: bool = False,
    settings: OAuthSettings | None = None,
) -> Connection:
    """Stop syncing ``project_id`` now, delete its token, and optionally deauthorize the app."""
    connection = store.get(project_id)
    if deauthorize_app and not connection.stripe_user_id:
        raise WarehouseError(
            f"project {project_id} was connected with an API key, not OAuth: nothing to "
            "deauthorize; run without --deauthorize and roll the key in the Stripe dashboard"
        )
    if deauthorize_app:
        settings = settings or OAuthSettings.from_env()
    # Disconnect first: syncing stops even if Stripe cannot be reached to deauthorize.
    connection = store.disconnect(project_id)
    if deauthorize_app and connection.stripe_user_id:
        deauthorize(connection.stripe_user_id, settings)
    return connection


def credentials_rejected(api_key: str, api_base: str | None = None) -> bool:
    """Whether Stripe answers 401 to the key (a failed sync says why only in words)."""
    return probe(api_key, "/v1/account", api_base).status == 401


def sync_or_revoke(
    store: ConnectionStore, project_id: str, kind: Literal["backfill", "refresh"], **options: Any
) -> SyncResult:
    """:func:`sync_project`, but a key Stripe rejects (401) marks the project ``revoked``.

    A revoked project is never retried: schedules skip it and the error says how to reconnect.
    """
    refuse_demo_sync(store, project_id)  # its sandbox is gone: not the real Stripe API either
    try:
        return sync_project(store, project_id, kind, **options)
    except WarehouseError:
        connection = store.get(project_id)
        revoked = (connection.status == "active" and connection.api_key is not None
                   and credentials_rejected(store.api_key(project_id), options.get("api_base")))
        if revoked:
            store.revoke(project_id, revoked_message(project_id))
        # no build follows a failed sync: its rules (sync_failing, connection_revoked) are
        # judged here, or nobody would hear of the failure until the next successful build
        run_alerts_after_build(options.get("home") or store.home, log=log.warning,
                               projects=[project_id])
        if revoked:
            raise WarehouseError(revoked_message(project_id)) from None
        raise
