"""AES-256-GCM credential encryption."""

import base64
from pathlib import Path

import pytest

from stripe_warehouse.crypto import (
    decrypt_secret,
    encrypt_secret,
    generate_key,
    key_id,
    load_key,
)
from stripe_warehouse.errors import WarehouseError


@pytest.fixture
def key() -> bytes:
    return load_key(generate_key())


def test_round_trip_returns_the_secret(key: bytes) -> None:
    blob = encrypt_secret("sk_live_abc", "acme", key)
    assert set(blob) == {"kid", "nonce", "ct"}
    assert "sk_live_abc" not in str(blob)
    assert decrypt_secret(blob, "acme", key) == "sk_live_abc"


def test_each_encryption_uses_a_fresh_96_bit_nonce(key: bytes) -> None:
    nonces = {encrypt_secret("same", "acme", key)["nonce"] for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(base64.b64decode(n)) == 12 for n in nonces)


def test_tampered_ciphertext_is_refused(key: bytes) -> None:
    blob = encrypt_secret("sk_live_abc", "acme", key)
    ct = bytearray(base64.b64decode(blob["ct"]))
    ct[0] ^= 1
    tampered = dict(blob, ct=base64.b64encode(bytes(ct)).decode())
    with pytest.raises(WarehouseError, match="cannot decrypt credentials for project acme"):
        decrypt_secret(tampered, "acme", key)


def test_secret_of_one_project_cannot_be_replayed_for_another(key: bytes) -> None:
    blob = encrypt_secret("sk_live_abc", "acme", key)
    with pytest.raises(WarehouseError, match="project globex"):
        decrypt_secret(blob, "globex", key)


def test_wrong_key_names_the_environment_variable() -> None:
    blob = encrypt_secret("sk_live_abc", "acme", load_key(generate_key()))
    other = load_key(generate_key())
    with pytest.raises(WarehouseError) as error:
        decrypt_secret(blob, "acme", other)
    assert str(error.value) == (
        "cannot decrypt credentials for project acme: "
        "STRIPE_WAREHOUSE_SECRET_KEY is not the key they were stored with"
    )


def test_key_id_is_first_8_hex_of_sha256(key: bytes) -> None:
    import hashlib

    assert key_id(key) == hashlib.sha256(key).hexdigest()[:8]
    assert encrypt_secret("x", "acme", key)["kid"] == key_id(key)


def test_missing_key_explains_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STRIPE_WAREHOUSE_SECRET_KEY", raising=False)
    # A state directory without the demo's key file (./data may hold one after `make demo`).
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path))
    with pytest.raises(WarehouseError) as error:
        load_key()
    assert str(error.value) == (
        "STRIPE_WAREHOUSE_SECRET_KEY is not set: export a base64-encoded 32-byte key, "
        "e.g. from `stripe-warehouse keygen`"
    )


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_ill_formed_key_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(WarehouseError, match="not a base64-encoded 32-byte key"):
        load_key(bad)


def test_the_demo_key_file_is_read_from_the_state_dir_the_caller_hands_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without STRIPE_WAREHOUSE_SECRET_KEY the demo's secret.key is used: the one in the state
    directory the registry or the CLI passes, not whatever STRIPE_WAREHOUSE_HOME names."""
    monkeypatch.delenv("STRIPE_WAREHOUSE_SECRET_KEY", raising=False)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path / "elsewhere"))
    encoded = generate_key()
    (tmp_path / "secret.key").write_text(encoded)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.key").write_text(generate_key())
    assert load_key(home=tmp_path) == base64.b64decode(encoded)
    with pytest.raises(WarehouseError, match="is not set"):
        load_key()  # no state directory handed over: the environment's is never read
