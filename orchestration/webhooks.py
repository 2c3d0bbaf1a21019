"""Webhooks in Dagster: a sensor on the inbox and a job that applies and refreshes.

A Dagster run takes seconds to launch, so this path keeps the marts fresh within about a
minute; the ``--realtime`` service (:mod:`service.applier`) is the one that meets the
seconds budget. An event that cannot be applied is quarantined by ``apply_inbox``, so one bad
event never fails every run.
"""

from dagster import (
    DefaultSensorStatus,
    OpExecutionContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)

from orchestration.assets import DUCKDB_POOL
from orchestration.checks import alerts_check_evaluation
from orchestration.resources import WarehouseResource
from orchestration.webhook_events import (
    add_project_partitions,
    webhook_check_evaluations,
    webhook_marts_materialization,
    webhook_raw_materializations,
)
from pipelines.webhook_round import apply_and_refresh
from stripe_warehouse.inbox import Inbox
from stripe_warehouse.warehouse_target import WarehouseTarget


@op(pool=DUCKDB_POOL)
def apply_webhook_events(context: OpExecutionContext, warehouse: WarehouseResource) -> None:
    """Apply the inbox, then ``dbt run`` the models between the changed tables and the metrics
    and ``dbt test`` them (recorded as asset checks), mark the events visible and publish
    (:func:`pipelines.webhook_round.apply_and_refresh`)."""
    home = warehouse.home_path()
    done = apply_and_refresh(home, api_base=warehouse.api_base)
    result = done.result
    context.log.info(
        f"webhooks: {result.applied} applied, {result.stale} stale, {result.ignored} recorded "
        f"only, rows {result.rows_written}, waiting {result.waiting}"
    )
    add_project_partitions(context.instance, result.batches)
    for batch in result.batches:  # the raw tables each batch wrote, for its project
        for materialization in webhook_raw_materializations(batch, "Dagster"):
            context.log_event(materialization)
    if result.failed:  # quarantined in the inbox: the run goes on, `status` shows why
        context.log.warning(f"webhooks: {result.failed} events could not be applied and were "
                            "quarantined (`stripe-warehouse status` shows why)")
    if done.refreshed:
        published = done.published
        context.log.info("published the marts to " + (
            published.describe() if isinstance(published, WarehouseTarget) else str(published)))
        context.log_event(webhook_marts_materialization(home, result, done.refreshed, "Dagster"))
    if done.tests:  # the dbt tests on what it rebuilt, as the checks a build reports
        for evaluation in webhook_check_evaluations(done.tests, "Dagster"):
            context.log_event(evaluation)
    if done.alerts is not None and done.alerts.evaluated:
        context.log_event(alerts_check_evaluation(done.alerts, "Dagster"))


@job(name="webhooks", description="Apply stored Stripe webhooks and refresh metrics_daily.")
def webhooks_job() -> None:
    """One op: apply, then refresh."""
    apply_webhook_events()


@sensor(
    job=webhooks_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches the webhooks job when the inbox holds events not applied yet.",
)
def webhook_inbox_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> RunRequest | SkipReason:
    """One run per newest unapplied event: new arrivals during a run get the next one."""
    with Inbox(warehouse.home_path()) as inbox:
        newest = inbox.newest_unapplied()
    if newest is None:
        return SkipReason("every webhook event is applied")
    return RunRequest(run_key=f"webhooks:{newest}")
