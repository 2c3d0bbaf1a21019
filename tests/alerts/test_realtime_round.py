"""The real-time webhook round runs the alert rules after it publishes the marts it refreshed
(``pipelines.webhook_round.apply_and_refresh``), and the real-time service's Dagster report
carries the evaluation as the ``revenue_alerts`` check."""

import datetime as dt
from pathlib import Path

import pytest
from dagster import AssetCheckKey, DagsterInstance

from orchestration.translators import METRICS_DAILY_KEY
from orchestration.ui import dagster_home
from orchestration.webhook_events import report_webhook_refresh
from pipelines.webhook_round import apply_and_refresh
from stripe_warehouse.crypto import SECRET_KEY_ENV, generate_key
from stripe_warehouse.registry import ConnectionStore
from stripe_warehouse.state_dir import StateDir
from tests.alerts.marts import DAY, PROJECT, connected_home, write_marts

# failed payments: 2 on DAY-1, 9 on DAY; the rule is "above 5"
FAILED = {DAY - dt.timedelta(days=1): 2, DAY: 9}
MRR = {DAY - dt.timedelta(days=1): "100", DAY: "100"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SECRET_KEY_ENV, generate_key())
    home = connected_home(tmp_path)
    ConnectionStore(home).add_alert_rule(PROJECT, "failed_payments", "5")
    return home


def test_a_webhook_round_sends_the_alert_its_refresh_raised(home: Path) -> None:
    """The round's refresh writes DAY's 9 failed payments into the warehouse's marts; the
    publish copies them; the alert fires for DAY (9 > 5) and not DAY-1 (2); the Dagster report
    records the revenue_alerts check as failed (WARN) with the rule, value and threshold."""
    def refresh(home: Path, tables: set[str]) -> None:
        write_marts(home, MRR, FAILED, [], target=StateDir.of(home).warehouse)

    done = apply_and_refresh(home, refresh=refresh, stale={"invoices"})
    assert done.published is not None and done.alerts is not None
    assert [(f.day, f.firing) for f in done.alerts.findings] == [
        (DAY - dt.timedelta(days=1), False), (DAY, True)]
    assert [(e.event, e.finding.day) for e in done.alerts.events] == [("fired", DAY)]

    report_webhook_refresh(home, done, [])
    with DagsterInstance.from_config(str(dagster_home(home))) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(METRICS_DAILY_KEY, "revenue_alerts")])
    [execution] = record.values()
    evaluation = execution.event.dagster_event.event_specific_data
    assert not evaluation.passed
    metadata = evaluation.metadata
    assert (metadata["rule"].value, metadata["value"].value, metadata["threshold"].value,
            metadata["by"].value) == ("failed_payments-1", "9.000000", "5",
                                      "the real-time service")
