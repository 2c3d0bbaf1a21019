"""`stripe-warehouse timezone PROJECT [NAME]`: a project's reporting time zone (issue 22),
stored in the registry (`reporting_time_zone`, null for the default UTC), shown by `status`;
each sync writes it on its sync_runs row (tests/dbt/test_reporting_time_zone.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.cli import main
from stripe_warehouse.registry import ConnectionStore


@pytest.fixture
def home(acme_home: Path) -> Path:
    return acme_home


def _stored(home: Path) -> object:
    return json.loads((home / "connections.json").read_text())["connections"]["acme"][
        "reporting_time_zone"]


def test_a_zone_is_stored_said_shown_by_status_and_utc_clears_it(home: Path, capsys) -> None:
    assert main(["timezone", "acme"]) == 0
    assert capsys.readouterr().out == "acme reports its days and months in UTC\n"
    assert main(["timezone", "acme", "America/New_York"]) == 0
    assert capsys.readouterr().out == (
        "acme reports its days and months in America/New_York; from its next sync on "
        "(`stripe-warehouse sync acme`), whose build rewrites its days\n")
    assert _stored(home) == "America/New_York"
    assert ConnectionStore(home).get("acme").time_zone == "America/New_York"
    assert main(["status"]) == 0
    assert "acme: days and months in America/New_York (its reporting time zone)" in (
        capsys.readouterr().out.splitlines())
    assert main(["timezone", "acme", "UTC"]) == 0
    capsys.readouterr()
    assert _stored(home) is None
    assert ConnectionStore(home).get("acme").time_zone == "UTC"


def test_an_unknown_zone_is_one_line_naming_the_fix_and_changes_nothing(home: Path,
                                                                        capsys) -> None:
    before = (home / "connections.json").read_text()
    assert main(["timezone", "acme", "Mars/Base"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown time zone 'Mars/Base': use an IANA time zone name, e.g. Europe/Berlin, "
        "America/New_York or UTC (nothing was changed)\n")
    assert (home / "connections.json").read_text() == before


def test_a_reconnection_keeps_the_zone(home: Path) -> None:
    store = ConnectionStore(home)
    store.set_reporting_time_zone("acme", "Europe/Berlin")
    store.connect("acme", "pro", "sk_test_acme_again")
    assert store.get("acme").time_zone == "Europe/Berlin"
