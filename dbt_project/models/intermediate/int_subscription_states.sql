{#-
  The status and collection-pause state of each subscription over time, as intervals
  [valid_from, valid_to). Three layers of evidence, strongest first:
  1. observations: the current row (when its content was first observed: docs/metrics-spec.md
     "Dating the current listing"), history versions (at observed_at),
     subscription events (the object at the event time);
  2. the event window (first sync - 30 days .. now): Stripe keeps events 30 days and every
     status or pause change emits `customer.subscription.updated`, so the state before the
     first event (its `previous_attributes`), or the current state when no event shows a
     change, held throughout the window back to its start;
  3. before the event window, the state at the window start is traced back with invoices
     (rules in the YAML: `incomplete` until the first invoice was paid, `unpaid` and
     `past_due` from the dunning invoice, a pause from the end of the last paid period,
     status `paused` from the trial end and `trialing` from the trial start, `incomplete*`
     since the start, otherwise `active`).
-#}
with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

versions as (
    select * from {{ ref('stg_stripe__subscription_versions') }}
),

events as (
    {{ subscription_events() }}
),

-- Stripe keeps events 30 days: before the first sync's start minus 30 days none were read
event_windows as (
    {{ event_window_starts() }}
),

version_observations as (
    select
        project_id,
        subscription_id,
        observed_at,
        status,
        pause_collection_behavior is not null as is_collection_paused,
        3 as priority
    from versions
),

event_observations as (
    select
        project_id,
        object_id as subscription_id,
        created_at as observed_at,
        object_status as status,
        object_pause_collection_behavior is not null as is_collection_paused,
        2 as priority
    from events
),

-- `previous_attributes` holds the keys that changed: their old values held until the event,
-- from the previous event of the subscription on, or for the first event from the start of
-- the event window (or of the subscription, if later)
ordered_events as (
    select
        events.*,
        lag(created_at) over (
            partition by project_id, object_id order by created_at, event_id
        ) as previous_event_at
    from events
    where has_previous_attributes
),

before_event_observations as (
    select
        ordered_events.project_id,
        ordered_events.object_id as subscription_id,
        coalesce(
            ordered_events.previous_event_at,
            least(
                ordered_events.created_at,
                greatest(
                    coalesce(subscriptions.started_at, subscriptions.created_at),
                    event_windows.event_window_starts_at
                )
            ),
            ordered_events.created_at
        ) as observed_at,
        case
            when ordered_events.previous_status_changed then ordered_events.previous_status
            else ordered_events.object_status
        end as status,
        case
            when ordered_events.previous_pause_collection_changed
                then ordered_events.previous_pause_collection_behavior is not null
            else ordered_events.object_pause_collection_behavior is not null
        end as is_collection_paused,
        1 as priority
    from ordered_events
    left join subscriptions
        on ordered_events.project_id = subscriptions.project_id
        and ordered_events.object_id = subscriptions.subscription_id
    left join event_windows
        on ordered_events.project_id = event_windows.project_id
),

-- the listing is dated when its content was first observed (docs/metrics-spec.md "Dating the
-- current listing"), unless something observed since said otherwise: a change and a return
-- between two listings, whose return only the listing shows, is dated at its sync as before
contradicted_listings as (
    select distinct subscriptions.project_id, subscriptions.subscription_id
    from subscriptions
    inner join (
        select * from version_observations
        union all
        select * from event_observations
        union all
        select * from before_event_observations
    ) as later
        on subscriptions.project_id = later.project_id
        and subscriptions.subscription_id = later.subscription_id
        and later.observed_at > subscriptions.content_observed_at
    where later.status is distinct from subscriptions.status
        or later.is_collection_paused
            is distinct from (subscriptions.pause_collection_behavior is not null)
),

current_observations as (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        case
            when contradicted_listings.subscription_id is null
                then coalesce(subscriptions.content_observed_at, subscriptions.synced_at)
            else subscriptions.synced_at
        end as observed_at,
        subscriptions.status,
        subscriptions.pause_collection_behavior is not null as is_collection_paused,
        3 as priority
    from subscriptions
    left join contradicted_listings
        on subscriptions.project_id = contradicted_listings.project_id
        and subscriptions.subscription_id = contradicted_listings.subscription_id
),

observations as (
    select * from current_observations
    union all
    select * from version_observations
    union all
    select * from event_observations
    union all
    select * from before_event_observations
),

-- the earliest observed state: the one at (or nearest after) the start of the event window
earliest_observations as (
    select {{ first_row_of(['project_id', 'subscription_id']) }}
        project_id,
        subscription_id,
        observed_at as first_observed_at,
        status as first_status,
        is_collection_paused as is_first_paused
    from observations
    where observed_at is not null and status is not null
    {{ first_row_by(['project_id', 'subscription_id'],
        'observed_at asc, priority desc, status asc') }}
),

-- the invoice whose dunning made a subscription past_due/unpaid: its latest unpaid one
dunning_invoices as (
    select {{ first_row_of(['project_id', 'subscription_id']) }} *
    from {{ ref('int_invoices_in_dunning') }}
    where status in ('open', 'uncollectible') and subscription_id is not null
    {{ first_row_by(['project_id', 'subscription_id'], 'created_at desc, invoice_id desc') }}
),

-- Stripe keeps a subscription `incomplete` until its first invoice is paid
first_payments as (
    select project_id, subscription_id, min(paid_at) as first_paid_at
    from {{ ref('stg_stripe__invoices') }}
    where billing_reason = 'subscription_create' and is_paid and subscription_id is not null
    group by project_id, subscription_id
),

last_paid_periods as (
    select project_id, subscription_id, max(period_ended_at) as paid_through
    from {{ ref('stg_stripe__invoices') }}
    where is_paid and subscription_id is not null
    group by project_id, subscription_id
),

-- when each pre-window state began, never later than the window start (the window shows no
-- change) and never before the subscription started
pre_window_evidence as (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        coalesce(subscriptions.started_at, subscriptions.created_at) as started_at,
        subscriptions.trial_started_at,
        subscriptions.trial_ended_at,
        earliest_observations.first_observed_at,
        earliest_observations.first_status,
        earliest_observations.is_first_paused,
        least(
            earliest_observations.first_observed_at,
            coalesce(event_windows.event_window_starts_at, earliest_observations.first_observed_at)
        ) as window_starts_at,
        dunning_invoices.dunning_started_at,
        -- retries ended: marked uncollectible, or the last failed attempt once Stripe
        -- scheduled no further attempt
        coalesce(
            dunning_invoices.marked_uncollectible_at,
            case
                when dunning_invoices.next_payment_attempt_at is null
                    then dunning_invoices.last_failed_at
            end
        ) as dunning_exhausted_at,
        last_paid_periods.paid_through,
        first_payments.first_paid_at
    from subscriptions
    inner join earliest_observations
        on subscriptions.project_id = earliest_observations.project_id
        and subscriptions.subscription_id = earliest_observations.subscription_id
    left join event_windows
        on subscriptions.project_id = event_windows.project_id
    left join dunning_invoices
        on subscriptions.project_id = dunning_invoices.project_id
        and subscriptions.subscription_id = dunning_invoices.subscription_id
    left join last_paid_periods
        on subscriptions.project_id = last_paid_periods.project_id
        and subscriptions.subscription_id = last_paid_periods.subscription_id
    left join first_payments
        on subscriptions.project_id = first_payments.project_id
        and subscriptions.subscription_id = first_payments.subscription_id
),

-- the instants the state changed before the window, for the states that hold at its start
pre_window_changes as (
    select
        *,
        case
            when first_status not in ('incomplete', 'incomplete_expired')
                and first_paid_at > started_at
                then least(first_paid_at, window_starts_at)
        end as activated_at,
        case when first_status in ('unpaid', 'past_due') then greatest(started_at, least(
            coalesce(dunning_started_at, window_starts_at), window_starts_at
        )) end as past_due_from,
        case when first_status = 'unpaid' then greatest(started_at, least(
            coalesce(dunning_exhausted_at, window_starts_at), window_starts_at
        )) end as unpaid_from,
        case when is_first_paused then greatest(started_at, least(
            coalesce(paid_through, started_at), window_starts_at
        )) end as paused_from,
        -- a trial added to a subscription that was already paying: `trialing` from its
        -- start, the paid days before it keep their state
        case when first_status in ('trialing', 'paused') then greatest(started_at, least(
            trial_started_at, window_starts_at
        )) end as trialing_from,
        -- status `paused` only comes from a trial that ended without a payment method
        -- (`trial_settings.end_behavior.missing_payment_method = pause`): paused from the
        -- trial end, never paid after it
        case when first_status = 'paused' then greatest(started_at, least(
            coalesce(trial_ended_at, started_at), window_starts_at
        )) end as paused_status_from
    from pre_window_evidence
),

-- Performance: unnest in the select list, not as a lateral join (`from t, unnest(...)`),
-- which DuckDB plans as a join back on every column and which cost most of this model
change_instants as (
    select *
    from (
        select
            *,
            unnest({{ list_of(['started_at', 'activated_at', 'past_due_from', 'unpaid_from',
                               'paused_from', 'trialing_from', 'paused_status_from']) }})
                as changed_at
        from pre_window_changes
    ) as instants
    where changed_at is not null
),

inferred_observations as (
    select distinct
        project_id,
        subscription_id,
        changed_at as observed_at,
        case
            when first_status in ('incomplete', 'incomplete_expired') then first_status
            when changed_at < activated_at then 'incomplete'
            when changed_at >= paused_status_from then 'paused'
            when changed_at >= trialing_from then 'trialing'
            when first_status = 'unpaid' and changed_at >= unpaid_from then 'unpaid'
            when first_status in ('unpaid', 'past_due') and changed_at >= past_due_from
                then 'past_due'
            else 'active'
        end as status,
        is_first_paused and changed_at >= paused_from as is_collection_paused,
        0 as priority
    from change_instants
    where changed_at <= first_observed_at
),

-- one state per instant: a direct observation beats an inferred one
deduplicated as (
    select {{ first_row_of(['project_id', 'subscription_id', 'observed_at']) }} *
    from (
        select * from observations
        union all
        select * from inferred_observations
    ) as all_observations
    where observed_at is not null and status is not null
    {{ first_row_by(['project_id', 'subscription_id', 'observed_at'],
        'priority desc, status asc') }}
),

final as (
    select
        project_id,
        subscription_id,
        status,
        is_collection_paused,
        observed_at as valid_from,
        lead(observed_at) over (
            partition by project_id, subscription_id order by observed_at
        ) as valid_to
    from deduplicated
)

select * from final
