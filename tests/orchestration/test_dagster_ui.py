"""`dagster dev` as `stripe-warehouse ui` starts it, looked at through headless Chromium.

The README's screenshots are taken after the demo instead (test_ui_after_demo.py): a real run.
"""

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from orchestration.ui import start_ui, stop_ui, wait_until_ready
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from tests.browser import chromium

pytestmark = pytest.mark.browser

RAW_TABLES = ("customers", "subscriptions", "subscription_items", "invoices", "invoice_lines",
              "charges", "refunds", "prices", "products", "coupons", "events",
              "subscription_versions", "sync_runs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dagster dev on a free port of 127.0.0.1 for a state dir with three connected projects."""
    home = tmp_path_factory.mktemp("ui_state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET_KEY_ENV, generate_key())
        store = ConnectionStore(home)
        for project, tier in (("acme", "pro"), ("globex", "scale"), ("initech", "starter")):
            store.connect(project, tier, f"sk_test_{project}")
            # Already synced: the connect sensor adds partitions but launches no backfill.
            store.record_sync(project, "backfill", time.time(), None)
        url = f"http://127.0.0.1:{free_port()}"
        with open(home / "dagster-dev.log", "wb") as log:
            process = start_ui(home, port=int(url.rsplit(":", 1)[1]), log=log)
            try:
                wait_until_ready(url, process, timeout=180)
                wait_for_sensor_partitions(home / "dagster", {"acme", "globex", "initech"})
                assert_no_community_modal(url)
                yield url
            finally:
                stop_ui(process)
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # the whole process group is gone


def wait_for_sensor_partitions(dagster_home: Path, expected: set[str]) -> None:
    """The daemon's connect sensor turns the registry's projects into partitions."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        deadline = time.monotonic() + 120
        while set(instance.get_dynamic_partitions("projects")) != expected:
            assert time.monotonic() < deadline, "the connect sensor never added the partitions"
            time.sleep(1)


def assert_no_community_modal(url: str) -> None:
    """The instance config turns off the sign-up dialog Dagster opens on a first visit."""
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": "{ shouldShowNux }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response) == {"data": {"shouldShowNux": False}}


def test_asset_catalog_lists_every_raw_table_and_the_published_marts(ui: str) -> None:
    # the catalog renders only the rows in the window (a virtualized list), sorted by key:
    # tall enough for every asset, the stripe_raw ones last (4000 px stopped short of them
    # when the SaaS marts came)
    dom = chromium("--window-size=1600,12000", "--dump-dom", f"{ui}/assets")
    for table in RAW_TABLES:
        assert f"stripe_raw/{table}" in dom
    assert "marts/metrics_daily" in dom


def test_global_lineage_runs_from_raw_tables_through_dbt_layers_to_marts(ui: str) -> None:
    dom = chromium("--dump-dom", f"{ui}/asset-groups")
    for group in ("stripe_raw", "staging", "intermediate", "marts"):
        assert f">{group}<" in dom


def test_raw_table_assets_are_partitioned_per_project(ui: str) -> None:
    page = f"{ui}/locations/orchestration.definitions/asset-groups/stripe_raw"
    dom = chromium("--dump-dom", page)
    assert "3 partitions" in dom  # acme, globex, initech: added by the connect sensor


def test_automation_page_shows_the_pro_and_scale_schedules_and_the_connect_sensor(ui: str) -> None:
    dom = chromium("--dump-dom", f"{ui}/automation")
    for name in ("pro_refresh", "scale_refresh", "daily_retention", "connections_sensor"):
        assert name in dom
