"""The one error type users see: its message is one line saying what went wrong and the fix."""


class WarehouseError(Exception):
    """A failure the user can fix; ``str(error)`` is the whole one-line message."""

    def __init__(self, message: str) -> None:
        # Keep user-facing messages on one line whatever the caller passed in.
        super().__init__(" ".join(message.split()))


class WarehouseLocked(WarehouseError):
    """Another process (a BI tool, the DuckDB CLI, dbt) holds the warehouse file open."""

    def __init__(self, warehouse: object, what: str) -> None:
        super().__init__(warehouse_locked_message(warehouse, what))


# DuckDB's "IO Error: Could not set lock on file ...: Conflicting lock is held in ..."
_DUCKDB_LOCK_MESSAGE = "could not set lock on file"


def warehouse_locked(text: str) -> bool:
    """True when a DuckDB message says another process holds the warehouse file."""
    return _DUCKDB_LOCK_MESSAGE in text.lower()


def warehouse_locked_message(warehouse: object, what: str) -> str:
    """The one line for a warehouse another process holds: who usually does, and the fix."""
    return (f"the warehouse {warehouse} is open in another process (a BI tool, the DuckDB "
            f"CLI, dbt?): close it and {what} again; loaded data is kept (readers should open "
            "reporting.duckdb, which is never locked)")
