"""`stripe-warehouse`: connect Stripe accounts, sync them, check them, manage the key."""

import argparse
import datetime as dt
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import Sequence

from commands.cli_alerts import add_alert_commands
from commands.cli_segments import add_segment_commands
from commands.cli_semantic import add_semantic_commands
from commands.cli_serving import add_serving_commands, marts_built
from commands.cli_time_zone import add_time_zone_commands
from commands.cli_warehouse import add_warehouse_commands
from commands.env_secrets import read_env_secret
from stripe_warehouse.crypto import NEW_KEY_ENV, SECRET_KEY_ENV, generate_key, key_id, load_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import TIERS, ConnectionStore, validate_project_id
from stripe_warehouse.settings import use_private_file_modes
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import storage_error
from stripe_warehouse.tiers import validate_cron

PROJECT_HELP = "the project's id (see `stripe-warehouse status`)"
JSON_HELP = "machine-readable output (JSON)"
CRON_HELP = ('refresh on this five-field cron (UTC) instead of the tier\'s schedule, '
             'e.g. "*/15 * * * *"')


def _store(args: argparse.Namespace) -> ConnectionStore:
    """The registry of the state directory ``main`` resolved (created if missing)."""
    return ConnectionStore(args.state.create().root)


def cmd_connect(args: argparse.Namespace) -> None:
    """Check the key against Stripe, then store the connection encrypted; or start OAuth."""
    validate_project_id(args.project)
    cron = validate_cron(args.cron) if args.cron is not None else None
    if cron and args.oauth:
        raise WarehouseError("--cron cannot be given with --oauth (the web service completes "
                             "the connection): run `stripe-warehouse schedule "
                             f"{args.project} --cron ...` once it is connected")
    load_key(home=args.state.root)  # a missing encryption key fails before any network call
    _store(args).check_key()  # so does a key that cannot open the stored secrets
    if args.oauth:
        _connect_oauth(args)
        return
    from pipelines.client import StripeReader

    api_key = read_env_secret(args.api_key_env, "Stripe API key")
    _refuse_live_key_under_demo_key(api_key)
    webhook_secret = (
        read_env_secret(args.webhook_secret_env, "webhook signing secret")
        if args.webhook_secret_env else None
    )
    with StripeReader(api_key, project_id=args.project) as reader:
        account_id = reader.account().get("id")
    if not account_id:  # the project is bound to this id for life: never store without it
        raise WarehouseError("Stripe's answer to GET /v1/account has no account id: nothing "
                             "was stored; check STRIPE_API_BASE points at the Stripe API")
    store = _store(args)
    connection = store.connect(args.project, args.tier, api_key, webhook_secret,
                               account_id=account_id, cron=cron)
    print(f"connected {args.project} (Stripe account {account_id}, "
          f"{connection.mode} mode, tier {connection.tier})")
    if api_key.startswith("sk_"):
        print("warning: this is a full-access secret key; a read-only restricted key "
              "(rk_live_..., read permission on every object type) is safer", file=sys.stderr)
    if connection.mode == "test":
        from pipelines.load import test_mode_warning

        print(f"warning: {test_mode_warning(args.project)}", file=sys.stderr)


def _refuse_live_key_under_demo_key(api_key: str) -> None:
    # Without the variable, load_key fell back to the demo's key file, stored beside the data
    # it protects: good enough for sandbox keys, never for a live account's credentials.
    from stripe_warehouse.stripe_api import key_mode

    if SECRET_KEY_ENV not in os.environ and key_mode(api_key) == "live":
        raise WarehouseError(
            f"{SECRET_KEY_ENV} is not set: a live key is not stored under the demo's key file; "
            f"nothing was stored; export {SECRET_KEY_ENV} (from `stripe-warehouse keygen`) "
            "and use a state directory of your own (STRIPE_WAREHOUSE_HOME)")


def _connect_oauth(args: argparse.Namespace) -> None:
    from stripe_warehouse.oauth import OAuthSettings, authorize_url, ensure_not_active

    ensure_not_active(_store(args), args.project)
    settings = OAuthSettings.from_env(need_platform_key=False)
    print(authorize_url(args.project, args.tier, settings, home=args.state.root))
    print(f"open this link (valid 10 minutes) as the Stripe account owner; the web service "
          f"(`stripe-warehouse serve`) completes the connection at {settings.redirect_uri}",
          file=sys.stderr)


def cmd_schedule(args: argparse.Namespace) -> None:
    """Give a project its own refresh cron, or send it back to its tier's schedule."""
    from stripe_warehouse.tiers import REFRESH_CRON_BY_TIER, next_scheduled_sync

    cron = None if args.tier_schedule else validate_cron(args.cron)
    connection = _store(args).set_cron(args.project, cron)
    upcoming = next_scheduled_sync(connection.tier, dt.datetime.now(dt.UTC), connection.cron)
    if cron is not None:
        where = f"on its own cron {cron!r} (UTC)"
    elif connection.tier in REFRESH_CRON_BY_TIER:
        where = f"on the {connection.tier} tier's schedule"
    else:
        where = f"on demand (tier {connection.tier})"
    then = f"; next sync {upcoming:%Y-%m-%d %H:%M} UTC" if upcoming else ""
    print(f"{connection.project_id} refreshes {where}{then}; schedules run while the Dagster "
          "daemon runs (see `stripe-warehouse status`)")


def cmd_disconnect(args: argparse.Namespace) -> None:
    """Stop syncing a project, delete its token, optionally deauthorize the OAuth app."""
    from pipelines.revocation import disconnect_project

    connection = disconnect_project(_store(args), args.project, args.deauthorize)
    done = "; access deauthorized on Stripe" if args.deauthorize else ""
    print(f"disconnected {connection.project_id}: syncs stopped, credentials deleted{done}; "
          f"loaded data is kept (tier {connection.tier} retention applies)")


def cmd_purge(args: argparse.Namespace) -> None:
    """Delete a disconnected project's rows everywhere and release its account binding."""
    from stripe_warehouse.purge import purge_project

    result = purge_project(_store(args), args.project)
    print(result.summary())


def cmd_rotate_key(args: argparse.Namespace) -> None:
    """Re-encrypt every stored secret under a new key, atomically."""
    store = _store(args)
    encoded = os.environ.get(NEW_KEY_ENV, "").strip()
    written = None
    if not encoded:
        encoded = generate_key()
        written = store.home / "secret.key.new"
        # Saved before anything is re-encrypted under it, so it cannot be lost; O_EXCL: never
        # overwrite the key of an earlier rotation that may already be in use.
        try:
            fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise WarehouseError(
                f"{written} exists from an earlier rotation: export its content as "
                f"{NEW_KEY_ENV} and run rotate-key again (or delete it if unused)"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(encoded + "\n")
    new_key = load_key(encoded, NEW_KEY_ENV)
    count = store.rotate_key(new_key)
    where = f"the key in {written} (0600; delete it once saved)" if written else NEW_KEY_ENV
    print(f"re-encrypted {count} secrets under key {key_id(new_key)}. Now set "
          f"STRIPE_WAREHOUSE_SECRET_KEY to {where}, and the previous key in "
          "STRIPE_WAREHOUSE_OLD_SECRET_KEYS until every process has restarted")


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute a project's figures from the Stripe API; exit 1 if one differs from the marts."""
    from commands.verify import run_verify

    report, code = run_verify(args.state.existing().root, args.project, args.date, args.explain)
    print(report)
    return code


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check one project end to end; exit 1 if a check fails."""
    from commands.doctor import any_failed, checks_json, format_checks, run_doctor

    checks = run_doctor(args.project, args.state.existing().root)
    print(checks_json(args.project, checks) if args.json else format_checks(checks))
    return 1 if any_failed(checks) else 0


def cmd_sync(args: argparse.Namespace) -> int | None:
    """Run a backfill or a refresh of one project as a Dagster run in this process (recorded
    in the state directory's Dagster instance, shown by `stripe-warehouse ui`), showing its
    phases as they go."""
    from orchestration.in_process import run_sync_job
    from orchestration.observer import RunObserver
    from stripe_warehouse.demo_project import refuse_demo_sync
    from stripe_warehouse.progress import progress_for

    kind = "backfill" if args.backfill else "refresh"
    if args.all or args.project is None:
        return _sync_batch(args, kind)
    if args.tier or args.workers is not None:
        raise WarehouseError("--tier and --workers apply to `sync --all` only: drop them to "
                             f"sync project {args.project} alone")
    store = _store(args)
    refuse_demo_sync(store, args.project)  # unknown or demo project: fail before any work
    observer = RunObserver()
    try:
        # the display owns the terminal until it closes: the summary is printed after it
        with progress_for(sys.stderr, sys.stdout) as observer.progress:
            run_sync_job(store.home, args.project, kind, observer,
                         transform=not args.no_transform)
    finally:
        result = observer.sync
        if result is not None:  # loaded even if the build failed: say what was loaded
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(result.summary())
    if not args.no_transform:
        print(marts_built(args.state))


def _sync_batch(args: argparse.Namespace, kind: str) -> int:
    """`sync --all`: every active project (of ``--tier``) as one batched run; one line per
    project as it finishes, then the cycle's total; exit 1 if a project failed."""
    import time

    from commands.batch_report import BatchReport
    from orchestration.batch_refresh import run_batch_job
    from pipelines.batch import DEFAULT_BATCH_WORKERS, batch_projects, validate_workers

    if not args.all:
        raise WarehouseError("name a project to sync, or pass --all for every active project")
    if args.project is not None:
        raise WarehouseError(f"--all syncs every active project: drop {args.project!r}, or "
                             "drop --all to sync that project alone")
    workers = validate_workers(DEFAULT_BATCH_WORKERS if args.workers is None else args.workers)
    store = _store(args)
    projects = batch_projects(store, args.tier)
    if not projects:
        tier = f" {args.tier}" if args.tier else ""
        print(f"no active{tier} project to sync")
        return 0
    report = BatchReport(sys.stdout, time.monotonic())
    ok = run_batch_job(store.home, {"projects": projects, "kind": kind, "workers": workers},
                       report.observer, transform=not args.no_transform,
                       on_outcome=report.project)
    print(report.total())
    return 0 if ok else 1


def cmd_keygen(args: argparse.Namespace) -> None:
    """Print a new encryption key for STRIPE_WAREHOUSE_SECRET_KEY."""
    print(generate_key())


def cmd_status(args: argparse.Namespace) -> int:
    """Print every project: tier, mode, state, last sync and window, next sync, webhooks."""
    from commands.scheduler_status import format_scheduler, scheduler_state
    from commands.status import (
        damaged_files,
        format_statuses,
        project_statuses,
        statuses_json,
    )

    home = args.state.existing().root  # read-only: never creates ./data wherever it runs
    statuses = project_statuses(home)
    scheduler = scheduler_state(home)
    problems = damaged_files(home)
    if args.json:
        print(statuses_json(home, statuses, scheduler))
    elif not statuses:
        print("no projects connected: run `stripe-warehouse connect PROJECT --tier TIER "
              "--api-key-env VAR` (or `--oauth`)")
    else:
        print(format_statuses(statuses))
        print(format_scheduler(scheduler))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> None:
    """Hook for the demo (commands/demo.py, owned by the lead)."""
    from commands.demo import run_demo

    home = args.state.root
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
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {importlib.metadata.version('stripe-warehouse')}")
    commands = parser.add_subparsers(dest="command", required=True)

    connect = commands.add_parser(
        "connect", help="connect a Stripe account as a project", allow_abbrev=False)
    connect.add_argument("project", help="a new project id: 1-40 of a-z, 0-9 and _")
    connect.add_argument("--tier", required=True, choices=TIERS,
                         help="starter: on demand, 3 days kept; basic: on demand, 30 days; "
                              "pro: every 3 h; scale: every 30 min")
    credentials = connect.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--api-key-env", metavar="VAR",
                             help="environment variable holding the Stripe key (never on argv)")
    credentials.add_argument("--oauth", action="store_true",
                             help="print the Stripe Connect link that grants read-only access")
    connect.add_argument("--webhook-secret-env", metavar="VAR",
                         help="environment variable holding the endpoint's webhook signing "
                              "secret (whsec_...), to receive changes between syncs")
    connect.add_argument("--cron", metavar="EXPR", help=CRON_HELP)
    connect.set_defaults(run=cmd_connect)

    schedule = commands.add_parser(
        "schedule", help="give a project its own refresh cron instead of its tier's schedule")
    schedule.add_argument("project", help=PROJECT_HELP)
    cadence = schedule.add_mutually_exclusive_group(required=True)
    cadence.add_argument("--cron", metavar="EXPR", help=CRON_HELP)
    cadence.add_argument("--tier-schedule", action="store_true",
                         help="drop the project's own cron: refresh on its tier's schedule")
    schedule.set_defaults(run=cmd_schedule)

    sync = commands.add_parser(
        "sync", help="read a project's Stripe data into the warehouse", allow_abbrev=False)
    sync.add_argument("project", nargs="?", help=PROJECT_HELP)
    sync.add_argument("--all", action="store_true",
                      help="every active project as one batch: concurrent reads, one dbt build")
    sync.add_argument("--tier", choices=TIERS, help="with --all: only this tier's projects")
    sync.add_argument("--workers", type=int, metavar="N",
                      help="with --all: projects read at once (default 4)")
    kind = sync.add_mutually_exclusive_group(required=True)
    kind.add_argument("--backfill", action="store_true", help="90 days and all live objects")
    kind.add_argument("--refresh", action="store_true", help="7 days plus changes since last")
    sync.add_argument("--no-transform", action="store_true",
                      help="load the raw tables only; skip the dbt build of the marts")
    sync.set_defaults(run=cmd_sync)

    commands.add_parser("keygen", help="print a new STRIPE_WAREHOUSE_SECRET_KEY").set_defaults(
        run=cmd_keygen)
    status = commands.add_parser(
        "status", help="list connected projects and whether the scheduler runs")
    status.add_argument("--json", action="store_true", help=JSON_HELP)
    status.set_defaults(run=cmd_status)

    disconnect = commands.add_parser(
        "disconnect", help="stop syncing a project and delete its credentials")
    disconnect.add_argument("project", help=PROJECT_HELP)
    disconnect.add_argument("--deauthorize", action="store_true",
                            help="also revoke the OAuth app's access on Stripe")
    disconnect.set_defaults(run=cmd_disconnect)

    purge = commands.add_parser(
        "purge", help="delete a disconnected project's data everywhere and its account binding")
    purge.add_argument("project", help=PROJECT_HELP)
    purge.set_defaults(run=cmd_purge)

    doctor = commands.add_parser("doctor", help="check a project's connection, data and webhooks")
    doctor.add_argument("project", help=PROJECT_HELP)
    doctor.add_argument("--json", action="store_true", help=JSON_HELP)
    doctor.set_defaults(run=cmd_doctor)

    verify = commands.add_parser(
        "verify", help="recompute a project's figures from the Stripe API and compare the marts")
    verify.add_argument("project", help=PROJECT_HELP)
    verify.add_argument("--date", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="last day of the revenue and failed-payment windows")
    verify.add_argument("--explain", action="store_true",
                        help="list the objects behind each difference")
    verify.set_defaults(run=cmd_verify)

    commands.add_parser(
        "rotate-key", help=f"re-encrypt stored secrets under {NEW_KEY_ENV} (or a new key)"
    ).set_defaults(run=cmd_rotate_key)

    demo = commands.add_parser("demo", help="run the demo on a sandbox company")
    demo.add_argument("--customers", type=int, metavar="N",
                      help="size of the sandbox company (default 2000)")
    demo.set_defaults(run=cmd_demo)
    add_serving_commands(commands)
    add_alert_commands(commands)
    add_segment_commands(commands)
    add_time_zone_commands(commands)
    add_warehouse_commands(commands)
    add_semantic_commands(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what systemd, Docker and `timeout` send), raised where Ctrl-C's interrupt would be.

    Every command's clean-up for Ctrl-C (stopping the UI's process group, the docs server, a
    sync's worker pool) then runs for SIGTERM too; without it the process died at once and left
    `dagster dev` and its children running.
    """


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and exit 2."""
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    # dlt logs every failure with its traceback; the CLI reports it in one line instead.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    use_private_file_modes()
    args = build_parser().parse_args(argv)
    args.state = StateDir.resolve()  # the one place the CLI learns where the state lives
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = args.run(args)
    except WarehouseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print("error: stopped (SIGTERM): run the command again; loaded data is kept",
              file=sys.stderr)
        return 128 + signal.SIGTERM
    except OSError as error:
        disk = storage_error([error], f"`stripe-warehouse {args.command}`")
        if disk is None:
            raise
        print(f"error: {disk}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted: run the command again; loaded data is kept", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
