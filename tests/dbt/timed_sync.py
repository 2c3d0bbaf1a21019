"""A real sync run as if at an earlier moment (its rows and its run stamped then)."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

import pytest

import pipelines.load
import pipelines.source
from pipelines.load import sync_project
from stripe_warehouse.registry import ConnectionStore


class FrozenClock(dt.datetime):
    """`datetime.now` of the sync stuck at one moment."""

    frozen: dt.datetime

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        return cls.frozen


def sync_as_of(store: ConnectionStore, project_id: str, home: Path, url: str, kind: str,
               at: int | None) -> None:
    """A real sync of `project_id` over HTTP, run as if at `at` (unix seconds); now if None."""
    if at is None:
        sync_project(store, project_id, kind, home=home, api_base=url)
        return
    clock = type("Clock", (FrozenClock,), {"frozen": dt.datetime.fromtimestamp(at, dt.UTC)})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipelines.source, "_now", lambda: clock.frozen)
        patch.setattr(pipelines.load, "dt", types.SimpleNamespace(datetime=clock, UTC=dt.UTC))
        sync_project(store, project_id, kind, home=home, api_base=url, now=at)
