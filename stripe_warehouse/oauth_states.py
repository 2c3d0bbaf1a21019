"""Single use of OAuth ``state`` values, and one callback at a time per project.

A signed ``state`` is valid for 10 minutes; without a record of the ones already used, a state
seen once (browser history, a proxy log) could be replayed with the replayer's own code while
the project is not connected. Used nonces are kept in ``<home>/oauth/used_states.json`` (0600)
until they expire.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import file_lock, write_private_json

OAUTH_DIR = "oauth"
USED_STATES_FILE = "used_states.json"


class StateAlreadyUsed(WarehouseError):
    """A callback presented a ``state`` that an earlier callback already used."""


def _oauth_dir(home: Path) -> Path:
    path = home / OAUTH_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def consume_state(home: Path, project_id: str, nonce: str, expires: int,
                  now: float | None = None) -> None:
    """Record ``nonce`` as used; :class:`StateAlreadyUsed` if it was used before."""
    path = _oauth_dir(home) / USED_STATES_FILE
    moment = time.time() if now is None else now
    with file_lock(path.with_name(USED_STATES_FILE + ".lock")):
        try:
            used = json.loads(path.read_text()) if path.exists() else {}
        except json.JSONDecodeError:
            used = None
        if not isinstance(used, dict):
            raise WarehouseError(
                f"the record of used OAuth links ({OAUTH_DIR}/{USED_STATES_FILE} in the state "
                "directory) is damaged: delete it and start again from the authorize link"
            )
        if nonce in used:
            raise StateAlreadyUsed(
                f"this OAuth link for project {project_id} was already used: nothing was "
                f"stored; start again with `stripe-warehouse connect {project_id} --oauth`"
            )
        # Expired nonces need no record: verify_state refuses their states anyway.
        used = {n: exp for n, exp in used.items() if isinstance(exp, int) and exp >= moment}
        used[nonce] = expires
        write_private_json(path, used)


@contextmanager
def callback_turn(home: Path, project_id: str) -> Iterator[None]:
    """Run one OAuth callback of ``project_id`` at a time (across threads and processes).

    A second callback waits, then finds the project connected and is refused before its code
    creates a second grant on Stripe.
    """
    with file_lock(_oauth_dir(home) / f"{project_id}.lock"):
        yield
