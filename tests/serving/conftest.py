"""A small sandbox company synced and built once per module: the marts the readers read."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.load import sync_project
from sandbox.company import Company, CompanyConfig, generate_company
from sandbox.server import SandboxServer
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.transform import build

API_KEY = "sk_test_serving"
PROJECT = "acme"


@dataclass
class BuiltWarehouse:
    home: Path
    company: Company
    server: SandboxServer
    store: ConnectionStore


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    home = tmp_path_factory.mktemp("serving-home")
    old_key = os.environ.get("STRIPE_WAREHOUSE_SECRET_KEY")
    os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["DBT_TARGET_PATH"] = str(home / "dbt-target")
    company = generate_company(CompanyConfig(customers=150, years=1, seed=11))
    with SandboxServer(accounts={API_KEY: company}) as server:
        store = ConnectionStore(home)
        store.connect(PROJECT, "pro", API_KEY)
        sync_project(store, PROJECT, "backfill", home=home, api_base=server.url)
        build(home=home)
        yield BuiltWarehouse(home, company, server, store)
    os.environ.pop("DBT_TARGET_PATH", None)
    if old_key is None:
        os.environ.pop("STRIPE_WAREHOUSE_SECRET_KEY", None)
    else:
        os.environ["STRIPE_WAREHOUSE_SECRET_KEY"] = old_key
