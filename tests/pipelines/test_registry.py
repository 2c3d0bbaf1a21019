"""The connection registry: permissions, atomic writes, concurrent writers, validation."""

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from stripe_warehouse.crypto import generate_key
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.registry import ConnectionStore


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", key)
    return key


def test_registry_file_is_0600_and_home_0700(tmp_path: Path) -> None:
    home = tmp_path / "state"
    store = ConnectionStore(home)
    store.connect("acme", "pro", "sk_live_abc")
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_keys_are_stored_encrypted_and_decrypt_back(tmp_path: Path) -> None:
    store = ConnectionStore(tmp_path)
    store.connect("acme", "pro", "sk_live_abc", webhook_secret="whsec_xyz")
    text = store.path.read_text()
    assert "sk_live_abc" not in text and "whsec_xyz" not in text
    assert store.api_key("acme") == "sk_live_abc"
    assert store.webhook_secret("acme") == "whsec_xyz"


def test_connection_records_mode_tier_and_sync(tmp_path: Path) -> None:
    store = ConnectionStore(tmp_path)
    assert store.connect("acme", "basic", "rk_test_abc").mode == "test"
    assert store.connect("globex", "pro", "sk_live_abc").mode == "live"
    store.set_tier("acme", "scale")
    store.record_sync("acme", "backfill", 1700.0, 1650)
    store.record_sync("acme", "refresh", 1800.0, 1600)  # an older event never moves it back
    acme = store.get("acme")
    assert (acme.tier, acme.last_sync_kind, acme.last_sync_at) == ("scale", "refresh", 1800.0)
    assert acme.last_event_created == 1650
    store.disconnect("globex")
    assert [(c.project_id, c.status) for c in store.list()] == [
        ("acme", "active"), ("globex", "disconnected")]


def test_reconnecting_keeps_the_sync_position(tmp_path: Path) -> None:
    store = ConnectionStore(tmp_path)
    store.connect("acme", "pro", "sk_live_old")
    store.record_sync("acme", "backfill", 1700.0, 1650)
    store.disconnect("acme")
    again = store.connect("acme", "pro", "sk_live_new")
    assert (again.status, again.last_event_created) == ("active", 1650)
    assert store.api_key("acme") == "sk_live_new"


def test_unknown_project_names_status_and_connect(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError) as error:
        ConnectionStore(tmp_path).get("nope")
    assert "stripe-warehouse status" in str(error.value)
    assert "stripe-warehouse connect nope" in str(error.value)


@pytest.mark.parametrize("bad", ["Acme", "a-b", "", "x" * 41, "a b", "../etc"])
def test_invalid_project_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(WarehouseError, match="invalid project id"):
        ConnectionStore(tmp_path).connect(bad, "pro", "sk_live_abc")


def test_unknown_tier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="starter, basic, pro, scale"):
        ConnectionStore(tmp_path).connect("acme", "gold", "sk_live_abc")


def test_failed_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ConnectionStore(tmp_path)
    store.connect("acme", "pro", "sk_live_abc")
    before = store.path.read_text()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError):
        store.connect("globex", "pro", "sk_live_def")
    assert store.path.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def _connect_many(home: str, worker: int, key: str) -> None:
    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = key
    store = ConnectionStore(home)
    for n in range(10):
        store.connect(f"p{worker}_{n}", "pro", f"sk_live_{worker}_{n}")


def test_concurrent_writers_lose_no_update(tmp_path: Path, secret_key: str) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [
        ctx.Process(target=_connect_many, args=(str(tmp_path), w, secret_key)) for w in range(4)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    store = ConnectionStore(tmp_path)
    assert len(store.list()) == 40
    assert store.api_key("p3_9") == "sk_live_3_9"
