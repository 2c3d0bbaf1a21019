"""A command's run writes to the Dagster instance without a sync and a checkpoint per event."""

import sqlite3
from pathlib import Path

from dagster import AssetMaterialization, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from sqlalchemy import event
from sqlalchemy.engine import Engine

from orchestration.instance_writes import cheap_instance_writes


def synchronous_levels(instance_dir: Path, events: int) -> tuple[set[int], bool]:
    """Report ``events`` runless materialisations; the ``synchronous`` level of each Dagster
    connection, and whether the index shard's WAL file outlived the last one's close."""
    levels: set[int] = set()

    def read_level(dbapi_connection, _record) -> None:  # runs after cheap_instance_writes'
        if isinstance(dbapi_connection, sqlite3.Connection):
            levels.add(dbapi_connection.execute("pragma synchronous").fetchone()[0])

    event.listen(Engine, "connect", read_level)
    try:
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(instance_dir))) as instance:
            for number in range(events):
                instance.report_runless_asset_event(
                    AssetMaterialization("probe", metadata={"number": number}))
            wal_kept = (instance_dir / "history" / "runs" / "index.db-wal").exists()
    finally:
        event.remove(Engine, "connect", read_level)
    return levels, wal_kept


def test_a_commands_run_commits_without_a_sync_and_keeps_the_wal_until_it_ends(tmp_path):
    """SQLite's default in WAL mode is synchronous=FULL (2: a sync per commit), and the last
    connection's close checkpoints and deletes the WAL; inside ``cheap_instance_writes`` every
    connection to the instance's files is NORMAL (1) and the WAL stays until the end, when it
    is checkpointed once. Every event is stored either way."""
    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir()
    assert synchronous_levels(instance_dir, 3) == ({2}, False)

    with cheap_instance_writes(instance_dir):
        levels, wal_kept = synchronous_levels(instance_dir, 3)
    assert (levels, wal_kept) == ({1}, True)
    assert not (instance_dir / "history" / "runs" / "index.db-wal").exists()

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(instance_dir))) as instance:
        records = instance.fetch_materializations(
            AssetMaterialization("probe").asset_key, limit=10).records
    assert [r.asset_materialization.metadata["number"].value for r in records] == [2, 1, 0, 2, 1, 0]


def test_other_sqlite_files_keep_their_settings(tmp_path):
    """Only the instance's files change: a SQLite file elsewhere (the inbox, say) stays FULL."""
    from sqlalchemy import create_engine, text

    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir()
    elsewhere = create_engine(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    with cheap_instance_writes(instance_dir), elsewhere.connect() as connection:
        assert connection.execute(text("pragma synchronous")).scalar() == 2
    elsewhere.dispose()
