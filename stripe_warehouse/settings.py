"""Where state lives and which Stripe address to talk to, from the environment."""

import os
from pathlib import Path

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


def warehouse_path(home: Path | str | None = None) -> Path:
    """The DuckDB warehouse file inside the home directory."""
    return home_dir(home) / WAREHOUSE_FILE


def api_base(override: str | None = None) -> str:
    """The Stripe API address (``STRIPE_API_BASE``, default Stripe's), no trailing slash."""
    return (override or os.environ.get("STRIPE_API_BASE") or DEFAULT_API_BASE).rstrip("/")
