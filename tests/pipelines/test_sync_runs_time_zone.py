"""The reporting time zone on sync_runs (issue 22): a warehouse made before the column gets it
from the next sync's preparation (the dbt models read UTC while it lacks it); a registry
holding an unknown zone is refused as damaged."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.load import ensure_warehouse
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore, InvalidRegistry


def test_a_sync_runs_table_of_an_older_release_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema stripe_raw")
        con.execute("create table stripe_raw.sync_runs (project_id varchar, run_id varchar, "
                    "finished_at timestamp)")
        con.execute("insert into stripe_raw.sync_runs values ('p', 'r1', null)")
    ensure_warehouse(path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select project_id, run_id, reporting_time_zone "
                           "from stripe_raw.sync_runs").fetchall() == [("p", "r1", None)]


def test_a_registry_with_an_unknown_zone_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    store = ConnectionStore(tmp_path)
    store.connect("acme", "pro", "sk_test_acme")
    registry = json.loads(store.path.read_text())
    registry["connections"]["acme"]["reporting_time_zone"] = "Mars/Base"
    store.path.write_text(json.dumps(registry))
    with pytest.raises(InvalidRegistry, match="field reporting_time_zone is not an IANA time "
                                              "zone name"):
        store.get("acme")
