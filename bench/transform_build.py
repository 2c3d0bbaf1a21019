"""Times `dbt build` on sandbox companies: a full build, then the build after a 7-day refresh.

Transform only: the company's objects are written straight into `stripe_raw` in the raw-table
contract (the backfill's window: all customers, subscriptions, items, prices, coupons; invoices,
lines, charges, refunds of the last 90 days plus each subscription's latest invoice; events of
the last 30 days), so the figures measure dbt, not the HTTP sync.

Usage: .venv/bin/python bench/transform_build.py [--customers 20000 100000]
Appends to bench/results/transform_build.txt, with the slowest dbt nodes of each build; the
refresh figure is also split into its `dbt build` and the publishing of the readers' copy.
`generate=` is pure Python on a fixed seed: compare it between runs to compare machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from pipelines.event_types import LISTED_EVENT_TYPES  # noqa: E402
from sandbox.company import CompanyConfig, generate_company  # noqa: E402
from stripe_warehouse.publish import publication  # noqa: E402
from stripe_warehouse.transform import build_args, dbt_target_path, run_dbt  # noqa: E402

DAY = 86_400
# TRANSFORM_BENCH_RESULTS: write elsewhere (e.g. a trial run that must not replace the record)
RESULTS = Path(os.environ.get("TRANSFORM_BENCH_RESULTS",
                              REPO_ROOT / "bench" / "results" / "transform_build.txt"))
TABLES = {
    "customer": "customers", "subscription": "subscriptions",
    "subscription_item": "subscription_items", "invoice": "invoices",
    "line_item": "invoice_lines", "charge": "charges", "refund": "refunds", "price": "prices",
    "product": "products", "coupon": "coupons", "event": "events",
}
EXTRA = {"customers": ("deleted", "boolean"), "subscription_items": ("subscription", "varchar"),
         "invoice_lines": ("invoice", "varchar"), "events": ("type", "varchar")}


def backfill_objects(company) -> dict[str, list[dict]]:
    """The objects a backfill at `company.now` reads, by raw table."""
    now = company.now
    latest_invoices = {s.get("latest_invoice") for s in company.objects["subscription"]}
    invoices = [i for i in company.objects["invoice"]
                if i["created"] >= now - 90 * DAY or i["id"] in latest_invoices]
    invoice_ids = {i["id"] for i in invoices}
    picked = {
        "customers": company.objects["customer"],
        "subscriptions": company.objects["subscription"],
        "subscription_items": company.objects["subscription_item"],
        "prices": company.objects["price"],
        "products": company.objects["product"],
        "coupons": company.objects["coupon"],
        "invoices": invoices,
        "invoice_lines": [
            li for li in company.objects["line_item"] if li["invoice"] in invoice_ids
        ],
        "charges": [c for c in company.objects["charge"] if c["created"] >= now - 90 * DAY],
        "refunds": [r for r in company.objects["refund"] if r["created"] >= now - 90 * DAY],
        "disputes": [d for d in company.objects.get("dispute", [])
                     if d["created"] >= now - 90 * DAY],
        # the types a sync lists (pipelines/event_types.py)
        "events": [e for e in company.objects["event"]
                   if e["created"] >= now - 30 * DAY and e["type"] in LISTED_EVENT_TYPES],
    }
    return picked


def write_raw(con: duckdb.DuckDBPyConnection, objects: dict[str, list[dict]], synced: datetime,
              workdir: Path, project_id: str = "bench") -> None:
    """Appends objects to the raw tables through a JSONL file (fast bulk load)."""
    for table, rows in objects.items():
        extra_name, extra_type = EXTRA.get(table, (None, None))
        extra_col = f", {extra_name} {extra_type}" if extra_name else ""
        con.execute(
            f"create table if not exists stripe_raw.{table} (project_id varchar, id varchar, "
            f"created bigint, livemode boolean, data json, api_version varchar, "
            f"_synced_at timestamp{extra_col})"
        )
        if not rows:
            continue
        path = workdir / f"{table}.jsonl"
        with path.open("w") as handle:
            for obj in rows:
                record = {"project_id": project_id, "id": obj["id"], "created": obj.get("created"),
                          "livemode": bool(obj.get("livemode")), "data": json.dumps(obj),
                          "api_version": "2025-09-30.clover",
                          "_synced_at": synced.strftime("%Y-%m-%d %H:%M:%S")}
                if extra_name:
                    key = "type" if table == "events" else extra_name
                    record[extra_name] = obj.get(key)
                handle.write(json.dumps(record) + "\n")
        extra_type_spec = f", {extra_name}: '{extra_type}'" if extra_name else ""
        con.execute(f"create or replace temp table incoming as select * from read_json('{path}', "
                    "format='newline_delimited', records=true, maximum_object_size=67108864, "
                    f"columns={{project_id: 'varchar', id: 'varchar', created: 'bigint', "
                    f"livemode: 'boolean', data: 'varchar', api_version: 'varchar', "
                    f"_synced_at: 'timestamp'{extra_type_spec}}})")
        con.execute(f"delete from stripe_raw.{table} where (project_id, id) in "
                    "(select project_id, id from incoming)")
        con.execute(f"insert into stripe_raw.{table} select project_id, id, created, livemode, "
                    f"cast(data as json), api_version, _synced_at"
                    f"{', ' + extra_name if extra_name else ''} from incoming")


def add_sync_run(con, kind: str, window_start: datetime, finished: datetime) -> None:
    """Records a succeeded sync run (the reporting window); creates the history table too."""
    con.execute(
        "create table if not exists stripe_raw.subscription_versions (project_id varchar, "
        "id varchar, created bigint, livemode boolean, data json, api_version varchar, "
        "_synced_at timestamp, version_hash varchar, observed_at timestamp, source varchar)"
    )
    con.execute(
        "create table if not exists stripe_raw.sync_runs (project_id varchar, run_id varchar, "
        "kind varchar, window_start timestamp, window_end timestamp, started_at timestamp, "
        "finished_at timestamp, status varchar, objects_loaded bigint, api_version varchar, "
        "test_mode boolean)"
    )
    con.execute(
        "insert into stripe_raw.sync_runs values ('bench', ?, ?, ?, ?, ?, ?, 'succeeded', 0, "
        "'2025-09-30.clover', true)",
        [f"{kind}-{finished.timestamp():.0f}", kind, window_start.replace(tzinfo=None),
         finished.replace(tzinfo=None), finished.replace(tzinfo=None),
         finished.replace(tzinfo=None)],
    )


def slowest_nodes(home: Path, count: int = 6) -> str:
    """The dbt nodes that took longest in the last invocation (its run_results.json)."""
    results = json.loads((dbt_target_path(home) / "run_results.json").read_text())["results"]
    slowest = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:count]
    return ", ".join(f"{r['unique_id'].split('.')[-1]}={r['execution_time']:.1f}s"
                     for r in slowest)


def timed_build(home: Path, full_refresh: bool) -> tuple[float, float, float]:
    """`stripe_warehouse.transform.build` in its two steps: (total, dbt build, publish) seconds;
    publish counts from the end of the dbt build (its file copy starts with the build)."""
    started = time.perf_counter()
    with publication(home, whole=full_refresh) as publish:
        run_dbt(build_args(full_refresh), home=home)
        built = time.perf_counter()
        publish()
    done = time.perf_counter()
    return done - started, built - started, done - built


def bench_one(customers: int) -> str:
    """Full build and post-refresh build times for one company size."""
    started = time.perf_counter()
    company = generate_company(CompanyConfig(customers=customers, seed=42))
    generate_s = time.perf_counter() - started
    backfill_at = datetime.fromtimestamp(company.now - 7 * DAY, UTC)
    refresh_at = datetime.fromtimestamp(company.now, UTC)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        objects = backfill_objects(company)
        rows = sum(len(v) for v in objects.values())
        con = duckdb.connect(str(home / "warehouse.duckdb"),
                             config={"storage_compatibility_version": "v1.4.0"})
        con.execute("create schema if not exists stripe_raw")
        write_raw(con, objects, backfill_at, home)
        add_sync_run(con, "backfill", datetime.fromtimestamp(company.now - 90 * DAY, UTC),
                     backfill_at)
        con.close()
        full_s, _, _ = timed_build(home, full_refresh=True)
        full_profile = slowest_nodes(home)

        recent = {table: [o for o in rows_ if (o.get("created") or 0) >= company.now - 7 * DAY]
                  for table, rows_ in objects.items()}
        # a refresh re-lists every subscription (status=all), and with each its items
        recent["subscriptions"] = objects["subscriptions"]
        recent["subscription_items"] = objects["subscription_items"]
        con = duckdb.connect(str(home / "warehouse.duckdb"))
        write_raw(con, recent, refresh_at, home)
        add_sync_run(con, "refresh", backfill_at, refresh_at)
        con.close()
        refresh_s, refresh_dbt_s, refresh_publish_s = timed_build(home, full_refresh=False)
        refresh_profile = slowest_nodes(home)
    # the machine may be shared: the 1-minute load average says how much the figures are worth
    return (f"customers={customers:>7,}  raw_rows={rows:>9,}  generate={generate_s:6.1f}s  "
            f"full_build={full_s:6.1f}s  build_after_7day_refresh={refresh_s:6.1f}s "
            f"(dbt {refresh_dbt_s:.1f}s + publish {refresh_publish_s:.1f}s)  "
            f"load_avg_1m={os.getloadavg()[0]:.1f}\n"
            f"  slowest (full): {full_profile}\n  slowest (refresh): {refresh_profile}")


def main() -> None:
    """Runs the benchmark for each requested size and writes the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[20_000, 100_000])
    sizes = parser.parse_args().customers
    lines = [f"# transform_build  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
             f"{platform.processor() or platform.machine()}  python {platform.python_version()}"]
    for size in sizes:
        line = bench_one(size)
        print(line, flush=True)
        lines.append(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:  # earlier runs stay: machines differ from day to day
        results.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
