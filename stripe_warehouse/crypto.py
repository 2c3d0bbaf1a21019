"""AES-256-GCM encryption of stored Stripe credentials, bound to their project id.

Each ciphertext names the id of the key that sealed it, so that during a key rotation the
previous keys (``STRIPE_WAREHOUSE_OLD_SECRET_KEYS``) still open what they sealed.
"""

import base64
import binascii
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.state_dir import StateDir

SECRET_KEY_ENV = "STRIPE_WAREHOUSE_SECRET_KEY"
OLD_KEYS_ENV = "STRIPE_WAREHOUSE_OLD_SECRET_KEYS"  # comma-separated, readable during a rotation
NEW_KEY_ENV = "STRIPE_WAREHOUSE_NEW_SECRET_KEY"  # the key `rotate-key` re-encrypts under
DEMO_KEY_FILE = "secret.key"  # written by `stripe-warehouse demo` into the state directory
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


_announced_key_files: set[str] = set()


def _demo_key_file(home: Path | StateDir | None) -> str | None:
    """The demo's key file, when the state directory holds one; said once per process.

    Only read while STRIPE_WAREHOUSE_SECRET_KEY is absent from the environment: a key stored
    beside the data it protects is a convenience for the demo, never for production. ``home``
    is the caller's state directory; without one there is no key file to read (the
    environment's state directory is resolved by the entry points only).
    """
    if home is None:
        return None
    path = StateDir.of(home).root / DEMO_KEY_FILE
    if not path.is_file():
        return None
    if str(path) not in _announced_key_files:
        _announced_key_files.add(str(path))
        print(f"note: {SECRET_KEY_ENV} is unset: using the demo's key file {path} (a key "
              f"beside the data it protects is for demos only: export {SECRET_KEY_ENV} in "
              "production)", file=sys.stderr, flush=True)
    return path.read_text()


def load_key(
    encoded: str | None = None, variable: str = SECRET_KEY_ENV,
    home: Path | StateDir | None = None,
) -> bytes:
    """The 32-byte key from ``encoded`` or ``variable``; a one-line error if absent or bad.

    With ``variable`` absent from the environment, the key file the demo wrote into the state
    directory ``home`` is used (and a line on stderr says so).
    """
    value = encoded if encoded is not None else os.environ.get(variable)
    if value is None and variable == SECRET_KEY_ENV:
        value = _demo_key_file(home)
    value = value or ""
    if not value.strip():
        raise WarehouseError(_MISSING_KEY.replace(SECRET_KEY_ENV, variable))
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WarehouseError(_BAD_KEY.replace(SECRET_KEY_ENV, variable)) from None
    if len(key) != 32:
        raise WarehouseError(_BAD_KEY.replace(SECRET_KEY_ENV, variable))
    return key


def load_keyring(home: Path | StateDir | None = None) -> dict[str, bytes]:
    """Every key that may open a stored secret, by key id: the current one and the old ones."""
    current = load_key(home=home)
    keyring = {key_id(current): current}
    for encoded in os.environ.get(OLD_KEYS_ENV, "").replace(",", " ").split():
        old = load_key(encoded, OLD_KEYS_ENV)
        keyring.setdefault(key_id(old), old)
    return keyring


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


def decrypt_secret(
    blob: dict[str, str], project_id: str, key: bytes | Mapping[str, bytes]
) -> str:
    """Decrypt a blob from :func:`encrypt_secret` with ``key`` or the keyring entry it names.

    ``key`` is one key or a keyring (key id -> key, see :func:`load_keyring`); a one-line error
    for a missing key or tampering.
    """
    keyring = {key_id(key): key} if isinstance(key, bytes) else key
    opener = keyring.get(blob.get("kid", ""))
    if opener is None:
        message = (f"cannot decrypt credentials for project {project_id}: "
                   f"{SECRET_KEY_ENV} is not the key they were stored with")
        if len(keyring) > 1:
            message += (f", nor is any key in {OLD_KEYS_ENV}: export the key whose id is "
                        f"{blob.get('kid')!r} in one of them")
        raise WarehouseError(message)
    try:
        nonce = base64.b64decode(blob["nonce"])
        ct = base64.b64decode(blob["ct"])
        return AESGCM(opener).decrypt(nonce, ct, project_id.encode()).decode()
    except (InvalidTag, KeyError, binascii.Error, ValueError):
        raise WarehouseError(
            f"cannot decrypt credentials for project {project_id}: they were altered or belong "
            "to another project; reconnect with `stripe-warehouse connect`"
        ) from None
