"""Syncs of different projects loading into one PostgreSQL warehouse at the same time (several
machines: the writer lock is a local file) keep every project's rows.

dlt merges through a staging dataset; with its default, one shared by every pipeline
(`stripe_raw_staging`), concurrent merges lose rows without an error: this test on the shared
layout, every load exiting 0, failed with `('beta', 5000, 1, 1) != ('beta', 5000, 2, 2)` (beta's
third round never reached its table); a probe with 20,000 rows left one project's rows out
entirely, and later rounds failed on duplicate `_dlt_id`s in the shared staging table. Each
project now merges through its own (`stripe_raw_staging_<project>`,
pipelines.load._destination). The loads here are dlt pipelines built as a sync builds its own
(its destination, dataset and merge keys), in separate processes like separate workers.
"""

import multiprocessing

import dlt
import pytest

from pipelines.load import RAW_DATASET, _destination
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.warehouse_target import WarehouseTarget

pytestmark = pytest.mark.postgres

PROJECTS = ("alpha", "beta", "gamma")
ROWS = 5_000


def load_round(home: str, project: str, round_: int) -> None:
    @dlt.resource(name="customers", write_disposition="merge", primary_key=["project_id", "id"])
    def customers():
        for i in range(ROWS):
            yield {"project_id": project, "id": f"cus_{i}", "loaded_in_round": round_}

    pipeline = dlt.pipeline(pipeline_name=f"stripe_{project}", pipelines_dir=f"{home}/.dlt",
                            destination=_destination(StateDir.of(home), project),
                            dataset_name=RAW_DATASET)
    pipeline.run(customers())


def test_concurrent_merges_of_three_projects_keep_every_row_of_every_round(tmp_path,
                                                                           own_postgres_database):
    """3 projects x 5,000 customers, merged at the same time, 3 rounds: after each round every
    project has its 5,000 rows, all from that round (each round replaces the last by key)."""
    target = WarehouseTarget.postgres(own_postgres_database)
    target.save(tmp_path)
    # the warehouse's tables exist before projects load at once (a first load creates
    # stripe_raw's tables and dlt's own; several creating them at once collide in PostgreSQL's
    # catalog: "pg_type_typname_nsp_index", a failed sync that its rerun recovers)
    load_round(str(tmp_path), "alpha", -1)
    fork = multiprocessing.get_context("fork")
    for round_ in range(3):
        workers = [fork.Process(target=load_round, args=(str(tmp_path), p, round_))
                   for p in PROJECTS]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
        assert [worker.exitcode for worker in workers] == [0, 0, 0]
        assert target.fetch_all(
            f"select project_id, count(*), min(loaded_in_round), max(loaded_in_round) "
            f"from {RAW_DATASET}.customers group by 1 order by 1") == [
            (project, ROWS, round_, round_) for project in PROJECTS]
    staging = {row[0] for row in target.fetch_all(
        "select schema_name from information_schema.schemata where schema_name like %s",
        [f"{RAW_DATASET}_staging%"])}
    assert staging == {f"{RAW_DATASET}_staging_{project}" for project in PROJECTS}
