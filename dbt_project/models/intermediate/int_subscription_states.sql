{#-
  The status and collection-pause state of each subscription over time, as intervals
  [valid_from, valid_to). Built from every observation: the current row (at its sync time),
  history versions (at observed_at), subscription events (the object at the event time, and
  `previous_attributes` for the state before it). Before the first observation the state is
  assumed `active` and not paused, except for subscriptions still `incomplete*`, which never
  were active.
-#}
with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

versions as (
    select * from {{ ref('stg_stripe__subscription_versions') }}
),

events as (
    select * from {{ ref('stg_stripe__events') }}
    where object_type = 'subscription'
        and event_type like 'customer.subscription.%'
),

current_observations as (
    select
        project_id,
        subscription_id,
        synced_at as observed_at,
        status,
        pause_collection_behavior is not null as is_collection_paused,
        3 as priority
    from subscriptions
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
        {{ json_text('object_data', 'status') }} as status,
        {{ json_text('object_data', 'pause_collection.behavior') }} is not null
            as is_collection_paused,
        2 as priority
    from events
),

-- `previous_attributes` holds the keys that changed: their old values held until the event,
-- from the previous event of the subscription (or its start) on
ordered_events as (
    select
        events.*,
        lag(created_at) over (
            partition by project_id, object_id order by created_at, event_id
        ) as previous_event_at
    from events
    where previous_attributes is not null
),

before_event_observations as (
    select
        ordered_events.project_id,
        ordered_events.object_id as subscription_id,
        coalesce(ordered_events.previous_event_at, subscriptions.started_at, ordered_events.created_at)
            as observed_at,
        case
            when {{ json_has_key('previous_attributes', 'status') }}
                then {{ json_text('previous_attributes', 'status') }}
            else {{ json_text('object_data', 'status') }}
        end as status,
        case
            when {{ json_has_key('previous_attributes', 'pause_collection') }}
                then {{ json_text('previous_attributes', 'pause_collection.behavior') }} is not null
            else {{ json_text('object_data', 'pause_collection.behavior') }} is not null
        end as is_collection_paused,
        1 as priority
    from ordered_events
    left join subscriptions
        on ordered_events.project_id = subscriptions.project_id
        and ordered_events.object_id = subscriptions.subscription_id
),

assumed_initial_state as (
    select
        project_id,
        subscription_id,
        coalesce(started_at, created_at) as observed_at,
        case
            when status in ('incomplete', 'incomplete_expired') then status
            else 'active'
        end as status,
        false as is_collection_paused,
        0 as priority
    from subscriptions
),

observations as (
    select * from current_observations
    union all
    select * from version_observations
    union all
    select * from event_observations
    union all
    select * from before_event_observations
    union all
    select * from assumed_initial_state
),

-- one state per instant: a direct observation beats an inferred or assumed one
deduplicated as (
    select *
    from observations
    where observed_at is not null and status is not null
    qualify row_number() over (
        partition by project_id, subscription_id, observed_at
        order by priority desc, status
    ) = 1
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
