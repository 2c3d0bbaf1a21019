"""The throwaway PostgreSQL server of the PostgreSQL target's tests (scripts/postgres.py)."""

import os

import psycopg2
import pytest

from scripts import postgres
from tests.processes import alive

pytestmark = pytest.mark.postgres


def test_session_server_listens_on_loopback_only_as_a_non_root_user(postgres_url):
    with psycopg2.connect(postgres_url) as con, con.cursor() as cur:
        cur.execute("select current_setting('listen_addresses'), current_setting('TimeZone'), "
                    "pg_postmaster_start_time() is not null")
        assert cur.fetchone() == ("127.0.0.1", "UTC", True)
    # the other pytest worker's server may be starting (no url file yet) or gone
    directory = next(p for p in postgres.Path("/tmp").glob("stripe-warehouse-pg-*")
                     if (p / postgres.URL_FILE).exists() and postgres.url(p) == postgres_url)
    pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_stop_ends_the_server_and_deletes_its_directory(tmp_path):
    server = postgres.start(tmp_path)
    pid = int((server.directory / "data" / "postmaster.pid").read_text().split()[0])
    with psycopg2.connect(server.url) as con, con.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
    server.stop()
    assert not server.directory.exists()
    assert not alive({pid}, within=10)  # ended (a zombie left to its reaper counts as ended)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(server.url, connect_timeout=3)
