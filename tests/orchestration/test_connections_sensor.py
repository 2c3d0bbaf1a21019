"""The registry sensor keeps project partitions in step and backfills each project once."""

import json

from dagster import DagsterInstance, build_sensor_context, partition_loading_context
from dagster._core.definitions.sensor_definition import SensorExecutionData

from orchestration.assets import SYNC_KIND_TAG
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.sensors import connections_sensor
from stripe_warehouse.registry import ConnectionStore


def evaluate(
    instance: DagsterInstance, warehouse: WarehouseResource, cursor: str | None
) -> SensorExecutionData:
    # The daemon evaluates sensors inside this context; so does the test.
    with partition_loading_context(dynamic_partitions_store=instance), build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"warehouse": warehouse},
    ) as context:
        return connections_sensor.evaluate_tick(context)


class SensorLoop:
    """Evaluates the sensor as the daemon does: carries the cursor, applies partition changes."""

    def __init__(self, instance: DagsterInstance, warehouse: WarehouseResource) -> None:
        self.instance, self.warehouse, self.cursor = instance, warehouse, None

    def tick(self) -> dict[str, str]:
        data = evaluate(self.instance, self.warehouse, self.cursor)
        for request in data.dynamic_partitions_requests or []:
            if type(request).__name__ == "AddDynamicPartitionsRequest":
                self.instance.add_dynamic_partitions(request.partitions_def_name,
                                                     request.partition_keys)
            else:
                for key in request.partition_keys:
                    self.instance.delete_dynamic_partition(request.partitions_def_name, key)
        self.cursor = data.cursor
        return {r.partition_key: r.tags[SYNC_KIND_TAG] for r in data.run_requests}

    def partitions(self) -> set[str]:
        return set(self.instance.get_dynamic_partitions(project_partitions.name))


def test_new_projects_become_partitions_and_get_one_backfill_each(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    loop = SensorLoop(instance, warehouse)
    store.connect("acme", "pro", "sk_test_acme")
    store.connect("globex", "starter", "sk_test_globex")

    assert loop.tick() == {"acme": "backfill", "globex": "backfill"}
    assert loop.partitions() == {"acme", "globex"}
    assert loop.tick() == {}
    assert loop.tick() == {}


def test_project_connected_later_is_backfilled_alone(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    loop = SensorLoop(instance, warehouse)
    store.connect("acme", "pro", "sk_test_acme")
    loop.tick()
    store.connect("initech", "scale", "sk_test_initech")
    assert loop.tick() == {"initech": "backfill"}
    assert loop.partitions() == {"acme", "initech"}


def test_disconnect_removes_the_partition_and_reconnect_never_backfills_twice(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    loop = SensorLoop(instance, warehouse)
    store.connect("acme", "pro", "sk_test_acme")
    loop.tick()
    store.disconnect("acme")
    assert loop.tick() == {}
    assert loop.partitions() == set()
    store.connect("acme", "pro", "sk_test_acme_new_key")
    assert loop.tick() == {}
    assert loop.partitions() == {"acme"}


def test_project_already_synced_by_the_cli_gets_a_partition_but_no_backfill(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    store.connect("acme", "pro", "sk_test_acme")
    store.record_sync("acme", "backfill", finished_at=1_750_000_000.0, last_event_created=None)
    loop = SensorLoop(instance, warehouse)
    assert loop.tick() == {}
    assert loop.partitions() == {"acme"}


def test_backfill_run_keys_are_per_project_so_dagster_also_dedupes(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    store.connect("acme", "pro", "sk_test_acme")
    data = evaluate(instance, warehouse, cursor=None)
    assert [r.run_key for r in data.run_requests] == ["backfill:acme"]
    assert json.loads(data.cursor) == ["acme"]
