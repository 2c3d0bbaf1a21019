"""Times `dbt build` on sandbox companies: a full build, then the build after a 7-day refresh.

Transform only: the company's objects are written straight into `stripe_raw` in the raw-table
contract (the backfill's window: all customers, subscriptions, items, prices, coupons; invoices,
lines, charges, refunds of the last 90 days plus each subscription's latest invoice; events of
the last 30 days), so the figures measure dbt, not the HTTP sync. Each object is written as a
sync writes it: through the privacy allowlist (pipelines/privacy.py; a project naming no
segment keys, so no metadata). Caches made before that (every customer's free-text metadata,
which a real warehouse never holds and the segment models read as a segment) are refused.

Usage: .venv/bin/python bench/transform_build.py [--customers 20000 100000]
         [--against main [--rounds 2]] [--cache DIR] [--keep DIR]
`--against` builds the same data with the code of another commit too (git archive), before and
after alternating, so a change is reported as ratios of one run; `--cache` keeps the generated
companies for later runs; `--keep` keeps the built warehouses (bench/compare_warehouses.py).
Appends to bench/results/transform_build.txt, with the slowest dbt nodes of each build; the
refresh figure is also split into its `dbt build` and the publishing of the readers' copy, and
the build into dbt's start, its nodes (per kind: node time and the SQL in it) and its exit.
`generate=` is pure Python on a fixed seed: compare it between runs to compare machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from trees import export_tree, short_commit  # bench/, this script's own directory

REPO_ROOT = Path(__file__).resolve().parent.parent
# the code under test: the tree on PYTHONPATH (--against's export), else this one
sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or str(REPO_ROOT))


DAY = 86_400
LOG_THREAD = re.compile(r"\] \[([^\]]*)\]: ")  # dbt.log: "12:00:01.5 [debug] [Thread-1 (]: ..."
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


VERSIONS_TABLE = (
    "create table if not exists stripe_raw.subscription_versions (project_id varchar, "
    "id varchar, created bigint, livemode boolean, data json, api_version varchar, "
    "_synced_at timestamp, version_hash varchar, observed_at timestamp, source varchar)"
)


def backfill_objects(company) -> dict[str, list[dict]]:
    """The objects a backfill at `company.now` reads, by raw table."""
    from pipelines.event_types import LISTED_EVENT_TYPES  # the code under test: see sys.path

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
        "credit_notes": [n for n in company.objects.get("credit_note", [])
                         if n["created"] >= now - 90 * DAY],
        # the types a sync lists (pipelines/event_types.py)
        "events": [e for e in company.objects["event"]
                   if e["created"] >= now - 30 * DAY and e["type"] in LISTED_EVENT_TYPES],
    }
    return picked


def write_raw(con: duckdb.DuckDBPyConnection, objects: dict[str, list[dict]], synced: datetime,
              workdir: Path, project_id: str = "bench") -> None:
    """Appends objects to the raw tables through a JSONL file (fast bulk load), each as the
    sync stores it: allowlisted (the raw table's extra columns come from the listing)."""
    from pipelines.privacy import allowlist  # the code under test: see sys.path

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
                          "livemode": bool(obj.get("livemode")),
                          "data": json.dumps(allowlist(obj)),
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
        if table == "subscriptions":
            write_versions(con)


def write_versions(con: duckdb.DuckDBPyConnection) -> None:
    """The sync's insert-only `subscription_versions` of the subscriptions in `incoming`: a
    content not stored yet gets a version observed at this load, one seen before keeps its
    first (pipelines/source.py; the hash is md5 here, of the content without latest_invoice)."""
    con.execute(VERSIONS_TABLE)
    con.execute(
        "insert into stripe_raw.subscription_versions "
        "select project_id, id, created, livemode, data, api_version, _synced_at, hash, "
        "_synced_at, 'sync' from (select *, md5(cast(json_merge_patch(cast(data as json), "
        "'{\"latest_invoice\": null}') as varchar)) as hash from incoming) as listed "
        "where not exists (select 1 from stripe_raw.subscription_versions as stored "
        "where stored.project_id = listed.project_id and stored.id = listed.id "
        "and stored.version_hash = listed.hash)")


def add_sync_run(con, kind: str, window_start: datetime, finished: datetime) -> None:
    """Records a succeeded sync run (the reporting window); creates the history table too."""
    con.execute(VERSIONS_TABLE)
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


def slowest_nodes(run_results: Path, count: int = 6) -> str:
    """The dbt nodes that took longest in an invocation (its run_results.json)."""
    results = json.loads(run_results.read_text())["results"]
    slowest = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:count]
    return ", ".join(f"{r['unique_id'].split('.')[-1]}={r['execution_time']:.1f}s"
                     for r in slowest)


def build_split(run_results: Path, dbt_log: Path, started: float, dbt_seconds: float) -> str:
    """Where an invocation's time went: dbt's start (process, imports, parse, manifest) up to
    its first node, the nodes' span, and the rest (the process's exit: DuckDB checkpoints its
    write-ahead log then); per kind of node, the summed node times and the SQL among them
    (dbt.log's "SQL status" times; the rest of a node's time is dbt's own work). `started`:
    the epoch seconds at which the dbt command was started."""
    results = json.loads(run_results.read_text())["results"]
    spans = [(datetime.fromisoformat(t["started_at"]).timestamp(),
              datetime.fromisoformat(t["completed_at"]).timestamp())
             for r in results for t in r["timing"] if t.get("started_at")]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    node_seconds: dict[str, float] = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        node_seconds[kind] = node_seconds.get(kind, 0.0) + result["execution_time"]
    sql_seconds: dict[str, float] = {}
    if dbt_log.exists():
        lines = dbt_log.read_text(errors="replace").splitlines()
        begun = max((i for i, line in enumerate(lines) if "Running with dbt=" in line), default=0)
        running: dict[str, str] = {}  # dbt's thread -> the kind of node it runs
        for line in lines[begun:]:
            tagged = LOG_THREAD.search(line)
            thread = tagged[1] if tagged else ""
            if "Began running node " in line:
                running[thread] = line.split("Began running node ", 1)[1].split(".", 1)[0]
            elif "SQL status: " in line and " in " in line:
                kind = running.get(thread, "other")
                seconds = float(line.rsplit(" in ", 1)[1].split()[0])
                sql_seconds[kind] = sql_seconds.get(kind, 0.0) + seconds
    kinds = ", ".join(f"{kind}s {count:.1f}s (SQL {sql_seconds.get(kind, 0.0):.1f}s)"
                      for kind, count in sorted(node_seconds.items(), key=lambda kv: -kv[1]))
    return (f"dbt start {first - started:.1f}s, nodes {last - first:.1f}s, exit "
            f"{dbt_seconds - (last - started):.1f}s; node times: {kinds}")


def time_build(home: Path, full_refresh: bool) -> dict:
    """`stripe_warehouse.transform.build` in its two steps, timed: total, dbt build, publish
    seconds (publish counts from the end of the dbt build: its file copy starts with the build)
    and the slowest nodes. Imports the code under test (the tree first on sys.path)."""
    from stripe_warehouse.publish import publication
    from stripe_warehouse.transform import build_args, run_dbt

    try:
        from stripe_warehouse.state_dir import StateDir

        target = StateDir.resolve(home).dbt_target
    except ImportError:  # a revision before the state directory had one home
        from stripe_warehouse.transform import dbt_target_path

        target = dbt_target_path(home)

    started, started_epoch = time.perf_counter(), time.time()
    with publication(home, whole=full_refresh) as publish:
        run_dbt(build_args(full_refresh), home=home)
        built = time.perf_counter()
        publish()
    done = time.perf_counter()
    run_results = target / "run_results.json"
    shutil.copyfile(run_results, home / f"run_results_{'full' if full_refresh else 'refresh'}.json")
    return {"total": done - started, "dbt": built - started, "publish": done - built,
            "nodes": len(json.loads(run_results.read_text())["results"]),
            "slowest": slowest_nodes(run_results),
            "split": build_split(run_results, target.parent / "logs" / "dbt.log", started_epoch,
                                 built - started)}


def build_in(code: Path, home: Path, full_refresh: bool) -> dict:
    """`time_build` in a fresh process running the code of the tree `code` (the current tree or
    a commit's export): PYTHONPATH puts it before the editable install, for dbt's Python models
    too."""
    environment = {**os.environ, "PYTHONPATH": str(code)}
    environment.pop("DBT_TARGET_PATH", None)
    environment.pop("DBT_LOG_PATH", None)
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--time-build", str(home),
         *(["--full-refresh"] if full_refresh else [])],
        env=environment, cwd=code, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def prepared_company(customers: int, cache: Path) -> dict:
    """The raw tables of a backfill 7 days before the company's `now` (`backfill.duckdb`) and
    the rows its 7-day refresh loads (`refresh/*.jsonl`), generated once into `cache` and reused
    by later runs (generation takes about a minute at 100k): every build measures the same data.
    """
    meta_path = cache / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if not meta.get("allowlisted"):
            sys.exit(f"error: {cache} was generated by an older bench, without the privacy "
                     "allowlist: use another --cache directory (a new company is generated)")
        return meta
    from sandbox.company import CompanyConfig, generate_company

    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    company = generate_company(CompanyConfig(customers=customers, seed=42))
    generate_s = time.perf_counter() - started
    backfill_at = datetime.fromtimestamp(company.now - 7 * DAY, UTC)
    objects = backfill_objects(company)
    con = duckdb.connect(str(cache / "backfill.duckdb"),
                         config={"storage_compatibility_version": "v1.4.0"})
    con.execute("create schema if not exists stripe_raw")
    write_raw(con, objects, backfill_at, cache)
    add_sync_run(con, "backfill", datetime.fromtimestamp(company.now - 90 * DAY, UTC),
                 backfill_at)
    con.close()
    recent = {table: [o for o in rows_ if (o.get("created") or 0) >= company.now - 7 * DAY]
              for table, rows_ in objects.items()}
    # a refresh re-lists every subscription (status=all), and with each its items
    recent["subscriptions"] = objects["subscriptions"]
    recent["subscription_items"] = objects["subscription_items"]
    refresh_dir = cache / "refresh"
    refresh_dir.mkdir(exist_ok=True)
    for table, rows_ in recent.items():
        with (refresh_dir / f"{table}.json").open("w") as handle:
            json.dump(rows_, handle)
    for leftover in cache.glob("*.jsonl"):
        leftover.unlink()
    meta = {"customers": customers, "raw_rows": sum(len(v) for v in objects.values()),
            "generate_s": generate_s, "now": company.now, "allowlisted": True}
    meta_path.write_text(json.dumps(meta))
    return meta


def refresh_raw(home: Path, cache: Path, now: int) -> None:
    """Loads the cached refresh rows into the warehouse, as the 7-day refresh at `now` would."""
    refresh_at = datetime.fromtimestamp(now, UTC)
    recent = {path.stem: json.loads(path.read_text())
              for path in sorted((cache / "refresh").glob("*.json"))}
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    write_raw(con, recent, refresh_at, home)
    add_sync_run(con, "refresh", datetime.fromtimestamp(now - 7 * DAY, UTC), refresh_at)
    con.close()


def bench_one(code: Path, home: Path, cache: Path, meta: dict) -> dict:
    """Full build and post-refresh build of the cached company by the code of `code`."""
    home.mkdir(parents=True)
    shutil.copyfile(cache / "backfill.duckdb", home / "warehouse.duckdb")
    full = build_in(code, home, full_refresh=True)
    refresh_raw(home, cache, meta["now"])
    refresh = build_in(code, home, full_refresh=False)
    return {"full": full, "refresh": refresh, "load": os.getloadavg()[0]}


def result_line(meta: dict, result: dict, label: str) -> str:
    full, refresh = result["full"], result["refresh"]
    # the machine may be shared: the 1-minute load average says how much the figures are worth
    return (f"customers={meta['customers']:>7,}  raw_rows={meta['raw_rows']:>9,}  "
            f"generate={meta['generate_s']:6.1f}s  full_build={full['total']:6.1f}s  "
            f"build_after_7day_refresh={refresh['total']:6.1f}s "
            f"(dbt {refresh['dbt']:.1f}s + publish {refresh['publish']:.1f}s)  "
            f"nodes={refresh['nodes']}  load_avg_1m={result['load']:.1f}{label}\n"
            f"  slowest (full): {full['slowest']}\n  slowest (refresh): {refresh['slowest']}"
            + (f"\n  split (refresh): {refresh['split']}" if "split" in refresh else ""))


def exported_tree(ref: str, workdir: Path) -> Path:
    """The files of commit `ref` (git archive), to build with the code before a change."""
    commit = short_commit(ref)
    return export_tree(commit, workdir / f"code-{commit}")


def current_commit() -> str:
    described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,
                               capture_output=True, text=True).stdout.strip()
    return described or "unknown"


def main() -> None:
    """Runs the benchmark for each requested size and writes the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--against", metavar="COMMIT",
                        help="also build the same data with the code of COMMIT (e.g. main), "
                             "alternating before/after: ratios measured in one run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="before/after pairs per size with --against (default 1)")
    parser.add_argument("--cache", type=Path,
                        help="keep the generated companies here and reuse them in later runs")
    parser.add_argument("--keep", type=Path,
                        help="keep the built warehouses here (e.g. to compare their tables)")
    parser.add_argument("--time-build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--full-refresh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_build:  # worker: one timed build by the code on PYTHONPATH, as JSON
        print(json.dumps(time_build(args.time_build, args.full_refresh)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        variants = [("", REPO_ROOT)]
        header = f"[code: {current_commit()}]"
        if args.against:
            before = exported_tree(args.against, workdir)
            variants = [(f"  [before: {before.name[5:]}]", before),
                        (f"  [after: {current_commit()}]", REPO_ROOT)]
            header = f"[before: {before.name[5:]}, after: {current_commit()}]"
        lines = [f"# transform_build  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
                 f"{platform.processor() or platform.machine()}  python "
                 f"{platform.python_version()}  {header}  load_avg_1m at start="
                 f"{os.getloadavg()[0]:.1f}"]
        print(lines[0], flush=True)
        for size in args.customers:
            cache = (args.cache or workdir / "companies") / f"customers-{size}"
            meta = prepared_company(size, cache)
            for round_ in range(args.rounds if args.against else 1):
                for label, code in variants:
                    name = f"{size}-{round_}-{'before' if 'before' in label else 'after'}"
                    home = (args.keep or workdir / "homes") / name
                    shutil.rmtree(home, ignore_errors=True)
                    line = result_line(meta, bench_one(code, home, cache, meta), label)
                    print(line, flush=True)
                    lines.append(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:  # earlier runs stay: machines differ from day to day
        results.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
