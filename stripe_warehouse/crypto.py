"""AES-256-GCM encryption of stored Stripe credentials, bound to their project id."""

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stripe_warehouse.errors import WarehouseError

SECRET_KEY_ENV = "STRIPE_WAREHOUSE_SECRET_KEY"
NONCE_BYTES = 12  # 96-bit nonces, the size GCM is specified for
_MISSING_KEY = (
    f"{SECRET_KEY_ENV} is not set: export a base64-encoded 32-byte key, "
    "e.g. from `stripe-warehouse keygen`"
)
_BAD_KEY = (
    f"{SECRET_KEY_ENV} is not a base64-encoded 32-byte key: export one, "
    "e.g. from `stripe-warehouse keygen`"
)


def generate_key() -> str:
    """A new random key, base64-encoded, ready for ``STRIPE_WAREHOUSE_SECRET_KEY``."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def load_key(encoded: str | None = None) -> bytes:
    """The 32-byte key from ``encoded`` or the environment; a one-line error if absent or bad."""
    value = encoded if encoded is not None else os.environ.get(SECRET_KEY_ENV, "")
    if not value.strip():
        raise WarehouseError(_MISSING_KEY)
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WarehouseError(_BAD_KEY) from None
    if len(key) != 32:
        raise WarehouseError(_BAD_KEY)
    return key


def key_id(key: bytes) -> str:
    """Short fingerprint of a key, stored with each ciphertext to recognise the wrong key."""
    return hashlib.sha256(key).hexdigest()[:8]


def encrypt_secret(plaintext: str, project_id: str, key: bytes) -> dict[str, str]:
    """Encrypt ``plaintext`` for ``project_id``: ``{"kid", "nonce", "ct"}`` (base64)."""
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode(), project_id.encode())
    return {
        "kid": key_id(key),
        "nonce": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ct).decode(),
    }


def decrypt_secret(blob: dict[str, str], project_id: str, key: bytes) -> str:
    """Decrypt a blob from :func:`encrypt_secret`; a one-line error for a wrong key or tampering."""
    if blob.get("kid") != key_id(key):
        raise WarehouseError(
            f"cannot decrypt credentials for project {project_id}: "
            f"{SECRET_KEY_ENV} is not the key they were stored with"
        )
    try:
        nonce = base64.b64decode(blob["nonce"])
        ct = base64.b64decode(blob["ct"])
        return AESGCM(key).decrypt(nonce, ct, project_id.encode()).decode()
    except (InvalidTag, KeyError, binascii.Error, ValueError):
        raise WarehouseError(
            f"cannot decrypt credentials for project {project_id}: they were altered or belong "
            "to another project; reconnect with `stripe-warehouse connect`"
        ) from None
