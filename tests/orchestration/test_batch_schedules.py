"""The batched refresh's schedules: one run per tick with the tier's due projects; its writing
steps are in the single-writer pool."""

import datetime as dt

import pytest
from dagster import DagsterInstance, DefaultScheduleStatus, build_schedule_context

from orchestration.batch_refresh import (
    build_batch_marts,
    pro_batch_schedule,
    scale_batch_schedule,
    sync_projects,
)
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.schedules import scale_refresh_schedule
from stripe_warehouse.registry import ConnectionStore

TICK = dt.datetime(2026, 6, 15, 0, 30, tzinfo=dt.UTC)


def evaluate(schedule, instance: DagsterInstance, warehouse: WarehouseResource):  # noqa: ANN001, ANN201
    with build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, resources={"warehouse": warehouse},
        repository_def=defs.get_repository_def(),
    ) as context:
        return schedule.evaluate_tick(context)


def test_a_tick_is_one_run_of_the_tiers_active_projects_without_a_cron_of_their_own(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    for project, tier in {"s1": "scale", "s2": "scale", "s_cron": "scale", "s_gone": "scale",
                          "p1": "pro"}.items():
        store.connect(project, tier, f"sk_test_{project}")
    store.set_cron("s_cron", "*/5 * * * *")  # own_cron_sensor refreshes it
    store.disconnect("s_gone")
    instance.add_dynamic_partitions(project_partitions.name, [c.project_id for c in store.list()])
    [request] = evaluate(scale_batch_schedule, instance, warehouse).run_requests
    config = request.run_config["ops"]["sync_projects"]["config"]
    assert (config["tier"], config["projects"]) == ("scale", ["s1", "s2"])
    assert request.run_key == f"scale:{TICK.isoformat()}"
    assert request.partition_key is None  # one run for many partitions: each on its own events
    [pro] = evaluate(pro_batch_schedule, instance, warehouse).run_requests
    assert pro.run_config["ops"]["sync_projects"]["config"]["projects"] == ["p1"]


def test_with_several_run_workers_a_tick_splits_the_tier_into_that_many_runs(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STRIPE_WAREHOUSE_BATCH_RUNS=2 (a PostgreSQL deployment with two run workers): five Scale
    projects become two runs of 3 and 2, every project in exactly one, each with its own run
    key for the tick."""
    projects = [f"s{i}" for i in range(1, 6)]
    for project in projects:
        store.connect(project, "scale", f"sk_test_{project}")
    instance.add_dynamic_partitions(project_partitions.name, projects)
    monkeypatch.setenv("STRIPE_WAREHOUSE_BATCH_RUNS", "2")
    first, second = evaluate(scale_batch_schedule, instance, warehouse).run_requests
    shares = [r.run_config["ops"]["sync_projects"]["config"]["projects"] for r in (first, second)]
    assert shares == [["s1", "s3", "s5"], ["s2", "s4"]]
    assert [first.run_key, second.run_key] == [f"scale:{TICK.isoformat()}:1/2",
                                               f"scale:{TICK.isoformat()}:2/2"]


def test_a_malformed_number_of_batch_runs_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipelines.batch import batch_runs
    from stripe_warehouse.errors import WarehouseError

    monkeypatch.setenv("STRIPE_WAREHOUSE_BATCH_RUNS", "two")
    with pytest.raises(WarehouseError, match="^STRIPE_WAREHOUSE_BATCH_RUNS must be a whole "
                                             "number from 1 to 64 \\(got 'two'\\)"):
        batch_runs()


def test_no_active_project_of_the_tier_skips_the_tick(
    store: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    store.connect("p1", "pro", "sk_test_p1")
    instance.add_dynamic_partitions(project_partitions.name, ["p1"])
    data = evaluate(scale_batch_schedule, instance, warehouse)
    assert not data.run_requests
    assert data.skip_message == "no active scale project"


def test_the_batch_schedule_is_off_until_chosen_and_shares_the_tier_cron() -> None:
    assert scale_batch_schedule.default_status == DefaultScheduleStatus.STOPPED
    assert scale_batch_schedule.cron_schedule == scale_refresh_schedule.cron_schedule
    assert scale_batch_schedule.job_name == "batch_refresh"


def test_the_batch_steps_that_write_duckdb_are_in_the_single_writer_pool() -> None:
    assert sync_projects.pool == "duckdb"
    assert build_batch_marts.pool == "duckdb"
