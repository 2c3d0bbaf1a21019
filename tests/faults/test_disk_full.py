"""A full disk (a real tmpfs): one line, exit 2, nothing stored lost, no load packages left.

The state directory lives on a small tmpfs mounted for the test, so the writes meet ENOSPC
where they would in production (dlt's packages, DuckDB, the registry's temporary file).
"""

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sandbox.company import CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key
from tests.faults.conftest import NOW, Built, cli, fill_disk, one_line_error, small_tmpfs

pytestmark = pytest.mark.e2e

KEY = "rk_live_disk_full_0001"
APPENDED = {"sync_runs", "_dlt_loads"}  # one row per finished sync / load


@pytest.fixture
def synced_on_tmpfs() -> Iterator[tuple[Built, Path]]:
    """A project synced once (raw tables only) into a state directory on a 40 MB tmpfs."""
    company = generate_company(CompanyConfig(customers=40, years=1, seed=9, now=NOW,
                                             livemode=True))
    with SandboxServer(accounts={KEY: company}) as sandbox, small_tmpfs(40) as mount_point:
        home = mount_point / "home"
        built = Built(home, sandbox.url, generate_key())
        connected = cli(home, built, "connect", "shop", "--tier", "pro", "--api-key-env", "K",
                        K=KEY)
        assert connected.returncode == 0, connected.stderr
        synced = cli(home, built, "sync", "shop", "--backfill", "--no-transform")
        assert synced.returncode == 0, synced.stderr
        yield built, mount_point


def raw_row_counts(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        tables = [t for (t,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'stripe_raw'").fetchall()]
        return {t: con.execute(f"select count(*) from stripe_raw.{t}").fetchone()[0]
                for t in tables}


def package_files(home: Path) -> list[Path]:
    """Files of dlt load packages (extracted, normalized, loading) under the state directory."""
    return [p for p in (home / ".dlt").rglob("*")
            if p.is_file() and {"load", "normalize", "extract"} & set(p.parts)
            and p.name != ".version"]


def test_sync_on_a_full_disk_fails_in_one_line_and_keeps_what_was_stored(
    synced_on_tmpfs: tuple[Built, Path],
) -> None:
    built, mount_point = synced_on_tmpfs
    home = built.home
    before = raw_row_counts(home)
    filler = fill_disk(mount_point, leave_bytes=256 << 10)  # less than a sync writes

    line = one_line_error(cli(home, built, "sync", "shop", "--backfill", "--no-transform"))
    assert line.startswith("error: the disk is full") and "free space" in line
    assert package_files(home) == []
    assert sum(p.stat().st_size for p in (home / ".dlt").rglob("*") if p.is_file()) < 64_000
    assert raw_row_counts(home) == before

    filler.unlink()  # space freed: running again completes the sync
    again = cli(home, built, "sync", "shop", "--backfill", "--no-transform")
    assert again.returncode == 0, again.stderr
    after = raw_row_counts(home)  # the same window again: merged, not duplicated
    assert after["sync_runs"] == before["sync_runs"] + 1
    assert {t: n for t, n in after.items() if t not in APPENDED} == {
        t: n for t, n in before.items() if t not in APPENDED}


def test_connect_on_a_full_disk_fails_in_one_line_and_keeps_the_registry(
    synced_on_tmpfs: tuple[Built, Path],
) -> None:
    built, mount_point = synced_on_tmpfs
    registry = (built.home / "connections.json").read_bytes()
    fill_disk(mount_point)
    result = cli(built.home, built, "connect", "other", "--tier", "pro", "--api-key-env", "K",
                 K=KEY)
    line = one_line_error(result)
    assert line.startswith("error: the disk is full") and "connections.json" in line
    assert (built.home / "connections.json").read_bytes() == registry
    assert not list(built.home.glob(".connections.*.tmp"))
