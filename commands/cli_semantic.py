"""`stripe-warehouse mf ...`: MetricFlow's CLI on this state directory's warehouse (dbt's
semantic layer: docs/semantic-layer.md). Everything after `mf` goes to MetricFlow as it is."""

from __future__ import annotations

import argparse
import subprocess

from stripe_warehouse.semantic_layer import mf_invocation


def add_semantic_commands(commands: argparse._SubParsersAction) -> None:
    mf = commands.add_parser(
        "mf", help="query the metrics with MetricFlow (e.g. `mf query --metrics mrr "
                   "--group-by metric_time__month`; `mf list metrics`)")
    mf.add_argument("mf_args", nargs=argparse.REMAINDER, metavar="...",
                    help="MetricFlow's own command and options")
    mf.set_defaults(run=cmd_mf)


def cmd_mf(args: argparse.Namespace) -> int:
    command, environment, directory = mf_invocation(args.mf_args, args.state)
    return subprocess.run(command, env=environment, cwd=directory, check=False).returncode
