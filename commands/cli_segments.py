"""`stripe-warehouse segments PROJECT`: the metadata keys a project keeps for segments.

Metadata is dropped by the privacy allowlist; a key named here is the one exception: its values
(the user's own labels, e.g. a customer's `tier`) are kept from the next sync on, for
`stripe-warehouse metrics PROJECT --by customer.tier`. The user decides that a named key holds
no personal data; every other key stays out.
"""

from __future__ import annotations

import argparse

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import Connection, ConnectionStore

PROJECT_HELP = "the project's id (see `stripe-warehouse status`)"


def describe_segment_keys(connection: Connection) -> str:
    """One line: the keys kept and the segments they give."""
    named = connection.segment_keys or {}
    segments = [f"{kind}.{key}" for kind in ("customer", "subscription")
                for key in named.get(kind, ())]
    if not segments:
        return (f"{connection.project_id} keeps no metadata (segments: plan, price, "
                "billing_interval, currency, country)")
    return (f"{connection.project_id} keeps the metadata keys of segments "
            f"{', '.join(segments)} (only their values; every other key is dropped); "
            "run a sync to read them")


def cmd_segments(args: argparse.Namespace) -> None:
    store = ConnectionStore(args.state.create().root)
    if args.none and (args.customer_key or args.subscription_key):
        raise WarehouseError("--none keeps no metadata key: drop it, or drop the keys")
    if args.none:
        connection = store.set_segment_metadata_keys(args.project, [], [])
    elif args.customer_key or args.subscription_key:
        connection = store.set_segment_metadata_keys(
            args.project, args.customer_key or [], args.subscription_key or [])
    else:
        connection = store.get(args.project)
    print(describe_segment_keys(connection))


def add_segment_commands(commands: argparse._SubParsersAction) -> None:
    """Register `segments` on the CLI's subcommands."""
    segments = commands.add_parser(
        "segments", help="name the customer and subscription metadata keys kept for segments")
    segments.add_argument("project", help=PROJECT_HELP)
    segments.add_argument("--none", action="store_true", help="keep no metadata key")
    segments.add_argument(
        "--customer-key", action="append", metavar="KEY",
        help="a customer metadata key whose values are segment labels, not personal data "
             "(repeat for more; replaces the named keys)")
    segments.add_argument(
        "--subscription-key", action="append", metavar="KEY",
        help="a subscription metadata key whose values are segment labels (repeat for more)")
    segments.set_defaults(run=cmd_segments)
