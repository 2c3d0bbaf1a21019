"""A local HTTP server that answers like the Stripe API (GET only) for generated companies."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import traceback
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandbox.api import RESOURCES, ApiError, StripeApi
from sandbox.limits import FailureInjector, RateLimiter
from sandbox.oauth import OAuthConfig, OAuthEmulator
from sandbox.params import BadParam, parse_query


def _masked(key: str) -> str:
    """How Stripe echoes an API key in errors: prefix and last four characters."""
    prefix = "_".join(key.split("_")[:2]) if key.count("_") >= 2 else key[:3]
    return f"{prefix}_****{key[-4:]}" if len(key) > 8 else f"{prefix}_****"


class SandboxServer:
    """Serves each account's company on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, accounts: dict[str, Any], host: str = "127.0.0.1", port: int = 0,
                 latency_ms: float = 0, rate_limit_global: float | None = None,
                 rate_limit_per_endpoint: float | None = None, failure_rate: float = 0.0,
                 seed: int = 0, permissions: dict[str, set[str]] | None = None,
                 oauth: OAuthConfig | None = None) -> None:
        self.accounts = {key: StripeApi(company) for key, company in accounts.items()}
        self.oauth = (OAuthEmulator(oauth, self._serve_token, self._drop_token)
                      if oauth else None)
        self.permissions = permissions or {}
        self.host, self.port = host, port
        self.latency_ms = latency_ms
        self.rate_limiter = RateLimiter(rate_limit_global, rate_limit_per_endpoint)
        self.failures = FailureInjector(failure_rate, seed)
        self.request_log: list[tuple[str, str, int]] = []
        self.refused_writes: list[tuple[str, str]] = []
        self._counts: Counter[str] = Counter()
        self._log_lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base address to give the Stripe SDK (`base_addresses={"api": url}`)."""
        return f"http://{self.host}:{self.port}"

    def counts(self) -> dict[str, int]:
        """Number of requests per endpoint template, e.g. {"/v1/customers": 3}."""
        with self._log_lock:
            return dict(self._counts)

    def start(self) -> SandboxServer:
        """Bind and serve in a background thread."""
        for api in self.accounts.values():
            api.index.warm(sorted(set(RESOURCES.values())))
        self._httpd = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True,
                                        name=f"stripe-sandbox-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def record(self, method: str, path: str, template: str, status: int) -> None:
        """Log one answered request."""
        with self._log_lock:
            self.request_log.append((method, path, status))
            self._counts[template] += 1

    def _serve_token(self, token: str, company: Any) -> None:
        # Reuse the company's API object: its listing indexes are costly to rebuild.
        api = next((a for a in self.accounts.values() if a.company is company), None)
        self.accounts[token] = api or StripeApi(company)

    def _drop_token(self, token: str) -> None:
        self.accounts.pop(token, None)

    def answer(self, method: str, raw_path: str, authorization: str | None, body: bytes = b""
               ) -> tuple[int, dict[str, Any], dict[str, str], str]:
        """Status, JSON body, extra headers and endpoint template for one request."""
        split = urlsplit(raw_path)
        path = split.path
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if self.oauth is not None and path.startswith("/oauth/"):
            return self.oauth.answer(method, path, split.query, body, _api_key(authorization))
        if method != "GET":
            with self._log_lock:
                self.refused_writes.append((method, path))
            return 405, ApiError(405, "invalid_request_error",
                                 f"The Stripe sandbox is read-only: {method} {path} is not "
                                 "allowed; only GET requests are served.").body(), {}, path
        key = _api_key(authorization)
        api = self.accounts.get(key or "")
        if api is None:
            message = ("You did not provide an API key." if not key else
                       f"Invalid API Key provided: {_masked(key)}")
            return 401, ApiError(401, "invalid_request_error", message).body(), {}, path
        route = api.route(path)
        if route is None:
            return 404, ApiError(404, "invalid_request_error",
                                 f"Unrecognized request URL (GET: {path}).").body(), {}, path
        allowed = self.permissions.get(key)
        if allowed is not None and route.family not in allowed:
            return 403, ApiError(403, "invalid_request_error",
                                 f"The provided key '{_masked(key)}' does not have the required "
                                 f"permissions for this endpoint ({route.family}).",
                                 "permission_denied").body(), {}, route.template
        retry = {"Stripe-Should-Retry": "true"}
        if not self.rate_limiter.allow(key, route.family):
            return 429, ApiError(429, "invalid_request_error",
                                 "Request rate limit exceeded. Retry after a short backoff.",
                                 "rate_limit").body(), {**retry, "Retry-After": "1"}, route.template
        if self.failures.should_fail():
            return 500, ApiError(500, "api_error",
                                 "An unexpected error occurred (injected by the sandbox); "
                                 "retry the request.").body(), retry, route.template
        try:
            body = route.handler(parse_query(split.query), *route.args)
        except BadParam as exc:
            error = ApiError(400, "invalid_request_error", str(exc), "parameter_invalid_integer"
                             if "integer" in str(exc) else "invalid_request", exc.param)
            return 400, error.body(), {}, route.template
        except ApiError as exc:
            return exc.status, exc.body(), {}, route.template
        return 200, body, {}, route.template


def _api_key(authorization: str | None) -> str | None:
    """The key from `Bearer <key>` or HTTP basic `<key>:`."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class StripeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's HTTP client expects
        timeout = 60  # idle keep-alive connections are closed after a minute

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            # Always read the body: OAuth POSTs need it, and a refused one must be drained
            # so the keep-alive connection stays usable.
            request_body = self.rfile.read(length) if length else b""
            try:
                status, body, headers, template = server.answer(
                    self.command, self.path, self.headers.get("Authorization"), request_body)
            except Exception as exc:  # a sandbox bug must still answer in Stripe's shape
                traceback.print_exc()
                status, headers, template = 500, {}, urlsplit(self.path).path
                body = ApiError(500, "api_error", f"Sandbox internal error: {exc!r}").body()
            payload = json.dumps(body).encode()
            # Logged before answering, so the log is complete once the client has its answer.
            server.record(self.command, urlsplit(self.path).path, template, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", f"req_sandbox{next(server._request_ids):012d}")
            self.send_header("Stripe-Version", "2025-09-30.clover")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Silence the per-request stderr log; `request_log` holds it."""

    return StripeHandler
