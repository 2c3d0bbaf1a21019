"""The README's first command as a newcomer runs it, shared by tests/test_demo.py and
tests/orchestration/test_ui_after_demo.py.

A demo takes ~30-40 s on this machine: the two modules are one work unit (tests/scheduling.py
DEMO_UNIT), so the worker that runs them runs the session's demo once (`newcomers_demo` in
tests/conftest.py). A test that changes the demo's state directory works on a copy of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO_CUSTOMERS = "120"


def newcomer_env(home: Path) -> dict[str, str]:
    """This process's environment with state directory ``home`` and no key exported."""
    env = {k: v for k, v in os.environ.items() if k != "STRIPE_WAREHOUSE_SECRET_KEY"}
    env["STRIPE_WAREHOUSE_HOME"] = str(home)
    return env


def run_demo(home: Path) -> subprocess.CompletedProcess[str]:
    """`stripe-warehouse demo` in state directory ``home``, with no key exported."""
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", "demo", "--customers", DEMO_CUSTOMERS],
        capture_output=True, text=True, env=newcomer_env(home), timeout=600,
    )


def newcomer_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command as the newcomer runs it next: same state dir, no key exported, Stripe's
    own API (no sandbox address)."""
    env = newcomer_env(home)
    env.pop("STRIPE_API_BASE", None)
    return subprocess.run([sys.executable, "-m", "commands.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)
