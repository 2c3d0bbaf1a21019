"""Which Stripe address to talk to, and the owner-only file modes of the state directory.

Where the state lives is :class:`stripe_warehouse.state_dir.StateDir`.
"""

import os
import stat
from pathlib import Path

DEFAULT_API_BASE = "https://api.stripe.com"
RAW_DATASET = "stripe_raw"
# Everything written under the state directory holds customer data (the DuckDB files and their
# .wal, dlt's packages, dbt's target/): owner-only, 0600 files and 0700 directories.
PRIVATE_UMASK = 0o077


def use_private_file_modes() -> None:
    """Make every file this process (and its children) creates owner-only from now on.

    Set once by each entry point (CLI, web service, Dagster runs): the umask is per process,
    so setting and restoring it around single writes would race between threads.
    """
    os.umask(PRIVATE_UMASK)


def make_private(path: Path) -> None:
    """Tighten an existing file to 0600 or directory to 0700 (files made before the umask was
    set, by an earlier version or another tool)."""
    wanted = 0o700 if path.is_dir() else 0o600
    if path.exists() and stat.S_IMODE(path.stat().st_mode) != wanted:
        os.chmod(path, wanted)


def make_private_dirs(path: Path) -> Path:
    """Create ``path`` and its missing parents, each 0700 (``mkdir -p`` gives parents 0755)."""
    for directory in reversed([path, *path.parents]):
        if not directory.exists():
            directory.mkdir(mode=0o700, exist_ok=True)
    return path


def api_base(override: str | None = None) -> str:
    """The Stripe API address (``STRIPE_API_BASE``, default Stripe's), no trailing slash."""
    return (override or os.environ.get("STRIPE_API_BASE") or DEFAULT_API_BASE).rstrip("/")
