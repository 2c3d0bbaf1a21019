"""``stripe-warehouse doctor PROJECT``: one line per check, OK / WARN / FAIL with the fix.

Every Stripe call is a single GET (``limit=1``); nothing here writes to Stripe. The DuckDB files
are opened read-only: a damaged one FAILs with the fix, one a writer holds is a WARN ("in use").
WARN lines inform (test mode, a full-access key) and leave the exit code at 0.
"""

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from commands.status import failed_webhooks_line, webhooks_failed, webhooks_last_received
from pipelines.settings import LIST_ENDPOINTS
from stripe_warehouse.demo_project import DemoProject, demo_advice, demo_project
from stripe_warehouse.errors import WarehouseError
from stripe_warehouse.probe import probe
from stripe_warehouse.publish import published_path
from stripe_warehouse.registry import Connection, ConnectionStore
from stripe_warehouse.settings import api_base as configured_api_base
from stripe_warehouse.state_dir import StateDir
from stripe_warehouse.storage import inspect_database
from stripe_warehouse.stripe_api import key_mode
from stripe_warehouse.tiers import freshness_allowed
from stripe_warehouse.warehouse_target import WarehouseTarget

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    """The outcome of one check; ``detail`` says what was found and, if not OK, the fix."""

    name: str
    outcome: str
    detail: str


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def _offline_checks(connection: Connection, now: dt.datetime, home: Path) -> Iterator[Check]:
    pid = connection.project_id
    if connection.last_sync_at is None:
        yield Check("initial sync", FAIL, f"never synced: run `stripe-warehouse sync {pid} "
                    "--backfill` (Dagster also starts one when it sees a new project)")
    else:
        last = dt.datetime.fromtimestamp(connection.last_sync_at, dt.UTC)
        yield Check("initial sync", OK, f"finished; last sync {last:%Y-%m-%d %H:%M} UTC "
                    f"({connection.last_sync_kind})")
        allowed = freshness_allowed(connection.tier, now, connection.cron)
        promise = (f"its own cron {connection.cron!r}" if connection.cron
                   else f"tier {connection.tier}")
        age = now - last
        if allowed is None:
            yield Check("freshness", OK, f"{_hours(age)} old; tier {connection.tier} syncs on "
                        "demand")
        elif age > allowed:
            yield Check("freshness", FAIL, f"last sync {_hours(age)} ago, "
                        f"{promise} promises {_hours(allowed)}: check that the Dagster "
                        f"schedules run, or run `stripe-warehouse sync {pid} --refresh`")
        else:
            yield Check("freshness", OK, f"{_hours(age)} old; {promise} allows "
                        f"{_hours(allowed)}")
    if connection.webhook_secret is None:
        yield Check("webhooks", WARN, "no webhook signing secret stored: changes arrive only "
                    "with refreshes; add a Stripe endpoint to /webhooks/stripe/"
                    f"{pid} and reconnect with --webhook-secret-env")
        return
    received = webhooks_last_received(home).get(pid)
    if received is None:
        yield Check("webhooks", WARN, "secret configured, no verified event received yet: "
                    f"check the Stripe endpoint points to /webhooks/stripe/{pid}")
    else:
        yield Check("webhooks", OK, "secret configured; last verified event received "
                    f"{received:%Y-%m-%d %H:%M} UTC")


def _file_checks(connection: Connection, home: Path) -> Iterator[Check]:
    """The warehouse and its published copy, opened read-only: damaged files FAIL."""
    pid = connection.project_id
    target = StateDir.of(home).target
    if target.is_postgres:
        yield _server_check(connection, target)
        return
    for name, path in (("warehouse file", StateDir.of(home).warehouse),
                       ("published copy", published_path(home))):
        health = inspect_database(path)
        if health.state == "missing":
            if name == "warehouse file" and connection.last_sync_at is not None:
                yield Check(name, FAIL, f"{path} is missing though {pid} was synced: restore "
                            f"it, or rebuild it with `stripe-warehouse sync {pid} --backfill`")
            continue  # not built yet: the initial sync check says what to do
        outcome = {"ok": OK, "busy": WARN}.get(health.state, FAIL)
        yield Check(name, outcome, health.detail)


def _server_check(connection: Connection, target: WarehouseTarget) -> Check:
    """A PostgreSQL warehouse: the server answers, and holds the project's raw rows once it
    was synced (no files to inspect: readers and writers connect to the server)."""
    pid = connection.project_id
    try:
        (rows,) = target.fetch_all(
            "select count(*) from information_schema.tables "
            "where table_schema = 'stripe_raw' and table_name = 'sync_runs'")[0]
        if rows:
            (rows,) = target.fetch_all(
                "select count(*) from stripe_raw.sync_runs where project_id = %s", [pid])[0]
    except Exception as error:  # noqa: BLE001 - psycopg2's errors: the server's own reason
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        return Check("warehouse server", FAIL, f"{target.describe()} cannot be read "
                     f"({reason}): check the server is up and the URL in "
                     "warehouse_target.json")
    if rows == 0 and connection.last_sync_at is not None:
        return Check("warehouse server", FAIL, f"{target.describe()} holds no sync of {pid} "
                     f"though it was synced: rebuild it with `stripe-warehouse sync {pid} "
                     "--backfill`")
    return Check("warehouse server", OK, f"{target.describe()} answers ({rows} syncs of {pid})")


def _failed_webhooks_check(project_id: str, home: Path) -> Iterator[Check]:
    """WARN when the applier quarantined some of the project's webhook events."""
    failed = webhooks_failed(home).get(project_id)
    if failed:
        yield Check("webhook events", WARN, failed_webhooks_line(project_id, *failed))


def _key_kind(connection: Connection, api_key: str) -> Check:
    if connection.stripe_user_id:
        scope = connection.scope or "?"
        outcome = OK if scope == "read_only" else WARN
        return Check("key", outcome, f"OAuth token, scope {scope}" + (
            "" if outcome == OK else ": reconnect with --oauth to get read_only access"))
    if api_key.startswith("rk_"):
        return Check("key", OK, "restricted key")
    return Check("key", WARN, "full-access secret key (sk_): a read-only restricted key "
                 "(rk_live_...) is safer; create one and reconnect")


def _stripe_checks(
    connection: Connection, api_key: str, api_base: str | None
) -> Iterator[Check]:
    pid = connection.project_id
    account = probe(api_key, "/v1/account", api_base)
    if account.status is None:
        yield Check("stripe reachable", FAIL, f"no answer from {configured_api_base(api_base)}: "
                    "check STRIPE_API_BASE and the network")
        return
    yield Check("stripe reachable", OK, configured_api_base(api_base))
    if account.status == 401:
        yield Check("credentials valid", FAIL, f"Stripe rejects the credentials (401): they "
                    f"were revoked or rolled; reconnect with `stripe-warehouse connect {pid}`")
        return
    yield Check("credentials valid", OK, f"account {account.body.get('id', '(restricted)')}")
    yield _key_kind(connection, api_key)
    denied: list[str] = []
    subscriptions = probe(api_key, LIST_ENDPOINTS["subscriptions"], api_base, limit=1,
                          status="active")
    for table, path in LIST_ENDPOINTS.items():
        if table == "subscriptions":
            answer = subscriptions
        elif table == "subscription_items":
            first = (subscriptions.body.get("data") or [{}])[0].get("id")
            if first is None:
                continue  # needs a subscription id to list
            answer = probe(api_key, path, api_base, limit=1, subscription=first)
        else:
            answer = probe(api_key, path, api_base, limit=1)
        if answer.status == 403:
            denied.append(table)
        elif not answer.ok:
            yield Check("read permission", FAIL, f"GET {path} answered {answer.status}: "
                        "run doctor again; if it persists, check Stripe's status page")
            return
    if denied:
        yield Check("read permission", FAIL, f"no read permission on {', '.join(denied)} "
                    "(403): grant read access to them on the restricted key in the Stripe "
                    "dashboard, then reconnect")
    else:
        yield Check("read permission", OK, "every object type can be listed")
    mode = key_mode(api_key)
    livemode = account.body.get("livemode", subscriptions.body.get("livemode"))
    if livemode is not None and livemode != (mode == "live"):
        yield Check("mode", FAIL, f"a {mode}-mode key reads {'live' if livemode else 'test'} "
                    "data: reconnect with a key of the mode you mean")
    elif mode == "test":
        yield Check("mode", WARN, "test mode: the numbers are test data, not revenue; "
                    "connect a live key for real numbers")
    else:
        yield Check("mode", OK, "live mode")
    if "subscriptions" not in denied:
        if subscriptions.body.get("data"):
            yield Check("active subscriptions", OK, "present")
        else:
            yield Check("active subscriptions", FAIL, f"none in this {mode}-mode account: MRR "
                        "will be 0; check you connected the right account and mode")


def run_doctor(
    project_id: str, home: Path | str, api_base: str | None = None,
    now: dt.datetime | None = None,
) -> list[Check]:
    """Every check of ``project_id``, in the order a user would fix them."""
    store = ConnectionStore(home)
    connection = store.get(project_id)
    now = now or dt.datetime.now(dt.UTC)
    demo = demo_project(store.home, connection)
    if demo is not None:
        return _as_demo(_checks(store, connection, demo.sandbox_url, now), demo)
    return _checks(store, connection, api_base, now)


def _checks(
    store: ConnectionStore, connection: Connection, api_base: str | None, now: dt.datetime
) -> list[Check]:
    project_id = connection.project_id
    checks: list[Check] = []
    if connection.status != "active":
        checks.append(Check("connection", FAIL, connection.status_reason or (
            f"project {project_id} is {connection.status}: reconnect with "
            f"`stripe-warehouse connect {project_id}`")))
    else:
        checks.append(Check("connection", OK, f"active, tier {connection.tier}"))
    api_key = None
    if connection.api_key is None:
        checks.append(Check("credentials decrypt", FAIL, "no stored credentials (deleted when "
                            f"the project was {connection.status}): reconnect with "
                            f"`stripe-warehouse connect {project_id}`"))
    else:
        try:
            api_key = store.api_key(project_id)
            store.webhook_secret(project_id)
            checks.append(Check("credentials decrypt", OK, "stored secrets decrypt"))
        except WarehouseError as error:
            checks.append(Check("credentials decrypt", FAIL, str(error)))
    if connection.status != "active":
        return checks  # syncs, freshness and webhooks only matter once reconnected
    if api_key is not None:
        checks.extend(_stripe_checks(connection, api_key, api_base))
    checks.extend(_file_checks(connection, store.home))
    checks.extend(_offline_checks(connection, now, store.home))
    checks.extend(_failed_webhooks_check(project_id, store.home))
    return checks


# What is expected of the demo's project once its sandbox has stopped: said, not failed.
_DEMO_EXPECTED = {"stripe reachable", "freshness"}


def _as_demo(checks: list[Check], demo: DemoProject) -> list[Check]:
    """The demo project's checks: its stopped sandbox and ageing data are WARN with the fix."""
    adjusted = []
    for check in checks:
        if check.name == "connection" and check.outcome == OK:
            check = Check("connection", WARN, f"{check.detail}; {demo_advice(demo)}")
        elif check.name in _DEMO_EXPECTED and check.outcome == FAIL:
            check = Check(check.name, WARN, f"the demo's sandbox ({demo.sandbox_url}) ran only "
                          "during the demo: run `stripe-warehouse demo` again for fresh data")
        adjusted.append(check)
    return adjusted


def checks_json(project_id: str, checks: list[Check]) -> str:
    """``doctor --json``: every check, and whether any failed."""
    return json.dumps({
        "project": project_id,
        "ok": not any_failed(checks),
        "checks": [dataclasses.asdict(c) for c in checks],
    }, indent=2)


def format_checks(checks: list[Check]) -> str:
    """One line per check: ``OK   name: detail``."""
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.outcome:<4} {c.name.ljust(width)}  {c.detail}" for c in checks)


def any_failed(checks: list[Check]) -> bool:
    """Whether doctor should exit non-zero."""
    return any(c.outcome == FAIL for c in checks)
