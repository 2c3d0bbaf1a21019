"""`stripe-warehouse warehouse`: show or choose the database that holds the warehouse.

DuckDB (the state directory's `warehouse.duckdb`) is the default; a PostgreSQL server is the
target for more than one machine (stripe_warehouse.warehouse_target). The server's URL may
hold a password, so it is read from an environment variable the user names, never from argv.
"""

from __future__ import annotations

import argparse

from commands.env_secrets import read_env_secret
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.warehouse_target import WarehouseTarget

DSN_SHAPE = "postgresql://user:password@host:port/database"


def add_warehouse_commands(commands: argparse._SubParsersAction) -> None:
    warehouse = commands.add_parser(
        "warehouse", allow_abbrev=False,
        help="show or choose the database holding the warehouse (DuckDB file or PostgreSQL)")
    choice = warehouse.add_mutually_exclusive_group()
    choice.add_argument("--postgres-dsn-env", metavar="VAR",
                        help=f"environment variable holding the server's URL ({DSN_SHAPE}); "
                             "the server is checked before it is saved")
    choice.add_argument("--duckdb", action="store_true",
                        help="the embedded DuckDB file in the state directory (the default)")
    warehouse.set_defaults(run=cmd_warehouse)


def cmd_warehouse(args: argparse.Namespace) -> None:
    state = args.state
    before = state.target
    if args.duckdb or args.postgres_dsn_env:
        chosen = WarehouseTarget() if args.duckdb else _reachable_server(args.postgres_dsn_env)
        chosen.save(state.create().root)
        if chosen != before:
            # nothing is copied between databases: the new one fills from Stripe
            print(f"warehouse was: {describe(before)}; the data there stays where it is: run "
                  "`stripe-warehouse sync --all --backfill` to fill the new warehouse")
    print(f"warehouse: {describe(state.target)}")


def describe(target: WarehouseTarget) -> str:
    """The target in one line, without the password."""
    return target.describe()


def _reachable_server(variable: str) -> WarehouseTarget:
    """The PostgreSQL target named by the environment variable, once a connection works."""
    dsn = read_env_secret(variable, f"server's URL ({DSN_SHAPE})")
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise WarehouseError(f"{variable} is not a PostgreSQL URL: write it as {DSN_SHAPE}")
    target = WarehouseTarget.postgres(dsn)
    try:
        target.fetch_all("select 1")
    except Exception as error:  # psycopg2's errors: the server's own one-line reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WarehouseError(f"cannot use the PostgreSQL server {describe(target)} ({reason}): "
                             f"check the URL in {variable} and that the server accepts "
                             "connections") from None
    return target
