"""`stripe-warehouse ui` and a user's own `DAGSTER_HOME/dagster.yaml`: kept, never overwritten."""

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from orchestration.ui import INSTANCE_CONFIG, dagster_home

USERS_CONFIG = """# my instance: runs kept in Postgres later
telemetry:
  enabled: true
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
"""


def test_the_projects_config_is_written_when_there_is_none(tmp_path: Path) -> None:
    config = dagster_home(tmp_path) / "dagster.yaml"
    assert config.read_text() == INSTANCE_CONFIG.read_text()


def test_a_users_config_is_kept_byte_for_byte_on_every_start(tmp_path: Path) -> None:
    config = dagster_home(tmp_path) / "dagster.yaml"
    config.write_text(USERS_CONFIG)
    for _ in range(2):
        dagster_home(tmp_path)
    assert config.read_text() == USERS_CONFIG


def test_only_the_missing_pool_limit_is_added_to_a_users_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = dagster_home(tmp_path) / "dagster.yaml"
    config.write_text("telemetry:\n  enabled: true\nconcurrency:\n  runs:\n"
                      "    max_concurrent_runs: 2\n")
    home = dagster_home(tmp_path)
    assert yaml.safe_load(config.read_text()) == {
        "telemetry": {"enabled": True},
        "concurrency": {"runs": {"max_concurrent_runs": 2}, "pools": {"default_limit": 1}},
    }
    assert "added concurrency.pools.default_limit: 1 to" in capsys.readouterr().err
    with DagsterInstance.from_config(str(home)) as instance:  # still a valid instance config
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_different_pool_limit_is_kept_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = dagster_home(tmp_path) / "dagster.yaml"
    config.write_text("concurrency:\n  pools:\n    default_limit: 3\n")
    dagster_home(tmp_path)
    assert config.read_text() == "concurrency:\n  pools:\n    default_limit: 3\n"
    assert "sets concurrency.pools.default_limit: 3; the project expects 1" in (
        capsys.readouterr().err)


@pytest.mark.postgres
def test_a_warehouse_moved_to_postgres_gets_its_instance_storage_on_the_server(
    tmp_path: Path, own_postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestration.ui import DAGSTER_SCHEMA, instance_storage_url
    from stripe_warehouse.warehouse_target import WarehouseTarget

    config = dagster_home(tmp_path) / "dagster.yaml"  # DuckDB: SQLite, pool of one
    target = WarehouseTarget.postgres(own_postgres_database)
    target.save(tmp_path)
    home = dagster_home(tmp_path)
    settings = yaml.safe_load(config.read_text())
    assert settings["storage"] == {"postgres": {"postgres_url": instance_storage_url(target)}}
    assert settings["concurrency"]["pools"]["default_limit"] == 1  # kept: correct, if slower
    assert "added storage to" in capsys.readouterr().err
    assert config.stat().st_mode & 0o077 == 0  # the URL holds the password
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert target.fetch_all("select count(*) from information_schema.tables "
                            "where table_schema = %s", [DAGSTER_SCHEMA])[0][0] > 10
    WarehouseTarget().save(tmp_path)  # and back to DuckDB: the runs would stay on the server
    dagster_home(tmp_path)
    assert "stores Dagster's runs on PostgreSQL while the warehouse is DuckDB" in (
        capsys.readouterr().err)
