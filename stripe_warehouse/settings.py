"""Where state lives and which Stripe address to talk to, from the environment."""

import os
from pathlib import Path

from stripe_warehouse.errors import WarehouseError

DEFAULT_HOME = "./data"
DEFAULT_API_BASE = "https://api.stripe.com"
WAREHOUSE_FILE = "warehouse.duckdb"
RAW_DATASET = "stripe_raw"
# Files written by duckdb 2.0 are unreadable by DuckDB 1.x tools unless created with this.
DUCKDB_STORAGE_VERSION = "v1.4.0"


def home_dir(home: Path | str | None = None) -> Path:
    """The state directory (``STRIPE_WAREHOUSE_HOME``, default ``./data``), created mode 0700."""
    path = Path(home if home is not None else os.environ.get("STRIPE_WAREHOUSE_HOME", DEFAULT_HOME))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is masked by the umask and ignored for an existing directory.
    os.chmod(path, 0o700)
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
