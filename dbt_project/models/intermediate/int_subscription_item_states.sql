{#-
  When each subscription item got the price and quantity it was seen with (issue 14 case 2):
  a mid-period change is dated where it happened, not at the sync that first saw it, and no
  later sync moves it. One row per dated state, [valid_from, next state), by evidence:
  1. `event`: each `customer.subscription.updated` event that changed the item list
     (`previous_attributes.items`): each item it added or whose quantity or price it changed,
     as it was after the event, from its `created` (exact; Stripe keeps 30 days of events,
     the warehouse keeps the ones it read);
  2. `subscription_version`: a stored version (sync or webhook, insert-only) whose item
     differs from the subscription's previous version, when no event or proration line dates
     the change in between: it happened in (previous version, this one], dated at this
     observation (an upper bound: estimated);
  3. `first_observation`: the subscription's first stored version differs from the item's
     latest invoice line before it, and no event or proration line dates the change: it
     happened between that line's period start and the observation; no event of the 30-day
     window shows it, so it is dated at the window's start (first sync - 30 days) when that
     falls in between, else at the observation (estimated);
  4. `renewal`: a regular invoice line whose price or quantity differs from the item's
     previous regular line, with no event or proration line dating the change: it happened
     somewhere in the previous period (Stripe does not say where with
     `proration_behavior=none`); the line itself starts the new state at the renewal, the row
     only flags the previous period (estimated; not a segment of int_subscription_item_prices).
  Proration lines (positive: the new state from their period start) are segments of
  int_subscription_item_prices already. An estimated change happened at some moment in
  [estimated_from, valid_from]: the item's days in that range are flagged `is_estimated` in
  int_subscription_item_mrr_daily. Items added to a subscription are dated by their own
  `created` (int_subscription_item_prices), so only items seen before are dated here.
-#}
{#- incremental by subscription (macros/changed_subscriptions.sql): a subscription's states
    come from its own item events, versions and invoice lines only -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_changed_subscriptions(['stg_stripe__subscription_item_events',
        'stg_stripe__subscription_versions', 'stg_stripe__invoice_lines']) }}",
) }}

with event_windows as (
    {{ event_window_starts() }}
),

event_items as (
    select
        item_events.project_id,
        item_events.subscription_id,
        event_id,
        created_at,
        {{ json_array_items('items') }} as item
    from {{ ref('stg_stripe__subscription_item_events') }} as item_events
    {{ only_changed_subscriptions('item_events') }}
),

previous_event_items as (
    select item_events.project_id, event_id, {{ json_array_items('previous_items') }} as item
    from {{ ref('stg_stripe__subscription_item_events') }} as item_events
    {{ only_changed_subscriptions('item_events') }}
),

event_previous_states as (
    select
        project_id,
        event_id,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_id('item', 'price') }} as price_id,
        {{ json_value('item', 'quantity', 'bigint') }} as quantity
    from previous_event_items
),

event_after_states as (
    select
        project_id,
        subscription_id,
        event_id,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_id('item', 'price') }} as price_id,
        {{ json_value('item', 'quantity', 'bigint') }} as quantity,
        created_at as changed_at
    from event_items
),

-- the items the event changed: added (not in the previous list), or another quantity or price
event_states as (
    select after.*
    from event_after_states as after
    left join event_previous_states as before
        on after.project_id = before.project_id
        and after.event_id = before.event_id
        and after.subscription_item_id = before.subscription_item_id
    where before.subscription_item_id is null
        or after.quantity is distinct from before.quantity
        or after.price_id is distinct from coalesce(before.price_id, after.price_id)
),

version_items as (
    select
        versions.project_id,
        versions.subscription_id,
        observed_at,
        min(observed_at) over (
            partition by versions.project_id, versions.subscription_id
        ) as first_observed_at,
        {{ json_array_items('items') }} as item
    from {{ ref('stg_stripe__subscription_versions') }} as versions
    {{ only_changed_subscriptions('versions') }}
),

version_states as (
    select
        project_id,
        subscription_id,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_id('item', 'price') }} as price_id,
        {{ json_value('item', 'quantity', 'bigint') }} as quantity,
        observed_at,
        observed_at = first_observed_at as is_first_version
    from version_items
),

version_changes as (
    select
        *,
        lag(observed_at) over by_time as previous_observed_at,
        lag(price_id) over by_time as previous_price_id,
        lag(quantity) over by_time as previous_quantity
    from version_states
    window by_time as (
        partition by project_id, subscription_item_id order by observed_at
    )
),

-- a subscription item's line names its subscription (Stripe's `subscription`, or
-- `parent.subscription_item_details.subscription`): the changed subscriptions' lines are the
-- changed items' lines
lines as (
    select
        invoice_lines.project_id,
        invoice_lines.subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        period_started_at,
        is_proration,
        amount
    from {{ ref('stg_stripe__invoice_lines') }} as invoice_lines
    {{ only_changed_subscriptions('invoice_lines') }}
    where subscription_item_id is not null
        and period_started_at is not null
),

regular_lines as (
    select
        *,
        lag(period_started_at) over by_period as previous_started_at,
        lag(price_id) over by_period as previous_price_id,
        lag(quantity) over by_period as previous_quantity
    from (
        -- one state per period (a period invoiced twice: its latest line)
        select {{ first_row_of(['project_id', 'subscription_item_id', 'period_started_at']) }} *
        from lines
        where not is_proration
        {{ first_row_by(['project_id', 'subscription_item_id', 'period_started_at'],
            'amount desc') }}
    ) as period_lines
    window by_period as (partition by project_id, subscription_item_id order by period_started_at)
),

-- exact evidence of a state starting at a moment: an event, a positive proration line
exact_starts as (
    select project_id, subscription_item_id, price_id, quantity, changed_at as started_at
    from event_states
    union all
    select project_id, subscription_item_id, price_id, quantity, period_started_at
    from lines
    where is_proration and amount > 0
),

-- the first version of each item and the item's latest invoice line before it
first_version_lines as (
    select {{ first_row_of(['versions.project_id', 'versions.subscription_item_id']) }}
        versions.project_id,
        versions.subscription_id,
        versions.subscription_item_id,
        versions.price_id,
        versions.quantity,
        versions.observed_at,
        latest_line.period_started_at as changed_after,
        latest_line.quantity as line_quantity,
        latest_line.price_id as line_price_id
    from version_changes as versions
    inner join lines as latest_line
        on versions.project_id = latest_line.project_id
        and versions.subscription_item_id = latest_line.subscription_item_id
        and latest_line.period_started_at <= versions.observed_at
        and not (latest_line.is_proration and latest_line.amount < 0)
    where versions.previous_observed_at is null
        and versions.is_first_version
    {{ first_row_by(['versions.project_id', 'versions.subscription_item_id'],
        'latest_line.period_started_at desc, latest_line.is_proration desc') }}
),

-- an observed state that differs from the last evidence before it: `changed_after` is that
-- evidence's moment (the change happened in (changed_after, observed_at])
observed_changes as (
    -- a later version of the subscription with another state of the item
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        observed_at,
        previous_observed_at as changed_after,
        'subscription_version' as state_source
    from version_changes
    where previous_observed_at is not null
        and (quantity is distinct from previous_quantity
            or price_id is distinct from coalesce(previous_price_id, price_id))
    union all
    -- the first version against the item's latest invoice line before it
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        observed_at,
        changed_after,
        'first_observation' as state_source
    from first_version_lines
    where line_quantity is distinct from quantity
        or line_price_id is distinct from price_id
),

undated_changes as (
    select observed_changes.*
    from observed_changes
    where not exists (
        select 1
        from exact_starts
        where exact_starts.project_id = observed_changes.project_id
            and exact_starts.subscription_item_id = observed_changes.subscription_item_id
            and exact_starts.started_at > observed_changes.changed_after
            and exact_starts.started_at <= observed_changes.observed_at
            and exact_starts.quantity is not distinct from observed_changes.quantity
            and coalesce(exact_starts.price_id, observed_changes.price_id)
                = observed_changes.price_id
    )
),

renewal_changes as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        period_started_at,
        previous_started_at
    from regular_lines
    where previous_started_at is not null
        and (quantity is distinct from previous_quantity or price_id <> previous_price_id)
        and not exists (
            select 1
            from exact_starts
            where exact_starts.project_id = regular_lines.project_id
                and exact_starts.subscription_item_id = regular_lines.subscription_item_id
                and exact_starts.started_at > regular_lines.previous_started_at
                and exact_starts.started_at <= regular_lines.period_started_at
                and exact_starts.quantity is not distinct from regular_lines.quantity
        )
),

dated_states as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        changed_at as valid_from,
        'event' as state_source,
        false as is_estimated,
        changed_at as estimated_from
    from event_states
    union all
    select
        undated_changes.project_id,
        undated_changes.subscription_id,
        undated_changes.subscription_item_id,
        undated_changes.price_id,
        undated_changes.quantity,
        case
            when undated_changes.state_source = 'first_observation'
                and event_windows.event_window_starts_at > undated_changes.changed_after
                and event_windows.event_window_starts_at < undated_changes.observed_at
                then event_windows.event_window_starts_at
            else undated_changes.observed_at
        end as valid_from,
        undated_changes.state_source,
        true as is_estimated,
        undated_changes.changed_after as estimated_from
    from undated_changes
    left join event_windows
        on undated_changes.project_id = event_windows.project_id
    union all
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        period_started_at as valid_from,
        'renewal' as state_source,
        true as is_estimated,
        previous_started_at as estimated_from
    from renewal_changes
),

final as (
    select
        dated_states.*,
        -- the last load this build reflects: the next build's changed subscriptions are those
        -- staged after it
        project_loads.built_as_of
    from dated_states
    {{ staged_built_as_of_join('dated_states') }}
)

select * from final
