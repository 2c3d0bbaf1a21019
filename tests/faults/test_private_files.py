"""Files holding customer data are owner-only; dbt's target/ and logs/ live in the state dir."""

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key
from tests.faults.conftest import NOW, Built, cli, cli_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

KEYS = ("rk_live_modes_0001", "rk_live_modes_0002")
REPO_DBT_OUTPUT = (REPO_ROOT / "dbt_project" / "target", REPO_ROOT / "dbt_project" / "logs",
                   REPO_ROOT / "logs", REPO_ROOT / "target")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    accounts = {key: generate_company(CompanyConfig(customers=30, years=1, seed=20 + i, now=NOW,
                                                    livemode=True))
                for i, key in enumerate(KEYS)}
    with SandboxServer(accounts=accounts) as server:
        yield server


def connected_home(sandbox: SandboxServer, home: Path, key: str) -> Built:
    built = Built(home, sandbox.url, generate_key())
    result = cli(home, built, "connect", "shop", "--tier", "pro", "--api-key-env", "K", K=key)
    assert result.returncode == 0, result.stderr
    return built


def modes(home: Path) -> dict[str, int]:
    """Every path under ``home`` (itself included) and its permission bits."""
    return {str(p.relative_to(home)): stat.S_IMODE(p.stat().st_mode)
            for p in [home, *home.rglob("*")]}


def written_since(started: float) -> list[Path]:
    return [p for root in REPO_DBT_OUTPUT if root.exists() for p in root.rglob("*")
            if p.stat().st_mtime >= started]


@pytest.fixture(scope="module")
def synced(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, Built, float, subprocess.CompletedProcess[str]]:
    """A home after a backfill that loads, builds and publishes (a Dagster run): the module's
    tests read it in order (file modes first, then the builds that follow)."""
    home = tmp_path_factory.mktemp("synced") / "home"
    built = connected_home(sandbox, home, KEYS[0])
    started = time.time()
    return home, built, started, cli(home, built, "sync", "shop", "--backfill")


def test_sync_and_build_leave_only_owner_only_files_and_nothing_in_the_repo(synced) -> None:
    home, _, started, result = synced
    assert result.returncode == 0, result.stderr
    assert "marts built and published" in result.stdout
    found = modes(home)
    # the sync runs as a Dagster job: dbt's output goes to dagster-dbt.log
    for name in ("warehouse.duckdb", "reporting.duckdb", "dbt/target/run_results.json",
                 "dbt/logs/dagster-dbt.log", ".dlt", "dagster"):
        assert name in found, sorted(found)
    loose = {name: oct(mode) for name, mode in found.items()
             if mode != (0o700 if (home / name).is_dir() else 0o600)}
    assert loose == {}
    assert written_since(started) == []


def test_partial_parse_cache_is_kept_in_the_state_dir_and_reused(synced) -> None:
    home, built, _, result = synced
    assert result.returncode == 0, result.stderr
    # every build is a Dagster run: the sync's left the parse cache beside Dagster's manifest
    cache = home / "dbt" / "dagster-target" / "partial_parse.msgpack"
    assert cache.exists()
    log = home / "dbt" / "logs" / "dbt.log"
    log.unlink()
    assert cli(home, built, "transform").returncode == 0
    text = log.read_text()
    assert "Unable to do partial parsing" not in text
    assert "Partial parsing enabled" in text, text[:2000]


def test_two_homes_building_at_once_each_keep_their_own_run_results(
    synced, sandbox: SandboxServer, tmp_path: Path
) -> None:
    first, first_built, _, result = synced  # loaded and built: it builds again
    assert result.returncode == 0, result.stderr
    second = tmp_path / "two"
    second_built = connected_home(sandbox, second, KEYS[1])
    loaded = cli(second, second_built, "sync", "shop", "--backfill", "--no-transform")
    assert loaded.returncode == 0, loaded.stderr
    homes, builts = [first, second], [first_built, second_built]
    started = time.time()
    builds = [subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "transform"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for env in (cli_env(home, built) for home, built in zip(homes, builts, strict=True))]
    outcomes = [build.communicate(timeout=300) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], outcomes
    results = [json.loads((home / "dbt" / "target" / "run_results.json").read_text())
               for home in homes]
    assert results[0]["metadata"]["invocation_id"] != results[1]["metadata"]["invocation_id"]
    for result in results:
        assert result["results"] and {r["status"] for r in result["results"]} <= {
            "success", "pass", "warn"}
    assert written_since(started) == []


def test_dagster_parses_its_dbt_manifest_into_the_state_dir_not_the_repo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = time.time()
    loaded = subprocess.run(
        [sys.executable, "-c", "from orchestration.definitions import defs; "
         "from orchestration.resources import dbt_project; print(dbt_project.manifest_path)"],
        env={**cli_env(home, Built(home, "http://127.0.0.1:9", generate_key()))},
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    manifest = Path(loaded.stdout.strip())
    assert manifest == home / "dbt" / "dagster-target" / "manifest.json"
    assert "model.stripe_warehouse.metrics_daily" in json.loads(manifest.read_text())["nodes"]
    assert (manifest.parent / "partial_parse.msgpack").exists()
    loose = {name: oct(mode) for name, mode in modes(home).items()
             if mode != (0o700 if (home / name).is_dir() else 0o600)}
    assert loose == {}
    assert written_since(started) == []
