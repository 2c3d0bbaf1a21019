"""How `make test`'s two workers (`pytest -n 2 --dist loadfile`) share the suite.

xdist hands out work units (a test module each with `loadfile`) in the collection's order, by
default re-sorted by number of tests: the many-test unit modules first and the few-test
end-to-end modules, which take minutes each, in the middle or at the end, where one of them can
leave the other worker idle for minutes. Here instead:
- the units known to be slow go first (`SLOWEST_FIRST`, longest first), so that the short
  modules fill the end;
- the change modules of tests/dbt share their warehouses (tests/dbt/change_scenarios.py): they
  are one unit per target, so each target's warehouses are built once, by one worker;
- the slowest modules of tests/dbt run their DuckDB and PostgreSQL variants (the module-scoped
  `warehouse_kind`) as two units, which the two workers can run at once.
The order also applies to a run in one process (harmless: modules do not depend on each other).
"""

from __future__ import annotations

from typing import Any

import pytest

POSTGRES = "postgres"  # stripe_warehouse.warehouse_target.POSTGRES: the variant's param id
CHANGE_MODULES = ("tests/dbt/test_item_removal.py", "tests/dbt/test_seat_changes.py",
                  "tests/dbt/test_many_items.py", "tests/dbt/test_item_discount_removal.py",
                  "tests/dbt/test_segments.py")
CHANGE_UNIT = "tests/dbt/change_scenarios"
# the two modules that read the session's demo (tests/newcomer.py): one unit, so one demo run
DEMO_MODULES = ("tests/test_demo.py", "tests/orchestration/test_ui_after_demo.py")
DEMO_UNIT = "tests/newcomer"
# modules whose variants share nothing expensive (each builds its own warehouse per target)
SPLIT_BY_TARGET = (*CHANGE_MODULES, "tests/dbt/test_history_stability.py",
                   "tests/dbt/test_tax.py", "tests/dbt/test_collected_revenue.py")
# The PostgreSQL variants of the scenario modules (each builds its warehouses again, on the
# server: ~10 minutes of worker time; and test_reporting_time_zone's, marked in place) are
# marked `extended`: `make test` leaves them out to keep
# within its 30-minute budget, `make test-extended` runs them, and CI (.ci/run) runs both. The
# PostgreSQL target stays in `make test` through the two-target comparisons (every relation of a
# generated company, row for row: test_same_marts_on_both_targets, test_e2e_metrics) and the
# writer, Dagster, lock and server modules.
EXTENDED_UNITS = tuple(f"{unit}[{POSTGRES}]" for unit in (
    CHANGE_UNIT, "tests/dbt/test_history_stability.py", "tests/dbt/test_tax.py",
    "tests/dbt/test_collected_revenue.py"))
# Longest first; seconds of one worker (clean-clone CI runs and bench/results/test_suite_time.txt,
# 2026-12-06/07, quiet machine; both targets unless [postgres] is split off). Rough is enough:
# what matters is that no long unit starts near the end. Others keep the collection's order.
SLOWEST_FIRST = (
    CHANGE_UNIT,                                      # ~300 (DuckDB; five modules' cases)
    "tests/dbt/test_history_stability.py",            # ~140 + ~140
    "tests/dbt/test_tax.py",                          # ~90 + ~90
    "tests/dbt/test_collected_revenue.py",            # ~85 + ~70
    "tests/dbt/test_e2e_metrics.py",                  # ~130 (PostgreSQL's first build ~110)
    "tests/dbt/test_incremental_build.py",            # ~120
    "tests/writers/test_concurrent_writers.py",       # ~110
    "tests/faults/test_private_files.py",             # ~110
    "tests/orchestration/test_dagster_runs.py",       # ~100
    "tests/orchestration/test_dagster_on_postgres.py",
    "tests/warehouse_target/test_writers_on_postgres.py",
    "tests/warehouse_target/test_build_lock.py",
    "tests/warehouse_target/test_same_marts_on_both_targets.py",
    "tests/dbt/test_tenant_late_rows.py",             # ~50
    "tests/dbt/test_saas_metrics.py",                 # ~50 (110 at load 8-15)
    DEMO_UNIT,                                        # ~110 (the demo once, the UI, two CLI runs)
)


def _param_ids(nodeid: str) -> list[str]:
    """``test_x[postgres-backfill_after_1]`` -> ["postgres", "backfill_after_1"]."""
    name = nodeid.rsplit("::", 1)[-1]
    return name[name.index("[") + 1:-1].split("-") if name.endswith("]") else []


def work_unit(nodeid: str) -> str:
    """The unit a test is handed out in: its module, or the change modules' shared unit; a
    PostgreSQL variant of a split module is a unit of its own (``...[postgres]``)."""
    path = nodeid.split("::", 1)[0]
    unit = (CHANGE_UNIT if path in CHANGE_MODULES else DEMO_UNIT if path in DEMO_MODULES
            else path)
    if path in SPLIT_BY_TARGET and POSTGRES in _param_ids(nodeid):
        unit += f"[{POSTGRES}]"
    return unit


def rank(nodeid: str) -> int:
    """A test's place in the order: its unit's in `SLOWEST_FIRST` (both variants together, so
    a module's tests stay together in a run in one process), the rest after."""
    base = work_unit(nodeid).removesuffix(f"[{POSTGRES}]")
    return SLOWEST_FIRST.index(base) if base in SLOWEST_FIRST else len(SLOWEST_FIRST)


def mark_extended(items: list[pytest.Item]) -> None:
    """Marks the tests of `EXTENDED_UNITS` `extended` (deselected by `make test`)."""
    for item in items:
        if work_unit(item.nodeid) in EXTENDED_UNITS:
            item.add_marker(pytest.mark.extended)


def order_slowest_first(items: list[pytest.Item]) -> None:
    """Sorts the collected tests by `rank`, keeping the collection's order within a rank (so
    pytest's grouping of a module's tests by fixture is kept)."""
    items.sort(key=lambda item: rank(item.nodeid))  # list.sort is stable


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """A `--dist loadfile` scheduler handing out `work_unit`s in the collection's order (this
    module's); None (xdist's own) for the other modes."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WorkUnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep order_slowest_first's order
    return WorkUnitScheduling(config, log)
