"""`stripe-warehouse alerts ...`: a project's alert rules and channels, a test message, a run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from commands.env_secrets import read_env_secret
from stripe_warehouse.alert_rules import RULE_KINDS
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore

PROJECT_HELP = "the project's id (see `stripe-warehouse status`)"


def _store(args: argparse.Namespace) -> ConnectionStore:
    return ConnectionStore(args.state.create().root)


def _secret_from_env(variable: str | None, what: str) -> str | None:
    """A channel secret from the environment variable the user named, if one was named."""
    return None if variable is None else read_env_secret(variable, what)


def cmd_alerts_add(args: argparse.Namespace) -> None:
    rule = _store(args).add_alert_rule(args.project, args.rule, args.threshold, args.period)
    print(f"added alert rule {rule.id} to {args.project}: {rule.describe()}")


def cmd_alerts_channel(args: argparse.Namespace) -> None:
    settings: dict[str, Any]
    if args.kind == "email":
        given = {"--smtp-host": args.smtp_host, "--from": args.sender, "--to": args.to}
        missing = [flag for flag, value in given.items() if not value]
        if missing:
            raise WarehouseError(f"an email channel needs {', '.join(missing)}: e.g. "
                                 "--smtp-host smtp.example.com --from alerts@example.com "
                                 "--to team@example.com")
        settings = {"host": args.smtp_host, "port": args.smtp_port, "tls": args.tls,
                    "user": args.smtp_user, "from": args.sender, "to": args.to,
                    "ca_file": args.smtp_ca_file}
        secret = _secret_from_env(args.smtp_password_env, "SMTP password")
    elif args.kind == "slack":
        settings = {}
        secret = _secret_from_env(args.url_env, "Slack incoming webhook URL")
        if secret is None:
            raise WarehouseError("a Slack channel needs --url-env VAR naming the variable that "
                                 "holds its incoming webhook URL")
    else:
        if not args.url or not args.url.startswith(("http://", "https://")):
            raise WarehouseError("a webhook channel needs --url https://... (the receiver)")
        settings = {"url": args.url}
        secret = _secret_from_env(args.signing_secret_env, "webhook signing secret")
        if secret is None:
            raise WarehouseError("a webhook channel needs --signing-secret-env VAR naming the "
                                 "variable that holds the secret its receiver verifies with")
    channel_id = _store(args).add_alert_channel(args.project, args.kind, settings, secret)
    print(f"added alert channel {channel_id} to {args.project} (its secret is stored encrypted)")


def cmd_alerts_list(args: argparse.Namespace) -> None:
    connection = _store(args).get(args.project)
    store = _store(args)
    rules = [{**r.stored(), "describe": r.describe()} for r in store.alert_rules(args.project)]
    channels = [{"id": c["id"], "kind": c["kind"], "settings": c["settings"],
                 "secret": "stored encrypted" if c["secret"] else None}
                for c in connection.alert_channels or []]
    if args.json:
        print(json.dumps({"project_id": args.project, "rules": rules, "channels": channels},
                         indent=2))
        return
    for rule in rules:
        print(f"rule    {rule['id']}: {rule['describe']}")
    for channel in channels:
        where = channel["settings"].get("to") or channel["settings"].get("url") or "(URL secret)"
        print(f"channel {channel['id']}: {channel['kind']} -> {where}")
    if not rules and not channels:
        print(f"{args.project} has no alert rules: add one with "
              f"`stripe-warehouse alerts add {args.project} mrr_change 10%`")


def cmd_alerts_remove(args: argparse.Namespace) -> None:
    what = _store(args).remove_alert(args.project, args.id)
    print(f"removed alert {what} {args.id} from {args.project}")


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Send a test message to each of the project's channels; exit 1 if one failed."""
    from stripe_warehouse.alert_delivery import deliver

    store = _store(args)
    channels = store.get(args.project).alert_channels or []
    if not channels:
        raise WarehouseError(f"{args.project} has no alert channel: add one with "
                             f"`stripe-warehouse alerts channel {args.project} email ...`")
    failed = 0
    for channel in channels:
        message = f"[TEST] stripe-warehouse alerts for {args.project} reach this channel"
        result = deliver(channel, store.channel_secret(args.project, channel), message,
                         {"event": "test", "project_id": args.project, "message": message})
        print(f"{channel['id']}: delivered" if result.delivered
              else f"{channel['id']}: error: {result.error}")
        failed += not result.delivered
    return 1 if failed else 0


def cmd_alerts_run(args: argparse.Namespace) -> int:
    """Evaluate the rules on the published marts now and send what is new."""
    from stripe_warehouse.alerts import format_round, run_alerts

    round_ = run_alerts(args.state.create().root, projects=[args.project] if args.project else None)
    for line in format_round(round_):
        print(line)
    print(f"{len(round_.firing)} rule(s) firing, {len(round_.events)} alert(s) sent or "
          f"recorded, {len(round_.failed_deliveries)} delivery failure(s)")
    return 1 if round_.failed_deliveries else 0


def add_alert_commands(commands: Any) -> None:
    """The `alerts` command and its subcommands."""
    alerts = commands.add_parser("alerts", help="alert rules and channels per project")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)

    add = sub.add_parser("add", help="add an alert rule", description="Rules: " + "; ".join(
        f"{kind}: {meaning}" for kind, meaning in RULE_KINDS.items()))
    add.add_argument("project", help=PROJECT_HELP)
    add.add_argument("rule", help=f"one of {', '.join(RULE_KINDS)}")
    add.add_argument("threshold", nargs="?", help="e.g. 10%%, $500, 20, 3x (see the rules)")
    add.add_argument("--period", help="mrr_change only: day (default) or week")
    add.set_defaults(run=cmd_alerts_add)

    channel = sub.add_parser("channel", help="add a channel alerts are sent to")
    channel.add_argument("project", help=PROJECT_HELP)
    channel.add_argument("kind", choices=("email", "slack", "webhook"))
    channel.add_argument("--smtp-host")
    channel.add_argument("--smtp-port", type=int, default=587)
    channel.add_argument("--tls", choices=("starttls", "ssl", "none"), default="starttls")
    channel.add_argument("--smtp-user")
    channel.add_argument("--smtp-ca-file", metavar="PEM",
                         help="trust this CA for the SMTP server's certificate (a private relay)")
    channel.add_argument("--smtp-password-env", metavar="VAR",
                         help="environment variable holding the SMTP password")
    channel.add_argument("--from", dest="sender", metavar="ADDRESS")
    channel.add_argument("--to", metavar="ADDRESS")
    channel.add_argument("--url-env", metavar="VAR",
                         help="slack: environment variable holding the incoming webhook URL")
    channel.add_argument("--url", help="webhook: the receiver's address")
    channel.add_argument("--signing-secret-env", metavar="VAR",
                         help="webhook: environment variable holding the signing secret")
    channel.set_defaults(run=cmd_alerts_channel)

    listing = sub.add_parser("list", help="a project's rules and channels")
    listing.add_argument("project", help=PROJECT_HELP)
    listing.add_argument("--json", action="store_true", help="machine-readable output (JSON)")
    listing.set_defaults(run=cmd_alerts_list)

    remove = sub.add_parser("remove", help="remove a rule or a channel by id")
    remove.add_argument("project", help=PROJECT_HELP)
    remove.add_argument("id", help="the id `alerts list` shows, e.g. mrr_change-1")
    remove.set_defaults(run=cmd_alerts_remove)

    test = sub.add_parser("test", help="send a test message to each channel")
    test.add_argument("project", help=PROJECT_HELP)
    test.set_defaults(run=cmd_alerts_test)

    run = sub.add_parser("run", help="evaluate the rules on the published marts now")
    run.add_argument("project", nargs="?", help="only this project (default: all)")
    run.set_defaults(run=cmd_alerts_run)
