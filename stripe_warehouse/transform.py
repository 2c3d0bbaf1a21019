"""The dbt module: where the dbt project is, how dbt is run against a state directory, and
what a build, a refresh after webhooks or Dagster selects.

Every caller of dbt goes through here: the CLI's build (:func:`build`), the real-time applier
(:func:`run_marts_selection`, :mod:`service.marts_refresh`), Dagster
(:mod:`orchestration.resources`: the same project directory, executable, target directories
and "changed?" check) and the docs site (:mod:`commands.docs_site`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stripe_warehouse.build_lock import dbt_build_turn
from stripe_warehouse.dbt_forkserver import ForkedDbt, start_streaming
from stripe_warehouse.errors import WarehouseError, warehouse_locked, warehouse_locked_message
from stripe_warehouse.progress import SyncProgress
from stripe_warehouse.publish import publication
from stripe_warehouse.settings import PRIVATE_UMASK
from stripe_warehouse.state_dir import HOME_ENV, StateDir
from stripe_warehouse.writer_lock import warehouse_writer

REPO_ROOT = Path(__file__).resolve().parent.parent
# dbt_project.yml and profiles.yml sit at the repository root; models, macros, seeds and tests
# in dbt_project/. dbt's artifacts (compiled SQL, run_results.json, the partial-parse cache,
# docs) and logs live in the state directory (StateDir.dbt): they hold its data, two state
# directories must not share them, and the installed project may be read-only.
DBT_PROJECT_DIR = REPO_ROOT
DBT_PROFILES_DIR = REPO_ROOT
# What a change of the project is made of ("changed?": :func:`project_version`).
DBT_SOURCES = ("dbt_project.yml", "profiles.yml", "dbt_project/models", "dbt_project/macros",
               "dbt_project/seeds", "dbt_project/tests")
DAGSTER_TARGET = "dagster-target"  # StateDir.dbt / this: the manifest Dagster loads its assets from
# dbt colours its messages; a one-line error for users carries none
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
FAILED_STATUSES = {"error", "fail", "runtime error"}
# dbt's line for a finished node: "12:00:01  3 of 45 OK created sql view model main.x ..."
NODE_FINISHED = re.compile(r"\b(\d+) of (\d+) (?:OK|PASS|WARN|ERROR|FAIL|SKIP)\b")

StepCallback = Callable[[int, int], None]
# dbt must not outlive the process holding its lock (the writer lock, or a PostgreSQL build
# lock that the server frees when that process dies): a SIGKILLed holder's dbt would go on
# writing while the next build starts. util-linux's setpriv sets the child's parent-death
# signal and execs dbt; it fires when the thread that started dbt ends, and that thread waits
# for dbt (run_dbt_process), so it ends only with dbt or with the process. (No preexec_fn:
# it is unsafe in a threaded process such as a Dagster run.)
_SETPRIV = shutil.which("setpriv")
DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


class TransformError(WarehouseError):
    """dbt failed; the message is one line naming the failed node and dbt's own reason."""


def dbt_invocation(
    args: list[str], home: Path | StateDir
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `dbt <args>` on the repo's project and profile.

    `home` is the state directory holding warehouse.duckdb, handed to dbt as an absolute path.
    """
    state = StateDir.of(home)
    return dbt_command(args), {**state.target.dbt_process_env(os.environ), **state.dbt_env()}


def dbt_command(args: list[str]) -> list[str]:
    """The command line of `dbt <args>` on the repo's project and profile (no environment:
    :func:`dbt_invocation` adds a state directory's; ``dbt parse`` needs none)."""
    return [
        *dbt_executable(), *args,
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROFILES_DIR),
    ]


def run_dbt(
    args: list[str], home: Path | StateDir, on_step: StepCallback | None = None
) -> None:
    """Runs `dbt <args>`, raising TransformError (one line) on failure.

    dbt runs in its own process so that its DuckDB connection (and the file lock that comes
    with it) ends with the command; this process holds the writer lock around it. Its output
    is read as it comes: ``on_step(done, total)`` follows dbt's "3 of 45 OK" lines.
    """
    command, environment = dbt_invocation(args, home)
    # dbt runs in the state directory and finds the warehouse at profiles.yml's relative path
    # "./warehouse.duckdb": the profile, which dbt hashes to decide whether its saved parse
    # (partial_parse.msgpack) is still valid, is then the same for every state directory, so
    # a parse saved by one is reused by the next (DBT_PARTIAL_PARSE_FILE_PATH names a shared
    # one; the test suite's many state directories would otherwise each parse from scratch).
    environment[HOME_ENV] = "."
    started = time.time()
    state = StateDir.of(home)
    # DuckDB: the local writer lock; PostgreSQL: the server's build lock (every machine's)
    with dbt_build_turn(state, f"dbt {args[0] if args else ''}".strip()):
        returncode, output = run_dbt_process(command, environment, on_step, state.root)
    if returncode != 0:
        raise TransformError(_failure_summary(args, output, started, state))


def run_dbt_process(
    command: list[str], environment: dict[str, str], on_step: StepCallback | None,
    directory: Path,
) -> tuple[int, str]:
    """Run ``command`` (a :func:`dbt_command`) in ``directory``; its exit code and output
    (stdout and stderr), reporting nodes done. No lock: callers hold the one they need."""
    lines: list[str] = []
    # forked from a warmed dbt when this process names a fork server (the test suite does)
    process: subprocess.Popen[str] | ForkedDbt | None = start_streaming(
        command[len(dbt_executable()):], environment, directory, PRIVATE_UMASK)
    if process is None:
        process = subprocess.Popen(
            [*DIE_WITH_PARENT, *command], cwd=directory, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, umask=PRIVATE_UMASK,
        )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            finished = NODE_FINISHED.search(ANSI_ESCAPE.sub("", line))
            if finished and on_step is not None:
                on_step(int(finished[1]), int(finished[2]))
        return process.wait(), "".join(lines)
    except BaseException:  # Ctrl-C, SIGTERM: dbt must not go on writing without the lock
        process.kill()
        process.wait()
        raise


def build(
    home: Path | StateDir, full_refresh: bool = False, select: str | None = None,
    progress: SyncProgress | None = None,
) -> list[str]:
    """Builds the seeds and models and runs their data tests, optionally a selection or a full
    refresh, then publishes the marts to the readers' copy (reporting.duckdb).
    dbt unit tests (fixed inputs, no warehouse data) are left to the test suite.
    ``progress`` is told of the ``build`` and ``publish`` phases and of each dbt node.
    Returns the build's warnings (a currency without an FX rate), also printed to stderr."""
    progress = progress or SyncProgress()
    progress.phase("build")
    # one turn of the writer lock for both: no other writer gets between build and publish
    state = StateDir.of(home)
    root = state.root
    if state.target.is_postgres:
        # readers connect to the server: there is no copy to publish; one build at a time
        # on every machine (the server's advisory lock), loads of this machine go on
        with dbt_build_turn(state, "dbt build"):
            run_dbt(build_args(full_refresh, select), home=home, on_step=progress.steps)
            warnings = fx_rate_warnings(home)
    else:
        with (warehouse_writer(root, "dbt build and publish"),
              publication(root, whole=full_refresh) as publish):
            run_dbt(build_args(full_refresh, select), home=home, on_step=progress.steps)
            warnings = fx_rate_warnings(home)
            progress.phase("publish")
            publish()
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return warnings


def fx_rate_warnings(home: Path | StateDir) -> list[str]:
    """One line per project and currency that has no FX rate (model int_fx_rates_missing):
    those rows' USD figures are empty until the rate is added; other projects are unaffected."""
    exists = ("select count(*) from information_schema.tables "
              "where table_schema = 'intermediate' and table_name = 'int_fx_rates_missing'")
    missing = ("select project_id, currency, first_day, last_day, fix "
               "from intermediate.int_fx_rates_missing order by project_id, currency")
    state = StateDir.of(home)
    if state.target.is_postgres:
        rows = state.target.fetch_all(missing) if state.target.fetch_all(exists)[0][0] else []
    else:
        import duckdb

        con = duckdb.connect(str(state.warehouse), read_only=True)
        try:
            if not con.execute(exists).fetchone()[0]:
                return []
            rows = con.execute(missing).fetchall()
        finally:
            con.close()
    return [
        f"project {project}: no FX rate for {currency} ({first} to {last}), its USD figures "
        f"are left empty: {fix}"
        for project, currency, first, last, fix in rows
    ]


def build_args(full_refresh: bool = False, select: str | None = None) -> list[str]:
    """The arguments of `dbt build` for `build`."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    return args


# The published contract whose freshness webhooks keep, and the dbt source of the raw tables
# (_stripe__sources.yml): what a refresh after webhooks selects.
METRICS_MODEL = "metrics_daily"
DBT_SOURCE = "stripe"


def marts_selection(tables: Iterable[str]) -> list[str]:
    """dbt ``--select`` arguments: the models between the changed raw tables and the metrics."""
    return [f"source:{DBT_SOURCE}.{table}+,+{METRICS_MODEL}" for table in sorted(tables)]


@dataclass(frozen=True)
class DataTestResult:
    """One dbt data test run on the refreshed models: dbt's id, its failing rows (None when
    the test's query itself failed) and dbt's status for it (pass, warn, fail or error)."""

    unique_id: str
    failures: int | None
    status: str


@dataclass(frozen=True)
class DataTests:
    """The data tests a refresh ran, and the dbt manifest (``manifest.json``) naming them."""

    manifest: Path
    results: list[DataTestResult]


def run_marts_selection(home: Path | StateDir, tables: set[str]) -> DataTests:
    """``dbt run`` of what ``metrics_daily`` reads of the raw ``tables``, then ``dbt test`` of
    the same selection (no publish): the tests' results.

    A failing test is a result (recorded as a failed check), not a failed refresh: the models
    are rebuilt either way, as the real-time service's compiled refresh treats them.
    """
    selection = marts_selection(tables)
    run_dbt(["run", "--quiet", "--select", *selection], home=home)
    started = time.time()
    try:
        # buildable: only tests reading the rebuilt models and what they read (never, say, an
        # identity between metrics and a mart this selection does not rebuild), as the
        # real-time service's compiled tests
        run_dbt(["test", "--quiet", "--exclude-resource-type", "unit_test",
                 "--indirect-selection", "buildable", "--select", *selection], home=home)
    except TransformError:
        tests = _data_tests_since(home, started)
        if tests is None or not any(r.status in FAILED_STATUSES for r in tests.results):
            raise  # dbt failed before running its tests (or for another reason)
        return tests
    tests = _data_tests_since(home, started)
    if tests is None:
        raise TransformError("dbt test wrote no run_results.json: rerun the refresh")
    return tests


def _data_tests_since(home: Path | StateDir, started: float) -> DataTests | None:
    """The tests of the ``dbt test`` run that started at ``started`` (its run_results.json),
    or None if that file is older (dbt stopped before writing it)."""
    target = StateDir.of(home).dbt_target
    try:
        run = json.loads((target / "run_results.json").read_text())
    except (OSError, ValueError):
        return None
    generated = datetime.fromisoformat(run["metadata"]["generated_at"].replace("Z", "+00:00"))
    if run.get("args", {}).get("which") != "test" or generated.timestamp() < started:
        return None
    return DataTests(target / "manifest.json", [
        DataTestResult(result["unique_id"], result.get("failures"), result["status"])
        for result in run["results"]])


def dagster_target_path(home: Path | StateDir) -> Path:
    """Where Dagster's manifest (and the parse cache its runs start with) lives: apart from
    the CLI's target, so that neither reads a file the other is writing."""
    return StateDir.of(home).dbt / DAGSTER_TARGET


def project_version() -> float:
    """The newest modification time among the dbt project's files: a manifest or compiled
    SQL older than this is out of date (the one "has the project changed?" check)."""
    newest = 0.0
    for name in DBT_SOURCES:
        path = DBT_PROJECT_DIR / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def dbt_executable() -> list[str]:
    """The `dbt` of this interpreter's environment (works without an activated venv)."""
    return script_beside_python("dbt", "from dbt.cli.main import cli; cli()")


def script_beside_python(name: str, entry_point: str) -> list[str]:
    """The command of the console script `name` installed with this interpreter, else the
    interpreter running `entry_point` (Python code calling the script's function)."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return [str(beside_python)]
    return [sys.executable, "-c", entry_point]


def _failure_summary(args: list[str], output: str, started: float, state: StateDir) -> str:
    """One line: the first failed node and its message, else dbt's last error line."""
    command = f"dbt {args[0]}" if args else "dbt"
    run_results = state.dbt_target / "run_results.json"
    if run_results.exists() and run_results.stat().st_mtime >= started:
        for result in json.loads(run_results.read_text()).get("results", []):
            if str(result.get("status", "")).lower() in FAILED_STATUSES:
                message = " ".join(ANSI_ESCAPE.sub("", str(result.get("message") or "")).split())
                return f"{command} failed at {result['unique_id']}: {message}"
    if warehouse_locked(output):
        return warehouse_locked_message(state.warehouse, f"run {command}")
    lines = [ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    errors = [line for line in lines if "error" in line.lower()]
    detail = errors[-1] if errors else f"see {state.dbt_logs / 'dbt.log'}"
    return f"{command} failed: {detail}"
