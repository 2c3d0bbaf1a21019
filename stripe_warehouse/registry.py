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
from stripe_warehouse.crypto import decrypt_secret, encrypt_secret, load_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.settings import home_dir

REGISTRY_FILE = "connections.json"
TIERS = ("starter", "basic", "pro", "scale")
STATUSES = ("active", "disconnected", "revoked")
PROJECT_ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")


@dataclass
class Connection:
    """One connected Stripe account; secrets are kept encrypted (``{"kid","nonce","ct"}``)."""

    project_id: str
    tier: str
    status: str
    mode: str
    created_at: float
    api_key: dict[str, str]
    webhook_secret: dict[str, str] | None = None
    last_sync_at: float | None = None
    last_sync_kind: str | None = None
    last_event_created: int | None = None


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
        validate_project_id(project_id)
        validate_tier(tier)
        key = load_key()
        connection = Connection(
            project_id=project_id,
            tier=tier,
            status="active",
            mode=key_mode(api_key),
            created_at=time.time(),
            api_key=encrypt_secret(api_key, project_id, key),
            webhook_secret=(
                encrypt_secret(webhook_secret, project_id, key) if webhook_secret else None
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
        """Mark a project disconnected (its data stays; syncs skip it)."""
        return self._update(project_id, lambda c: setattr(c, "status", "disconnected"))

    def api_key(self, project_id: str) -> str:
        """The decrypted Stripe API key of ``project_id``."""
        return decrypt_secret(self.get(project_id).api_key, project_id, load_key())

    def webhook_secret(self, project_id: str) -> str | None:
        """The decrypted webhook signing secret of ``project_id``, if one was stored."""
        blob = self.get(project_id).webhook_secret
        return decrypt_secret(blob, project_id, load_key()) if blob else None

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
