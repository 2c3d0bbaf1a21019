"""Stripe Connect OAuth, emulated: `/oauth/authorize`, `/oauth/token`, `/oauth/deauthorize`.

The authorize page approves at once (a test user who always clicks "Connect") and redirects
to `redirect_uri` with a one-time code. The token exchange mints an access token that the
sandbox then serves as an API key over the connected company; deauthorizing removes it, so
the token answers 401 from then on. These POSTs are the only writes the sandbox accepts.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

CODE_TTL_SECONDS = 300  # Stripe's authorization codes expire after five minutes

Answer = tuple[int, dict[str, Any], dict[str, str], str]


@dataclass
class OAuthConfig:
    """The platform (client id, secret key) and the company its test user connects."""

    client_id: str
    platform_key: str
    company: Any
    clock: Callable[[], float] = time.time


def _error(status: int, error: str, description: str, template: str) -> Answer:
    """Stripe's OAuth error shape: `error` is a code string, not an object."""
    return status, {"error": error, "error_description": description}, {}, template


class OAuthEmulator:
    """The OAuth endpoints of one sandbox; `register(token)` makes a token an API key."""

    def __init__(self, config: OAuthConfig, register: Callable[[str, Any], None],
                 unregister: Callable[[str], None]) -> None:
        self.config = config
        self._register, self._unregister = register, unregister
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[float, str]] = {}  # code -> (expires, scope)
        self.tokens: dict[str, str] = {}  # access token -> stripe_user_id
        self.deauthorized: list[str] = []

    @property
    def stripe_user_id(self) -> str:
        """The connected account's id."""
        return self.config.company.account_id

    def answer(self, method: str, path: str, query: str, body: bytes,
               platform_key: str | None) -> Answer:
        """Status, JSON body, headers and template for an `/oauth/...` request."""
        if path == "/oauth/authorize" and method == "GET":
            return self.authorize(dict(parse_qsl(query)))
        params = dict(parse_qsl(body.decode("utf-8", "replace")))
        if path not in ("/oauth/token", "/oauth/deauthorize") or method != "POST":
            return _error(404, "invalid_request", f"Unrecognized request URL ({method}: {path}).",
                          path)
        if platform_key != self.config.platform_key:
            denied = {"type": "invalid_request_error",
                      "message": "Invalid API Key provided for the platform."}
            return 401, {"error": denied}, {}, path
        if path == "/oauth/token":
            return self.token(params)
        return self.deauthorize(params)

    def authorize(self, params: dict[str, str]) -> Answer:
        """Approve at once: 302 to `redirect_uri?code=...&state=...`."""
        template = "/oauth/authorize"
        if params.get("client_id") != self.config.client_id:
            return _error(400, "invalid_client", "No such application: "
                          f"'{params.get('client_id')}'", template)
        if params.get("response_type") != "code":
            return _error(400, "invalid_request", "response_type must be 'code'", template)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            return _error(400, "invalid_redirect_uri", "redirect_uri is required", template)
        code = "ac_" + secrets.token_hex(12)
        with self._lock:
            self._codes[code] = (self.config.clock() + CODE_TTL_SECONDS,
                                 params.get("scope", "read_only"))
        query = {"code": code, "scope": params.get("scope", "read_only")}
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(query)}"
        return 302, {"redirect": location}, {"Location": location}, template

    def token(self, params: dict[str, str]) -> Answer:
        """Exchange a one-time code for an access token bound to the connected company."""
        template = "/oauth/token"
        if params.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type",
                          f"Unsupported grant type: {params.get('grant_type')}", template)
        with self._lock:
            expires, scope = self._codes.pop(params.get("code", ""), (0.0, ""))
        if expires < self.config.clock():
            return _error(400, "invalid_grant", "Authorization code does not exist or has "
                          f"expired: {params.get('code')}", template)
        livemode = bool(self.config.company.livemode)
        mode = "live" if livemode else "test"
        access_token = f"sk_{mode}_oauth{secrets.token_hex(16)}"
        with self._lock:
            self.tokens[access_token] = self.stripe_user_id
        self._register(access_token, self.config.company)
        return 200, {
            "access_token": access_token, "livemode": livemode, "scope": scope,
            "refresh_token": f"rt_{secrets.token_hex(16)}", "token_type": "bearer",
            "stripe_user_id": self.stripe_user_id,
            "stripe_publishable_key": f"pk_{mode}_{secrets.token_hex(8)}",
        }, {}, template

    def deauthorize(self, params: dict[str, str]) -> Answer:
        """Revoke every token of `stripe_user_id`: they answer 401 from now on."""
        template = "/oauth/deauthorize"
        if params.get("client_id") != self.config.client_id:
            return _error(400, "invalid_client", "No such application: "
                          f"'{params.get('client_id')}'", template)
        user = params.get("stripe_user_id", "")
        with self._lock:
            revoked = [t for t, u in self.tokens.items() if u == user]
            for token in revoked:
                del self.tokens[token]
        if not revoked:
            return _error(400, "invalid_client", f"No application is connected to '{user}'",
                          template)
        for token in revoked:
            self._unregister(token)
        self.deauthorized.append(user)
        return 200, {"stripe_user_id": user}, {}, template
