"""Fixtures: a scenario warehouse built once per session with a real `dbt build`."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stripe_warehouse.publish import published_path
from stripe_warehouse.state_dir import WAREHOUSE_FILE
from stripe_warehouse.transform import build
from tests.dbt.change_scenarios import REGISTERED, ChangeScenario, Timeline, run_change_scenarios
from tests.dbt.saas_scenario import build_saas_marts
from tests.dbt.scenario import build_scenario
from tests.dbt.warehouses import POSTGRES, TARGETS, NewHome, home_factory


@pytest.fixture(scope="session", autouse=True)
def dbt_target_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A target directory of this test session, so that concurrent dbt runs do not share one."""
    target = tmp_path_factory.mktemp("dbt_target")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target))
        yield target


@pytest.fixture(scope="session")
def scenario_home(tmp_path_factory: pytest.TempPathFactory, dbt_target_path: Path) -> Path:
    """A state directory whose warehouse holds the scenario, built by dbt (tests included)."""
    home = tmp_path_factory.mktemp("scenario_home")
    build_scenario(home)
    build(home=home)
    return home


@pytest.fixture(scope="session")
def saas_marts(tmp_path_factory: pytest.TempPathFactory, dbt_target_path: Path) -> Path:
    """The SaaS-metrics company (tests/dbt/saas_scenario.py) backfilled as of its NOW and
    built: the warehouse file, shared by the rate, cohort and semantic-layer tests."""
    return build_saas_marts(tmp_path_factory.mktemp("saas_metrics_home"))


@pytest.fixture()
def built_scenario_copy(scenario_home: Path, tmp_path: Path) -> Path:
    """A state directory of the test's own holding the scenario as `build_scenario` and a first
    `build` leave it (the warehouse and the readers' copy): the session's build, copied."""
    for source in (scenario_home / WAREHOUSE_FILE, published_path(scenario_home)):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


@pytest.fixture()
def scenario_db(scenario_home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the built scenario warehouse."""
    con = duckdb.connect(str(scenario_home / "warehouse.duckdb"), read_only=True)
    try:
        yield con
    finally:
        con.close()


@pytest.fixture(scope="module", params=TARGETS)
def warehouse_kind(request: pytest.FixtureRequest) -> str:
    """The warehouse a scenario module's fixtures build: each of its tests runs on DuckDB and
    on PostgreSQL (tests/dbt/warehouses.py), one built warehouse per scenario and target."""
    return request.param


@pytest.fixture(scope="module")
def new_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             warehouse_kind: str) -> NewHome:
    """``new_home(name)``: a state directory on the module's target (on PostgreSQL, a database
    of its own on the session's server, started only when a PostgreSQL variant runs)."""
    server_url = request.getfixturevalue("postgres_url") if warehouse_kind == POSTGRES else None
    return home_factory(tmp_path_factory, warehouse_kind, server_url)


ChangeHistories = Callable[[str, ChangeScenario], tuple[Timeline, dict[str, Any]]]


@pytest.fixture(scope="session")
def change_histories(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> ChangeHistories:
    """``change_histories(kind, case)``: (timeline, {stage: history}) of a change module's case
    on target ``kind``. The first call for a target runs every registered case at once in the
    shared warehouses (tests/dbt/change_scenarios.py); a failure is kept and raised to each
    case instead of being run again."""
    runs: dict[str, Any] = {}

    def histories(kind: str, case: ChangeScenario) -> tuple[Timeline, dict[str, Any]]:
        if kind not in runs:
            server_url = request.getfixturevalue("postgres_url") if kind == POSTGRES else None
            times = Timeline()
            try:
                runs[kind] = times, run_change_scenarios(
                    list(REGISTERED.values()), times,
                    home_factory(tmp_path_factory, kind, server_url))
            except Exception as failure:  # noqa: BLE001 - re-raised for every case below
                runs[kind] = failure
        if isinstance(runs[kind], Exception):
            raise runs[kind]
        times, found = runs[kind]
        return times, found[case.project_id]

    return histories
