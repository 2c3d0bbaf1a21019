"""The connection registry: one JSON file of connected Stripe accounts, secrets encrypted."""

import dataclasses
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stripe_warehouse.alert_rules import InvalidAlertRule, Rule, parse_rule, rule_from_stored
from stripe_warehouse.crypto import (
    SECRET_KEY_ENV,
    decrypt_secret,
    encrypt_secret,
    key_id,
    load_key,
    load_keyring,
)
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import REGISTRY_FILE, StateDir
from stripe_warehouse.storage import storage_error
from stripe_warehouse.stripe_api import key_mode
from stripe_warehouse.tiers import InvalidCron, validate_cron
from stripe_warehouse.time_zones import DEFAULT_TIME_ZONE, UnknownTimeZone, validate_time_zone

TIERS = ("starter", "basic", "pro", "scale")
STATUSES = ("active", "disconnected", "revoked")
# The fields of a connection that hold encrypted secrets (``{"kid","nonce","ct"}`` or None).
SECRET_FIELDS = ("api_key", "webhook_secret", "refresh_token")
CHANNEL_KINDS = ("email", "slack", "webhook")
PROJECT_ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")


class AlreadyConnected(WarehouseError):
    """The project is connected now: another account cannot be attached to it."""


class UnknownProject(WarehouseError):
    """No connection of that project id in the registry."""


class AccountMismatch(WarehouseError):
    """The project was bound to another Stripe account; only `purge` releases the binding."""


class KeyMismatch(WarehouseError):
    """The encryption key in use cannot open the secrets already stored."""


@contextmanager
def file_lock(path: Path, what: str | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created 0600) for the duration of the block.

    A read-only or full disk is a one-line error naming ``what`` was being done.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise storage_error([error], what or f"changing {path}") or error from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_private_json(path: Path, payload: object) -> None:
    """Replace ``path`` atomically with ``payload`` as JSON, mode 0600, fsynced.

    On a full or read-only disk the previous file is untouched and the error is one line.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        disk = storage_error([error], f"saving {path}")
        if disk is not None:
            raise disk from None
        raise


@dataclass
class Connection:
    """One connected Stripe account; secrets are kept encrypted (``{"kid","nonce","ct"}``).

    ``api_key`` is the API key or OAuth access token; it is deleted (None) when the project is
    disconnected or revoked. ``stripe_user_id``/``scope``/``livemode`` come from OAuth.
    ``account_id`` is the Stripe account the project is bound to for life (``GET /v1/account``
    for a key, ``stripe_user_id`` for OAuth); it survives disconnecting, only `purge` ends it.
    ``cron`` (five fields, UTC) replaces the tier's refresh schedule for this project.
    """

    project_id: str
    tier: str
    status: str
    mode: str
    created_at: float
    api_key: dict[str, str] | None
    webhook_secret: dict[str, str] | None = None
    last_sync_at: float | None = None
    last_sync_kind: str | None = None
    last_event_created: int | None = None
    stripe_user_id: str | None = None
    scope: str | None = None
    livemode: bool | None = None
    refresh_token: dict[str, str] | None = None
    status_reason: str | None = None
    account_id: str | None = None
    cron: str | None = None  # the project's own refresh cadence (UTC), instead of its tier's
    # alert rules (stripe_warehouse.alert_rules: {"id","kind","threshold","period"}) and the
    # channels they are sent to ({"id","kind","settings","secret"}, the secret encrypted)
    alert_rules: list[dict[str, Any]] | None = None
    alert_channels: list[dict[str, Any]] | None = None
    # the last failed sync (its time and one-line error) and how many failed since the last
    # success (0 once a sync succeeds): what the sync_failing alert rule reads
    last_failure_at: float | None = None
    last_failure_error: str | None = None
    failures_since_success: int = 0
    # the customer and subscription metadata keys kept for segments ({"customer": [...],
    # "subscription": [...]}): only their values pass the privacy allowlist
    segment_metadata_keys: dict[str, list[str]] | None = None
    # the IANA time zone the project's marts' days and months follow (None: UTC), written on
    # each sync_runs row of its loads (stripe_warehouse.time_zones)
    reporting_time_zone: str | None = None

    @property
    def time_zone(self) -> str:
        """The project's reporting time zone (UTC unless one was set)."""
        return self.reporting_time_zone or DEFAULT_TIME_ZONE

    @property
    def segment_keys(self) -> dict[str, tuple[str, ...]] | None:
        """The metadata keys the allowlist keeps, by object type; None when none is named."""
        named = {kind: tuple(keys) for kind, keys in (self.segment_metadata_keys or {}).items()
                 if keys}
        return named or None

    @property
    def bound_account(self) -> str | None:
        """The Stripe account this project may hold data of (OAuth entries from before
        ``account_id`` existed are bound through ``stripe_user_id``)."""
        return self.account_id or self.stripe_user_id


class InvalidRegistry(WarehouseError):
    """``connections.json`` cannot be read as a registry; the message names the file and fix."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"the connection registry {path} is damaged ({problem}): restore it "
                         "from a backup, or move it aside and connect the projects again")


FAILURE_TEXT_LIMIT = 300  # a failed sync's error is kept as one line of at most this

# The JSON types each field of a stored connection may have (None: the field may be null).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "project_id": (str,), "tier": (str,), "status": (str,), "mode": (str,),
    "created_at": (int, float), "api_key": (dict, type(None)),
    "webhook_secret": (dict, type(None)), "last_sync_at": (int, float, type(None)),
    "last_sync_kind": (str, type(None)), "last_event_created": (int, type(None)),
    "stripe_user_id": (str, type(None)), "scope": (str, type(None)),
    "livemode": (bool, type(None)), "refresh_token": (dict, type(None)),
    "status_reason": (str, type(None)), "cron": (str, type(None)),
    "alert_rules": (list, type(None)), "alert_channels": (list, type(None)),
    "last_failure_at": (int, float, type(None)), "last_failure_error": (str, type(None)),
    "failures_since_success": (int,),
    "segment_metadata_keys": (dict, type(None)),
    "reporting_time_zone": (str, type(None)),
}
SEGMENT_OBJECTS = ("customer", "subscription")
# Stripe's own limit on a metadata key; square brackets are not allowed in one
METADATA_KEY = re.compile(r"[^\[\]]{1,40}")
_KNOWN_FIELDS = {f.name for f in dataclasses.fields(Connection)}
_REQUIRED_FIELDS = {f.name for f in dataclasses.fields(Connection)
                    if f.default is dataclasses.MISSING}
_SECRET_KEYS = {"kid", "nonce", "ct"}


def _connection_problem(pid: object, fields: object) -> str | None:
    """What is wrong with one stored connection, or None."""
    if not isinstance(pid, str) or not PROJECT_ID_PATTERN.fullmatch(pid):
        return f"project id {pid!r} is not valid"
    if not isinstance(fields, dict):
        return f"project {pid} is not an object"
    unknown = sorted(set(fields) - _KNOWN_FIELDS)
    missing = sorted(_REQUIRED_FIELDS - set(fields))
    if unknown or missing:
        return f"project {pid}: " + "; ".join(
            [f"unknown field {', '.join(unknown)}"] * bool(unknown)
            + [f"missing field {', '.join(missing)}"] * bool(missing))
    for name, value in fields.items():
        types = _FIELD_TYPES.get(name, (object,))
        # bool is an int in Python: a flag where a number belongs is still the wrong type
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            return f"project {pid}: field {name} is {type(value).__name__}"
        if name in SECRET_FIELDS and value is not None and (
                set(value) != _SECRET_KEYS or not all(isinstance(v, str) for v in value.values())):
            return f"project {pid}: field {name} is not an encrypted secret"
    if fields["project_id"] != pid:
        return f"project {pid} is stored under the id {fields['project_id']!r}"
    if fields["tier"] not in TIERS or fields["status"] not in STATUSES:
        return f"project {pid}: unknown tier or status"
    keys = fields.get("segment_metadata_keys")
    if keys is not None and not (set(keys) <= set(SEGMENT_OBJECTS) and all(
            isinstance(named, list) and all(isinstance(k, str) and METADATA_KEY.fullmatch(k)
                                            for k in named) for named in keys.values())):
        return (f"project {pid}: field segment_metadata_keys is not lists of metadata keys "
                "under customer and subscription")
    if fields.get("reporting_time_zone") is not None:
        try:
            validate_time_zone(fields["reporting_time_zone"])
        except UnknownTimeZone:
            return f"project {pid}: field reporting_time_zone is not an IANA time zone name"
    alert_problem = _alerts_problem(fields)
    if alert_problem is not None:
        return f"project {pid}: {alert_problem}"
    if fields.get("cron") is not None:
        try:
            validate_cron(fields["cron"])
        except InvalidCron:
            return f"project {pid}: field cron is not a five-field cron"
    return None


def _is_secret(value: object) -> bool:
    return isinstance(value, dict) and set(value) == _SECRET_KEYS and all(
        isinstance(v, str) for v in value.values())


def _alerts_problem(fields: dict[str, Any]) -> str | None:
    """What is wrong with a stored connection's alert rules and channels, or None."""
    for rule in fields.get("alert_rules") or []:
        if not isinstance(rule, dict):
            return "an alert rule is not an object"
        try:
            rule_from_stored(rule)
        except (InvalidAlertRule, KeyError) as error:
            return f"alert rule {rule.get('id')!r} is not valid ({error})"
    for channel in fields.get("alert_channels") or []:
        if not isinstance(channel, dict) or set(channel) != {"id", "kind", "settings", "secret"}:
            return "an alert channel is not an object {id, kind, settings, secret}"
        if channel["kind"] not in CHANNEL_KINDS or not isinstance(channel["settings"], dict):
            return f"alert channel {channel['id']!r} has an unknown kind or no settings"
        if channel["secret"] is not None and not _is_secret(channel["secret"]):
            return f"alert channel {channel['id']!r}: its secret is not an encrypted secret"
    return None


def _parse_registry(path: Path, raw: object) -> dict[str, Connection]:
    """The connections of a registry file's JSON; InvalidRegistry if it has the wrong shape."""
    if not isinstance(raw, dict) or set(raw) != {"connections"} or not isinstance(
            raw["connections"], dict):
        raise InvalidRegistry(path, 'expected an object {"connections": {...}}')
    for pid, fields in raw["connections"].items():
        problem = _connection_problem(pid, fields)
        if problem is not None:
            raise InvalidRegistry(path, problem)
    return {pid: Connection(**fields) for pid, fields in raw["connections"].items()}


def validate_project_id(project_id: str) -> None:
    """Refuse ids that are not 1-40 of ``[a-z0-9_]`` (they name pipelines and files)."""
    if not PROJECT_ID_PATTERN.fullmatch(project_id):
        raise WarehouseError(
            f"invalid project id {project_id!r}: use 1-40 lower-case letters, digits or underscores"
        )


def validate_tier(tier: str) -> None:
    """Refuse unknown tiers."""
    if tier not in TIERS:
        raise WarehouseError(f"unknown tier {tier!r}: choose one of {', '.join(TIERS)}")


def _end_access(connection: Connection, status: str, reason: str) -> None:
    connection.status = status
    connection.status_reason = reason
    connection.api_key = None
    connection.refresh_token = None
    # Without its secret no webhook of the project verifies: nothing more is stored or applied.
    connection.webhook_secret = None


def already_connected(project_id: str) -> AlreadyConnected:
    """The refusal to attach an account to a project that is connected now."""
    return AlreadyConnected(
        f"project {project_id} is already connected: nothing was stored; to connect "
        f"another account, first run `stripe-warehouse disconnect {project_id}`"
    )


def _refuse_other_account(previous: Connection, account_id: str | None) -> None:
    # One Stripe account per project for life: otherwise a reconnect merges two accounts'
    # rows (same project_id) in the raw tables and the marts.
    bound = previous.bound_account
    if bound is not None and account_id is not None and account_id != bound:
        project_id = previous.project_id
        raise AccountMismatch(
            f"project {project_id} holds data of Stripe account {bound}, not {account_id}: "
            f"nothing was stored; connect {account_id} under a new project id, or delete "
            f"{project_id}'s data first with `stripe-warehouse purge {project_id}`"
        )


def _next_alert_id(kind: str, entries: list[dict[str, Any]]) -> str:
    """``<kind>-<n>``, the first n no rule or channel in ``entries`` has (ids stay stable:
    removing one does not renumber the others)."""
    used = {entry["id"] for entry in entries}
    number = 1
    while f"{kind}-{number}" in used:
        number += 1
    return f"{kind}-{number}"


def _secrets_of(connection: Connection) -> list[dict[str, str]]:
    """Every encrypted secret a connection holds: credentials and alert channels' secrets."""
    blobs = [getattr(connection, name) for name in SECRET_FIELDS]
    blobs += [channel["secret"] for channel in connection.alert_channels or []]
    return [blob for blob in blobs if blob is not None]


def _refuse_foreign_key(connections: dict[str, Connection], current_kid: str) -> None:
    # Writing under another key would split the registry: no single key could open it all.
    stored = sorted({
        blob.get("kid", "?")
        for connection in connections.values()
        for blob in _secrets_of(connection)
        if blob.get("kid") != current_kid
    })
    if stored:
        kids = ", ".join(stored)
        raise KeyMismatch(
            f"the stored secrets are encrypted with key id {kids}, but {SECRET_KEY_ENV} has "
            f"key id {current_kid}: nothing was stored; export the key with id {kids} as "
            f"{SECRET_KEY_ENV} (to change keys, run `stripe-warehouse rotate-key` with it)"
        )


class ConnectionStore:
    """Connections in ``<home>/connections.json`` (0600), updated atomically under a file lock."""

    def __init__(self, home: Path | str | StateDir) -> None:
        state = StateDir.of(home).create()
        self.home = state.root
        self.path = state.registry
        self._lock_path = self.path.with_name(REGISTRY_FILE + ".lock")

    def _locked(self) -> AbstractContextManager[None]:
        # An exclusive lock around read-modify-write so concurrent writers never lose updates.
        return file_lock(self._lock_path, f"changing {self.path}")

    def _read(self) -> dict[str, Connection]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidRegistry(self.path, "it is not valid JSON") from None
        return _parse_registry(self.path, raw)

    def _write(self, connections: dict[str, Connection]) -> None:
        payload = {"connections": {pid: dataclasses.asdict(c) for pid, c in connections.items()}}
        write_private_json(self.path, payload)

    def _update(self, project_id: str, change: Callable[[Connection], None]) -> Connection:
        with self._locked():
            connections = self._read()
            connection = self._require(connections, project_id)
            change(connection)
            self._write(connections)
            return connection

    @staticmethod
    def _require(connections: dict[str, Connection], project_id: str) -> Connection:
        if project_id not in connections:
            raise UnknownProject(
                f"unknown project {project_id!r}: see `stripe-warehouse status`, "
                f"or connect it with `stripe-warehouse connect {project_id}`"
            )
        return connections[project_id]

    def connect(
        self, project_id: str, tier: str, api_key: str, webhook_secret: str | None = None,
        *, account_id: str | None = None, cron: str | None = None,
    ) -> Connection:
        """Add or replace a connection, encrypting its secrets with the configured key.

        ``account_id`` is the Stripe account the key belongs to: a project already bound to
        another account is refused (:class:`AccountMismatch`). ``cron`` is the project's own
        refresh cadence; without it a reconnected project keeps the one it had.
        """
        return self._store_new(
            project_id, tier, api_key, webhook_secret=webhook_secret, account_id=account_id,
            cron=cron)

    def connect_oauth(
        self, project_id: str, tier: str, access_token: str, *, stripe_user_id: str,
        scope: str, livemode: bool, refresh_token: str | None = None,
    ) -> Connection:
        """Store a connection made with Stripe Connect OAuth; tokens are encrypted.

        Refused while the project is active (:class:`AlreadyConnected`; the check and the
        write are under one lock) or when it is bound to another account. A webhook secret
        stored by an earlier connection of the project is kept.
        """
        return self._store_new(
            project_id, tier, access_token, account_id=stripe_user_id,
            stripe_user_id=stripe_user_id, scope=scope, livemode=livemode,
            refresh_token=refresh_token, replace_active=False,
        )

    def _store_new(
        self, project_id: str, tier: str, api_key: str, *, webhook_secret: str | None = None,
        account_id: str | None = None, stripe_user_id: str | None = None,
        scope: str | None = None, livemode: bool | None = None,
        refresh_token: str | None = None, replace_active: bool = True, cron: str | None = None,
    ) -> Connection:
        validate_project_id(project_id)
        validate_tier(tier)
        cron = None if cron is None else validate_cron(cron)
        key = load_key(home=self.home)
        connection = Connection(
            project_id=project_id,
            tier=tier,
            status="active",
            mode=key_mode(api_key) if livemode is None else ("live" if livemode else "test"),
            created_at=time.time(),
            api_key=encrypt_secret(api_key, project_id, key),
            webhook_secret=(
                encrypt_secret(webhook_secret, project_id, key) if webhook_secret else None
            ),
            stripe_user_id=stripe_user_id,
            scope=scope,
            livemode=livemode,
            refresh_token=(
                encrypt_secret(refresh_token, project_id, key) if refresh_token else None
            ),
            account_id=account_id,
            cron=cron,
        )
        with self._locked():
            connections = self._read()
            _refuse_foreign_key(connections, key_id(key))
            previous = connections.get(project_id)
            if previous is not None:
                if not replace_active and previous.status == "active":
                    raise already_connected(project_id)
                _refuse_other_account(previous, account_id)
                # Reconnecting keeps the sync history so refreshes continue where they stopped
                # (safe: it is the same Stripe account).
                connection.account_id = account_id or previous.bound_account
                connection.created_at = previous.created_at
                connection.last_sync_at = previous.last_sync_at
                connection.last_sync_kind = previous.last_sync_kind
                connection.last_event_created = previous.last_event_created
                connection.cron = cron or previous.cron
                # the user's alert rules and channels survive a reconnection
                connection.alert_rules = previous.alert_rules
                connection.alert_channels = previous.alert_channels
                # so do its days: a reconnection must not move them to another zone
                connection.reporting_time_zone = previous.reporting_time_zone
                if stripe_user_id is not None and connection.webhook_secret is None:
                    connection.webhook_secret = previous.webhook_secret
            connections[project_id] = connection
            self._write(connections)
        return connection

    def check_key(self) -> None:
        """Refuse early when the configured key cannot open the secrets already stored."""
        _refuse_foreign_key(self._read(), key_id(load_key(home=self.home)))

    def forget(self, project_id: str) -> bool:
        """Remove ``project_id`` and its account binding from the registry (``purge``)."""
        with self._locked():
            connections = self._read()
            if connections.pop(project_id, None) is None:
                return False
            self._write(connections)
        return True

    def get(self, project_id: str) -> Connection:
        """The connection of ``project_id``; a one-line error naming the fix if unknown."""
        return self._require(self._read(), project_id)

    def list(self) -> list[Connection]:
        """Every connection, sorted by project id."""
        return sorted(self._read().values(), key=lambda c: c.project_id)

    def set_tier(self, project_id: str, tier: str) -> Connection:
        """Change a project's tier."""
        validate_tier(tier)
        return self._update(project_id, lambda c: setattr(c, "tier", tier))

    def set_cron(self, project_id: str, cron: str | None) -> Connection:
        """Give a project its own refresh cron (UTC), or None to go back to its tier's."""
        cron = None if cron is None else validate_cron(cron)
        return self._update(project_id, lambda c: setattr(c, "cron", cron))

    def set_segment_metadata_keys(self, project_id: str, customer: Sequence[str],
                                  subscription: Sequence[str]) -> Connection:
        """Name the customer and subscription metadata keys kept for segments (replacing the
        named ones; empty lists name none). Their values pass the privacy allowlist from the
        next sync on: the project's owner decides they hold no personal data."""
        for key in [*customer, *subscription]:
            if not METADATA_KEY.fullmatch(key):
                raise WarehouseError(f"metadata key {key!r} is not a Stripe metadata key "
                                     "(1 to 40 characters, no square brackets)")
        named = {"customer": sorted(set(customer)), "subscription": sorted(set(subscription))}
        return self._update(project_id, lambda c: setattr(
            c, "segment_metadata_keys", named if customer or subscription else None))

    def set_reporting_time_zone(self, project_id: str, time_zone: str) -> Connection:
        """Set the IANA time zone the project's marts' days and months follow (``UTC``: the
        default); an unknown name is refused before anything is read or written."""
        time_zone = validate_time_zone(time_zone)
        stored = None if time_zone == DEFAULT_TIME_ZONE else time_zone
        return self._update(project_id, lambda c: setattr(c, "reporting_time_zone", stored))

    def disconnect(self, project_id: str) -> Connection:
        """Stop syncing ``project_id`` and delete its token; its data stays."""
        reason = (f"disconnected by the user: reconnect with "
                  f"`stripe-warehouse connect {project_id}` to sync again")
        return self._update(project_id, lambda c: _end_access(c, "disconnected", reason))

    def revoke(self, project_id: str, reason: str) -> Connection:
        """Mark ``project_id`` revoked (Stripe no longer accepts its token) and delete the token."""
        return self._update(project_id, lambda c: _end_access(c, "revoked", reason))

    def api_key(self, project_id: str) -> str:
        """The decrypted Stripe API key (or OAuth access token) of ``project_id``."""
        connection = self.get(project_id)
        if connection.api_key is None:
            raise WarehouseError(
                f"project {project_id} is {connection.status} and its credentials were "
                f"deleted: reconnect with `stripe-warehouse connect {project_id}`"
            )
        return decrypt_secret(connection.api_key, project_id, load_keyring(self.home))

    def webhook_secret(self, project_id: str) -> str | None:
        """The decrypted webhook signing secret of ``project_id``, if one was stored."""
        blob = self.get(project_id).webhook_secret
        return decrypt_secret(blob, project_id, load_keyring(self.home)) if blob else None

    def rotate_key(self, new_key: bytes) -> int:
        """Re-encrypt every stored secret under ``new_key``; returns how many were re-encrypted.

        Secrets are opened with the current and old keys (:func:`load_keyring`). All of them
        are re-encrypted before the registry is replaced in one atomic rename, so an
        interrupted rotation leaves the previous file, still readable with the previous key.
        """
        keyring = load_keyring(self.home)
        count = 0
        with self._locked():
            connections = self._read()
            for connection in connections.values():
                for name in SECRET_FIELDS:
                    blob = getattr(connection, name)
                    if blob is None:
                        continue
                    plaintext = decrypt_secret(blob, connection.project_id, keyring)
                    setattr(connection, name,
                            encrypt_secret(plaintext, connection.project_id, new_key))
                    count += 1
                for channel in connection.alert_channels or []:
                    if channel["secret"] is None:
                        continue
                    plaintext = decrypt_secret(channel["secret"], connection.project_id, keyring)
                    channel["secret"] = encrypt_secret(plaintext, connection.project_id, new_key)
                    count += 1
            self._write(connections)
        return count

    def record_sync(
        self, project_id: str, kind: str, finished_at: float, last_event_created: int | None
    ) -> Connection:
        """Remember a finished sync; ``last_event_created`` only moves forward."""

        def change(c: Connection) -> None:
            c.last_sync_at = finished_at
            c.last_sync_kind = kind
            if last_event_created is not None:
                c.last_event_created = max(c.last_event_created or 0, last_event_created)
            c.failures_since_success = 0

        return self._update(project_id, change)

    def record_sync_failure(self, project_id: str, failed_at: float, error: str) -> Connection:
        """Remember a failed sync: its time, its error's first line (at most
        :data:`FAILURE_TEXT_LIMIT` characters) and one more failure since the last success."""

        def change(c: Connection) -> None:
            c.last_failure_at = failed_at
            c.last_failure_error = (error.strip().splitlines() or [""])[0][:FAILURE_TEXT_LIMIT]
            c.failures_since_success += 1

        return self._update(project_id, change)

    # --- alert rules and channels (stripe-warehouse alerts ...) ---

    def alert_rules(self, project_id: str) -> tuple[Rule, ...]:
        """The project's alert rules, in the order they were added."""
        return tuple(rule_from_stored(r) for r in self.get(project_id).alert_rules or [])

    def add_alert_rule(self, project_id: str, kind: str, threshold: str | None,
                       period: str | None = None) -> Rule:
        """Validate and store a rule; its id is ``<kind>-<n>``, unique in the project."""
        parse_rule("check", kind, threshold, period)  # refuse before taking the lock

        added: list[Rule] = []

        def change(c: Connection) -> None:
            rules = c.alert_rules or []
            rule = parse_rule(_next_alert_id(kind, rules), kind, threshold, period)
            c.alert_rules = [*rules, rule.stored()]
            added.append(rule)

        self._update(project_id, change)
        return added[0]

    def add_alert_channel(self, project_id: str, kind: str, settings: dict[str, Any],
                          secret: str | None) -> str:
        """Store a channel with its secret encrypted like the Stripe credentials; its id."""
        if kind not in CHANNEL_KINDS:
            raise WarehouseError(f"unknown alert channel {kind!r}: choose one of "
                                 f"{', '.join(CHANNEL_KINDS)}")
        key = load_key(home=self.home)
        added: list[str] = []

        def change(c: Connection) -> None:
            channels = c.alert_channels or []
            channel_id = _next_alert_id(kind, channels)
            blob = encrypt_secret(secret, project_id, key) if secret else None
            c.alert_channels = [*channels, {"id": channel_id, "kind": kind,
                                            "settings": settings, "secret": blob}]
            added.append(channel_id)

        with self._locked():
            _refuse_foreign_key(self._read(), key_id(key))
        self._update(project_id, change)
        return added[0]

    def remove_alert(self, project_id: str, alert_id: str) -> str:
        """Remove a rule or a channel by id; what was removed (``rule`` or ``channel``)."""
        removed: list[str] = []

        def change(c: Connection) -> None:
            rules = [r for r in c.alert_rules or [] if r["id"] != alert_id]
            channels = [ch for ch in c.alert_channels or [] if ch["id"] != alert_id]
            if len(rules) < len(c.alert_rules or []):
                removed.append("rule")
            if len(channels) < len(c.alert_channels or []):
                removed.append("channel")
            if not removed:
                raise WarehouseError(
                    f"project {project_id} has no alert rule or channel {alert_id!r}: see "
                    f"`stripe-warehouse alerts list {project_id}`")
            c.alert_rules = rules or None
            c.alert_channels = channels or None

        self._update(project_id, change)
        return removed[0]

    def channel_secret(self, project_id: str, channel: dict[str, Any]) -> str | None:
        """The decrypted secret of one of the project's alert channels (never logged)."""
        blob = channel.get("secret")
        return decrypt_secret(blob, project_id, load_keyring(self.home)) if blob else None
