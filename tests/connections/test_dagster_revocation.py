"""A Dagster sync whose token Stripe rejects marks the project revoked; no tick retries it."""

from pathlib import Path

from dagster import DagsterInstance

from orchestration.assets import SYNC_KIND_TAG
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.ui import dagster_home
from pipelines.revocation import revoked_message
from sandbox.server import SandboxServer
from stripe_warehouse.oauth import OAuthSettings, deauthorize
from stripe_warehouse.registry import ConnectionStore
from tests.connections.oauth_helpers import connect_with_oauth


def test_dagster_refresh_with_a_revoked_token_marks_the_project_revoked(
    home: Path, oauth_env: SandboxServer, connected_company
) -> None:
    store = ConnectionStore(home)
    connect_with_oauth(store, "shop", "pro")
    deauthorize(connected_company.account_id, OAuthSettings.from_env())
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        instance.add_dynamic_partitions(project_partitions.name, ["shop"])
        run = defs.resolve_job_def("refresh").execute_in_process(
            instance=instance, partition_key="shop", raise_on_error=False,
            tags={SYNC_KIND_TAG: "refresh"})
    assert not run.success
    connection = store.get("shop")
    assert (connection.status, connection.status_reason) == ("revoked", revoked_message("shop"))
