"""The Dagster code location: composes the modules of this package, nothing else."""

from dagster import Definitions

from orchestration.assets import stripe_dbt_models, stripe_raw_tables
from orchestration.batch_refresh import (
    batch_refresh_job,
    batch_sync_only_job,
    pro_batch_schedule,
    scale_batch_schedule,
)
from orchestration.checks import projects_fresh_for_their_tier, revenue_alerts
from orchestration.jobs import (
    backfill_job,
    freshness_job,
    refresh_job,
    retention_job,
    transform_job,
)
from orchestration.observer import OBSERVER_KEY, observer_resource
from orchestration.resources import WarehouseResource, dbt_resource
from orchestration.schedules import (
    freshness_schedule,
    pro_refresh_schedule,
    retention_schedule,
    scale_refresh_schedule,
)
from orchestration.sensors import connections_sensor, own_cron_sensor
from orchestration.webhooks import webhook_inbox_sensor, webhooks_job

defs = Definitions(
    assets=[stripe_raw_tables, stripe_dbt_models],
    asset_checks=[projects_fresh_for_their_tier, revenue_alerts],
    jobs=[backfill_job, refresh_job, transform_job, retention_job, freshness_job, webhooks_job,
          batch_refresh_job, batch_sync_only_job],
    schedules=[
        pro_refresh_schedule,
        scale_refresh_schedule,
        retention_schedule,
        freshness_schedule,
        pro_batch_schedule,
        scale_batch_schedule,
    ],
    sensors=[connections_sensor, own_cron_sensor, webhook_inbox_sensor],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource(),
               OBSERVER_KEY: observer_resource()},
)
