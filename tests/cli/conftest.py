"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore


@pytest.fixture
def acme_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory (the CLI's, by STRIPE_WAREHOUSE_HOME) with project `acme` connected."""
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path))
    ConnectionStore(tmp_path).connect("acme", "pro", "sk_test_acme")
    return tmp_path
