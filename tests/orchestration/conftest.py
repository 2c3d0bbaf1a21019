"""Fixtures for the orchestration tests: a state directory with a real connection registry."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from orchestration.partitions import project_partitions
from orchestration.resources import WarehouseResource
from orchestration.ui import dagster_home
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty state directory, exported as STRIPE_WAREHOUSE_HOME, with a secret key set."""
    state = tmp_path / "state"
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(state))
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    return state


@pytest.fixture
def store(home: Path) -> ConnectionStore:
    return ConnectionStore(home)


@pytest.fixture
def warehouse(home: Path) -> WarehouseResource:
    return WarehouseResource(home=str(home))


@pytest.fixture
def instance(home: Path) -> Iterator[DagsterInstance]:
    """The instance `stripe-warehouse ui` uses: SQLite under the state dir, shipped dagster.yaml."""
    with DagsterInstance.from_config(str(dagster_home(home))) as dagster_instance:
        yield dagster_instance


def known_projects(instance: DagsterInstance) -> set[str]:
    return set(instance.get_dynamic_partitions(project_partitions.name))
