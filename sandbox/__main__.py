"""`python -m sandbox serve ...`: generate a company and serve it until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from sandbox.company import CompanyConfig, generate_company
from sandbox.limits import RATE_LIMIT_PRESETS
from sandbox.server import SandboxServer


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="Stripe-compatible read-only sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="generate a company and serve it over HTTP")
    serve.add_argument("--customers", type=int, default=2000)
    serve.add_argument("--years", type=int, default=3)
    serve.add_argument("--seed", type=int, default=42)
    serve.add_argument("--now", type=int, default=None, help="unix seconds (default: now)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    serve.add_argument("--api-key", default="sk_test_demo")
    serve.add_argument("--latency-ms", type=float, default=0)
    serve.add_argument("--rate-limit", choices=sorted(RATE_LIMIT_PRESETS), default="none")
    serve.add_argument("--failure-rate", type=float, default=0.0)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Generate, serve, print the URL, and block until SIGINT/SIGTERM."""
    started = time.monotonic()
    company = generate_company(CompanyConfig(
        customers=args.customers, years=args.years, seed=args.seed, now=args.now,
        livemode=args.api_key.startswith(("sk_live_", "rk_live_"))))
    global_rate, endpoint_rate = RATE_LIMIT_PRESETS[args.rate_limit]
    server = SandboxServer(accounts={args.api_key: company}, host=args.host, port=args.port,
                           latency_ms=args.latency_ms, rate_limit_global=global_rate,
                           rate_limit_per_endpoint=endpoint_rate, failure_rate=args.failure_rate,
                           seed=args.seed)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port} ({exc.strerror}): pick another --port",
              file=sys.stderr)
        return 2
    print(f"generated {args.customers} customers in {time.monotonic() - started:.1f}s",
          file=sys.stderr)
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
