"""Another process holding the warehouse file, as a BI tool or the DuckDB CLI does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOLD_WRITE_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(warehouse: Path) -> Iterator[None]:
    """While inside, a separate process has `warehouse` open for writing (DuckDB's file lock)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE_LOCK, str(warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.communicate("", timeout=30)
