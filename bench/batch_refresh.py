"""A refresh cycle of N projects as one batch (`sync --all --refresh`), and the current way.

    .venv/bin/python bench/batch_refresh.py [--projects 10 100] [--customers 500]
        [--workers 4] [--separate-at 10] [--companies 20] [--target postgres --runs 2]

For each N: a sandbox process serving N live-mode accounts (50 ms latency, Stripe's live
limits per account: 100 requests/s overall, 25/s per endpoint), one state directory and one
warehouse; the N projects (tier Scale) are backfilled by one batch, then refreshed by one
batch: that refresh is the cycle measured. It runs in its own process like the command
(imports and the Dagster definitions included in its wall time) and reports its split:
extraction (Stripe reading, summed over projects and as the wall time until the last project
finished reading), the loads (the writer lock's held time, summed: the serial part), the
syncs' wall time, one dbt build and one publish. At N = ``--separate-at`` the current way
follows in the same run: N separate `stripe-warehouse sync PROJECT --refresh` commands one
after the other, then the batch again (so machine load weighs on both).

The sandbox serves ``--companies`` distinct generated companies (500 customers, 3 years)
under N keys (project i reads company i mod companies): generating and holding 1,000
companies would take 12 minutes and several GB, and every account is read, rate-limited and
loaded as its own. Only those distinct projects are backfilled over HTTP; the others are
set up as their clones (`clone_projects`: raw rows, sync_runs and registry facts copied, then
one dbt build), since backfilling 1,000 accounts would take over an hour and is setup, not
the cycle; the report says whether every clone's marts equal its source's after the cycle.
With ``--target postgres`` the warehouse is a throwaway PostgreSQL server on 127.0.0.1
(scripts/postgres.py), and ``--runs R`` refreshes the projects as R concurrent runs, each of
its share (`split_batch`, as the tier's batch schedule splits it for R run workers:
STRIPE_WAREHOUSE_BATCH_RUNS), each with its own dbt build (they take the build lock in turn);
the cycle is the first run's start to the last one's end.
Per-project cost and fixed cost come from the two sizes' cycle times (a line through
them); projects per 30-minute cycle = (1800 s - fixed) / per-project.
The machine-speed marker is bench/demo_backfill.py's (generating the 2,000-customer demo
company). Appends to bench/results/batch_refresh.txt.
"""

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("BATCH_BENCH_RESULTS",
                              REPO / "bench" / "results" / "batch_refresh.txt"))
LATENCY_MS = 50
CYCLE_SECONDS = 1800


def key_of(i: int) -> str:
    return f"sk_live_bench{i:04d}"


def project_of(i: int) -> str:
    return f"p{i:04d}"


def serve(projects: int, companies: int, customers: int) -> None:
    """Child: generate the companies, serve them under ``projects`` keys, print the URL and
    the account ids as one JSON line, and serve until stdin closes."""
    from sandbox.api import StripeApi
    from sandbox.company import CompanyConfig, generate_company
    from sandbox.limits import RATE_LIMIT_PRESETS
    from sandbox.server import SandboxServer

    made = [generate_company(CompanyConfig(customers=customers, years=3, seed=100 + i,
                                           livemode=True))
            for i in range(min(companies, projects))]
    global_rate, endpoint_rate = RATE_LIMIT_PRESETS["live"]
    server = SandboxServer(accounts={key_of(i): made[i] for i in range(len(made))},
                           latency_ms=LATENCY_MS, rate_limit_global=global_rate,
                           rate_limit_per_endpoint=endpoint_rate)
    for i in range(len(made), projects):  # the same company's API object (its indexes)
        server.accounts[key_of(i)] = server.accounts[key_of(i % len(made))]
    assert all(isinstance(api, StripeApi) for api in server.accounts.values())
    with server:
        print(json.dumps({"url": server.url,
                          "accounts": [made[i % len(made)].account_id
                                       for i in range(projects)]}), flush=True)
        sys.stdin.read()  # until the parent closes it


def cycle(kind: str, workers: int, share: str | None = None) -> None:
    """Child: one batch of every project in this process, as the command runs it (with
    ``share`` K/R: the K-th of the R runs a deployment with R run workers splits the batch
    into, as the tier's batch schedule does); prints the cycle's figures as one JSON line."""
    started = time.monotonic()
    from contextlib import contextmanager

    import pipelines.load
    from commands.batch_report import BatchReport
    from orchestration.batch_refresh import run_batch_job
    from pipelines.batch import batch_projects, split_batch
    from stripe_warehouse.registry import ConnectionStore
    from stripe_warehouse.state_dir import StateDir

    held: list[float] = []  # the writer lock's held times of the syncs (the serial part)
    writer = pipelines.load.warehouse_writer

    @contextmanager
    def timed_writer(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with writer(*args, **kwargs):
            since = time.monotonic()
            try:
                yield
            finally:
                held.append(time.monotonic() - since)

    pipelines.load.warehouse_writer = timed_writer
    imported = time.monotonic()
    home = StateDir.resolve().create().root
    store = ConnectionStore(home)
    projects = batch_projects(store, "scale")
    if share:
        k, runs = (int(part) for part in share.split("/"))
        projects = split_batch(projects, runs)[k - 1]
    extract_ends: list[float] = []
    report = BatchReport(open(os.devnull, "w"), imported)

    def on_outcome(outcome) -> None:  # noqa: ANN001
        report.project(outcome)
        extract_ends.append(time.monotonic())

    ok = run_batch_job(home, {"projects": projects, "kind": kind, "workers": workers},
                       report.observer, on_outcome=on_outcome)
    split = report.split()
    outcomes = report.outcomes
    phases = {name: sum(o.phases.get(name, 0.0) for o in outcomes)
              for name in ("extract", "normalize", "load")}
    print(json.dumps({
        "ok": ok, "projects": len(outcomes), "failed": sum(not o.ok for o in outcomes),
        "rows": sum(o.rows for o in outcomes),
        "requests": sum(o.result.requests for o in outcomes if o.result),
        "throttled": sum(o.result.throttled for o in outcomes if o.result),
        "imports": imported - started, "syncs": split["syncs"], "build": split["build"],
        "publish": split["publish"], "in_run": split["total"],
        "wall": time.monotonic() - started,
        "extract_sum": phases["extract"], "normalize_sum": phases["normalize"],
        "load_sum": phases["load"], "writer_held": sum(held),
    }), flush=True)


def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg2's, its literal % signs (modulo) doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Warehouse:
    """The state directory's warehouse for the setup's SQL: DuckDB's file or the PostgreSQL
    server (``?`` placeholders either way; committed on close)."""

    def __init__(self, home: Path, read_only: bool = False) -> None:
        from stripe_warehouse.state_dir import StateDir

        target = StateDir.of(home).target
        self.postgres = target.is_postgres
        if self.postgres:
            self.con = target.connect()
        else:
            import duckdb

            self.con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=read_only)

    def execute(self, sql: str, parameters: list | None = None) -> list[tuple]:
        if not self.postgres:
            return self.con.execute(sql, parameters or []).fetchall()
        with self.con.cursor() as cur:  # no parameters: the SQL's % signs stay as they are
            cur.execute(_pyformat(sql) if parameters else sql, parameters or None)
            return cur.fetchall() if cur.description else []

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if not self.postgres:
            self.con.executemany(sql, rows)
            return
        with self.con.cursor() as cur:
            cur.executemany(_pyformat(sql), rows)

    def close(self) -> None:
        if self.postgres:
            self.con.commit()
        self.con.close()


def clone_projects(home: Path, distinct: int, n: int) -> float:
    """Setup of a large N: projects ``distinct``..N-1 get the raw rows, sync_runs and registry
    sync facts of project ``i mod distinct`` (whose account the sandbox serves them: the same
    company), as if each had been backfilled; then one dbt build. Backfilling 1,000 accounts
    over HTTP would take over an hour here, and the backfill is setup, not the measured
    cycle: each clone's refresh reads its own account over HTTP and loads into its own
    rows like any project's. Returns the seconds the setup's dbt build took."""
    from stripe_warehouse.registry import ConnectionStore
    from stripe_warehouse.transform import build

    pairs = [(project_of(i), project_of(i % distinct)) for i in range(distinct, n)]
    con = _Warehouse(home)
    try:
        con.execute("create temp table clones (clone varchar, source varchar)")
        con.executemany("insert into clones values (?, ?)", pairs)
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.columns where table_schema = "
            "'stripe_raw' and column_name = 'project_id' and table_name not like '\\_dlt%' "
            "escape '\\'")]
        for table in tables:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'stripe_raw' and table_name = ? order by ordinal_position", [table])]
            picked = ", ".join(
                "clones.clone" if c == "project_id"
                else "left(md5(raw._dlt_id || clones.clone), 14)" if c == "_dlt_id"
                else f'raw."{c}"' for c in columns)
            names = ", ".join(f'"{c}"' for c in columns)
            con.execute(f'insert into stripe_raw."{table}" ({names}) select {picked} '
                        f'from stripe_raw."{table}" as raw '
                        "join clones on raw.project_id = clones.source")
    finally:
        con.close()
    store = ConnectionStore(home)
    for clone, source in pairs:
        facts = store.get(source)
        store.connect(clone, "scale", key_of(int(clone[1:])), account_id=facts.account_id)
        store.record_sync(clone, "backfill", facts.last_sync_at, facts.last_event_created)
    started = time.monotonic()
    build(home)
    return time.monotonic() - started


def clones_match_sources(home: Path, distinct: int, n: int) -> str:
    """Whether every clone's metrics_daily equals its source project's after the cycle (a
    clone is the same account refreshed as its own project: a difference is a bench bug)."""
    con = _Warehouse(home, read_only=True)
    numbers = ("generate_series(?, ? - 1) as r(i)" if con.postgres  # DuckDB's range: end excluded
               else "range(?, ?) as r(i)")
    try:
        differing = con.execute(
            "with pairs as (select 'p' || lpad(i::varchar, 4, '0') as clone, "
            f"'p' || lpad((i % ?)::varchar, 4, '0') as source from {numbers}), "
            "c as (select p.source, m.metric_date, m.metric, m.value from marts.metrics_daily m "
            "join pairs p on m.project_id = p.clone), "
            "s as (select p.source, m.metric_date, m.metric, m.value from marts.metrics_daily m "
            "join pairs p on m.project_id = p.source) "
            "select count(*) from ((select * from c except all select * from s) "
            "union all (select * from s except all select * from c)) as differing",
            [distinct, distinct, n])[0][0]
    finally:
        con.close()
    return ("every clone's metrics_daily equals its source's" if differing == 0
            else f"{differing} metrics_daily rows differ between clones and their sources")


def child(args: list[str], home: Path, url: str) -> dict:
    return children([args], home, url)[0]


def children(each_args: list[list[str]], home: Path, url: str) -> list[dict]:
    """Run one child per argument list, all at once (the run workers of a deployment); their
    JSON lines, each with ``wall``, and ``cycle_wall``: start of the first to end of the last."""
    env = {**os.environ, "STRIPE_WAREHOUSE_HOME": str(home), "STRIPE_API_BASE": url,
           "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    running = [subprocess.Popen([sys.executable, __file__, *args], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for args in each_args]
    results = []
    for process in running:
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(err[-3000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    for result in results:
        result["cycle_wall"] = time.monotonic() - started
    return results


def refresh_cycle(home: Path, url: str, options: argparse.Namespace, lines: list[str],
                  label: str) -> float:
    """One refresh cycle in ``options.runs`` concurrent runs; its wall seconds."""
    w = ["--workers", str(options.workers)]
    if options.runs == 1:
        result = child(["--cycle", "refresh", *w], home, url)
        lines.append(describe(label, result))
        return result["wall"]
    results = children([["--cycle", "refresh", *w, "--share", f"{k}/{options.runs}"]
                        for k in range(1, options.runs + 1)], home, url)
    for k, result in enumerate(results, 1):
        lines.append(describe(f"{label}, run {k} of {options.runs}", result))
    wall = results[0]["cycle_wall"]
    lines.append(f"  {label}: {wall:.1f} s wall for the {options.runs} concurrent runs "
                 f"({sum(r['projects'] for r in results)} projects, "
                 f"{sum(r['failed'] for r in results)} failed)")
    return wall


def separate_refreshes(home: Path, url: str, projects: int) -> float:
    """The current way: one `stripe-warehouse sync P --refresh` after another; wall seconds."""
    env = {**os.environ, "STRIPE_WAREHOUSE_HOME": str(home), "STRIPE_API_BASE": url}
    cli = str(Path(sys.executable).with_name("stripe-warehouse"))
    started = time.monotonic()
    for i in range(projects):
        subprocess.run([cli, "sync", project_of(i), "--refresh"], cwd=REPO, env=env,
                       check=True, capture_output=True)
    return time.monotonic() - started


def describe(label: str, c: dict) -> str:
    n = c["projects"]
    return (f"  {label}: {c['wall']:6.1f} s wall for {n} projects ({c['failed']} failed, "
            f"{c['rows']:,} rows, {c['requests']:,} requests, {c['throttled']} 429s) = "
            f"start {c['imports']:.1f} + syncs {c['syncs']:.1f} + dbt build {c['build']:.1f} + "
            f"publish {c['publish']:.1f} + rest {c['wall'] - c['imports'] - c['in_run']:.1f}\n"
            f"    syncs: extraction {c['extract_sum']:.1f} s summed over projects "
            f"({c['extract_sum'] / n:.2f} s each), normalize {c['normalize_sum']:.1f} s, "
            f"load incl. writer wait {c['load_sum']:.1f} s; writer lock held "
            f"{c['writer_held']:.1f} s ({c['writer_held'] / n:.2f} s per project: the serial "
            "part)")


def measure(n: int, options: argparse.Namespace, lines: list[str]) -> dict:
    from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
    from stripe_warehouse.registry import ConnectionStore

    os.environ.setdefault(SECRET_KEY_ENV, generate_key())
    server = None
    if options.target == "postgres":
        sys.path.insert(0, str(REPO))
        from scripts import postgres

        server = postgres.start()
    sandbox = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n), "--companies", str(options.companies),
         "--customers", str(options.customers)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert sandbox.stdout is not None
        served = json.loads(sandbox.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
            home = Path(tmp) / "state"
            store = ConnectionStore(home)
            if server is not None:
                from stripe_warehouse.warehouse_target import WarehouseTarget

                WarehouseTarget.postgres(server.url).save(home)
            # beyond the distinct companies, projects are set up as clones (clone_projects)
            distinct = min(n, options.companies)
            for i, account in enumerate(served["accounts"][:distinct]):
                store.connect(project_of(i), "scale", key_of(i), account_id=account)
            w = ["--workers", str(options.workers)]
            backfill = child(["--cycle", "backfill", *w], home, served["url"])
            lines.append(f"N={n}: backfill batch {backfill['wall']:.1f} s "
                         f"({backfill['rows']:,} rows; setup, not the cycle)")
            if distinct < n:
                setup_build = clone_projects(home, distinct, n)
                lines.append(f"  setup: projects {project_of(distinct)}..{project_of(n - 1)} "
                             f"cloned from the {distinct} backfilled (raw rows, sync_runs, "
                             f"registry), then one dbt build ({setup_build:.1f} s)")
            first = refresh_cycle(home, served["url"], options, lines, "refresh batch")
            result = {"batch": first}
            if distinct < n:
                lines.append(f"  {clones_match_sources(home, distinct, n)}")
            if n == options.separate_at:
                separate = separate_refreshes(home, served["url"], n)
                lines.append(f"  current way: {n} separate `sync P --refresh`: {separate:.1f} s "
                             f"({separate / n:.1f} s per project)")
                again = refresh_cycle(home, served["url"], options, lines, "refresh batch again")
                best = min(first, again)
                lines.append(f"  batch vs separate: {separate / best:.1f}x faster "
                             f"({best:.1f} s vs {separate:.1f} s)")
                result["batch"] = (first + again) / 2
            lines.append(f"  load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
            print("\n".join(lines[-6:]), flush=True)
            return result
    finally:
        if sandbox.stdin:
            sandbox.stdin.close()
        sandbox.wait(timeout=60)
        if server is not None:
            postgres.stop(server.directory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--separate-at", type=int, default=10)
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb",
                        help="postgres: a throwaway server (scripts/postgres.py) as warehouse")
    parser.add_argument("--runs", type=int, default=1,
                        help="concurrent runs (run workers), each refreshing its share")
    parser.add_argument("--share", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cycle", choices=["backfill", "refresh"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.companies, options.customers)
        return
    if options.cycle:
        cycle(options.cycle, options.workers, options.share)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from demo_backfill import speed_marker  # bench/, this script's own directory

    command = "bench/batch_refresh.py " + " ".join(sys.argv[1:])
    lines = [f"# batch_refresh  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  "
             f"{platform.machine()}  {os.cpu_count()} cores (shared)  python "
             f"{platform.python_version()}",
             f"command: .venv/bin/python {command.strip()}",
             f"{options.customers}-customer companies (3 years, {options.companies} distinct), "
             f"{LATENCY_MS} ms latency, live limits per account; warehouse {options.target}; "
             f"{options.runs} concurrent run(s) of {options.workers} workers each; "
             f"load average before {' '.join(f'{v:.1f}' for v in os.getloadavg())}; speed "
             f"marker: generate the 2,000-customer demo company {speed_marker():.1f} s"]
    print("\n".join(lines), flush=True)
    cycles = {n: measure(n, options, lines)["batch"] for n in options.projects}
    sizes = sorted(cycles)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        per_project = (cycles[large] - cycles[small]) / (large - small)
        fixed = cycles[small] - small * per_project
        fits = int((CYCLE_SECONDS - fixed) / per_project) if per_project > 0 else 0
        lines.append(f"per-project cost {per_project:.2f} s, fixed cost of a cycle {fixed:.1f} s "
                     f"(line through N={small} and N={large}): about {fits:,} Scale projects "
                     "per 30-minute cycle")
        print(lines[-1])
    with open(RESULTS, "a") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
