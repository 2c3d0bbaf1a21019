{#-
  When each subscription's cancellation was requested: METRICS-SPEC removes a subscription at
  the request, not when it ends (Stripe Billing analytics: "no longer count towards your MRR
  after the time of the API call"). `canceled_at` holds that moment, but a cancellation
  scheduled with `cancel_at` leaves it null on some API versions (since 2015-01-26 it only
  records the call or failure that ended the subscription). Evidence for a set `cancel_at`,
  strongest first (docs/metrics-spec.md "Case 8"):
  1. the `customer.subscription.updated` event whose `previous_attributes` show `cancel_at`
     was unset (or the `created` event of a subscription created with it): exact;
  2. our own first subscription version with `cancel_at` set after one without it: dated at
     that sync or webhook, estimated (no event was kept for the change);
  3. set already when first seen, no event of the 30-day window set it: requested before the
     window, dated at its start (first sync - 30 days; the subscription's start if later),
     estimated.
  `canceled_at` is the request when set before `cancel_at` (or with no `cancel_at`): the
  earliest of it and an observed scheduling is used. Filled at or after `cancel_at` (when the
  schedule took effect), it is not the request: the evidence above dates it, so the history
  does not move when the subscription finally cancels. A `cancel_at` removed since (the
  subscription runs on) is no request.
-#}
with event_windows as (
    {{ event_window_starts() }}
),

events as (
    {{ subscription_events() }}
),

versions as (
    select * from {{ ref('stg_stripe__subscription_versions') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

-- 1. the latest update (or creation) that scheduled the cancellation: the one in force
scheduling_events as (
    select project_id, object_id as subscription_id, max(created_at) as requested_at
    from events
    where object_cancel_at is not null
        and (
            (previous_cancel_at_changed and previous_cancel_at is null)
            or event_type = 'customer.subscription.created'
        )
    group by project_id, object_id
),

-- 2. a version with cancel_at set right after one without
version_changes as (
    select
        project_id,
        subscription_id,
        observed_at,
        cancel_at,
        lag(observed_at) over by_time as previous_observed_at,
        lag(cancel_at) over by_time as previous_cancel_at
    from versions
    window by_time as (partition by project_id, subscription_id order by observed_at)
),

scheduling_versions as (
    select project_id, subscription_id, max(observed_at) as requested_at
    from version_changes
    where cancel_at is not null
        and previous_observed_at is not null
        and previous_cancel_at is null
    group by project_id, subscription_id
),

scheduled as (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        -- `canceled_at` is the request unless it was filled when the schedule took effect
        subscriptions.canceled_at is not null
            and (subscriptions.cancel_at is null
                or subscriptions.canceled_at < subscriptions.cancel_at) as is_canceled_at_request,
        subscriptions.canceled_at,
        coalesce(scheduling_events.requested_at, scheduling_versions.requested_at)
            as observed_scheduling_at,
        case when subscriptions.cancel_at is not null then greatest(
            coalesce(subscriptions.started_at, subscriptions.created_at),
            coalesce(event_windows.event_window_starts_at, subscriptions.synced_at)
        ) end as window_starts_at,
        case
            when scheduling_events.requested_at is not null then 'scheduling_event'
            when scheduling_versions.requested_at is not null then 'first_version_with_cancel_at'
            else 'before_event_window'
        end as scheduled_at_source
    from subscriptions
    left join scheduling_events
        on subscriptions.project_id = scheduling_events.project_id
        and subscriptions.subscription_id = scheduling_events.subscription_id
        and subscriptions.cancel_at is not null
    left join scheduling_versions
        on subscriptions.project_id = scheduling_versions.project_id
        and subscriptions.subscription_id = scheduling_versions.subscription_id
        and subscriptions.cancel_at is not null
    left join event_windows
        on subscriptions.project_id = event_windows.project_id
    where subscriptions.canceled_at is not null or subscriptions.cancel_at is not null
),

requests as (
    select
        project_id,
        subscription_id,
        case
            when is_canceled_at_request then least(canceled_at, observed_scheduling_at)
            else coalesce(observed_scheduling_at, window_starts_at)
        end as cancellation_requested_at,
        case
            when is_canceled_at_request
                and (observed_scheduling_at is null or observed_scheduling_at >= canceled_at)
                then 'canceled_at'
            else scheduled_at_source
        end as requested_at_source
    from scheduled
)

select
    *,
    requested_at_source in ('first_version_with_cancel_at', 'before_event_window')
        as is_requested_at_estimated
from requests
