"""What a sync holds in memory (issue 18 goal 3: a 100k backfill within 1 GiB)."""

import os
import subprocess
import sys
from pathlib import Path

import dlt
import pytest

from pipelines.load import RAW_DATASET, _destination
from pipelines.source import StripeExtraction
from pipelines.windows import sync_window
from stripe_warehouse.state_dir import StateDir
from tests.pipelines.conftest import NOW
from tests.pipelines.test_sync_recovery import REPO


def test_loads_run_duckdb_in_256_mb_on_one_thread_without_insertion_order(
    tmp_path: Path,
) -> None:
    """The settings dlt applies to the load's DuckDB connection (before: 512MB, i.e. "488.2
    MiB", 2 threads, insertion order kept). 256MB = 256,000,000 bytes = 244.1 MiB."""
    pipeline = dlt.pipeline(pipeline_name="memory_settings", pipelines_dir=str(tmp_path / "dlt"),
                            destination=_destination(StateDir.of(tmp_path), "acme"),
                            dataset_name=RAW_DATASET)

    with pipeline.sql_client() as client:
        settings = client.execute_sql(
            "select current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('preserve_insertion_order')")

    assert settings == [("244.1 MiB", 1, False)]


def _extraction(kind: str) -> StripeExtraction:
    # the rows below come from pages handed in, so no reader is needed
    return StripeExtraction("acme", reader=None, window=sync_window(kind, now=NOW))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "kept"), [("backfill", set()), ("refresh", {"cus_1"})])
def test_only_a_refresh_keeps_the_ids_of_listed_objects(kind: str, kept: set[str]) -> None:
    """A refresh re-fetches what events name unless a listing delivered it, so it keeps the
    listed ids; a backfill re-fetches nothing and keeps none (~110 MB per million ids).
    Subscriptions are listed in full by both and never re-fetched: no kind keeps theirs."""
    extraction = _extraction(kind)
    customer = {"id": "cus_1", "object": "customer", "created": NOW - 10}
    subscription = {"id": "sub_1", "object": "subscription", "created": NOW - 10,
                    "status": "active", "items": {"object": "list", "data": [],
                                                  "has_more": False}}

    rows = [extraction._object_row("customers", customer),
            *extraction._subscription_rows(subscription, kind)]

    assert [table for table, _ in rows] == ["customers", "subscriptions",
                                            "subscription_versions"]
    assert extraction._seen["customers"] == kept
    assert extraction._seen["subscriptions"] == set()



# Run in a fresh interpreter: glibc fixes its arena cap once a process has more than 8
# arenas, as pytest's own process may have.
_ARENAS = """
import ctypes, sys, tempfile, threading
from pipelines import allocator
if sys.argv[1] == "capped":
    allocator.limit_arenas()
started, done = threading.Barrier(13), threading.Event()
def work():
    held = [bytes(4096) for _ in range(100)]  # over 512 bytes: from malloc, not pymalloc
    started.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for thread in threads:
    thread.start()
started.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as report:
    handle = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(handle))
    libc.fclose(ctypes.c_void_p(handle))
    print(open(report.name).read().count("<heap nr="))
done.set()
"""

_TRIM = """
import sys
from pipelines import allocator
def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
blocks = [bytes(2048) for _ in range(100_000)]  # 200 MB from malloc
kept = blocks[::10]  # one block in ten stays: the free runs between them are whole pages
del blocks
before = rss_mb()
allocator.release_free_memory()
print(before - rss_mb())
"""


def _run(script: str, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, check=True, cwd=REPO)
    return float(done.stdout.strip())


def test_a_sync_s_threads_share_four_malloc_arenas() -> None:
    """Twelve threads allocating at once: glibc gives each its own arena up to its cap of 8
    per core (16 here), so 13 with the main one; capped, 4."""
    assert _run(_ARENAS, "uncapped") == min(13, 8 * (os.cpu_count() or 1))
    assert _run(_ARENAS, "capped") == 4


def test_free_memory_goes_back_to_the_system() -> None:
    """200 MB of 2 KB blocks, nine in ten freed: glibc keeps the ~180 MB (the blocks left
    pin the heap's top); trimmed, well over 100 MB of it leaves the process."""
    assert _run(_TRIM) > 100
