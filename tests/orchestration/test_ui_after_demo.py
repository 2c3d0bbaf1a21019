"""After `make demo`, `stripe-warehouse ui` shows what the demo did: the demo project's backfill
run (succeeded), its partition materialised, the marts materialised with their metrics and check
results, and the schedules. Looked at through the instance and through headless Chromium; the
README's Dagster screenshots are taken from this state.
"""

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from orchestration.assets import RAW_TABLE_SPECS, stripe_dbt_models
from orchestration.translators import METRICS_DAILY_KEY
from orchestration.ui import dagster_home, start_ui, stop_ui, wait_until_ready
from tests.browser import chromium
from tests.newcomer import newcomer_cli
from tests.paths import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
METRICS = ("stripe_mrr", "stripe_arr", "stripe_revenue", "stripe_active_subscriptions",
           "stripe_customers", "stripe_failed_payments")


@dataclass
class AfterDemo:
    home: Path
    url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def after_demo(
    tmp_path_factory: pytest.TempPathFactory,
    newcomers_demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> Iterator[AfterDemo]:
    """`stripe-warehouse demo` as a newcomer runs it (no key exported; the session's), then
    the UI on a copy of its state directory (the UI's daemon writes into it)."""
    demo_home, demo = newcomers_demo
    assert demo.returncode == 0, demo.stderr[-2000:]
    home = tmp_path_factory.mktemp("after_demo") / "state"
    shutil.copytree(demo_home, home, symlinks=True)
    url = f"http://127.0.0.1:{free_port()}"
    with open(home / "dagster-dev.log", "wb") as log:
        process = start_ui(home, port=int(url.rsplit(":", 1)[1]), log=log)
        try:
            wait_until_ready(url, process, timeout=180)
            yield AfterDemo(home, url)
        finally:
            stop_ui(process)


def published_metrics(home: Path) -> dict[str, float]:
    with duckdb.connect(str(home / "reporting.duckdb"), read_only=True) as con:
        return dict(con.execute(
            "select metric, value from marts.metrics_daily where project_id = 'demo' and "
            "metric_date = (select max(metric_date) from marts.metrics_daily "
            "               where project_id = 'demo')").fetchall())


def test_the_demos_backfill_is_a_succeeded_run_with_its_partition_and_metadata(
    after_demo: AfterDemo,
) -> None:
    with DagsterInstance.from_config(str(dagster_home(after_demo.home))) as instance:
        runs = instance.get_runs()
        assert [(r.job_name, r.status, r.tags.get("dagster/partition")) for r in runs] == [
            ("backfill", DagsterRunStatus.SUCCESS, "demo")]
        for spec in RAW_TABLE_SPECS:  # every raw table, for the demo project's partition
            assert instance.get_materialized_partitions(spec.key) == {"demo"}, spec.key
        subscriptions = instance.fetch_materializations(
            AssetKey(["stripe_raw", "subscriptions"]), limit=1).records[0]
        metadata = {k: v.value for k, v in subscriptions.asset_materialization.metadata.items()}
        with duckdb.connect(str(after_demo.home / "warehouse.duckdb"), read_only=True) as con:
            stored = con.execute("select count(*) from stripe_raw.subscriptions").fetchone()[0]
        assert metadata["rows_loaded"] == metadata["dagster/row_count"] == stored > 0
        assert metadata["sync_kind"] == "backfill" and metadata["test_mode"] is True
        assert metadata["requests"] > 0 and metadata["rate_limited_429"] == 0
        assert metadata["objects_read"] > 0
        assert metadata["window_start"] < metadata["window_end"]

        marts = instance.fetch_materializations(METRICS_DAILY_KEY, limit=1).records[0]
        recorded = {k: v.value for k, v in marts.asset_materialization.metadata.items()}
        published = published_metrics(after_demo.home)
        assert recorded["metrics_project"] == "demo"
        assert {m: recorded[m] for m in METRICS} == {m: float(published[m]) for m in METRICS}

        check_keys = [key for key in stripe_dbt_models.check_keys
                      if key.asset_key == METRICS_DAILY_KEY]
        assert check_keys
        for key in check_keys:
            latest = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            assert latest and latest[0].status.value == "SUCCEEDED", key
            assert latest[0].run_id == runs[0].run_id


def test_runs_page_lists_the_demo_backfill_as_succeeded(after_demo: AfterDemo) -> None:
    dom = chromium("--dump-dom", f"{after_demo.url}/runs")
    assert "backfill" in dom
    assert re.search(r">\s*Success\s*<", dom), "the run is not shown as succeeded"
    shot = SCREENSHOTS / "dagster-runs.png"
    chromium(f"--screenshot={shot}", f"{after_demo.url}/runs")
    assert shot.stat().st_size > 20_000


def test_raw_table_partition_of_the_demo_project_is_materialised(after_demo: AfterDemo) -> None:
    page = f"{after_demo.url}/assets/stripe_raw/subscriptions?view=partitions&partition=demo"
    dom = chromium("--window-size=1600,1200", "--dump-dom", page)
    assert ">demo<" in dom
    # the partition list's filters count the one partition materialised (green), none else
    for state, count in (("Materialized", 1), ("Failed", 0), ("Missing", 0)):
        assert re.search(rf"{state}\s*(<[^>]*>\s*)*\({count}\)", dom), state
    for key in ("rows_loaded", "window_start", "requests", "rate_limited_429", "test_mode"):
        assert key in dom  # the selected partition's sync metadata
    shot = SCREENSHOTS / "dagster-raw-tables.png"
    chromium("--window-size=1600,1200", f"--screenshot={shot}", page)
    assert shot.stat().st_size > 20_000


def test_metrics_daily_shows_its_materialisation_with_the_six_metrics(
    after_demo: AfterDemo,
) -> None:
    page = f"{after_demo.url}/assets/marts/metrics_daily"
    dom = chromium("--window-size=1600,2400", "--dump-dom", page)
    for metric in METRICS:
        assert metric in dom
    assert "latest_metrics" in dom
    shot = SCREENSHOTS / "dagster-metrics-daily.png"
    chromium("--window-size=1600,2400", f"--screenshot={shot}", page)
    assert shot.stat().st_size > 20_000


def test_asset_graph_and_schedules_screenshots_of_the_demo_state(after_demo: AfterDemo) -> None:
    dom = chromium("--dump-dom", f"{after_demo.url}/automation")
    for name in ("pro_refresh", "scale_refresh", "daily_retention", "connections_sensor"):
        assert name in dom
    for name, page in (("dagster-schedules.png", "automation"),
                       ("dagster-asset-graph.png", "asset-groups")):
        chromium(f"--screenshot={SCREENSHOTS / name}", f"{after_demo.url}/{page}")
        assert (SCREENSHOTS / name).stat().st_size > 20_000


def test_a_cli_refresh_error_is_one_line_and_no_run_is_left_running(after_demo: AfterDemo) -> None:
    """The demo's project refuses a sync before any run starts: no failed run is recorded."""
    result = newcomer_cli(after_demo.home, "sync", "demo", "--refresh")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    with DagsterInstance.from_config(str(dagster_home(after_demo.home))) as instance:
        assert len(instance.get_runs()) == 1
