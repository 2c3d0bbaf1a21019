"""Rows handed to dlt as Arrow tables (pipelines/arrow_rows.py) and the batches they are made of."""

import datetime as dt

import pyarrow as pa

from pipelines.arrow_rows import arrow_schema, rows_to_arrow
from pipelines.source import coalesced, table_columns


def test_coalesced_joins_batches_in_order_until_enough_rows() -> None:
    """Four batches of 1, 1, 1 and 2 rows, joined at 2 rows: the first two make one batch
    (2 rows), the third alone is short, so it is joined with the fourth (1 + 2 = 3 rows);
    nothing is left for a last short batch. Rows of a table keep their order."""
    batches = [{"events": [{"id": "e1"}]}, {"customers": [{"id": "c1"}]},
               {"events": [{"id": "e2"}]}, {"events": [{"id": "e3"}], "customers": [{"id": "c2"}]}]
    assert list(coalesced(iter(batches), 2)) == [
        {"events": [{"id": "e1"}], "customers": [{"id": "c1"}]},
        {"events": [{"id": "e2"}, {"id": "e3"}], "customers": [{"id": "c2"}]},
    ]


def test_coalesced_yields_the_short_rest() -> None:
    """Three rows at 5 per batch: one batch of the three."""
    batches = [{"events": [{"id": "e1"}]}, {"events": [{"id": "e2"}, {"id": "e3"}]}]
    assert list(coalesced(iter(batches), 5)) == [
        {"events": [{"id": "e1"}, {"id": "e2"}, {"id": "e3"}]}]


def test_rows_to_arrow_keeps_declared_columns_and_types_and_adds_unique_dlt_ids() -> None:
    """Two event rows (one without `created`) become two rows of the table's declared columns
    in declared order, `_dlt_id` last; a column missing from a row is null; `_synced_at` keeps
    its instant in UTC; the two `_dlt_id`s differ, and differ from those of the next call."""
    synced = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
    rows = [
        {"project_id": "p", "id": "evt_1", "created": 1_780_000_000, "livemode": True,
         "data": '{"id":"evt_1"}', "api_version": "2025-09-30.clover", "_synced_at": synced,
         "type": "invoice.paid"},
        {"project_id": "p", "id": "evt_2", "livemode": False, "data": "{}",
         "api_version": None, "_synced_at": synced, "type": "customer.created"},
    ]
    schema = arrow_schema(table_columns("events"))
    table = rows_to_arrow(rows, schema)
    assert table.column_names == [*table_columns("events"), "_dlt_id"]
    assert table.schema.field("created").type == pa.int64()
    assert table.schema.field("_synced_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("created").to_pylist() == [1_780_000_000, None]
    assert table.column("data").to_pylist() == ['{"id":"evt_1"}', "{}"]
    assert table.column("_synced_at").to_pylist() == [synced, synced]
    first = table.column("_dlt_id").to_pylist()
    second = rows_to_arrow(rows, schema).column("_dlt_id").to_pylist()
    assert len(set(first + second)) == 4
