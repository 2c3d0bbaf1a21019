"""`stripe-warehouse timezone PROJECT [NAME]`: the time zone a project's days and months follow.

An instant belongs to the calendar day of the project's reporting time zone (IANA name,
default UTC) it falls on, and "MRR at the end of day d" is read at local midnight ending d
(docs/metrics-spec.md "Days"). The zone is written on each load's `sync_runs` row: it takes
effect from the project's next sync on, whose build rewrites the project's days.
"""

from __future__ import annotations

import argparse

from stripe_warehouse.registry import Connection, ConnectionStore

PROJECT_HELP = "the project's id (see `stripe-warehouse status`)"


def describe_time_zone(connection: Connection, changed: bool) -> str:
    """One line: the project's zone and, after a change, when it takes effect."""
    line = f"{connection.project_id} reports its days and months in {connection.time_zone}"
    if changed:
        line += (f"; from its next sync on (`stripe-warehouse sync {connection.project_id}`), "
                 "whose build rewrites its days")
    return line


def cmd_time_zone(args: argparse.Namespace) -> None:
    store = ConnectionStore(args.state.create().root)
    if args.time_zone is None:
        connection, changed = store.get(args.project), False
    else:
        before = store.get(args.project).time_zone
        connection = store.set_reporting_time_zone(args.project, args.time_zone)
        changed = connection.time_zone != before
    print(describe_time_zone(connection, changed))


def add_time_zone_commands(commands: argparse._SubParsersAction) -> None:
    """Register `timezone` on the CLI's subcommands."""
    time_zone = commands.add_parser(
        "timezone", help="show or set the time zone a project's days and months follow")
    time_zone.add_argument("project", help=PROJECT_HELP)
    time_zone.add_argument(
        "time_zone", nargs="?", metavar="NAME",
        help="an IANA time zone name, e.g. Europe/Berlin or America/New_York (default UTC)")
    time_zone.set_defaults(run=cmd_time_zone)
