"""A sync killed with SIGKILL mid-load is completed by the next run, without duplicates."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.load import sync_project
from pipelines.source import RAW_TABLES
from sandbox.company import Company
from sandbox.server import SandboxServer
from stripe_warehouse.registry import ConnectionStore
from tests.pipelines.conftest import NOW, TEST_KEY, query, table_ids
from tests.pipelines.expected import expected_backfill_ids
from tests.processes import alive, descendants

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("spawned_dbt")]
REPO = Path(__file__).resolve().parents[2]

SYNC_SCRIPT = """
import sys
from pipelines.load import sync_project
from stripe_warehouse.registry import ConnectionStore
sync_project(ConnectionStore(sys.argv[1]), "acme", "backfill", api_base=sys.argv[2],
             now=int(sys.argv[3]))
"""


def reached_stage(home: Path, stage: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until the sync in ``proc`` has a dlt package in ``stage``; False if it never does."""
    stage_dir = home / ".dlt" / "stripe_acme" / stage
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(stage_dir.glob("*/")):
            return True
        time.sleep(0.005)
    return False


# normalize/extracted: read from Stripe, not yet normalized; load/normalized: being loaded.
@pytest.mark.parametrize("stage", ["normalize/extracted", "load/normalized"])
def test_sync_killed_mid_load_completes_on_rerun_without_duplicates(
    company: Company, store: ConnectionStore, stage: str
) -> None:
    with SandboxServer(accounts={TEST_KEY: company}, latency_ms=5) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-c", SYNC_SCRIPT, str(store.home), srv.url, str(NOW)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        reached = reached_stage(store.home, stage, proc)
        helpers = descendants(proc.pid)  # the allowlist's worker processes, while extracting
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert reached and proc.returncode == -signal.SIGKILL
        # Workers watch their parent and exit with it (an orphan would live forever).
        assert not alive(helpers, within=10), "processes of the killed sync survived it"
        assert store.get("acme").last_sync_at is None  # the killed run recorded nothing
        result = sync_project(store, "acme", "backfill", api_base=srv.url, now=NOW)
    expected = expected_backfill_ids(company, NOW)
    for table in RAW_TABLES:
        count, distinct = query(store.home, f"select count(*), count(distinct id) "
                                            f"from stripe_raw.{table}")[0]
        assert count == distinct == len(expected[table]), table
        assert table_ids(store.home, table) == sorted(expected[table])
    assert query(store.home, "select count(*) from stripe_raw.sync_runs")[0][0] == 1
    assert result.objects_loaded == sum(len(ids) for ids in expected.values())
    assert store.get("acme").last_sync_kind == "backfill"


def test_ctrl_c_stops_a_sync_with_one_line_and_no_worker_left(
    company: Company, store: ConnectionStore, secret_key: str
) -> None:
    """Ctrl-C in a terminal interrupts the whole foreground process group, the allowlist's
    workers included: each of them printed a KeyboardInterrupt traceback under the CLI's line."""
    with SandboxServer(accounts={TEST_KEY: company}, latency_ms=20) as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "sync", "acme", "--backfill",
             "--no-transform"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO),
                           "STRIPE_WAREHOUSE_HOME": str(store.home),
                           "STRIPE_WAREHOUSE_SECRET_KEY": secret_key,
                           "STRIPE_API_BASE": srv.url},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own group, as a terminal's foreground job is
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while len(helpers := descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # wait for the allowlist's workers
        os.killpg(proc.pid, signal.SIGINT)
        _, errors = proc.communicate(timeout=60)
    assert len(helpers) >= 2
    assert proc.returncode == 130, errors
    assert errors.strip().splitlines() == [
        "error: interrupted: run the command again; loaded data is kept"], errors
    assert not alive(helpers, within=10)


def test_a_schema_write_cut_short_by_a_kill_does_not_stop_the_next_sync(
    company: Company, store: ConnectionStore, sandbox: SandboxServer
) -> None:
    """dlt writes a schema to a temporary file named by 16 hex digits, then renames it into
    place; a sync killed in between leaves that file in the pipeline's ``schemas/``, and dlt
    then lists it as a schema of that name. The clean-clone run's rerun after a kill failed on
    it (FileNotFoundError: schemas/44bfc10ef1034664.schema.json) instead of completing."""
    sync_project(store, "acme", "backfill", api_base=sandbox.url, now=NOW)
    schemas = store.home / ".dlt" / "stripe_acme" / "schemas"
    (schemas / "44bfc10ef1034664").write_text('{"version": 1, "name": "str')  # cut short
    result = sync_project(store, "acme", "refresh", api_base=sandbox.url, now=NOW + 60)
    assert result.kind == "refresh"
    assert not (schemas / "44bfc10ef1034664").exists()
    assert sorted(path.name for path in schemas.iterdir()) == ["stripe.schema.json"]
    expected = expected_backfill_ids(company, NOW)
    assert table_ids(store.home, "customers") == sorted(expected["customers"])
