"""The connection registry: one JSON file of connected Stripe accounts, secrets encrypted."""

import dataclasses
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import key_mode
from stripe_warehouse.crypto import decrypt_secret, encrypt_secret, load_key, load_keyring
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import home_dir

REGISTRY_FILE = "connections.json"
TIERS = ("starter", "basic", "pro", "scale")
STATUSES = ("active", "disconnected", "revoked")
# The fields of a connection that hold encrypted secrets (``{"kid","nonce","ct"}`` or None).
SECRET_FIELDS = ("api_key", "webhook_secret", "refresh_token")
PROJECT_ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")


@dataclass
class Connection:
    """One connected Stripe account; secrets are kept encrypted (``{"kid","nonce","ct"}``).

    ``api_key`` is the API key or OAuth access token; it is deleted (None) when the project is
    disconnected or revoked. ``stripe_user_id``/``scope``/``livemode`` come from OAuth.
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


class ConnectionStore:
    """Connections in ``<home>/connections.json`` (0600), updated atomically under a file lock."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = home_dir(home)
        self.path = self.home / REGISTRY_FILE
        self._lock_path = self.home / (REGISTRY_FILE + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # An exclusive lock around read-modify-write so concurrent writers never lose updates.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> dict[str, Connection]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
        except json.JSONDecodeError:
            raise WarehouseError(
                f"{self.path} is not valid JSON: "
                "restore it from a backup, or remove it and reconnect"
            ) from None
        return {pid: Connection(**fields) for pid, fields in raw.get("connections", {}).items()}

    def _write(self, connections: dict[str, Connection]) -> None:
        payload = {"connections": {pid: dataclasses.asdict(c) for pid, c in connections.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".connections.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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
            raise WarehouseError(
                f"unknown project {project_id!r}: see `stripe-warehouse status`, "
                f"or connect it with `stripe-warehouse connect {project_id}`"
            )
        return connections[project_id]

    def connect(
        self, project_id: str, tier: str, api_key: str, webhook_secret: str | None = None
    ) -> Connection:
        """Add or replace a connection, encrypting its secrets with the configured key."""
        return self._store_new(project_id, tier, api_key, webhook_secret=webhook_secret)

    def connect_oauth(
        self, project_id: str, tier: str, access_token: str, *, stripe_user_id: str,
        scope: str, livemode: bool, refresh_token: str | None = None,
    ) -> Connection:
        """Add or replace a connection made with Stripe Connect OAuth; tokens are encrypted.

        A webhook secret stored by an earlier connection of the project is kept.
        """
        return self._store_new(
            project_id, tier, access_token, stripe_user_id=stripe_user_id, scope=scope,
            livemode=livemode, refresh_token=refresh_token,
        )

    def _store_new(
        self, project_id: str, tier: str, api_key: str, *, webhook_secret: str | None = None,
        stripe_user_id: str | None = None, scope: str | None = None,
        livemode: bool | None = None, refresh_token: str | None = None,
    ) -> Connection:
        validate_project_id(project_id)
        validate_tier(tier)
        key = load_key()
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
        )
        with self._locked():
            connections = self._read()
            previous = connections.get(project_id)
            if previous is not None:
                # Reconnecting keeps the sync history so refreshes continue where they stopped.
                connection.created_at = previous.created_at
                connection.last_sync_at = previous.last_sync_at
                connection.last_sync_kind = previous.last_sync_kind
                connection.last_event_created = previous.last_event_created
                if stripe_user_id is not None and connection.webhook_secret is None:
                    connection.webhook_secret = previous.webhook_secret
            connections[project_id] = connection
            self._write(connections)
        return connection

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
        return decrypt_secret(connection.api_key, project_id, load_keyring())

    def webhook_secret(self, project_id: str) -> str | None:
        """The decrypted webhook signing secret of ``project_id``, if one was stored."""
        blob = self.get(project_id).webhook_secret
        return decrypt_secret(blob, project_id, load_keyring()) if blob else None

    def rotate_key(self, new_key: bytes) -> int:
        """Re-encrypt every stored secret under ``new_key``; returns how many were re-encrypted.

        Secrets are opened with the current and old keys (:func:`load_keyring`). All of them
        are re-encrypted before the registry is replaced in one atomic rename, so an
        interrupted rotation leaves the previous file, still readable with the previous key.
        """
        keyring = load_keyring()
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

        return self._update(project_id, change)
