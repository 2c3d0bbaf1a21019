"""Fixtures for sync tests: a secret key, seeded sandbox companies served over real HTTP."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.crypto import generate_key
from stripe_warehouse.registry import ConnectionStore

NOW = 1_780_000_000  # a fixed present, so windows and counts are reproducible
TEST_KEY = "sk_test_acme"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    monkeypatch.setenv("STRIPE_WAREHOUSE_SECRET_KEY", key)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    return key


@pytest.fixture
def company() -> Company:
    """A fresh 200-customer company (tests may mutate it)."""
    return generate_company(CompanyConfig(customers=200, years=3, seed=42, now=NOW))


@pytest.fixture
def sandbox(company: Company) -> Iterator[SandboxServer]:
    with SandboxServer(accounts={TEST_KEY: company}, host="127.0.0.1", port=0) as srv:
        yield srv


@pytest.fixture
def store(tmp_path: Path) -> ConnectionStore:
    store = ConnectionStore(tmp_path / "home")
    store.connect("acme", "pro", TEST_KEY)
    return store


def query(home: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Run a read-only query on the warehouse and close the connection."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def table_ids(home: Path, table: str, project_id: str = "acme") -> list[str]:
    return sorted(r[0] for r in query(
        home, f"select id from stripe_raw.{table} where project_id = ?", [project_id]))
