"""`stripe-warehouse sync --all`: three sandbox accounts refreshed as one batch, one revoked.

Real parts: the sandbox over HTTP, the Stripe SDK, dlt into DuckDB, one `dbt build` and the
publish, all inside one Dagster run of the ``batch_refresh`` job in the command's process.
The three projects are backfilled by one batch, then `shop_c`'s key is revoked on the
sandbox (it answers 401) and one active subscription of `shop_a` is canceled; a refresh batch
of the Scale tier then refreshes `shop_a` and `shop_b`, records `shop_c`'s failure on its
partition and in the registry, and exits 1.
"""

import contextlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from commands.cli import main
from orchestration.batch_refresh import BATCH_JOB, SYNC_RUNS_KEY
from orchestration.partitions import project_partitions
from orchestration.ui import dagster_home
from pipelines.batch import batch_projects
from pipelines.revocation import revoked_message
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore

pytestmark = pytest.mark.e2e

PROJECTS = {"shop_a": 11, "shop_b": 12, "shop_c": 13}  # project: the company's seed
REVOKED = "shop_c"


@dataclass
class Cycle:
    home: Path
    store: ConnectionStore
    backfill: tuple[int, str]  # exit code, stdout
    refresh: tuple[int, str]
    active_before: dict[str, int]  # active subscriptions on the last day, after the backfill
    started: float  # when the refresh batch started (unix seconds)


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def active_subscriptions(home: Path) -> dict[str, int]:
    """Each project's active subscriptions on its last reported day, as readers see them."""
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select project_id, value from marts.metrics_daily m where metric = "
            "'stripe_active_subscriptions' and metric_date = (select max(metric_date) from "
            "marts.metrics_daily where project_id = m.project_id)").fetchall()
    return {project: int(value) for project, value in rows}


def _cancel_one_active(company: Company) -> None:
    subscription = next(s for s in company.objects["subscription"] if s["status"] == "active")
    company.cancel_subscription(subscription["id"], at=int(time.time()) - 60)


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cycle]:
    home = tmp_path_factory.mktemp("batch") / "state"
    companies = {p: generate_company(CompanyConfig(customers=25, years=1, seed=seed))
                 for p, seed in PROJECTS.items()}
    accounts = {f"sk_test_{p}": company for p, company in companies.items()}
    with SandboxServer(accounts=accounts) as sandbox, pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_KEY_ENV, generate_key())
        mp.setenv("STRIPE_API_BASE", sandbox.url)
        mp.setenv("STRIPE_WAREHOUSE_HOME", str(home))
        store = ConnectionStore(home)
        for project, company in companies.items():
            store.connect(project, "scale", f"sk_test_{project}",
                          account_id=company.account_id)
        store.connect("pro_shop", "pro", "sk_test_shop_b", account_id="acct_other_pro")
        backfill = _cli("sync", "--all", "--backfill", "--tier", "scale")
        active_before = active_subscriptions(home)
        del sandbox.accounts[f"sk_test_{REVOKED}"]  # Stripe now answers 401 to its key
        _cancel_one_active(companies["shop_a"])
        started = time.time()
        refresh = _cli("sync", "--all", "--refresh", "--tier", "scale", "--workers", "3")
        yield Cycle(home, store, backfill, refresh, active_before, started)


def test_the_tier_filter_takes_only_that_tiers_active_projects(cycle: Cycle) -> None:
    assert batch_projects(cycle.store, "scale") == ["shop_a", "shop_b"]  # shop_c is revoked
    assert batch_projects(cycle.store, "pro") == ["pro_shop"]


def test_the_backfill_batch_loads_every_project(cycle: Cycle) -> None:
    code, out = cycle.backfill
    assert code == 0, out
    for project in PROJECTS:
        assert f"{project}: ok, " in out
    assert "pro_shop" not in out
    assert "cycle: 3 of 3 projects refreshed" in out
    assert set(cycle.active_before) == set(PROJECTS)


def test_a_revoked_account_fails_alone_and_the_exit_code_says_so(cycle: Cycle) -> None:
    code, out = cycle.refresh
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("shop_a: ok, ") for line in lines), out
    assert any(line.startswith("shop_b: ok, ") for line in lines), out
    assert any(line.startswith("shop_c: error after ") and "no longer accepts" in line
               for line in lines), out
    assert lines[-1].startswith("cycle: 2 of 3 projects refreshed, 1 failed (shop_c), ")
    connection = cycle.store.get(REVOKED)
    assert (connection.status, connection.status_reason) == ("revoked", revoked_message(REVOKED))
    for project in ("shop_a", "shop_b"):
        assert cycle.store.get(project).last_sync_at >= cycle.started


def test_the_refreshed_projects_marts_follow_their_accounts(cycle: Cycle) -> None:
    """shop_a: one of its active subscriptions was canceled a minute before the refresh, so
    its last day's count is the backfill's minus one; shop_b did not change (the same count);
    shop_c was not refreshed: its rows are the backfill's."""
    after = active_subscriptions(cycle.home)
    before = cycle.active_before
    assert after["shop_a"] == before["shop_a"] - 1
    assert after["shop_b"] == before["shop_b"]
    assert after["shop_c"] == before["shop_c"]
    with duckdb.connect(str(cycle.home / "warehouse.duckdb"), read_only=True) as con:
        runs = dict(con.execute("select project_id, count(*) from stripe_raw.sync_runs "
                                "group by project_id").fetchall())
    assert runs == {"shop_a": 2, "shop_b": 2, "shop_c": 1}


def test_one_run_one_dbt_build_and_per_partition_results(cycle: Cycle) -> None:
    with DagsterInstance.from_config(str(dagster_home(cycle.home))) as instance:
        [run, _backfill] = instance.get_runs(RunsFilter(job_name=BATCH_JOB))
        assert run.status == DagsterRunStatus.FAILURE  # a project failed: the run says so
        steps = {s.step_key: s.status.value for s in instance.get_run_step_stats(run.run_id)}
        assert steps == {"sync_projects": "SUCCESS", "build_batch_marts": "SUCCESS",
                         "fail_on_failed_projects": "FAILURE"}
        done = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=SYNC_RUNS_KEY), limit=20).records
        this_run = {r.partition_key for r in done if r.run_id == run.run_id}
        assert this_run == {"shop_a", "shop_b"}
        [failure] = instance.fetch_observations(
            AssetRecordsFilter(asset_key=SYNC_RUNS_KEY, asset_partitions=[REVOKED]),
            limit=5).records
        assert failure.run_id == run.run_id
        metadata = failure.asset_observation.metadata
        assert metadata["status"].value == "failed"
        assert metadata["error"].value == revoked_message(REVOKED)
        status = instance.get_status_by_partition(
            SYNC_RUNS_KEY, list(PROJECTS), project_partitions)
        assert status == {"shop_a": AssetPartitionStatus.MATERIALIZED,
                          "shop_b": AssetPartitionStatus.MATERIALIZED,
                          "shop_c": AssetPartitionStatus.FAILED}


@pytest.mark.parametrize(("argv", "error"), [
    (["sync", "--refresh"], "name a project to sync, or pass --all"),
    (["sync", "shop", "--all", "--refresh"], "--all syncs every active project: drop 'shop'"),
    (["sync", "shop", "--refresh", "--tier", "scale"],
     "--tier and --workers apply to `sync --all`"),
    (["sync", "--all", "--refresh", "--workers", "0"], "--workers must be 1 to 64 (got 0)"),
])
def test_a_wrong_batch_command_is_one_line_naming_the_fix(
    argv: list[str], error: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path / "state"))
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {error}")
    assert not (tmp_path / "state").exists()  # nothing was created for a command refused
