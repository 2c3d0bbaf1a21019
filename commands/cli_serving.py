"""CLI commands that build and serve the numbers: transform, metrics, export, report, docs, ui,
serve."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stripe_warehouse.errors import WarehouseError

if TYPE_CHECKING:
    from stripe_warehouse.state_dir import StateDir
    from stripe_warehouse.warehouse_target import WarehouseTarget

PROJECT_HELP = "the project's id (see `stripe-warehouse status`)"


def cmd_transform(args: argparse.Namespace) -> None:
    """dbt build of the marts, then publish the readers' copy: Dagster's ``transform`` job run
    in this process, so `stripe-warehouse ui` shows it (marts, metadata, dbt test results)."""
    from orchestration.in_process import run_transform_job

    observer = run_transform_job(args.state.create().root, full_refresh=args.full_refresh)
    for warning in observer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(marts_built(args.state))


def marts_built(state: StateDir) -> str:
    """The line saying a build ended: on PostgreSQL nothing is published (readers use the
    server's marts), on DuckDB the readers' copy is."""
    if state.target.is_postgres:
        return "marts built on the PostgreSQL server (BI tools read them there)"
    return "marts built and published"


def _parse_day(text: str | None, option: str = "--date") -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise WarehouseError(f"{option} {text!r} is not a date: use YYYY-MM-DD") from None


def _reader_db(home: Path) -> Path | WarehouseTarget:
    """The published read-only copy when there is one (never blocked by a running sync); the
    server of a PostgreSQL warehouse (stripe_warehouse.metrics.marts_source)."""
    from stripe_warehouse.metrics import marts_source

    return marts_source(home)


def cmd_metrics(args: argparse.Namespace) -> None:
    """The six published metrics of a day, each with its like-with-like change."""
    from stripe_warehouse.metrics import format_metrics, load_metrics, metrics_json

    if args.by:
        return metrics_by_segment(args)
    if args.metrics is not None:
        _print_selected_metrics(args)
        return
    # read-only: never creates ./data wherever it runs
    day, values = load_metrics(_reader_db(args.state.existing().root), args.project,
                               _parse_day(args.date))
    print(metrics_json(args.project, day, values) if args.json
          else format_metrics(args.project, day, values))


def metrics_by_segment(args: argparse.Namespace) -> None:
    """`metrics --by SEGMENT`: the month of `--date` split by the segment (read-only)."""
    from stripe_warehouse.segments import (
        format_segment_month,
        load_segment_month,
        segment_month_json,
    )

    if args.metrics is not None:
        raise WarehouseError("--by splits the month's MRR, movements and rates by a segment; "
                             "--metrics picks figures of the whole project: use one of them")
    result = load_segment_month(_reader_db(args.state.existing().root), args.project,
                                args.by, _parse_day(args.date))
    print(segment_month_json(args.project, result) if args.json
          else format_segment_month(args.project, result))


def _print_selected_metrics(args: argparse.Namespace) -> None:
    """`--metrics a,b,...`: the chosen daily metrics of the day, the SaaS ones of its month."""
    from stripe_warehouse.metric_selection import (
        format_selection,
        load_selection,
        parse_metric_names,
        selection_json,
    )

    names = parse_metric_names(args.metrics)
    selection = load_selection(_reader_db(args.state.existing().root), args.project, names,
                               _parse_day(args.date))
    print(selection_json(selection) if args.json else format_selection(selection))


def cmd_export(args: argparse.Namespace) -> None:
    """Write the project's marts, one CSV or Parquet file each, for spreadsheets."""
    from stripe_warehouse.export import export_marts, parse_export_format

    export_format = parse_export_format(args.format)
    first, last = _parse_day(args.from_day, "--from"), _parse_day(args.to_day, "--to")
    home = args.state.existing().root
    out = Path(args.out) if args.out else Path.cwd() / f"{args.project}-marts"
    for path, rows in export_marts(_reader_db(home), args.project, out, export_format,
                                   first, last):
        print(f"{path}  ({rows} rows)")


def cmd_report(args: argparse.Namespace) -> None:
    """Write the self-contained overview report."""
    from stripe_warehouse.report import write_report

    home = args.state.create().root
    out = Path(args.out) if args.out else home / "reports" / f"{args.project}.html"
    print(write_report(_reader_db(home), args.project, out))


def _wait_for_interrupt() -> None:
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


def cmd_docs(args: argparse.Namespace) -> None:
    """Generate and serve the dbt docs site on 127.0.0.1 until Ctrl-C."""
    from commands.docs_site import generate_docs, start_docs_server

    home = args.state.create().root
    generate_docs(home)
    server = start_docs_server(home, host=args.host, port=args.port)
    try:
        print(f"dbt docs at http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
        _wait_for_interrupt()
    finally:
        server.terminate()
        server.wait(timeout=10)


def cmd_ui(args: argparse.Namespace) -> None:
    """The Dagster UI and daemon (`dagster dev -w workspace.yaml`) for this state directory."""
    from orchestration.ui import run_ui

    code = run_ui(args.state.create().root, host=args.host, port=args.port)
    if code not in (0, 130):
        raise WarehouseError(f"dagster dev exited with code {code}: see its output above")


def cmd_serve(args: argparse.Namespace) -> None:
    """The web service: Stripe webhooks (and the OAuth callback) on --host:--port."""
    from orchestration.webhook_events import report_webhook_refresh
    from service.app import run

    run(home=args.state.create().root, host=args.host, port=args.port, realtime=args.realtime,
        on_refreshed=report_webhook_refresh)


def add_serving_commands(commands: argparse._SubParsersAction) -> None:
    """Register transform, metrics, export, report, docs, ui and serve on the CLI's subcommands."""
    transform = commands.add_parser("transform", help="build the marts with dbt and publish them")
    transform.add_argument("--full-refresh", action="store_true",
                           help="rebuild incremental models from scratch (after changing FX rates)")
    transform.set_defaults(run=cmd_transform)

    metrics = commands.add_parser("metrics", help="print the six published metrics of a day")
    metrics.add_argument("project", help=PROJECT_HELP)
    metrics.add_argument("--date", help="YYYY-MM-DD (default: the latest reported day)")
    metrics.add_argument("--compare", choices=["previous-month"], default="previous-month",
                         help="stocks: the same day a month earlier; flows: the last 30 "
                         "complete days against the 30 before")
    metrics.add_argument("--json", action="store_true", help="machine-readable output")
    metrics.add_argument(
        "--by", metavar="SEGMENT",
        help="split the month of --date by plan, price, billing_interval, currency, country "
             "or a named metadata key (customer.KEY, subscription.KEY): MRR, movements, rates")
    metrics.add_argument("--metrics", metavar="A,B,...",
                         help="only these metrics: any of the six daily ones, the monthly "
                         "SaaS ones (customer_churn_rate, net_revenue_retention_1m, arpa, ...: "
                         "those of the day's month) and the daily ones (daily_arpa, "
                         "customer_churn_rate_30d, ...: the day's, over the 30 days to it)")
    metrics.set_defaults(run=cmd_metrics)

    export = commands.add_parser("export", help="write a project's marts as CSV or Parquet files")
    export.add_argument("project", help=PROJECT_HELP)
    export.add_argument("--format", required=True, metavar="csv|parquet",
                        help="one file per mart in this format")
    export.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD",
                        help="first day (monthly marts: from its month)")
    export.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD", help="last day")
    export.add_argument("--out", help="directory to write (default: ./PROJECT-marts)")
    export.set_defaults(run=cmd_export)

    report = commands.add_parser("report", help="write the HTML overview report")
    report.add_argument("project", help=PROJECT_HELP)
    report.add_argument("--out", help="file to write (default: $STRIPE_WAREHOUSE_HOME/reports/)")
    report.set_defaults(run=cmd_report)

    for name, port, run, text in (
        ("docs", 8580, cmd_docs, "generate and serve the dbt docs site"),
        ("ui", 3000, cmd_ui, "start the Dagster UI and daemon"),
        ("serve", 8787, cmd_serve, "run the webhook (and OAuth callback) web service"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", default="127.0.0.1",
                             help="address to listen on (default 127.0.0.1: this machine only)")
        command.add_argument("--port", type=int, default=port,
                             help=f"port to listen on (default {port})")
        if name == "serve":
            command.add_argument("--realtime", action="store_true",
                                 help="apply events and refresh the marts within seconds")
        command.set_defaults(run=run)
