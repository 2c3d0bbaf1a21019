"""Keeping secrets: key ids, the keyring of old keys, and `rotate-key` (atomic re-encryption)."""

import base64
import json
import stat
from pathlib import Path

import pytest

from commands.cli import main
from stripe_warehouse import registry as registry_module
from stripe_warehouse.crypto import (
    NEW_KEY_ENV,
    OLD_KEYS_ENV,
    SECRET_KEY_ENV,
    decrypt_secret,
    encrypt_secret,
    generate_key,
    key_id,
    load_key,
    load_keyring,
)
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore

API_KEY = "rk_live_rotation_0123456789"
WEBHOOK_SECRET = "whsec_rotation_0123456789"
ACCESS_TOKEN = "sk_test_oauth_rotation_token"
REFRESH_TOKEN = "rt_rotation_refresh_token"


@pytest.fixture
def store(home: Path) -> ConnectionStore:
    """Two projects holding every kind of secret: API key, webhook secret, OAuth tokens."""
    store = ConnectionStore(home)
    store.connect("keyed", "pro", API_KEY, webhook_secret=WEBHOOK_SECRET)
    store.connect_oauth("oauthed", "scale", ACCESS_TOKEN, stripe_user_id="acct_1",
                        scope="read_only", livemode=False, refresh_token=REFRESH_TOKEN)
    return store


def blobs(home: Path) -> list[dict[str, str]]:
    connections = json.loads((home / "connections.json").read_text())["connections"]
    return [c[name] for c in connections.values()
            for name in ("api_key", "webhook_secret", "refresh_token") if c[name]]


def test_keyring_holds_the_current_key_and_the_old_ones_by_key_id(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    old_a, old_b = generate_key(), generate_key()
    monkeypatch.setenv(OLD_KEYS_ENV, f"{old_a}, {old_b}")
    keyring = load_keyring()
    assert list(keyring) == [key_id(load_key()), key_id(load_key(old_a)), key_id(load_key(old_b))]


def test_secret_sealed_with_an_old_key_opens_through_the_keyring(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    old = generate_key()
    blob = encrypt_secret(API_KEY, "keyed", load_key(old))
    assert blob["kid"] == key_id(load_key(old))
    with pytest.raises(WarehouseError, match="is not the key they were stored with"):
        decrypt_secret(blob, "keyed", load_keyring())
    monkeypatch.setenv(OLD_KEYS_ENV, old)
    assert decrypt_secret(blob, "keyed", load_keyring()) == API_KEY


def test_unknown_key_id_error_names_both_variables_and_the_key_id(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv(OLD_KEYS_ENV, generate_key())
    blob = encrypt_secret(API_KEY, "keyed", load_key(generate_key()))
    with pytest.raises(WarehouseError) as error:
        decrypt_secret(blob, "keyed", load_keyring())
    message = str(error.value)
    assert SECRET_KEY_ENV in message and OLD_KEYS_ENV in message and blob["kid"] in message
    assert "\n" not in message


def test_bad_old_key_is_a_one_line_error_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv(OLD_KEYS_ENV, "not-a-key")
    with pytest.raises(WarehouseError, match=f"^{OLD_KEYS_ENV} is not a base64-encoded 32-byte"):
        load_keyring()


def test_rotation_reencrypts_every_secret_under_the_new_key(
    store: ConnectionStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = load_key()
    new = load_key(generate_key())
    assert store.rotate_key(new) == 4
    assert {b["kid"] for b in blobs(home)} == {key_id(new)}
    assert stat.S_IMODE((home / "connections.json").stat().st_mode) == 0o600
    # The new key alone opens everything; the old key alone opens nothing.
    monkeypatch.setenv(SECRET_KEY_ENV, base64.b64encode(new).decode())
    assert store.api_key("keyed") == API_KEY
    assert store.webhook_secret("keyed") == WEBHOOK_SECRET
    assert store.api_key("oauthed") == ACCESS_TOKEN
    blob = store.get("oauthed").refresh_token
    assert blob is not None and decrypt_secret(blob, "oauthed", new) == REFRESH_TOKEN
    with pytest.raises(WarehouseError, match="is not the key they were stored with"):
        decrypt_secret(store.get("keyed").api_key, "keyed", old)


def test_interrupted_rotation_keeps_the_registry_readable_with_the_old_key(
    store: ConnectionStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (home / "connections.json").read_bytes()

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # the moment the new file would replace the old one

    monkeypatch.setattr(registry_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.rotate_key(load_key(generate_key()))
    monkeypatch.undo()
    assert (home / "connections.json").read_bytes() == before
    assert not list(home.glob(".connections.*.tmp"))


def test_rotation_changes_nothing_when_a_secret_cannot_be_opened(
    store: ConnectionStore, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (home / "connections.json").read_bytes()
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())  # the stored key is forgotten
    with pytest.raises(WarehouseError, match="cannot decrypt credentials for project"):
        store.rotate_key(load_key(generate_key()))
    assert (home / "connections.json").read_bytes() == before


def test_rotate_key_command_uses_the_new_key_variable(
    store: ConnectionStore, home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = generate_key()
    monkeypatch.setenv(NEW_KEY_ENV, new)
    assert main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"re-encrypted 4 secrets under key {key_id(load_key(new))}.")
    assert new not in out
    monkeypatch.setenv(SECRET_KEY_ENV, new)
    assert store.api_key("oauthed") == ACCESS_TOKEN


def test_rotate_key_command_saves_a_generated_key_0600_and_never_prints_it(
    store: ConnectionStore, home: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    previous = load_key()
    assert main(["rotate-key"]) == 0
    saved = home / "secret.key.new"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    new = saved.read_text().strip()
    assert new not in capsys.readouterr().out
    # During the switch, processes with the new key and the old one in the keyring read all.
    monkeypatch.setenv(SECRET_KEY_ENV, new)
    monkeypatch.setenv(OLD_KEYS_ENV, base64.b64encode(previous).decode())
    assert store.api_key("keyed") == API_KEY
    assert main(["rotate-key"]) == 2  # a second generated key would overwrite the first
    assert "exists from an earlier rotation" in capsys.readouterr().err
    assert saved.read_text().strip() == new
