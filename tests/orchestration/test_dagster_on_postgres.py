"""Dagster on a PostgreSQL warehouse: the instance's storage on the same server (schema
``dagster``), and the runs that matter there — a batch refresh (`sync --all`), a partitioned
sync + dbt build of one project (`sync PROJECT --refresh`) and `transform` — recorded in it,
with the marts on the server and no DuckDB file anywhere.

Real parts: the sandbox over HTTP, dlt's postgres destination, dbt-postgres, Dagster runs in
the command's process, the session's PostgreSQL server (tests/conftest.py), one database of
this module's own. One warehouse for the module: three commands, then read-only tests.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from commands.cli import main
from orchestration.batch_refresh import BATCH_JOB
from orchestration.translators import METRICS_DAILY_KEY, raw_table_key
from orchestration.ui import DAGSTER_SCHEMA, POSTGRES_POOL_LIMIT, dagster_home
from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.postgres_databases import new_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PROJECTS = {"shop_a": 21, "shop_b": 22}  # project: the company's seed


@dataclass
class Runs:
    home: Path
    target: WarehouseTarget
    outputs: dict[str, tuple[int, str]]  # command: exit code, stdout
    customers: dict[str, int]  # each sandbox company's customers


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Runs]:
    home = tmp_path_factory.mktemp("dagster_pg") / "state"
    home.mkdir()
    companies = {p: generate_company(CompanyConfig(customers=15, years=1, seed=seed))
                 for p, seed in PROJECTS.items()}
    with new_database(postgres_url, "dagster") as url, \
            SandboxServer(accounts={f"sk_test_{p}": c for p, c in companies.items()}) as sandbox, \
            pytest.MonkeyPatch.context() as mp:
        target = WarehouseTarget.postgres(url)
        target.save(home)
        mp.setenv(SECRET_KEY_ENV, generate_key())
        mp.setenv("STRIPE_API_BASE", sandbox.url)
        mp.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        store = ConnectionStore(home)
        for project, company in companies.items():
            store.connect(project, "scale", f"sk_test_{project}", account_id=company.account_id)
        outputs = {
            "batch": _cli("sync", "--all", "--backfill", "--tier", "scale"),
            "sync": _cli("sync", "shop_a", "--refresh"),
            "transform": _cli("transform"),
        }
        yield Runs(home, target, outputs,
                   {p: len(c.objects["customer"]) for p, c in companies.items()})


def _instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(dagster_home(home)))


def test_every_command_succeeded(runs: Runs) -> None:
    assert {name: code for name, (code, _) in runs.outputs.items()} == {
        "batch": 0, "sync": 0, "transform": 0}, runs.outputs
    assert "cycle: 2 of 2 projects refreshed" in runs.outputs["batch"][1]
    # nothing is published on PostgreSQL: the commands say where the marts are instead
    for command in ("sync", "transform"):
        assert runs.outputs[command][1].splitlines()[-1] == (
            "marts built on the PostgreSQL server (BI tools read them there)")


def test_the_instance_is_stored_on_the_warehouses_server(runs: Runs) -> None:
    with _instance(runs.home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == \
            POSTGRES_POOL_LIMIT
        recorded = {run.run_id for run in instance.get_runs()}
    # the same runs, read on the server: Dagster's tables are in their own schema
    on_server = {run_id for (run_id,) in runs.target.fetch_all(
        f"select run_id from {DAGSTER_SCHEMA}.runs")}
    assert on_server == recorded and len(recorded) == 3
    # no SQLite run history and no DuckDB file in the state directory
    assert not list(runs.home.rglob("*.db")), list(runs.home.rglob("*.db"))
    assert not list(runs.home.rglob("*.duckdb")), list(runs.home.rglob("*.duckdb"))
    assert (dagster_home(runs.home) / "dagster.yaml").stat().st_mode & 0o077 == 0


def test_the_three_runs_are_recorded_as_succeeded(runs: Runs) -> None:
    with _instance(runs.home) as instance:
        batch = instance.get_runs(RunsFilter(job_name=BATCH_JOB))
        transform = instance.get_runs(RunsFilter(job_name="transform"))
        partitioned = instance.get_runs(RunsFilter(tags={"dagster/partition": "shop_a"}))
    assert [run.status for run in batch] == [DagsterRunStatus.SUCCESS]
    assert [run.status for run in transform] == [DagsterRunStatus.SUCCESS]
    assert [run.status for run in partitioned] == [DagsterRunStatus.SUCCESS]


def test_the_partitioned_sync_records_the_servers_row_counts(runs: Runs) -> None:
    (customers,) = runs.target.fetch_all(
        "select count(*) from stripe_raw.customers where project_id = 'shop_a'")[0]
    assert customers == runs.customers["shop_a"]
    with _instance(runs.home) as instance:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=raw_table_key("customers"), asset_partitions=["shop_a"]),
            limit=10, ascending=False).records
        (partitioned,) = instance.get_runs(RunsFilter(tags={"dagster/partition": "shop_a"}))
    # the partitioned refresh's materialisation of shop_a's customers, counted on the server
    assert [record.run_id for record in records][:1] == [partitioned.run_id]
    assert records[0].asset_materialization.metadata["dagster/row_count"].value == customers


def test_metrics_daily_carries_the_metrics_read_on_the_server(runs: Runs) -> None:
    (customers,) = runs.target.fetch_all(
        "select value from marts.metrics_daily where project_id = 'shop_a' "
        "and metric = 'stripe_customers' and metric_date = "
        "(select max(metric_date) from marts.metrics_daily where project_id = 'shop_a')")[0]
    with _instance(runs.home) as instance:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=METRICS_DAILY_KEY), limit=10, ascending=False).records
    metadata = [record.asset_materialization.metadata for record in records]
    # batch, partitioned sync, transform: each build's materialisation, newest first
    assert len(metadata) == 3
    assert all(entry["projects"].value == 2 for entry in metadata)
    (synced,) = [entry for entry in metadata if "metrics_project" in entry]
    assert synced["metrics_project"].value == "shop_a"  # the partitioned run's project
    assert synced["stripe_customers"].value == float(customers) > 0
