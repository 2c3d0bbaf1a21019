"""Pro and Scale schedules refresh exactly the active projects of their tier at each tick."""

import datetime as dt

import pytest
from dagster import DagsterInstance, build_schedule_context
from dagster._utils.schedules import cron_string_iterator

from orchestration.assets import SYNC_KIND_TAG
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.schedules import pro_refresh_schedule, scale_refresh_schedule
from stripe_warehouse.demo_project import mark_demo
from stripe_warehouse.registry import ConnectionStore

MIDNIGHT = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)


@pytest.fixture
def projects(store: ConnectionStore, instance: DagsterInstance) -> ConnectionStore:
    """Two active projects per tier and one disconnected Pro and Scale project."""
    for tier in ("starter", "basic", "pro", "scale"):
        for n in (1, 2):
            store.connect(f"{tier}_{n}", tier, f"sk_test_{tier}{n}")
        store.connect(f"{tier}_gone", tier, f"sk_test_{tier}gone")
        store.disconnect(f"{tier}_gone")
    instance.add_dynamic_partitions(project_partitions.name, [c.project_id for c in store.list()])
    return store


def requested(schedule, instance, warehouse: WarehouseResource, at: dt.datetime) -> dict:
    with build_schedule_context(
        instance=instance, scheduled_execution_time=at, resources={"warehouse": warehouse},
        repository_def=defs.get_repository_def(),
    ) as context:
        data = schedule.evaluate_tick(context)
    return {r.partition_key: r for r in data.run_requests or []}


def ticks(cron: str, start: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    out = []
    for tick in cron_string_iterator(start.timestamp(), cron, "UTC"):
        if tick > until:
            return out
        out.append(tick)
    return out


def test_pro_fires_every_three_hours_and_scale_every_half_hour() -> None:
    one_am, three_am = MIDNIGHT + dt.timedelta(hours=1), MIDNIGHT + dt.timedelta(hours=3)
    after_midnight = MIDNIGHT + dt.timedelta(seconds=1)
    assert ticks(pro_refresh_schedule.cron_schedule, after_midnight, three_am) == [three_am]
    assert ticks(scale_refresh_schedule.cron_schedule, after_midnight, one_am) == [
        MIDNIGHT + dt.timedelta(minutes=30), one_am]


def test_pro_tick_at_0300_refreshes_exactly_the_active_pro_projects(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    runs = requested(pro_refresh_schedule, instance, warehouse, MIDNIGHT + dt.timedelta(hours=3))
    assert set(runs) == {"pro_1", "pro_2"}
    assert all(r.tags[SYNC_KIND_TAG] == "refresh" for r in runs.values())


@pytest.mark.parametrize("minutes", [30, 60])
def test_scale_ticks_refresh_exactly_the_active_scale_projects(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource,
    minutes: int,
) -> None:
    at = MIDNIGHT + dt.timedelta(minutes=minutes)
    assert set(requested(scale_refresh_schedule, instance, warehouse, at)) == {"scale_1", "scale_2"}


def test_each_tick_has_its_own_run_key_so_consecutive_ticks_both_run(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    first = requested(scale_refresh_schedule, instance, warehouse, MIDNIGHT)
    second = requested(scale_refresh_schedule, instance, warehouse,
                       MIDNIGHT + dt.timedelta(minutes=30))
    assert first["scale_1"].run_key != second["scale_1"].run_key


def test_tier_change_moves_a_project_to_the_other_schedule_at_the_next_tick(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    projects.set_tier("pro_1", "scale")
    projects.set_tier("scale_2", "basic")
    three_am = MIDNIGHT + dt.timedelta(hours=3)
    assert set(requested(pro_refresh_schedule, instance, warehouse, three_am)) == {"pro_2"}
    assert set(requested(scale_refresh_schedule, instance, warehouse, three_am)) == {
        "scale_1", "pro_1"}


def test_no_tier_schedule_refreshes_starter_basic_or_disconnected_projects(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    six_am = MIDNIGHT + dt.timedelta(hours=6)
    refreshed = set()
    for schedule in (pro_refresh_schedule, scale_refresh_schedule):
        for tick in ticks(schedule.cron_schedule, MIDNIGHT, six_am):
            refreshed |= set(requested(schedule, instance, warehouse, tick))
    assert refreshed == {"pro_1", "pro_2", "scale_1", "scale_2"}


def test_tick_without_projects_of_the_tier_is_skipped(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    store.connect("only_basic", "basic", "sk_test_b")
    instance.add_dynamic_partitions(project_partitions.name, ["only_basic"])
    with build_schedule_context(instance=instance, scheduled_execution_time=MIDNIGHT,
                                resources={"warehouse": warehouse}) as context:
        data = pro_refresh_schedule.evaluate_tick(context)
    assert not data.run_requests
    assert data.skip_message == "no active pro project"


def test_the_demos_project_is_never_scheduled(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    """Its sandbox stopped with the demo: every 3-hourly run for it failed."""
    mark_demo(projects.home, projects.get("pro_1"), "http://127.0.0.1:9")
    runs = requested(pro_refresh_schedule, instance, warehouse, MIDNIGHT + dt.timedelta(hours=3))
    assert set(runs) == {"pro_2"}
