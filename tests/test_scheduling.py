"""The order and the work units `make test`'s two workers get (tests/scheduling.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import scheduling
from tests.scheduling import CHANGE_MODULES, CHANGE_UNIT, DEMO_MODULES, DEMO_UNIT, rank, work_unit

REPO = Path(__file__).resolve().parent.parent


def test_the_change_modules_are_one_unit_per_target() -> None:
    assert work_unit("tests/dbt/test_seat_changes.py::test_a[duckdb]") == CHANGE_UNIT
    assert work_unit("tests/dbt/test_many_items.py::test_b[postgres]") == (
        f"{CHANGE_UNIT}[postgres]")
    # the module's test without a target runs with the DuckDB unit
    assert work_unit("tests/dbt/test_item_removal.py::test_old_release") == CHANGE_UNIT


def test_the_modules_reading_the_session_s_demo_are_one_unit() -> None:
    """Their worker runs the demo once (tests/newcomer.py)."""
    assert {work_unit(f"{module}::test_a") for module in DEMO_MODULES} == {DEMO_UNIT}
    assert all((REPO / module).is_file() for module in DEMO_MODULES)
    # and every module that uses the session's demo is in it
    using = {str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py")
             if path != Path(__file__) and "newcomers_demo" in path.read_text()}
    assert using <= set(DEMO_MODULES)


def test_a_split_module_s_postgresql_variant_is_a_unit_of_its_own() -> None:
    assert work_unit("tests/dbt/test_tax.py::test_x[postgres-backfill_after_1]") == (
        "tests/dbt/test_tax.py[postgres]")
    assert work_unit("tests/dbt/test_tax.py::test_x[duckdb-backfill_after_1]") == (
        "tests/dbt/test_tax.py")
    # not split: one of its tests compares both targets' warehouses
    assert work_unit("tests/dbt/test_e2e_metrics.py::test_x[postgres]") == (
        "tests/dbt/test_e2e_metrics.py")
    assert work_unit("tests/cli/test_cli.py::test_y") == "tests/cli/test_cli.py"


def test_slow_units_come_first_and_a_module_s_variants_together() -> None:
    ids = ["tests/cli/test_cli.py::test_y", "tests/dbt/test_tax.py::test_x[postgres]",
           "tests/dbt/test_tax.py::test_x[duckdb]", "tests/a.py::test_z",
           "tests/dbt/test_item_removal.py::test_r[postgres]"]
    assert sorted(ids, key=rank) == [
        "tests/dbt/test_item_removal.py::test_r[postgres]",
        "tests/dbt/test_tax.py::test_x[postgres]", "tests/dbt/test_tax.py::test_x[duckdb]",
        "tests/cli/test_cli.py::test_y", "tests/a.py::test_z"]


def test_every_listed_module_exists_and_the_change_modules_are_the_registered_cases() -> None:
    for unit in (*scheduling.SLOWEST_FIRST, *scheduling.SPLIT_BY_TARGET):
        assert unit in (CHANGE_UNIT, DEMO_UNIT) or (REPO / unit).is_file(), unit
    registering = {str(path.relative_to(REPO)) for path in (REPO / "tests/dbt").glob("test_*.py")
                   if "register(ChangeScenario(" in path.read_text()}
    assert registering == set(CHANGE_MODULES)


def test_only_loadfile_gets_the_work_unit_scheduler(pytestconfig: pytest.Config,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setattr(pytestconfig.option, "dist", "load", raising=False)
    assert scheduling.make_scheduler(pytestconfig, None) is None
    monkeypatch.setattr(pytestconfig.option, "dist", "loadfile")
    monkeypatch.setattr(pytestconfig.option, "loadscopereorder", True, raising=False)
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"], raising=False)
    scheduler = scheduling.make_scheduler(pytestconfig, None)
    assert scheduler._split_scope("tests/dbt/test_tax.py::t[postgres]") == (
        "tests/dbt/test_tax.py[postgres]")
    assert pytestconfig.option.loadscopereorder is False
