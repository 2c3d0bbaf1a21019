"""Fast refresh of ``marts.metrics_daily`` after webhooks: dbt's compiled SQL, without dbt.

A ``dbt run`` costs seconds of start-up on top of well under a second of SQL here, more than
the freshness budget. The models are plain SQL, so dbt compiles them once (``--full-refresh``,
into a private target directory) and the SQL is then re-executed directly: every table or
incremental model between the changed raw tables and ``metrics_daily`` is recreated in
topological order inside one DuckDB transaction, so readers see all of the new state or none
of it. An incremental model is rebuilt in full, which is what ``--full-refresh`` gives and what
its incremental runs must equal; dbt's next incremental run continues from it. Views and
ephemeral models need nothing. Any other materialization makes :meth:`needs_dbt` true and the
caller runs dbt. The SQL is recompiled whenever a file of the dbt project changes
(:func:`stripe_warehouse.transform.project_version`, the check Dagster's manifest uses too).

The dbt data tests on what a round rebuilt (a test reading a changed raw table or a model
downstream of one, and nothing outside ``+metrics_daily``) then run the way dbt runs them,
from their compiled SQL, on the same connection: their results are the round's asset checks
in Dagster, as a build's are. A failing test never undoes the refresh (dbt's models stay built
when a test after them fails too).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.webhooks_apply import LOCK_WAIT_SECONDS, connect_when_free
from stripe_warehouse.settings import make_private
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import METRICS_MODEL, DataTestResult, project_version, run_dbt
from stripe_warehouse.writer_lock import warehouse_writer

SOURCE_PREFIX = "source.stripe_warehouse.stripe."  # dbt unique id of a raw table, minus its name
REPLAYED = frozenset({"table", "incremental"})  # recreated from their compiled SQL
LIVE = frozenset({"view", "ephemeral"})  # read through, or inlined into their children
TARGET_DIR = ".webhooks_dbt_target"  # inside the state directory: never shared with dbt runs


@dataclass(frozen=True)
class CompiledModel:
    """One table or incremental model: where it lives and the SQL that computes it in full."""

    unique_id: str
    relation: str
    sql: str


@dataclass(frozen=True)
class CompiledTest:
    """One dbt data test: its SQL (the failing rows) and how dbt turns their count into a
    status (``fail_calc``, ``warn_if``, ``error_if``, ``limit``, ``severity``)."""

    unique_id: str
    sql: str
    severity: str  # "error" or "warn"
    fail_calc: str = "count(*)"
    warn_if: str = "!= 0"
    error_if: str = "!= 0"
    limit: int | None = None

    @classmethod
    def from_node(cls, node: dict) -> "CompiledTest":
        config = node["config"]
        return cls(node["unique_id"], node["compiled_code"], str(config["severity"]).lower(),
                   config["fail_calc"], config["warn_if"], config["error_if"], config["limit"])

    def run(self, con: duckdb.DuckDBPyConnection) -> DataTestResult:
        """The test as dbt's test materialization runs it, and dbt's status for the result."""
        limit = f"limit {self.limit}" if self.limit is not None else ""
        try:
            failures, warn, error = con.execute(
                f"select {self.fail_calc} as failures, {self.fail_calc} {self.warn_if} as "
                f"should_warn, {self.fail_calc} {self.error_if} as should_error "
                f"from (\n{self.sql}\n{limit}\n) dbt_internal_test").fetchone()
        except duckdb.Error:  # as dbt reports a test whose query fails: never the round's end
            return DataTestResult(self.unique_id, None, "error")
        if error and self.severity == "error":
            status = "fail"
        elif warn:
            status = "warn"
        else:
            status = "pass"
        return DataTestResult(self.unique_id, int(failures or 0), status)


class CompiledMetrics:
    """The compiled models upstream of ``metrics_daily`` and how they depend on each other."""

    def __init__(self, manifest: dict, version: float, path: Path | None = None) -> None:
        self.version = version
        self.path = path  # the manifest.json it was read from
        nodes = manifest["nodes"]
        target = next(uid for uid, node in nodes.items()
                      if node["resource_type"] == "model" and node["name"] == METRICS_MODEL)
        parents = manifest["parent_map"]
        upstream: set[str] = set()
        stack = [target]
        while stack:  # everything metrics_daily reads, directly or not
            uid = stack.pop()
            if uid not in upstream:
                upstream.add(uid)
                stack.extend(parents.get(uid, []))
        self._parents = {uid: [p for p in parents.get(uid, []) if p in upstream]
                         for uid in upstream}
        models = [uid for uid in upstream
                  if uid in nodes and nodes[uid]["resource_type"] == "model"]
        self.models = {
            uid: CompiledModel(uid, nodes[uid]["relation_name"], nodes[uid]["compiled_code"])
            for uid in models if nodes[uid]["config"]["materialized"] in REPLAYED
        }
        self.unreplayable = {uid for uid in models
                             if nodes[uid]["config"]["materialized"] not in REPLAYED | LIVE}
        # data tests reading only what the refresh keeps current (compiled: selected by dbt)
        self.tests = {
            uid: (CompiledTest.from_node(node), set(node["depends_on"]["nodes"]))
            for uid, node in nodes.items()
            if node["resource_type"] == "test" and node.get("compiled_code")
            and set(node["depends_on"]["nodes"]) <= upstream
        }

    @classmethod
    def compile(cls, home: Path) -> "CompiledMetrics":
        """Compile ``+metrics_daily`` with dbt into a private target directory and load it."""
        version = project_version()
        target = home / TARGET_DIR
        # --full-refresh: incremental models compile to their whole-table SQL.
        run_dbt(["compile", "--quiet", "--full-refresh", "--select", f"+{METRICS_MODEL}",
                 "--target-path", str(target)], home=home)
        make_private(target)  # dbt creates it owner-only; one made by an older version is not
        return cls(json.loads((target / "manifest.json").read_text()), version,
                   target / "manifest.json")

    def needs_dbt(self, tables: Iterable[str]) -> bool:
        """Whether a model that only dbt can build (a snapshot...) depends on ``tables``."""
        return bool(self.unreplayable & set(self._affected(tables)))

    def reading(self, tables: Iterable[str]) -> list[CompiledModel]:
        """The models to recreate when the raw ``tables`` changed, in build order."""
        return [self.models[uid] for uid in self._affected(tables) if uid in self.models]

    def checking(self, tables: Iterable[str]) -> list[CompiledTest]:
        """The data tests reading what a refresh of the raw ``tables`` changes."""
        affected = set(self._affected(tables))
        return [test for uid, (test, reads) in sorted(self.tests.items()) if reads & affected]

    def _affected(self, tables: Iterable[str]) -> list[str]:
        """The nodes downstream of the raw ``tables``, parents before children."""
        changed = {SOURCE_PREFIX + table for table in tables}
        order: list[str] = []
        affected: set[str] = set()
        done: set[str] = set()

        def visit(uid: str) -> None:  # depth-first: parents before children
            if uid in done:
                return
            done.add(uid)
            for parent in self._parents.get(uid, []):
                visit(parent)
            if uid in changed or any(p in affected for p in self._parents.get(uid, [])):
                affected.add(uid)
                order.append(uid)

        for uid in sorted(self._parents):
            visit(uid)
        return order


def rebuild(
    home: Path, models: list[CompiledModel], tests: Iterable[CompiledTest] = ()
) -> list[DataTestResult]:
    """Recreate ``models`` from their SQL in one transaction of the warehouse, then run
    ``tests`` on the result (still holding the writer lock); their results."""
    with warehouse_writer(home, "refreshing metrics_daily after webhooks",
                          wait=LOCK_WAIT_SECONDS):
        con = connect_when_free(StateDir.of(home).warehouse)
        con.execute("set TimeZone = 'UTC'")  # as profiles.yml pins it for dbt: days are UTC
        try:
            con.execute("begin transaction")
            for model in models:
                con.execute(f"create or replace table {model.relation} as (\n{model.sql}\n)")
            con.execute("commit")
            return [test.run(con) for test in tests]
        finally:
            con.close()  # closing rolls back a transaction left open by an error
