"""Headless Chromium (Debian's package) for the tests that look at pages as a person would."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1600,1000",
    # Single-page apps answer their queries after load: give them time before capture.
    "--virtual-time-budget=20000",
]


def chromium(*args: str) -> str:
    """Run headless Chromium with a fresh profile; returns stdout (the DOM for --dump-dom)."""
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is missing: `make test` installs it (apt-get chromium)"
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
