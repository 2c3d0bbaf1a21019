"""A raw table's rows as an Arrow table, so that dlt's normalize step has almost nothing to do.

Rows handed to dlt as dicts are written to a jsonl file at extract, then parsed, normalized
row by row (types coerced, ``_dlt_id`` drawn per row) and written again at normalize: on a
20k-customer backfill that was 40% of the syncing process's CPU (bench/results/
profile_backfill.txt), under the GIL the listings need. An Arrow table with the declared
columns is written to parquet by pyarrow at extract; normalize imports the file as it is
(``add_dlt_id`` off) and DuckDB reads it with ``read_parquet``.

dlt adds ``_dlt_load_id`` itself at extract (load.DLT_DEFAULTS turns that on); ``_dlt_id``,
which the JSON normalizer used to draw per row, is made here: a random prefix per process and
a counter, unique like dlt's random ids (nothing joins on it: there are no child tables).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pyarrow as pa

# Arrow's default allocator (mimalloc) keeps freed memory for reuse by the thread that freed
# it; tables are made in dlt's lane threads and written once, so that memory sat idle: peak
# PSS of a 20k backfill 986 MB with it, 927 MB with the system allocator (bench/results/
# backfill_memory.txt, one run each, load 10-14), against goal 3's 1 GiB at 100k.
pa.set_memory_pool(pa.system_memory_pool())

_ARROW_TYPES = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
DLT_ID = "_dlt_id"
# 64 random bits per process: ids of different syncs never meet; the counter makes them
# unique within one
_PREFIX = secrets.token_hex(8)
_next_id = 0
_next_id_lock = threading.Lock()


def arrow_schema(columns: dict[str, dict[str, Any]]) -> pa.Schema:
    """The Arrow schema of a raw table's declared columns (source.table_columns), plus
    ``_dlt_id``."""
    fields = [pa.field(name, _ARROW_TYPES[hint["data_type"]], hint.get("nullable", True))
              for name, hint in columns.items()]
    return pa.schema([*fields, pa.field(DLT_ID, pa.string(), nullable=False)])


def _dlt_ids(count: int) -> list[str]:
    global _next_id
    with _next_id_lock:
        first = _next_id
        _next_id += count
    return [f"{_PREFIX}{number:x}" for number in range(first, first + count)]


def rows_to_arrow(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``rows`` (dicts holding the schema's columns, ``_dlt_id`` aside) as one Arrow table."""
    names = schema.names
    arrays = [pa.array([row.get(name) for row in rows], type=field.type)
              for name, field in zip(names[:-1], schema, strict=False)]
    arrays.append(pa.array(_dlt_ids(len(rows)), type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=schema)
