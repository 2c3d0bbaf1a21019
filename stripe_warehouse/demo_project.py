"""The demo's project: marked as a demo, so commands say what to do with it after the demo.

The demo connects project ``demo`` with the sandbox's key (``sk_test_demo``) and syncs it from
a sandbox that stops when the demo ends. Without a mark, the project would look like any other
active project and every later sync or check would go to the real Stripe API with a key it
rejects. The mark is ``<home>/demo.json``; it names a fingerprint of the connection's stored
(encrypted) key, so a real account connected later under the same project id, whose key is
encrypted afresh, is not taken for the demo.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import Connection, ConnectionStore, write_private_json

MARKER_FILE = "demo.json"


class DemoProjectNotSyncable(WarehouseError):
    """The demo's project is only synced by the demo: its sandbox ran only during the demo."""


@dataclass(frozen=True)
class DemoProject:
    """Where the demo's sandbox answered while the demo ran, for the connection it made."""

    project_id: str
    sandbox_url: str
    credential: str  # fingerprint of the demo connection's encrypted key


def _credential(connection: Connection) -> str:
    # Every `connect` encrypts under a fresh nonce: another connection never has this value.
    ciphertext = (connection.api_key or {}).get("ct", "")
    return hashlib.sha256(ciphertext.encode()).hexdigest()[:16]


def mark_demo(home: Path, connection: Connection, sandbox_url: str) -> DemoProject:
    """Record that ``connection`` is the demo's, synced from ``sandbox_url``."""
    demo = DemoProject(connection.project_id, sandbox_url, _credential(connection))
    write_private_json(home / MARKER_FILE, asdict(demo))
    return demo


def demo_project(home: Path, connection: Connection) -> DemoProject | None:
    """The demo mark of ``connection``, or None for a project that is not the demo's."""
    try:
        demo = DemoProject(**json.loads((home / MARKER_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if connection.api_key is None:
        return None  # disconnected or revoked: its status says what to do
    if (demo.project_id, demo.credential) != (connection.project_id, _credential(connection)):
        return None
    return demo


def demo_advice(demo: DemoProject) -> str:
    """What a demo project is and what to do with it, in one line."""
    return (
        f"the demo's sandbox company, synced from the sandbox at {demo.sandbox_url} that ran "
        "only during the demo: explore its data; run `stripe-warehouse demo` again for fresh "
        "demo data, or connect your own account with `stripe-warehouse connect PROJECT "
        "--tier TIER --api-key-env VAR`"
    )


def refuse_demo_sync(store: ConnectionStore, project_id: str) -> None:
    """A one-line error instead of syncing the demo's project against the real Stripe API."""
    demo = demo_project(store.home, store.get(project_id))
    if demo is not None:
        raise DemoProjectNotSyncable(f"project {project_id} is {demo_advice(demo)}")
