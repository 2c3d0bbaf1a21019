"""A project's own cron (`stripe-warehouse schedule`): validated, stored, shown, run by Dagster."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context, partition_loading_context

from commands.status import format_statuses, project_statuses
from orchestration.assets import SYNC_KIND_TAG
from orchestration.checks import stale_projects
from orchestration.definitions import defs
from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.schedules import pro_refresh_schedule, schedulable_projects
from orchestration.sensors import own_cron_requests, own_cron_sensor
from stripe_warehouse.demo_project import mark_demo
from stripe_warehouse.registry import ConnectionStore, InvalidRegistry
from stripe_warehouse.tiers import InvalidCron
from tests.command_env import command_env

from .test_tier_schedules import MIDNIGHT, requested

REPO = Path(__file__).resolve().parents[2]
EVERY_15 = "*/15 * * * *"


@pytest.fixture
def projects(store: ConnectionStore, instance: DagsterInstance) -> ConnectionStore:
    """``quarter`` (basic) on its own 15-minute cron, ``pro_own`` (pro) on a daily one,
    ``pro_plain`` on the Pro schedule, ``gone`` (a cron, but disconnected)."""
    store.connect("quarter", "basic", "sk_test_q", cron=EVERY_15)
    store.connect("pro_own", "pro", "sk_test_p", cron="0 6 * * *")
    store.connect("pro_plain", "pro", "sk_test_pp")
    store.connect("gone", "scale", "sk_test_g", cron=EVERY_15)
    store.disconnect("gone")
    instance.add_dynamic_partitions(project_partitions.name, [c.project_id for c in store.list()])
    return store


def at(minutes: int, seconds: int = 0) -> dt.datetime:
    return MIDNIGHT + dt.timedelta(minutes=minutes, seconds=seconds)


def test_ticks_of_a_projects_cron_request_one_refresh_each_with_its_own_run_key(
    projects: ConnectionStore, instance: DagsterInstance
) -> None:
    connections = schedulable_projects(instance, projects)
    # evaluations every 30 s from 00:00:10 to 00:31:00: ticks at 00:15 and 00:30 for quarter
    evaluations = [at(0, 10) + dt.timedelta(seconds=30 * n) for n in range(63)]
    runs = [r for since, now in zip(evaluations, evaluations[1:], strict=False)
            for r in own_cron_requests(connections, since, now)]
    assert [(r.partition_key, r.run_key) for r in runs] == [
        ("quarter", f"cron:quarter:{at(15).isoformat()}"),
        ("quarter", f"cron:quarter:{at(30).isoformat()}"),
    ]
    assert all(r.tags[SYNC_KIND_TAG] == "refresh" for r in runs)
    six_am = MIDNIGHT + dt.timedelta(hours=6)
    daily = own_cron_requests(connections, six_am - dt.timedelta(seconds=30), six_am)
    assert {r.partition_key for r in daily} == {"quarter", "pro_own"}


def test_ticks_missed_while_the_daemon_was_down_are_caught_up_by_one_run(
    projects: ConnectionStore, instance: DagsterInstance
) -> None:
    runs = own_cron_requests(schedulable_projects(instance, projects), at(1), at(100))
    assert [r.run_key for r in runs if r.partition_key == "quarter"] == [
        f"cron:quarter:{at(90).isoformat()}"]


def test_a_project_with_its_own_cron_leaves_its_tiers_schedule(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    three_am = MIDNIGHT + dt.timedelta(hours=3)
    assert set(requested(pro_refresh_schedule, instance, warehouse, three_am)) == {"pro_plain"}
    projects.set_cron("pro_own", None)  # back to the tier's schedule
    assert set(requested(pro_refresh_schedule, instance, warehouse, three_am)) == {
        "pro_own", "pro_plain"}


def evaluate(instance: DagsterInstance, warehouse: WarehouseResource, cursor: str | None):
    with partition_loading_context(dynamic_partitions_store=instance), build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"warehouse": warehouse},
    ) as context:
        return own_cron_sensor.evaluate_tick(context)


def test_the_sensor_in_dagster_requests_due_ticks_and_starts_from_now_the_first_time(
    projects: ConnectionStore, instance: DagsterInstance, warehouse: WarehouseResource
) -> None:
    assert "own_cron_sensor" in {s.name for s in defs.sensors}
    first = evaluate(instance, warehouse, None)
    assert not first.run_requests  # no backlog of ticks from before the sensor ran
    assert first.cursor is not None
    mark_demo(projects.home, projects.get("pro_own"), "http://127.0.0.1:9")
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    data = evaluate(instance, warehouse, an_hour_ago)  # a 15-minute tick passed since
    assert [r.partition_key for r in data.run_requests] == ["quarter"]  # not the demo's
    assert data.run_requests[0].run_key.startswith("cron:quarter:")
    assert dt.datetime.fromisoformat(data.cursor) > dt.datetime.fromisoformat(an_hour_ago)


def test_status_shows_the_next_sync_of_a_projects_own_cron(projects: ConnectionStore) -> None:
    statuses = {s.project_id: s for s in project_statuses(projects.home, now=at(7))}
    assert statuses["quarter"].next_sync == at(15)
    assert statuses["pro_own"].next_sync == MIDNIGHT + dt.timedelta(hours=6)
    assert statuses["pro_plain"].next_sync == MIDNIGHT + dt.timedelta(hours=3)
    assert "quarter: refreshes on its own cron '*/15 * * * *' (UTC)" in format_statuses(
        list(statuses.values()))


@pytest.mark.parametrize("cron", ["* * *", "*/15 * * * * *", "61 * * * *", "@daily",
                                  "0 0 31 2 *", ""])
def test_a_bad_cron_is_refused_and_nothing_changes(projects: ConnectionStore, cron: str) -> None:
    with pytest.raises(InvalidCron):
        projects.set_cron("quarter", cron)
    assert projects.get("quarter").cron == EVERY_15


def test_a_reconnected_project_keeps_its_cron(projects: ConnectionStore) -> None:
    projects.connect("quarter", "basic", "sk_test_q")
    assert projects.get("quarter").cron == EVERY_15


def test_a_registry_with_a_bad_cron_is_reported_as_damaged(projects: ConnectionStore) -> None:
    projects.path.write_text(projects.path.read_text().replace(EVERY_15, "every day"))
    with pytest.raises(InvalidRegistry, match="field cron is not a five-field cron"):
        projects.list()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = command_env(STRIPE_WAREHOUSE_HOME=str(home),
                      STRIPE_WAREHOUSE_SECRET_KEY=os.environ["STRIPE_WAREHOUSE_SECRET_KEY"])
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_schedule_command_sets_and_clears_a_cron_in_one_line_each(
    projects: ConnectionStore,
) -> None:
    set_daily = cli(projects.home, "schedule", "pro_plain", "--cron", "0  7 * * *")
    assert set_daily.returncode == 0, set_daily.stderr
    assert "pro_plain refreshes on its own cron '0 7 * * *' (UTC); next sync " in set_daily.stdout
    assert projects.get("pro_plain").cron == "0 7 * * *"
    bad = cli(projects.home, "schedule", "pro_plain", "--cron", "every hour")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: invalid cron 'every hour': use five fields, minute hour day-of-month month "
        'day-of-week, e.g. "*/15 * * * *" (every 15 minutes, UTC)']
    assert projects.get("pro_plain").cron == "0 7 * * *"
    cleared = cli(projects.home, "schedule", "pro_plain", "--tier-schedule")
    assert cleared.returncode == 0, cleared.stderr
    assert "pro_plain refreshes on the pro tier's schedule" in cleared.stdout
    assert projects.get("pro_plain").cron is None


def test_connect_refuses_a_bad_cron_before_anything_else(projects: ConnectionStore) -> None:
    result = cli(projects.home, "connect", "newco", "--tier", "basic", "--api-key-env",
                 "UNSET_VARIABLE", "--cron", "*/15 * *")
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid cron '*/15 * *'")
    assert len(result.stderr.splitlines()) == 1
    assert "newco" not in {c.project_id for c in projects.list()}


def test_freshness_follows_a_projects_own_cron_not_its_tier(projects: ConnectionStore) -> None:
    """Two missed ticks: a Pro project on a daily cron is not stale after 7 h (Pro allows 6),
    a Basic project on a 15-minute cron is after 31 minutes (Basic promises nothing)."""
    now = MIDNIGHT + dt.timedelta(hours=12)
    for project, hours_ago in (("pro_own", 7), ("quarter", 31 / 60), ("pro_plain", 7)):
        projects.record_sync(project, "refresh", (now - dt.timedelta(hours=hours_ago)).timestamp(),
                             None)
    stale = stale_projects(projects.list(), now)
    assert set(stale) == {"quarter", "pro_plain"}
    assert stale["quarter"] == "last sync 0.5 h ago; its own cron allows 0.5 h"
