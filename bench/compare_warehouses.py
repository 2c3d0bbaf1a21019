"""Compares the dbt-built tables of two warehouses row for row (a change must not move a number).

Usage: .venv/bin/python bench/compare_warehouses.py A/warehouse.duckdb B/warehouse.duckdb
         [--ignore COLUMN ...]
Every table and view of the staging, intermediate and marts schemas present in both files is
compared as a multiset of rows (`except all` both ways), leaving out the bookkeeping columns
`built_as_of` (the time of the build, not a figure) and `content_hash` (macros/restaging.sql),
which a staging model may have on one side only (a table model made incremental), and the
columns named by `--ignore` (e.g. a column a change adds: the rest is compared). Prints one
line per relation; exits 1 on any difference, or on a relation or column that only one side
has.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

SCHEMAS = ("staging", "intermediate", "marts")
# the build's own time, different between two builds of the same data, and the staged rows'
# change detection: bookkeeping, not figures
IGNORED_COLUMNS = {"built_as_of", "content_hash"}


def relations(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    """Columns of each relation of SCHEMAS in `catalog`, keyed by schema.name."""
    rows = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = ? and table_schema in ? order by ordinal_position",
        [catalog, list(SCHEMAS)],
    ).fetchall()
    found: dict[str, list[str]] = {}
    for schema, table, column in rows:
        found.setdefault(f"{schema}.{table}", []).append(column)
    return found


def differing_rows(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> tuple:
    """(rows in a, rows only in a, rows only in b) of `relation` over `columns`."""
    selected = ", ".join(f'"{c}"' for c in columns)
    only = ("select count(*) from (select {cols} from {x}.{rel} except all "
            "select {cols} from {y}.{rel})")
    return (
        con.execute(f"select count(*) from a.{relation}").fetchone()[0],
        con.execute(only.format(cols=selected, x="a", y="b", rel=relation)).fetchone()[0],
        con.execute(only.format(cols=selected, x="b", y="a", rel=relation)).fetchone()[0],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--ignore", nargs="+", default=[], metavar="COLUMN",
                        help="columns left out too (e.g. one only the newer code adds)")
    args = parser.parse_args()
    ignored = IGNORED_COLUMNS | set(args.ignore)
    con = duckdb.connect()
    con.execute(f"attach '{args.a}' as a (read_only)")
    con.execute(f"attach '{args.b}' as b (read_only)")
    in_a, in_b = relations(con, "a"), relations(con, "b")
    failed = False
    for relation in sorted(set(in_a) | set(in_b)):
        if relation not in in_a or relation not in in_b:
            print(f"{relation}: only in {'a' if relation in in_a else 'b'}")
            failed = True
            continue
        if set(in_a[relation]) - ignored != set(in_b[relation]) - ignored:
            differ = sorted((set(in_a[relation]) ^ set(in_b[relation])) - ignored)
            print(f"{relation}: columns differ: {differ}")
            failed = True
            continue
        columns = [c for c in in_a[relation] if c not in ignored]
        rows, only_a, only_b = differing_rows(con, relation, columns)
        same = only_a == 0 and only_b == 0
        failed = failed or not same
        verdict = "identical" if same else f"{only_a} only in a, {only_b} only in b"
        print(f"{relation}: {rows} rows, {verdict}")
    print("IDENTICAL" if not failed else "DIFFERENT")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
