"""``python -m commands.serve --home DIR --port N [--realtime]``: the web service with every
knob (`stripe-warehouse serve` has the common ones); tests and benchmarks start it this way.

Real-time refreshes are recorded in the state directory's Dagster instance: the service
cannot import Dagster's layer, so this entry point hands it the recorder.
"""

import argparse

from orchestration.webhook_events import report_webhook_refresh
from service.app import run
from service.server import MAX_CONNECTIONS, READ_SECONDS, ServerLimits


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m commands.serve")
    parser.add_argument("--home", default=None, help="state directory (STRIPE_WAREHOUSE_HOME)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--realtime", action="store_true",
                        help="apply events and refresh the marts as they arrive")
    parser.add_argument("--api-base", default=None, help="Stripe API address (STRIPE_API_BASE)")
    parser.add_argument("--read-timeout", type=float, default=READ_SECONDS,
                        help="seconds a request may take to arrive in full")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS,
                        help="connections open at once; more are closed on arrival")
    args = parser.parse_args()
    run(args.home, args.host, args.port, args.realtime, args.api_base,
        ServerLimits(args.read_timeout, args.max_connections),
        on_refreshed=report_webhook_refresh)


if __name__ == "__main__":
    main()
