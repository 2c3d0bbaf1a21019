"""``python -m service --home DIR --port N [--realtime]``: the web service, until the CLI has it."""

import argparse

from service.app import run


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m service")
    parser.add_argument("--home", default=None, help="state directory (STRIPE_WAREHOUSE_HOME)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--realtime", action="store_true",
                        help="apply events and refresh the marts as they arrive")
    parser.add_argument("--api-base", default=None, help="Stripe API address (STRIPE_API_BASE)")
    args = parser.parse_args()
    run(args.home, args.host, args.port, args.realtime, args.api_base)


if __name__ == "__main__":
    main()
