"""Disconnect (by the user) and revocation (by Stripe) stop every sync and delete the token."""

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from commands.cli import main
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.schedules import pro_refresh_schedule
from orchestration.sensors import connections_sensor
from orchestration.ui import dagster_home
from pipelines.client import retry_delay
from pipelines.revocation import revoked_message, sync_or_revoke
from pipelines.settings import LIST_ENDPOINTS
from sandbox.server import SandboxServer
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth import OAuthSettings, deauthorize
from stripe_warehouse.probe import probe
from stripe_warehouse.registry import ConnectionStore
from tests.connections.oauth_helpers import connect_with_oauth

THREE_AM = dt.datetime(2026, 6, 15, 3, tzinfo=dt.UTC)
READER_SLICES_PER_LISTING = 4  # StripeReader(parallel_per_listing=4), the default


@pytest.fixture
def instance(home: Path) -> Iterator[DagsterInstance]:
    """The instance `stripe-warehouse ui` would use for ``home``."""
    with DagsterInstance.from_config(str(dagster_home(home))) as dagster_instance:
        yield dagster_instance


def scheduled_projects(instance: DagsterInstance, home: Path) -> set[str]:
    """Projects the Pro schedule's 03:00 tick would refresh."""
    with build_schedule_context(
        instance=instance, scheduled_execution_time=THREE_AM,
        resources={"warehouse": WarehouseResource(home=str(home))},
        repository_def=defs.get_repository_def(),
    ) as context:
        data = pro_refresh_schedule.evaluate_tick(context)
    return {r.partition_key for r in data.run_requests or []}


def test_disconnect_stops_the_scheduled_refresh_and_deletes_the_token(
    home: Path, instance: DagsterInstance
) -> None:
    store = ConnectionStore(home)
    store.connect("shop", "pro", "rk_live_disconnect_me_0001")
    store.connect("other", "pro", "rk_live_keep_me_0002")
    instance.add_dynamic_partitions(project_partitions.name, ["shop", "other"])
    assert scheduled_projects(instance, home) == {"shop", "other"}
    assert main(["disconnect", "shop"]) == 0
    assert scheduled_projects(instance, home) == {"other"}
    connection = store.get("shop")
    assert (connection.status, connection.api_key) == ("disconnected", None)
    assert "rk_live_disconnect_me" not in (home / "connections.json").read_text()
    with pytest.raises(WarehouseError, match="shop is disconnected and its credentials were"):
        store.api_key("shop")
    with pytest.raises(WarehouseError, match="project shop is disconnected"):
        sync_or_revoke(store, "shop", "refresh")
    # The registry sensor also drops it from the partitions, so nothing picks it up again.
    with build_sensor_context(instance=instance,
                              resources={"warehouse": WarehouseResource(home=str(home))}) as ctx:
        result = connections_sensor(ctx)
    [_, delete] = result.dynamic_partitions_requests
    assert list(delete.partition_keys) == ["shop"]


def test_disconnect_deauthorize_revokes_the_oauth_token_on_stripe(
    home: Path, oauth_env: SandboxServer, connected_company, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ConnectionStore(home)
    connect_with_oauth(store, "shop", "pro")
    token = store.api_key("shop")
    assert probe(token, "/v1/account").status == 200
    assert main(["disconnect", "shop", "--deauthorize"]) == 0
    assert "access deauthorized on Stripe" in capsys.readouterr().out
    assert oauth_env.oauth.deauthorized == [connected_company.account_id]
    assert probe(token, "/v1/account").status == 401
    assert store.get("shop").status == "disconnected"


def test_deauthorize_of_a_key_connected_project_is_refused_and_changes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ConnectionStore(home)
    store.connect("shop", "pro", "rk_live_plain_key_0003")
    before = (home / "connections.json").read_bytes()
    assert main(["disconnect", "shop", "--deauthorize"]) == 2
    assert capsys.readouterr().err == (
        "error: project shop was connected with an API key, not OAuth: nothing to deauthorize; "
        "run without --deauthorize and roll the key in the Stripe dashboard\n")
    assert (home / "connections.json").read_bytes() == before


def test_token_revoked_on_stripe_marks_the_project_revoked_without_retrying(
    home: Path, oauth_env: SandboxServer, connected_company, instance: DagsterInstance
) -> None:
    store = ConnectionStore(home)
    connect_with_oauth(store, "shop", "pro")
    instance.add_dynamic_partitions(project_partitions.name, ["shop"])
    deauthorize(connected_company.account_id, OAuthSettings.from_env())  # the owner revokes
    before = len(oauth_env.request_log)
    with pytest.raises(WarehouseError) as error:
        sync_or_revoke(store, "shop", "refresh", api_base=oauth_env.url)
    assert str(error.value) == revoked_message("shop")
    answered = oauth_env.request_log[before:]
    # Each parallel listing slice got one 401 (a 401 is never retried), then one probe of the
    # account confirmed the key is rejected.
    paths = [path for _, path, _ in answered]
    assert all(status == 401 for _, _, status in answered)
    assert retry_delay(1, 401, {}) is None
    assert paths.count("/v1/account") == 1
    assert len(paths) <= READER_SLICES_PER_LISTING * len(LIST_ENDPOINTS) + 1
    connection = store.get("shop")
    assert (connection.status, connection.api_key) == ("revoked", None)
    assert connection.status_reason == revoked_message("shop")
    assert scheduled_projects(instance, home) == set()
    with pytest.raises(WarehouseError, match="project shop is revoked"):
        sync_or_revoke(store, "shop", "refresh", api_base=oauth_env.url)
    assert len(oauth_env.request_log) == before + len(paths)  # the next one never reaches Stripe


def test_unreachable_stripe_does_not_revoke(home: Path, oauth_env: SandboxServer) -> None:
    store = ConnectionStore(home)
    connect_with_oauth(store, "shop", "pro")
    with pytest.raises(WarehouseError, match="cannot reach the Stripe API at http://127.0.0.1:9"):
        sync_or_revoke(store, "shop", "refresh", api_base="http://127.0.0.1:9")
    assert store.get("shop").status == "active"
    assert json.loads((home / "connections.json").read_text())["connections"]["shop"]["api_key"]
