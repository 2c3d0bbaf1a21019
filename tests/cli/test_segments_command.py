"""`stripe-warehouse segments PROJECT`: naming the metadata keys a project keeps for segments,
stored in the registry (`segment_metadata_keys`), which the sync's allowlist reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.cli import main
from stripe_warehouse.registry import ConnectionStore


@pytest.fixture
def home(acme_home: Path) -> Path:
    return acme_home


def test_named_keys_are_stored_and_said_then_cleared(home: Path, capsys) -> None:
    assert main(["segments", "acme", "--customer-key", "tier", "--customer-key", "industry",
                 "--subscription-key", "channel"]) == 0
    assert capsys.readouterr().out == (
        "acme keeps the metadata keys of segments customer.industry, customer.tier, "
        "subscription.channel (only their values; every other key is dropped); run a sync "
        "to read them\n")
    stored = json.loads((home / "connections.json").read_text())["connections"]["acme"]
    assert stored["segment_metadata_keys"] == {"customer": ["industry", "tier"],
                                               "subscription": ["channel"]}
    assert ConnectionStore(home).get("acme").segment_keys == {
        "customer": ("industry", "tier"), "subscription": ("channel",)}
    assert main(["segments", "acme", "--none"]) == 0
    assert capsys.readouterr().out.startswith("acme keeps no metadata")
    assert ConnectionStore(home).get("acme").segment_keys is None


def test_a_key_stripe_could_not_hold_is_one_line_and_changes_nothing(home: Path, capsys) -> None:
    before = (home / "connections.json").read_text()
    assert main(["segments", "acme", "--customer-key", "a[b]"]) == 2
    assert capsys.readouterr().err == ("error: metadata key 'a[b]' is not a Stripe metadata "
                                       "key (1 to 40 characters, no square brackets)\n")
    assert (home / "connections.json").read_text() == before
