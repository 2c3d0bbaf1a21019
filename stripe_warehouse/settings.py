"""Where state lives and which Stripe address to talk to, from the environment."""

import os
import stat
from contextlib import suppress
from pathlib import Path

from stripe_warehouse.errors import WarehouseError

DEFAULT_HOME = "./data"
DEFAULT_API_BASE = "https://api.stripe.com"
WAREHOUSE_FILE = "warehouse.duckdb"
RAW_DATASET = "stripe_raw"
# Files written by duckdb 2.0 are unreadable by DuckDB 1.x tools unless created with this.
DUCKDB_STORAGE_VERSION = "v1.4.0"
# Everything written under the state directory holds customer data (the DuckDB files and their
# .wal, dlt's packages, dbt's target/): owner-only, 0600 files and 0700 directories.
PRIVATE_UMASK = 0o077


def use_private_file_modes() -> None:
    """Make every file this process (and its children) creates owner-only from now on.

    Set once by each entry point (CLI, web service, Dagster runs): the umask is per process,
    so setting and restoring it around single writes would race between threads.
    """
    os.umask(PRIVATE_UMASK)


def home_dir(home: Path | str | None = None) -> Path:
    """The state directory (``STRIPE_WAREHOUSE_HOME``, default ``./data``), created mode 0700.

    An existing directory is tightened to 0700 when it is looser and that is allowed; one that
    cannot be changed (a read-only mount, another owner's) is used as it is, so reading
    commands work there and writers fail on their first write, in one line.
    """
    path = Path(home if home is not None else os.environ.get("STRIPE_WAREHOUSE_HOME", DEFAULT_HOME))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise WarehouseError(
            f"cannot create the state directory {path} ({error.strerror}): set "
            "STRIPE_WAREHOUSE_HOME to a writable directory"
        ) from None
    # mkdir's mode is masked by the umask and ignored for an existing directory.
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        with suppress(OSError):
            os.chmod(path, 0o700)
    return path


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


class MissingStateDirectory(WarehouseError):
    """A read-only command found no state directory (and must not create one)."""


def configured_home() -> Path:
    """Where the state directory is configured to be; unlike :func:`home_dir`, never created."""
    return Path(os.environ.get("STRIPE_WAREHOUSE_HOME", DEFAULT_HOME))


def existing_home(home: Path | str | None = None) -> Path:
    """The state directory for a read-only command: a one-line error if it does not exist.

    Read-only commands (status, doctor, metrics) run from any directory: creating ``./data``
    wherever they run would leave stray empty state directories behind.
    """
    path = Path(home) if home is not None else configured_home()
    if not path.is_dir():
        where = ("STRIPE_WAREHOUSE_HOME" if "STRIPE_WAREHOUSE_HOME" in os.environ
                 else f"STRIPE_WAREHOUSE_HOME is unset and the default {DEFAULT_HOME}")
        raise MissingStateDirectory(
            f"no state directory at {path.resolve()} ({where}): set STRIPE_WAREHOUSE_HOME to "
            "the directory holding connections.json, or connect a project first; nothing was "
            "created")
    return path


def warehouse_path(home: Path | str | None = None) -> Path:
    """The DuckDB warehouse file inside the home directory."""
    return home_dir(home) / WAREHOUSE_FILE


def api_base(override: str | None = None) -> str:
    """The Stripe API address (``STRIPE_API_BASE``, default Stripe's), no trailing slash."""
    return (override or os.environ.get("STRIPE_API_BASE") or DEFAULT_API_BASE).rstrip("/")
