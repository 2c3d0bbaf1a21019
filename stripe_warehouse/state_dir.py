"""The state directory: one value that knows where every file of a warehouse lives.

Each entry point (the CLI's ``main``, the web app factory, Dagster's warehouse resource)
resolves it once with :meth:`StateDir.resolve` (the only reader of ``STRIPE_WAREHOUSE_HOME``)
and hands it, or its ``root``, down; code below the entry points takes it with
:meth:`StateDir.of`, which never reads the environment. Created mode 0700 by
:meth:`StateDir.create`, once per process and directory; read-only commands use
:meth:`StateDir.existing`, which never creates it. Everything in it is owner-only (see
:data:`stripe_warehouse.settings.PRIVATE_UMASK`).
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.warehouse_target import WarehouseTarget

HOME_ENV = "STRIPE_WAREHOUSE_HOME"
DEFAULT_HOME = "./data"
# Files written by duckdb 2.0 are unreadable by DuckDB 1.x tools unless created with this
# (the warehouse and the readers' copy).
DUCKDB_STORAGE_VERSION = "v1.4.0"

WAREHOUSE_FILE = "warehouse.duckdb"
REPORTING_FILE = "reporting.duckdb"  # the readers' copy of the marts (stripe_warehouse.publish)
INBOX_FILE = "inbox.sqlite"  # accepted webhook events (stripe_warehouse.inbox)
REGISTRY_FILE = "connections.json"  # the connection registry (stripe_warehouse.registry)
ALERTS_FILE = "alerts.sqlite"  # alert state, history and deliveries (stripe_warehouse.alert_state)
DAGSTER_DIR = "dagster"  # DAGSTER_HOME of `stripe-warehouse ui` and the real-time service
DBT_DIR = "dbt"  # dbt's target and logs for this state directory (stripe_warehouse.transform)

# Directories this process already created or checked: created once, not on every call.
_checked: set[Path] = set()


class MissingStateDirectory(WarehouseError):
    """A read-only command found no state directory (and must not create one)."""


@dataclass(frozen=True)
class StateDir:
    """An absolute state directory and the paths inside it."""

    root: Path

    @classmethod
    def resolve(cls, home: Path | str | StateDir | None = None) -> StateDir:
        """``home``, else ``STRIPE_WAREHOUSE_HOME``, else ``./data``, as an absolute path;
        nothing is created."""
        if isinstance(home, StateDir):
            return home
        configured = home if home is not None else os.environ.get(HOME_ENV, DEFAULT_HOME)
        return cls(Path(configured).resolve())

    @classmethod
    def of(cls, home: Path | str | StateDir) -> StateDir:
        """The state directory an entry point resolved and passed down (a ``StateDir`` or its
        path), as an absolute path; never reads the environment, creates nothing."""
        if isinstance(home, StateDir):
            return home
        if home is None:  # a caller below the entry points must be handed its directory
            raise TypeError("no state directory given: resolve it once at the entry point "
                            "(StateDir.resolve) and pass it down")
        return cls(Path(home).resolve())

    def create(self) -> StateDir:
        """Create the directory 0700 (once per process); tighten an existing looser one.

        One that cannot be changed (a read-only mount, another owner's) is used as it is, so
        reading commands work there and writers fail on their first write, in one line.
        """
        if self.root in _checked and self.root.is_dir():
            return self
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise WarehouseError(
                f"cannot create the state directory {self.root} ({error.strerror}): set "
                f"{HOME_ENV} to a writable directory"
            ) from None
        # mkdir's mode is masked by the umask and ignored for an existing directory.
        if stat.S_IMODE(self.root.stat().st_mode) != 0o700:
            with suppress(OSError):
                os.chmod(self.root, 0o700)
        _checked.add(self.root)
        return self

    def existing(self) -> StateDir:
        """This directory for a read-only command: a one-line error if it does not exist.

        Read-only commands (status, doctor, metrics) run from any directory: creating
        ``./data`` wherever they run would leave stray empty state directories behind.
        """
        if not self.root.is_dir():
            where = (HOME_ENV if HOME_ENV in os.environ
                     else f"{HOME_ENV} is unset and the default {DEFAULT_HOME}")
            raise MissingStateDirectory(
                f"no state directory at {self.root} ({where}): set {HOME_ENV} to the "
                "directory holding connections.json, or connect a project first; nothing was "
                "created")
        return self

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse (raw, staging, intermediate and marts schemas)."""
        return self.root / WAREHOUSE_FILE

    @property
    def target(self) -> WarehouseTarget:
        """The warehouse's database: DuckDB (:attr:`warehouse`) unless this directory's
        ``warehouse_target.json`` names a PostgreSQL server (stripe_warehouse.warehouse_target)."""
        return WarehouseTarget.read(self.root)

    @property
    def reporting(self) -> Path:
        """The read-only copy of the marts that readers open."""
        return self.root / REPORTING_FILE

    @property
    def inbox(self) -> Path:
        """The webhook inbox (SQLite)."""
        return self.root / INBOX_FILE

    @property
    def registry(self) -> Path:
        """The connection registry."""
        return self.root / REGISTRY_FILE

    @property
    def alerts(self) -> Path:
        """Each alert rule's fired/resolved state per day and what was sent."""
        return self.root / ALERTS_FILE

    @property
    def dagster(self) -> Path:
        """The Dagster instance directory (``DAGSTER_HOME``)."""
        return self.root / DAGSTER_DIR

    @property
    def dbt(self) -> Path:
        """dbt's output for this state directory (target directories, logs)."""
        return self.root / DBT_DIR

    def dbt_env(self) -> dict[str, str]:
        """What dbt's process needs to find this warehouse: ``profiles.yml`` reads the state
        directory from the environment (dbt's own mechanism), and dbt's target and log
        directories stay in it (``DBT_TARGET_PATH`` / ``DBT_LOG_PATH`` override them)."""
        return {
            HOME_ENV: str(self.root),
            # otherwise the docs site loads a tracking script from the internet
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_TARGET_PATH": str(self.dbt_target),
            "DBT_LOG_PATH": str(self.dbt_logs),
            **self.target.dbt_env(),
        }

    @property
    def dbt_target(self) -> Path:
        """dbt's target directory: ``dbt/target``, unless ``DBT_TARGET_PATH`` is set."""
        configured = os.environ.get("DBT_TARGET_PATH")
        return Path(configured) if configured else self.dbt / "target"

    @property
    def dbt_logs(self) -> Path:
        """dbt's log directory: ``dbt/logs``, unless ``DBT_LOG_PATH`` is set."""
        configured = os.environ.get("DBT_LOG_PATH")
        return Path(configured) if configured else self.dbt / "logs"
