"""Stripe Connect OAuth (scope ``read_only``): authorize URL, signed ``state``, code exchange.

``state`` names the project and tier and is signed (HMAC-SHA256, key derived from
``STRIPE_WAREHOUSE_SECRET_KEY``), expiring and single-use (see ``oauth_states``), so a
callback cannot be forged or replayed to attach someone else's account to a project. The
access token is stored encrypted like an API key; the platform's own secret key is only read
from the environment.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import stripe
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stripe.oauth_error import OAuthError

from stripe_warehouse.crypto import load_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.oauth_states import callback_turn, consume_state
from stripe_warehouse.redaction import redact_stripe_sdk_logs
from stripe_warehouse.registry import (
    AccountMismatch,
    Connection,
    ConnectionStore,
    already_connected,
    validate_project_id,
    validate_tier,
)

CLIENT_ID_ENV = "STRIPE_CONNECT_CLIENT_ID"
CONNECT_BASE_ENV = "STRIPE_CONNECT_BASE"
PLATFORM_KEY_ENV = "STRIPE_PLATFORM_SECRET_KEY"
REDIRECT_URI_ENV = "STRIPE_CONNECT_REDIRECT_URI"
DEFAULT_CONNECT_BASE = "https://connect.stripe.com"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8787/oauth/callback"
SCOPE = "read_only"
STATE_TTL_SECONDS = 600
_STATE_KEY_INFO = b"stripe-warehouse oauth state v1"


@dataclass(frozen=True)
class OAuthSettings:
    """Where and as which platform to run the OAuth flow."""

    client_id: str
    connect_base: str
    redirect_uri: str
    platform_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, need_platform_key: bool = True) -> "OAuthSettings":
        """Read the settings; a one-line error naming the variable to export if one is missing."""
        client_id = os.environ.get(CLIENT_ID_ENV, "").strip()
        if not client_id.startswith("ca_"):
            raise WarehouseError(
                f"{CLIENT_ID_ENV} is unset or not a Connect client id: export the platform's "
                "ca_... id from the Stripe dashboard (Connect settings)"
            )
        platform_key = os.environ.get(PLATFORM_KEY_ENV, "").strip()
        if need_platform_key and not platform_key.startswith(("sk_", "rk_")):
            raise WarehouseError(
                f"{PLATFORM_KEY_ENV} is unset or not a Stripe secret key: export the "
                "platform account's secret key (it exchanges authorization codes)"
            )
        return cls(
            client_id=client_id,
            connect_base=(os.environ.get(CONNECT_BASE_ENV) or DEFAULT_CONNECT_BASE).rstrip("/"),
            redirect_uri=os.environ.get(REDIRECT_URI_ENV) or DEFAULT_REDIRECT_URI,
            platform_key=platform_key,
        )

    def client(self) -> stripe.StripeClient:
        """An SDK client for the Connect OAuth endpoints of this platform."""
        redact_stripe_sdk_logs()  # the token answer would otherwise be logged at DEBUG
        return stripe.StripeClient(
            self.platform_key or "sk_unused",  # authorize_url needs no key
            client_id=self.client_id,
            base_addresses={"connect": self.connect_base},
            max_network_retries=0,  # a code is single-use: never send it twice
        )


class InvalidState(WarehouseError):
    """The callback's ``state`` is forged, altered, signed with another key or expired."""


class StripeConnectFailed(WarehouseError):
    """Stripe Connect could not be reached or refused a call (a code exchange, a deauthorize)."""


@dataclass(frozen=True)
class AuthorizationRequest:
    """What a verified ``state`` says: which project and tier, its nonce and expiry."""

    project_id: str
    tier: str
    nonce: str
    expires: int


@dataclass(frozen=True)
class OAuthGrant:
    """The token answer of ``/oauth/token``; secrets are left out of ``repr``."""

    stripe_user_id: str
    scope: str
    livemode: bool
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)


def _state_key(home: Path | None) -> bytes:
    # A key of its own, so a state signature can never double as anything encrypted; the
    # registry's key (``home``: its state directory, for the demo's key file).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_STATE_KEY_INFO).derive(load_key(home=home))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_state(
    project_id: str, tier: str, now: float | None = None, home: Path | None = None
) -> str:
    """A signed ``state`` naming ``project_id`` and ``tier``, valid for 10 minutes."""
    issued = int(time.time() if now is None else now)
    payload = json.dumps({"p": project_id, "t": tier, "exp": issued + STATE_TTL_SECONDS,
                          "n": secrets.token_hex(8)}, separators=(",", ":")).encode()
    signature = hmac.new(_state_key(home), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify_state(
    state: str, now: float | None = None, home: Path | None = None
) -> AuthorizationRequest:
    """The request a ``state`` from :func:`sign_state` names; a one-line error if forged/expired."""
    forged = InvalidState(
        "the OAuth state is missing, altered or signed with another key: nothing was stored; "
        "start again with `stripe-warehouse connect PROJECT --oauth`"
    )
    try:
        encoded_payload, encoded_signature = state.split(".")
        payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
    except (ValueError, binascii.Error):
        raise forged from None
    expected = hmac.new(_state_key(home), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise forged
    fields = json.loads(payload)
    if (time.time() if now is None else now) > fields["exp"]:
        raise InvalidState(
            f"the OAuth link for project {fields['p']} expired (links last "
            f"{STATE_TTL_SECONDS // 60} minutes): nothing was stored; start again with "
            f"`stripe-warehouse connect {fields['p']} --oauth`"
        )
    return AuthorizationRequest(project_id=fields["p"], tier=fields["t"], nonce=fields["n"],
                                expires=fields["exp"])


def authorize_url(
    project_id: str, tier: str, settings: OAuthSettings | None = None, now: float | None = None,
    home: Path | None = None,
) -> str:
    """The Stripe page where the account owner grants ``read_only`` access to ``project_id``."""
    validate_project_id(project_id)
    validate_tier(tier)
    settings = settings or OAuthSettings.from_env(need_platform_key=False)
    return settings.client().oauth.authorize_url({
        "response_type": "code",
        "scope": SCOPE,
        "state": sign_state(project_id, tier, now, home),
        "redirect_uri": settings.redirect_uri,
    })


def _connect_error(
    error: stripe.StripeError, settings: OAuthSettings, action: str
) -> StripeConnectFailed:
    """One line for a failed Connect call; never the SDK's message, which may quote a key."""
    if isinstance(error, stripe.APIConnectionError):
        return StripeConnectFailed(
            f"cannot reach Stripe Connect at {settings.connect_base} to {action}: "
            f"check {CONNECT_BASE_ENV} and the network, then try again"
        )
    if isinstance(error, OAuthError):
        return StripeConnectFailed(
            f"Stripe refused to {action} ({error.code}): start again with "
            "`stripe-warehouse connect PROJECT --oauth`"
        )
    if error.http_status == 401:
        return StripeConnectFailed(
            f"Stripe rejected the platform key in {PLATFORM_KEY_ENV} (401) when asked to "
            f"{action}: export the secret key of the platform that owns {settings.client_id}"
        )
    return StripeConnectFailed(
        f"Stripe Connect failed to {action} ({error.http_status}): try again later"
    )


def exchange_code(code: str, settings: OAuthSettings) -> OAuthGrant:
    """Trade an authorization code for the connected account's access token."""
    try:
        token = settings.client().oauth.token(
            {"grant_type": "authorization_code", "code": code}).to_dict()
    except stripe.StripeError as error:
        raise _connect_error(error, settings, "exchange the authorization code") from None
    return OAuthGrant(
        stripe_user_id=token["stripe_user_id"],
        scope=token.get("scope") or SCOPE,
        livemode=bool(token.get("livemode")),
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token"),
    )


def ensure_not_active(store: ConnectionStore, project_id: str) -> None:
    """Refuse to attach an account to a project that is connected now.

    The authorize route is public (it lives next to the webhooks): without this, anyone could
    replace a project's Stripe account with their own.
    """
    if any(c.project_id == project_id and c.status == "active" for c in store.list()):
        raise already_connected(project_id)


def complete_authorization(
    store: ConnectionStore, state: str, code: str, settings: OAuthSettings | None = None,
    now: float | None = None,
) -> Connection:
    """Check ``state``, exchange ``code`` and store the token encrypted; nothing stored on error.

    One callback per project at a time, each ``state`` once: of two callbacks racing for one
    project, the second finds it connected and is refused before exchanging its code.
    """
    request = verify_state(state, now, store.home)
    settings = settings or OAuthSettings.from_env()
    with callback_turn(store.home, request.project_id):
        consume_state(store.home, request.project_id, request.nonce, request.expires, now)
        ensure_not_active(store, request.project_id)  # before the code creates a grant
        store.check_key()  # likewise: the token could not be stored under this key
        grant = exchange_code(code, settings)
        try:
            return store.connect_oauth(
                request.project_id, request.tier, grant.access_token,
                stripe_user_id=grant.stripe_user_id, scope=grant.scope,
                livemode=grant.livemode, refresh_token=grant.refresh_token,
            )
        except AccountMismatch:
            _release_refused_grant(store, grant.stripe_user_id, settings)
            raise


def _release_refused_grant(
    store: ConnectionStore, stripe_user_id: str, settings: OAuthSettings
) -> None:
    # The refused account just authorised this platform; unless another project uses that
    # account, revoke the grant so no unused token stays valid on Stripe.
    if any(c.bound_account == stripe_user_id for c in store.list()):
        return
    try:
        deauthorize(stripe_user_id, settings)
    except StripeConnectFailed:
        pass  # the refusal is what the caller must see; the token was never stored


def deauthorize(stripe_user_id: str, settings: OAuthSettings | None = None) -> None:
    """Tell Stripe to revoke this platform's access to ``stripe_user_id``."""
    settings = settings or OAuthSettings.from_env()
    try:
        settings.client().oauth.deauthorize({"stripe_user_id": stripe_user_id})
    except stripe.StripeError as error:
        raise _connect_error(error, settings, f"deauthorize {stripe_user_id}") from None
