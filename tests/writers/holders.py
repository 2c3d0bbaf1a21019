"""Other writers as separate processes: they take the warehouse's writer lock as ours do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.paths import REPO_ROOT

# argv: home, purpose, then one of: "forever" (hold the lock and DuckDB's until stdin closes),
# "for SECONDS" (likewise, then exit), "loop SECONDS" (for SECONDS, take the lock again at once
# after each short write, as the real-time applier does under a stream of events).
_WRITER = """
import sys, time, duckdb
from stripe_warehouse.writer_lock import warehouse_writer
home, purpose, mode = sys.argv[1], sys.argv[2], sys.argv[3]
def write():
    con = duckdb.connect(home + "/warehouse.duckdb")
    con.execute("create table if not exists writer_turns (written_at double)")
    con.execute("insert into writer_turns values (epoch(now()))")
    return con
if mode == "loop":
    print("looping", flush=True)
    turns, until = 0, time.monotonic() + float(sys.argv[4])
    while time.monotonic() < until:
        with warehouse_writer(home, purpose):
            write().close()
            time.sleep(0.05)
        turns += 1
    print(turns, flush=True)
else:
    with warehouse_writer(home, purpose):
        con = write()
        print("holding", flush=True)
        if mode == "forever":
            sys.stdin.read()
        else:
            time.sleep(float(sys.argv[4]))
        con.close()
"""


def start_writer(home: Path, purpose: str, *mode: str) -> subprocess.Popen[str]:
    """A writer process (see ``_WRITER``); it has printed its first line when this returns."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(home), purpose, *mode], cwd=REPO_ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() in {
        "holding", "looping"}
    return process


@contextmanager
def holding_writer(home: Path, purpose: str) -> Iterator[subprocess.Popen[str]]:
    """While inside, another process holds the writer lock (and DuckDB's, as a writer does)."""
    process = start_writer(home, purpose, "forever")
    try:
        yield process
    finally:
        process.communicate("", timeout=30)
