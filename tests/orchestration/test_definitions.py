"""The code location loads, and its lineage runs from each raw table to the published marts."""

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey
from dagster_dbt import DbtProject

from orchestration import resources
from orchestration.assets import SYNC_KIND_TAG, stripe_dbt_models, stripe_raw_tables, sync_kind_of
from orchestration.checks import stale_projects
from orchestration.definitions import defs
from orchestration.jobs import expire_raw_data, rebuild_marts
from orchestration.resources import dbt_project
from orchestration.translators import METRICS_DAILY_KEY
from pipelines.source import RAW_TABLES
from stripe_warehouse.registry import Connection
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import WarehouseTarget
from tests.paths import REPO_ROOT

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def test_workspace_validates_with_the_dagster_cli() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_each_raw_table_is_one_materialisable_asset_and_nothing_is_external() -> None:
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    raw = {k for k in keys if k.path[0] == "stripe_raw"}
    assert raw == {AssetKey(["stripe_raw", t]) for t in (*RAW_TABLES, "sync_runs")}
    # A dbt source with no producing asset would show up as a non-materialisable (phantom) key.
    assert [k for k in keys if not graph.get(k).is_materializable] == []


def test_every_dbt_source_lands_on_a_raw_table_asset() -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    graph = defs.resolve_asset_graph()
    for source in manifest["sources"].values():
        if source["meta"].get("postgres_only"):  # stripe_raw.fx_rates_ecb: no Dagster asset yet
            continue
        key = AssetKey(["stripe_raw", source["name"]])
        assert graph.get(key).assets_def.op.name == "stripe_raw_tables", source["unique_id"]


def test_metrics_daily_is_downstream_of_the_raw_subscriptions_invoices_and_sync_runs() -> None:
    graph = defs.resolve_asset_graph()
    upstream: set[AssetKey] = set()
    frontier = {METRICS_DAILY_KEY}
    while frontier:
        key = frontier.pop()
        parents = set(graph.get(key).parent_keys) - upstream
        upstream |= parents
        frontier |= parents
    for table in ("subscriptions", "subscription_items", "invoices", "invoice_lines",
                  "customers", "charges", "sync_runs"):
        assert AssetKey(["stripe_raw", table]) in upstream


def test_dbt_data_tests_become_asset_checks_beside_the_freshness_check() -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    attached_tests = [
        node for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node.get("attached_node")
    ]
    check_keys = defs.resolve_asset_graph().asset_check_keys
    model_keys = {
        node["unique_id"]: AssetKey([node["schema"], node["name"]])
        for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")
    }
    expected = {AssetCheckKey(model_keys[t["attached_node"]], t["name"]) for t in attached_tests}
    assert expected and expected <= check_keys
    assert {k.asset_key for k in check_keys if k.name == "projects_fresh_for_their_tier"} == {
        METRICS_DAILY_KEY}


def test_every_duckdb_writer_is_in_the_single_writer_pool() -> None:
    assert stripe_raw_tables.op.pool == "duckdb"
    assert stripe_dbt_models.op.pool == "duckdb"
    assert expire_raw_data.pool == "duckdb"
    assert rebuild_marts.pool == "duckdb"


def test_shipped_instance_config_limits_every_pool_to_one(tmp_path: Path) -> None:
    from dagster import DagsterInstance

    from orchestration.ui import dagster_home

    with DagsterInstance.from_config(str(dagster_home(tmp_path))) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_sync_jobs_are_per_project_and_tagged_others_make_no_stripe_calls() -> None:
    for name in ("backfill", "refresh"):
        job = defs.resolve_job_def(name)
        assert job.partitions_def.name == "projects"
        assert job.tags[SYNC_KIND_TAG] == name
        assert {"stripe_raw_tables", "stripe_dbt_models"} <= set(job.graph.node_dict)
    transform = defs.resolve_job_def("transform")
    assert transform.partitions_def is None
    assert "stripe_raw_tables" not in transform.graph.node_dict
    assert set(defs.resolve_job_def("retention").graph.node_dict) == {
        "expire_raw_data", "rebuild_marts"}


def test_sync_kind_defaults_to_refresh_and_refuses_unknown_kinds() -> None:
    assert sync_kind_of({}) == "refresh"
    assert sync_kind_of({SYNC_KIND_TAG: "backfill"}) == "backfill"
    with pytest.raises(ValueError, match="is unknown: use backfill or refresh"):
        sync_kind_of({SYNC_KIND_TAG: "full"})


def connection(project: str, tier: str, synced_hours_ago: float | None,
               status: str = "active") -> Connection:
    synced = None if synced_hours_ago is None else (
        NOW - dt.timedelta(hours=synced_hours_ago)).timestamp()
    return Connection(project_id=project, tier=tier, status=status, mode="test",
                      created_at=0.0, api_key={}, last_sync_at=synced)


def test_freshness_flags_pro_and_scale_projects_older_than_their_tier_allows() -> None:
    stale = stale_projects([
        connection("scale_fresh", "scale", 0.5),
        connection("scale_late", "scale", 1.5),
        connection("pro_fresh", "pro", 5),
        connection("pro_late", "pro", 7),
        connection("pro_never", "pro", None),
        connection("basic_old", "basic", 24 * 40),
        connection("pro_gone", "pro", 100, status="disconnected"),
    ], NOW)
    assert set(stale) == {"scale_late", "pro_late", "pro_never"}
    assert stale["pro_late"] == "last sync 7.0 h ago; pro allows 6 h"


def test_dbt_manifest_is_parsed_when_missing_and_reused_while_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = DbtProject(project_dir=REPO_ROOT, profiles_dir=REPO_ROOT, target_path=tmp_path)
    monkeypatch.setattr(resources, "dbt_project", project)
    manifest = resources.ensure_dbt_manifest()
    assert manifest == tmp_path / "manifest.json"
    assert "model.stripe_warehouse.metrics_daily" in json.loads(manifest.read_text())["nodes"]
    parsed_at = manifest.stat().st_mtime_ns
    resources.ensure_dbt_manifest()
    assert manifest.stat().st_mtime_ns == parsed_at


def test_dbt_manifest_follows_its_state_directorys_target_not_an_inherited_dbt_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clean-clone run's demo failed (KeyError 'model.stripe_warehouse.int_fx_rates_ecb'
    in dagster-dbt): its worker had run a PostgreSQL home's build, which exports DBT_TARGET,
    so the demo's DuckDB home parsed its manifest for PostgreSQL (that model disabled) and
    then built it on DuckDB. A DuckDB home's manifest has the model, a PostgreSQL home's not."""
    monkeypatch.setenv("DBT_TARGET", "postgres")
    monkeypatch.setenv("STRIPE_WAREHOUSE_PG_DATABASE", "another_homes")
    duckdb_home = StateDir(tmp_path / "duck").create()
    postgres_home = StateDir(tmp_path / "pg").create()
    WarehouseTarget.postgres("postgresql://u:p@127.0.0.1:6543/pg").save(postgres_home.root)
    models = {}
    for name, home in (("duckdb", duckdb_home), ("postgres", postgres_home)):
        project = DbtProject(project_dir=REPO_ROOT, profiles_dir=REPO_ROOT,
                             target_path=tmp_path / f"{name}-target")
        manifest = resources.ensure_dbt_manifest(project, home)
        models[name] = set(json.loads(manifest.read_text())["nodes"])
    ecb = "model.stripe_warehouse.int_fx_rates_ecb"
    assert ecb in models["duckdb"]
    assert ecb not in models["postgres"]
    assert models["duckdb"] - models["postgres"] == {ecb}


def test_freshness_job_warns_on_the_marts_naming_each_stale_project(store, instance) -> None:
    store.connect("scale_late", "scale", "sk_test_late")
    store.record_sync("scale_late", "refresh", time.time() - 2 * 3600, None)
    store.connect("scale_fresh", "scale", "sk_test_fresh")
    store.record_sync("scale_fresh", "refresh", time.time() - 60, None)
    result = defs.resolve_job_def("check_freshness").execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.asset_key == METRICS_DAILY_KEY
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert set(evaluation.metadata) == {"stale_projects", "scale_late"}
