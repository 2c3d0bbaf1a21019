"""A project's reporting time zone (issue 22): the IANA name its marts' days and months follow.

Stored in the registry (``stripe-warehouse timezone PROJECT NAME``), written on every
``sync_runs`` row the project's loads append, and read from there by dbt
(``int_reporting_time_zones``): a change takes effect from the project's next sync on.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from stripe_warehouse.errors import WarehouseError

DEFAULT_TIME_ZONE = "UTC"


class UnknownTimeZone(WarehouseError):
    """Not an IANA time zone name that both the tz database and the warehouse know."""


@cache
def _known_names() -> frozenset[str]:
    # names the warehouse (DuckDB's ICU, PostgreSQL's tz database) also knows: no "localtime",
    # "posixrules" or "Factory", which are files of the database rather than zones
    return frozenset(name for name in zoneinfo.available_timezones()
                     if name not in {"localtime", "posixrules", "Factory"})


def validate_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone name (``Europe/Berlin``, ``UTC``); otherwise a
    one-line :class:`UnknownTimeZone` naming the fix."""
    if name not in _known_names():
        raise UnknownTimeZone(
            f"unknown time zone {name!r}: use an IANA time zone name, e.g. Europe/Berlin, "
            "America/New_York or UTC (nothing was changed)")
    return name
