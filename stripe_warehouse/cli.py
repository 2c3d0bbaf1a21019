"""`stripe-warehouse`: connect Stripe accounts, sync them, generate keys, show status."""

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from stripe_warehouse.cli_serving import add_serving_commands
from stripe_warehouse.crypto import generate_key, load_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import TIERS, ConnectionStore, validate_project_id


def _read_env_secret(var: str, what: str) -> str:
    if var.startswith(("sk_", "rk_", "whsec_")):
        raise WarehouseError(
            "pass the name of an environment variable holding the secret, not the secret: "
            "secrets on the command line end up in shell history"
        )
    value = os.environ.get(var, "").strip()
    if not value:
        raise WarehouseError(f"environment variable {var} is unset or empty: export the {what}")
    return value


def cmd_connect(args: argparse.Namespace) -> None:
    """Check the key against Stripe, then store the connection encrypted."""
    from pipelines.client import StripeReader

    validate_project_id(args.project)
    load_key()  # a missing encryption key fails before any network call
    api_key = _read_env_secret(args.api_key_env, "Stripe API key")
    webhook_secret = (
        _read_env_secret(args.webhook_secret_env, "webhook signing secret")
        if args.webhook_secret_env else None
    )
    with StripeReader(api_key, project_id=args.project) as reader:
        account = reader.account()
    store = ConnectionStore()
    connection = store.connect(args.project, args.tier, api_key, webhook_secret)
    print(f"connected {args.project} (Stripe account {account.get('id', '?')}, "
          f"{connection.mode} mode, tier {connection.tier})")
    if connection.mode == "test":
        from pipelines.load import test_mode_warning

        print(f"warning: {test_mode_warning(args.project)}", file=sys.stderr)


def _progress_printer() -> Callable[[dict[str, int]], None]:
    last_total = [0]

    def show(counts: dict[str, int]) -> None:
        total = sum(counts.values())
        if total - last_total[0] >= 1000:  # one line per thousand objects, not per page
            last_total[0] = total
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
            print(f"  read {total:,} objects ({parts})", file=sys.stderr, flush=True)

    return show


def cmd_sync(args: argparse.Namespace) -> None:
    """Run a backfill or a refresh of one project."""
    from pipelines.load import sync_project

    kind = "backfill" if args.backfill else "refresh"
    store = ConnectionStore()
    store.get(args.project)  # unknown project: fail before any work
    result = sync_project(store, args.project, kind, progress=_progress_printer())
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.summary())
    if not args.no_transform:
        from stripe_warehouse.transform import build

        build(home=store.home)
        print("marts built and published")


def cmd_keygen(args: argparse.Namespace) -> None:
    """Print a new encryption key for STRIPE_WAREHOUSE_SECRET_KEY."""
    print(generate_key())


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_status(args: argparse.Namespace) -> None:
    """Print a table of connections."""
    connections = ConnectionStore().list()
    if not connections:
        print("no projects connected: run `stripe-warehouse connect PROJECT --tier TIER "
              "--api-key-env VAR`")
        return
    header = ("project", "tier", "status", "mode", "last sync", "kind")
    rows = [
        (c.project_id, c.tier, c.status, c.mode, _when(c.last_sync_at), c.last_sync_kind or "-")
        for c in connections
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def cmd_demo(args: argparse.Namespace) -> None:
    """Hook for the demo (stripe_warehouse/demo.py, owned by the lead)."""
    from stripe_warehouse.demo import run_demo

    home = Path(os.environ.get("STRIPE_WAREHOUSE_HOME", "./data"))
    if args.customers is None:
        run_demo(home)
    else:
        run_demo(home, customers=args.customers)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="stripe-warehouse", description="Revenue analytics warehouse for Stripe accounts.",
        allow_abbrev=False,  # `--api-key` must not silently mean `--api-key-env`
    )
    commands = parser.add_subparsers(dest="command", required=True)

    connect = commands.add_parser(
        "connect", help="connect a Stripe account as a project", allow_abbrev=False)
    connect.add_argument("project")
    connect.add_argument("--tier", required=True, choices=TIERS)
    connect.add_argument("--api-key-env", required=True, metavar="VAR",
                         help="environment variable holding the Stripe key (never on argv)")
    connect.add_argument("--webhook-secret-env", metavar="VAR")
    connect.set_defaults(run=cmd_connect)

    sync = commands.add_parser(
        "sync", help="read a project's Stripe data into the warehouse", allow_abbrev=False)
    sync.add_argument("project")
    kind = sync.add_mutually_exclusive_group(required=True)
    kind.add_argument("--backfill", action="store_true", help="90 days and all live objects")
    kind.add_argument("--refresh", action="store_true", help="7 days plus changes since last")
    sync.add_argument("--no-transform", action="store_true",
                      help="load the raw tables only; skip the dbt build of the marts")
    sync.set_defaults(run=cmd_sync)

    commands.add_parser("keygen", help="print a new STRIPE_WAREHOUSE_SECRET_KEY").set_defaults(
        run=cmd_keygen)
    commands.add_parser("status", help="list connected projects").set_defaults(run=cmd_status)

    demo = commands.add_parser("demo", help="run the demo on a sandbox company")
    demo.add_argument("--customers", type=int)
    demo.set_defaults(run=cmd_demo)
    add_serving_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and exit 2."""
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except WarehouseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted: run the command again; loaded data is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
