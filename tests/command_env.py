"""The environment of a command a test starts as its own process: only what the command needs,
plus the session's dbt fork server (tests/conftest.py), so that the command's dbt runs are
forked from a process that has imported dbt instead of starting cold (~2 s of CPU each)."""

from __future__ import annotations

import os

from stripe_warehouse.dbt_forkserver import SOCKET_ENV
from tests.paths import REPO_ROOT


def command_env(**values: str) -> dict[str, str]:
    """PATH, PYTHONPATH (the checkout), the fork server's socket while one runs (not in the
    `spawned_dbt` modules), then ``values``."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)}
    if SOCKET_ENV in os.environ:
        env[SOCKET_ENV] = os.environ[SOCKET_ENV]
    return {**env, **values}
