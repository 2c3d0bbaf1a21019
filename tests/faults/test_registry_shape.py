"""A connections.json that is valid JSON of the wrong shape: one line naming the file, exit 2."""

import json
from pathlib import Path

import pytest

from stripe_warehouse.crypto import generate_key
from stripe_warehouse.registry import ConnectionStore, InvalidRegistry
from tests.faults.conftest import Built, cli, one_line_error

GOOD = {"project_id": "shop", "tier": "pro", "status": "active", "mode": "live",
        "created_at": 1.0, "api_key": {"kid": "k", "nonce": "n", "ct": "c"}}
WRONG_SHAPES = {
    "a list": [1, 2],
    "null": None,
    "no connections": {},
    "connections a list": {"connections": [GOOD]},
    "a connection a number": {"connections": {"shop": 7}},
    "missing field": {"connections": {"shop": {k: v for k, v in GOOD.items() if k != "tier"}}},
    "unknown field": {"connections": {"shop": {**GOOD, "colour": "red"}}},
    "wrong type": {"connections": {"shop": {**GOOD, "created_at": "yesterday"}}},
    "secret not encrypted": {"connections": {"shop": {**GOOD, "api_key": "sk_live_x"}}},
    "unknown tier": {"connections": {"shop": {**GOOD, "tier": "gold"}}},
}


@pytest.fixture(params=WRONG_SHAPES)
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "connections.json").write_text(json.dumps(WRONG_SHAPES[request.param]))
    return home


@pytest.mark.parametrize("command", [["status"], ["doctor", "shop"], ["sync", "shop", "--refresh"]])
def test_wrong_shaped_registry_gives_one_line_naming_the_file_and_fix(
    home: Path, command: list[str]
) -> None:
    built = Built(home, "http://127.0.0.1:9", generate_key())
    line = one_line_error(cli(home, built, *command))
    assert f"the connection registry {home / 'connections.json'} is damaged" in line
    assert "restore it from a backup" in line


def test_the_registry_raises_a_typed_error(home: Path) -> None:
    with pytest.raises(InvalidRegistry):
        ConnectionStore(home).list()
