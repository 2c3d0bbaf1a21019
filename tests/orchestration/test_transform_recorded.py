"""`stripe-warehouse transform` (dbt alone, from the command line) is a Dagster run of the
``transform`` job in the command's process, recorded in the state directory's instance as a
sync's build is: the marts' materialisations with their metadata and the dbt tests' results."""

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from orchestration.assets import FULL_REFRESH_TAG
from orchestration.in_process import STARTED_BY_TAG
from orchestration.translators import METRICS_DAILY_KEY
from orchestration.ui import dagster_home
from sandbox.company import CompanyConfig, generate_company
from stripe_warehouse.transform import DAGSTER_TARGET
from tests.command_env import command_env
from tests.paths import REPO_ROOT
from tests.webhooks.warehouse import load_backfill

pytestmark = pytest.mark.e2e

PROJECT = "shop"
FRESHNESS_CHECK = "projects_fresh_for_their_tier"
ALERTS_CHECK = "revenue_alerts"  # no rules here: it passes


@dataclass
class Transformed:
    home: Path
    outputs: list[subprocess.CompletedProcess[str]]  # `transform`, then `transform --full-refresh`


def transform(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", "transform", *args], cwd=REPO_ROOT,
        env=command_env(PATH="/usr/bin:/bin", STRIPE_WAREHOUSE_HOME=str(home)),
        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Transformed]:
    """A warehouse holding one company's raw tables (no Dagster run yet), built twice by the
    command: a plain build, then a full refresh."""
    home = tmp_path_factory.mktemp("transform") / "state"
    home.mkdir()
    load_backfill(home, PROJECT, generate_company(CompanyConfig(customers=15, seed=4)))
    yield Transformed(home, [transform(home), transform(home, "--full-refresh")])


def transform_runs(home: Path) -> list:
    """The ``transform`` runs recorded in the state directory's instance, oldest first."""
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        return list(reversed(instance.get_runs(RunsFilter(job_name="transform"))))


def test_each_transform_is_a_succeeded_run_of_the_transform_job(transformed: Transformed) -> None:
    for output in transformed.outputs:
        assert output.returncode == 0, output.stderr
        assert output.stdout.strip() == "marts built and published"
    runs = transform_runs(transformed.home)
    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
    assert [run.tags.get(STARTED_BY_TAG) for run in runs] == ["cli", "cli"]
    # only the second asked dbt for a full refresh (the run tag the dbt step reads)
    assert [run.tags.get(FULL_REFRESH_TAG) for run in runs] == [None, "true"]
    kept = json.loads((transformed.home / "dbt" / "target" / "run_results.json").read_text())
    assert kept["args"]["full_refresh"] is True  # the last build's results, where they always are
    # and its semantic manifest, which `stripe-warehouse mf` queries (issue 22)
    semantic = json.loads(
        (transformed.home / "dbt" / "target" / "semantic_manifest.json").read_text())
    assert {"mrr", "net_revenue_retention"} <= {metric["name"] for metric in semantic["metrics"]}


def test_metrics_daily_materialisation_carries_the_published_metrics(
        transformed: Transformed) -> None:
    with duckdb.connect(str(transformed.home / "reporting.duckdb"), read_only=True) as con:
        last_day = con.execute("select cast(max(metric_date) as varchar) from marts.metrics_daily "
                               "where project_id = ?", [PROJECT]).fetchone()[0]
    runs = transform_runs(transformed.home)
    with DagsterInstance.from_config(str(dagster_home(transformed.home))) as instance:
        records = instance.fetch_materializations(METRICS_DAILY_KEY, limit=10).records
    assert [record.run_id for record in records] == [run.run_id for run in reversed(runs)]
    metadata = records[0].asset_materialization.metadata
    assert metadata["projects"].value == 1
    assert f"| {PROJECT} | {last_day} |" in metadata["latest_metrics"].value


def test_every_dbt_data_test_and_the_freshness_check_are_recorded_per_run(
        transformed: Transformed) -> None:
    manifest = json.loads(
        (transformed.home / "dbt" / DAGSTER_TARGET / "manifest.json").read_text())
    data_tests = {node["name"] for node in manifest["nodes"].values()
                  if node["resource_type"] == "test"}
    assert len(data_tests) > 10
    with DagsterInstance.from_config(str(dagster_home(transformed.home))) as instance:
        for run in transform_runs(transformed.home):
            evaluations = [
                record.dagster_event.event_specific_data for record in instance.all_logs(
                    run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
            names = [evaluation.check_name for evaluation in evaluations]
            assert sorted(names) == sorted([*data_tests, FRESHNESS_CHECK, ALERTS_CHECK])
            # a registry without projects has none stale; the model tests pass on this company
            failed = {e.check_name for e in evaluations if not e.passed}
            assert failed <= {"warn_currencies_without_fx_rate"}, failed
