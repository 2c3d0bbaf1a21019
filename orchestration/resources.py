"""Resources: where the warehouse lives, and the dbt project with a manifest that is up to date.

The dbt project is declared once, the way dagster-dbt's examples do: ``DbtProject(...)``
then ``prepare_if_dev()``. Its preparer parses the project only when the manifest is missing
or older than the project's files (a check of file times otherwise), and does so under any
loader, not only ``dagster dev``: ``dagster-daemon run``, a run worker and the CLI's
in-process runs load the same definitions with no build step before them.
"""

import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    ConfigurableResource,
    InitResourceContext,
    Output,
)
from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.errors import DagsterDbtCliRuntimeError
from packaging import version

from orchestration.translators import METRICS_DAILY_KEY
from stripe_warehouse.build_lock import dbt_build_turn
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.publish import publication
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.settings import (
    make_private_dirs,
    use_private_file_modes,
)
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.transform import (
    ANSI_ESCAPE,
    DBT_PROFILES_DIR,
    DBT_PROJECT_DIR,
    FAILED_STATUSES,
    TransformError,
    build_args,
    dagster_target_path,
    dbt_command,
    dbt_executable,
    fx_rate_warnings,
    project_version,
    run_dbt_process,
)
from stripe_warehouse.warehouse_target import POSTGRES_DBT_ENV, WarehouseTarget

# Run processes may not have the virtualenv on PATH: call its dbt by path.
DBT_EXECUTABLE = dbt_executable()[0]
# dagster-dbt starts dbt itself: through this wrapper, which makes dbt die with the process
# holding the build lock (setpriv --pdeathsig, as transform.run_dbt does), given the real dbt
# in this variable (WarehouseResource.export_home sets it before every build)
DBT_WRAPPER = DBT_PROJECT_DIR / "scripts" / "dbt_with_parent"
DBT_EXECUTABLE_ENV = "STRIPE_WAREHOUSE_DBT_EXECUTABLE"

BUILT_NODE_TYPES = {"model", "seed", "snapshot", "test"}


class StripeDbtProject(DbtProject):
    """dagster-dbt's project, prepared by :func:`ensure_dbt_manifest`: parsed aside and then
    swapped in (runs may be reading the manifest), and only when it is missing or older than
    the project's files (the dbt module's "changed?" check)."""

    def prepare_if_dev(self) -> None:
        # Not only under `dagster dev` (see the module's docstring); a current one is kept.
        ensure_dbt_manifest(self)


class WarehouseResource(ConfigurableResource):
    """The state directory (registry and DuckDB file) and the Stripe API address runs use."""

    home: str | None = None
    api_base: str | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Runs write the warehouse, dlt's packages and (through dbt) dbt's target: owner-only."""
        use_private_file_modes()

    def state(self) -> StateDir:
        """The state directory: ``home`` if set, else ``STRIPE_WAREHOUSE_HOME``, else ``./data``."""
        return StateDir.resolve(self.home).create()

    def home_path(self) -> Path:
        """The state directory's path."""
        return self.state().root

    def store(self) -> ConnectionStore:
        """The connection registry of this state directory."""
        return ConnectionStore(self.home_path())

    def warehouse_file(self) -> Path:
        """The DuckDB warehouse file."""
        return self.state().warehouse

    def export_home(self) -> None:
        """Point dagster-dbt's dbt processes (they inherit this process's environment) at this
        state directory: dbt reads it in profiles.yml."""
        state = self.state()
        # another home's PostgreSQL settings (an earlier run of this process) must not stay
        for key in POSTGRES_DBT_ENV - state.target.dbt_env().keys():
            os.environ.pop(key, None)
        os.environ.update({key: value for key, value in state.dbt_env().items()
                           if key not in ("DBT_TARGET_PATH", "DBT_LOG_PATH")})
        os.environ[DBT_EXECUTABLE_ENV] = DBT_EXECUTABLE  # for DBT_WRAPPER


def ensure_dbt_manifest(project: DbtProject | None = None, state: StateDir | None = None) -> Path:
    """Parse the dbt project when its manifest is missing or older than a model, macro or seed.

    The parse follows the warehouse target of ``state`` (default: the resolved state
    directory), never a DBT_TARGET this process inherited: a PostgreSQL manifest lacks the
    DuckDB-only int_fx_rates_ecb, and a DuckDB build mapped to it failed (KeyError in
    dagster-dbt) when an earlier PostgreSQL run of the same process had exported DBT_TARGET.
    """
    project = project or dbt_project
    target = (state or StateDir.resolve()).target
    manifest = project.manifest_path
    if manifest.exists() and manifest.stat().st_mtime >= project_version():
        return manifest
    make_private_dirs(manifest.parent)
    # Parse aside, then swap the file in: run processes may be reading the manifest meanwhile.
    with tempfile.TemporaryDirectory(dir=manifest.parent, prefix=".parse-") as parsed:
        # dbt writes its parse cache into the target directory (here: beside the manifest, for
        # runs to start from); it reads one from DBT_PARTIAL_PARSE_FILE_PATH when that is set
        # (the test suite's shared cache) and parses fully where the cache does not match
        returncode, output = run_dbt_process(
            dbt_command(["parse", "--quiet", "--target-path", parsed]),
            {**target.dbt_process_env(os.environ),
             "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": parsed},
            None, DBT_PROJECT_DIR,
        )
        if returncode != 0:
            detail = output.strip().splitlines()[-1:] or ["no output"]
            raise WarehouseError(
                f"dbt parse failed ({detail[0]}): fix the dbt project, then reload Dagster"
            )
        for name in ("partial_parse.msgpack", "manifest.json"):
            if (Path(parsed) / name).exists():
                os.replace(Path(parsed) / name, manifest.parent / name)
    return manifest


# The manifest Dagster loads its dbt assets from (and the parse cache runs start with) lives in
# the state directory of the code location, never in the installed project. Loading the
# definitions is this code location's entry point: it resolves the state directory here
# (STRIPE_WAREHOUSE_HOME, as `stripe-warehouse ui` and the CLI's in-process runs export it), as
# WarehouseResource.state() does for runs. prepare_if_dev parses only a missing or outdated
# manifest: with a current one, loading the definitions runs nothing and writes nothing
# (tests/orchestration/test_definitions_load.py).
dbt_project = StripeDbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR,
                               target_path=dagster_target_path(StateDir.resolve()))
dbt_project.prepare_if_dev()


def prepare_dbt_project() -> Path:
    """Make sure the manifest the dbt assets load exists and is current; its path."""
    return ensure_dbt_manifest(dbt_project)


@contextmanager
def dbt_run_target(home: Path) -> Iterator[Path]:
    """A throw-away dbt target directory for one invocation, seeded with the parse cache.

    dagster-dbt would otherwise leave one new directory per run under ``./target``. It lives
    in the state directory's ``dbt/`` (owner-only, like everything a run writes), and the
    invocation's ``run_results.json``, ``semantic_manifest.json`` (what `stripe-warehouse mf`
    queries: stripe_warehouse/semantic_layer.py) and ``dbt.log``, failed or not, are kept where
    dbt leaves its own (``dbt/target/``, ``dbt/logs/``): the last build's are always in one
    place.
    """
    root = StateDir(home).dbt
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".run-target-", dir=root) as directory:
        cache = dbt_project.manifest_path.with_name("partial_parse.msgpack")
        if cache.exists():
            shutil.copy(cache, directory)
        try:
            yield Path(directory)
        finally:
            state = StateDir(home)
            for name, kept in (("run_results.json", state.dbt_target),
                               ("semantic_manifest.json", state.dbt_target),
                               ("dbt.log", state.dbt_logs)):
                if (Path(directory) / name).exists():
                    kept.mkdir(mode=0o700, parents=True, exist_ok=True)
                    os.replace(Path(directory) / name, kept / name)
                    (kept / name).chmod(0o600)


class InstalledDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI, knowing its version without asking the executable."""

    @cached_property
    def _cli_version(self) -> version.Version:
        # dagster-dbt runs `dbt --version` in a subprocess once per run to learn this: 2 s on
        # an idle machine, 8 s on a busy one (it imports all of dbt). The executable is the
        # one beside this interpreter (DBT_EXECUTABLE), so it is the installed dbt-core.
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Any) -> None:  # type: ignore[override]
        # dagster-dbt loads the project, the profile and a dbt adapter in this process before
        # every `dbt.cli(...)` (2.5 s of CPU a run, measured with cProfile on `stripe-warehouse
        # transform`), only for `fetch_row_counts()` / `fetch_column_metadata()`, which these
        # assets do not use. None is what dagster-dbt passes for dbt Fusion (no adapter).
        return None


def dbt_resource() -> DbtCliResource:
    """The dbt CLI for the project at the repository root."""
    return InstalledDbtCliResource(project_dir=dbt_project, dbt_executable=str(DBT_WRAPPER))


def build_and_publish(
    context: Any,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    full_refresh: bool = False,
    observer: Any = None,
    **cli_options: Any,
) -> Iterator[Any]:
    """`dbt build` streamed as Dagster events, then the marts published to the readers' copy
    (reporting.duckdb), so BI tools see the new data without ever touching the write lock.

    ``metrics_daily``'s materialisation (and its checks, which must follow it) is held back
    until the marts are published, to carry each project's six metrics read from that copy.
    ``observer`` (:class:`orchestration.observer.RunObserver`) shows the build's progress.
    """
    from orchestration.run_metadata import metrics_metadata
    from stripe_warehouse.progress import SyncProgress

    progress = observer.progress if observer is not None else SyncProgress()
    warehouse.export_home()
    home = warehouse.home_path()
    target = StateDir(home).target
    purpose = f"Dagster run {context.run_id[:8]}: dbt build"
    # Dagster's pool queues only Dagster's own runs: the writer lock (DuckDB), held here around
    # the dbt subprocess, also makes a CLI sync or the real-time applier wait for this build
    # (and this build wait for them) instead of failing. On PostgreSQL the server's advisory
    # lock makes builds on every machine wait for each other, and readers connect to the
    # server: there is no copy to publish.
    held: list[Any] = []
    progress.phase("build")
    # a full rebuild may change old days without a later built_as_of: publish it whole
    with dbt_build_turn(home, purpose), _publication(home, target, full_refresh) as publish:
        with dbt_run_target(home) as run_target, _dbt_lines_to(observer, home):
            run = dbt.cli(build_args(full_refresh), context=context, target_path=run_target,
                          **cli_options)
            nodes = _node_count(dbt_project.manifest_path)
            finished: set[str] = set()
            try:
                for event in run.stream():
                    # a model's output or a test's result: one node done
                    before = len(finished)
                    finished.add(str(event.metadata.get("unique_id", id(event))))
                    if before < len(finished) < nodes:
                        progress.steps(len(finished), nodes)
                    # Downstream models must follow metrics_daily: hold it and what follows.
                    if held or _event_asset_key(context, event) == METRICS_DAILY_KEY:
                        held.append(event)
                    else:
                        yield event
            except DagsterDbtCliRuntimeError:
                raise TransformError(_failed_node(run_target) or "dbt build failed: see the "
                                     f"run's logs in the Dagster UI ({context.run_id})") from None
            progress.steps(nodes, nodes)
        # read under the writer lock, before anyone else writes: as the CLI's build does
        for warning in fx_rate_warnings(home):
            context.log.warning(warning)
            if observer is not None:
                observer.warnings.append(warning)
        if not target.is_postgres:
            progress.phase("publish")
        published = publish()
    context.log.info(f"published the marts to {target.describe()}" if target.is_postgres
                     else f"published the marts to {published}")
    metrics = metrics_metadata(published, context.run.tags.get("dagster/partition")) \
        if held else {}
    for event in held:
        if _event_asset_key(context, event) == METRICS_DAILY_KEY and isinstance(
                event, Output | AssetMaterialization):
            event = event.with_metadata({**event.metadata, **metrics})
        yield event


@contextmanager
def _publication(home: Path, target: WarehouseTarget, whole: bool
                 ) -> Iterator[Callable[[], Path | WarehouseTarget]]:
    """The readers' copy's publication (DuckDB); on PostgreSQL the readers read the server:
    "publishing" names it."""
    if target.is_postgres:
        yield lambda: target
        return
    with publication(home, whole=whole) as publish:
        yield publish


@contextmanager
def _dbt_lines_to(observer: Any, home: Path) -> Iterator[None]:
    """dagster-dbt echoes every dbt log line on stdout (the compute log of a daemon's run);
    a command's own terminal shows its progress display instead, and the lines go to a file."""
    if observer is None or not observer.command:
        yield
        return
    log = StateDir(home).dbt / "logs" / "dagster-dbt.log"
    make_private_dirs(log.parent)
    with open(log, "w") as lines, redirect_stdout(lines):
        yield


def _failed_node(target: Path) -> str | None:
    """One line naming the first failed dbt node and dbt's reason, from run_results.json."""
    results = target / "run_results.json"
    if not results.exists():
        return None
    for result in json.loads(results.read_text()).get("results", []):
        if str(result.get("status", "")).lower() in FAILED_STATUSES:
            message = " ".join(ANSI_ESCAPE.sub("", str(result.get("message") or "")).split())
            return f"dbt build failed at {result['unique_id']}: {message}"
    return None


def _node_count(manifest: Path) -> int:
    """The nodes a whole `dbt build` runs (models, seeds, snapshots, data tests): the bar's
    total; a selection runs fewer, and the bar then completes at its last node."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return sum(1 for node in nodes if node["resource_type"] in BUILT_NODE_TYPES)


def _event_asset_key(context: Any, event: Any) -> AssetKey | None:
    """The asset a dbt event is about (an Output names only its output)."""
    if isinstance(event, Output):
        if not context.has_assets_def:
            return None
        return context.assets_def.keys_by_output_name.get(event.output_name)
    return getattr(event, "asset_key", None)
