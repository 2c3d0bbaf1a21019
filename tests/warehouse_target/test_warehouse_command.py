"""`stripe-warehouse warehouse`: show or choose the warehouse's database from the command line,
the server's URL from an environment variable only, checked before it is saved."""

import json
import stat

import pytest

from commands.cli import main
from stripe_warehouse.warehouse_target import TARGET_FILE


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(tmp_path))
    return tmp_path


def test_a_new_state_directory_shows_duckdb_and_writes_nothing(home, capsys):
    assert main(["warehouse"]) == 0
    assert capsys.readouterr().out == \
        "warehouse: duckdb (warehouse.duckdb in the state directory)\n"
    assert not (home / TARGET_FILE).exists()


@pytest.mark.postgres
def test_a_reachable_server_is_saved_shown_without_its_password_and_undone_by_duckdb(
        home, capsys, monkeypatch, postgres_url):
    monkeypatch.setenv("WAREHOUSE_URL", postgres_url)
    assert main(["warehouse", "--postgres-dsn-env", "WAREHOUSE_URL"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((home / TARGET_FILE).read_text())
    assert saved == {"target": "postgres", "dsn": postgres_url}
    assert stat.S_IMODE((home / TARGET_FILE).stat().st_mode) == 0o600
    password = postgres_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password and password not in out
    assert out.splitlines() == [
        "warehouse was: duckdb (warehouse.duckdb in the state directory); the data there stays "
        "where it is: run `stripe-warehouse sync --all --backfill` to fill the new warehouse",
        f"warehouse: postgres {out.splitlines()[1].split('postgres ', 1)[1]}",
    ]
    assert "@127.0.0.1:" in out.splitlines()[1] and out.splitlines()[1].endswith("/warehouse")

    assert main(["warehouse", "--duckdb"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "warehouse: duckdb (warehouse.duckdb in the state directory)"
    assert json.loads((home / TARGET_FILE).read_text()) == {"target": "duckdb"}


@pytest.mark.parametrize(("value", "expected"), [
    (None, "error: environment variable WAREHOUSE_URL is unset or empty: export the server's "
           "URL (postgresql://user:password@host:port/database)"),
    ("mysql://u:p@127.0.0.1/db", "error: WAREHOUSE_URL is not a PostgreSQL URL: write it as "
                                 "postgresql://user:password@host:port/database"),
    ("postgresql://u:hunter2@127.0.0.1:1/db",
     "error: cannot use the PostgreSQL server postgres u@127.0.0.1:1/db (connection to server "
     'at "127.0.0.1", port 1 failed: Connection refused): check the URL in WAREHOUSE_URL and '
     "that the server accepts connections"),
])
def test_a_bad_or_unreachable_server_is_one_line_and_leaves_the_target_as_it_was(
        home, capsys, monkeypatch, value, expected):
    (home / TARGET_FILE).write_text('{"target": "duckdb"}\n')
    if value is not None:
        monkeypatch.setenv("WAREHOUSE_URL", value)
    assert main(["warehouse", "--postgres-dsn-env", "WAREHOUSE_URL"]) == 2
    err = capsys.readouterr().err
    assert err == expected + "\n"
    assert "hunter2" not in err
    assert (home / TARGET_FILE).read_text() == '{"target": "duckdb"}\n'


def test_a_url_on_the_command_line_is_refused(home, capsys):
    assert main(["warehouse", "--postgres-dsn-env", "postgresql://u:p@h/db"]) == 2
    assert "not the value: secrets on the command line end up in shell history" in \
        capsys.readouterr().err
    assert not (home / TARGET_FILE).exists()
