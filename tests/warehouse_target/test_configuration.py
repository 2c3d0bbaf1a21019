"""The warehouse target, chosen in one place: a state directory's warehouse_target.json."""

import stat

import pytest

from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import (
    TARGET_FILE,
    InvalidWarehouseTarget,
    WarehouseTarget,
)


def test_duckdb_is_the_default_and_its_dbt_output_is_local(tmp_path):
    state = StateDir.of(tmp_path)
    assert state.target == WarehouseTarget("duckdb")
    assert not state.target.is_postgres
    # profiles.yml's default output: DBT_TARGET stays unset, so dbt's profile hash (its partial
    # parse) is the same as for the parse at definitions load, which has no state directory
    assert "DBT_TARGET" not in state.dbt_env()
    assert not any(key.startswith("STRIPE_WAREHOUSE_PG_") for key in state.dbt_env())


def test_a_postgres_target_hands_dbt_the_server_and_keeps_its_file_private(tmp_path,
                                                                          monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    path = WarehouseTarget.postgres("postgresql://wh%40user:s3cr%2Ft@db.internal:6543/stripe")\
        .save(tmp_path)
    assert path == tmp_path / TARGET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the DSN holds a password
    environment = StateDir.of(tmp_path).dbt_env()
    assert {key: environment[key] for key in environment if "PG" in key or key == "DBT_TARGET"} \
        == {
            "DBT_TARGET": "postgres",
            "STRIPE_WAREHOUSE_PG_HOST": "db.internal",
            "STRIPE_WAREHOUSE_PG_PORT": "6543",
            "STRIPE_WAREHOUSE_PG_USER": "wh@user",
            "DBT_ENV_SECRET_STRIPE_WAREHOUSE_PG_PASSWORD": "s3cr/t",
            "STRIPE_WAREHOUSE_PG_DATABASE": "stripe",
            # JIT: its compile time dwarfed the models' own; nested loops: see _without_jit
            "PGOPTIONS": "-c jit=off -c enable_nestloop=off",
        }


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"target": "snowflake"}', '{"target": "postgres"}',
    '{"target": "postgres", "dsn": "mysql://x@y/z"}',
])
def test_a_wrong_target_file_is_a_one_line_error_naming_the_fix(tmp_path, content):
    (tmp_path / TARGET_FILE).write_text(content)
    with pytest.raises(InvalidWarehouseTarget) as raised:
        StateDir.of(tmp_path).target  # noqa: B018
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / TARGET_FILE) in message
    assert '{"target": "postgres", "dsn": "postgresql://' in message


def test_a_duckdb_homes_dbt_never_inherits_another_homes_postgres_settings(tmp_path,
                                                                           monkeypatch):
    """A process that ran a PostgreSQL home's Dagster build keeps that home's dbt settings in
    its environment (``WarehouseResource.export_home``); the clean-clone run's next DuckDB
    home then started dbt with DBT_TARGET=postgres, against a database that was gone."""
    from orchestration.resources import WarehouseResource
    from stripe_warehouse.transform import dbt_invocation

    postgres_home, duckdb_home = tmp_path / "pg", tmp_path / "duck"
    postgres_home.mkdir()
    duckdb_home.mkdir()
    WarehouseTarget.postgres("postgresql://u:p@127.0.0.1:6543/other").save(postgres_home)
    for key in ("DBT_TARGET", "STRIPE_WAREHOUSE_PG_DATABASE"):
        monkeypatch.delenv(key, raising=False)
    WarehouseResource(home=str(postgres_home)).export_home()
    import os
    assert os.environ["DBT_TARGET"] == "postgres"  # what dagster-dbt's dbt of that home reads

    _, environment = dbt_invocation(["build"], duckdb_home)
    assert "DBT_TARGET" not in environment
    assert not any(key.startswith(("STRIPE_WAREHOUSE_PG_", "DBT_ENV_SECRET_STRIPE_WAREHOUSE_PG"))
                   for key in environment)
    WarehouseResource(home=str(duckdb_home)).export_home()
    assert "DBT_TARGET" not in os.environ
    assert "STRIPE_WAREHOUSE_PG_DATABASE" not in os.environ
