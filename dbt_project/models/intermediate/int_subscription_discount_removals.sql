{#-
  When each discount left its subscription (removed, or replaced by another), from the best
  evidence Stripe keeps:
  1. `customer.subscription.updated` events (30 days): a discount listed in
     `previous_attributes.discounts` (or the single `discount` of older API versions) and no
     longer on the event's object was removed at the event's time. Exact.
  2. The warehouse's own insert-only subscription versions (every sync and webhook): a
     discount on one version and absent from the next one of the subscription was removed
     between the two; dated at the later observation and flagged `is_estimated` (a sync sees
     a change only when it runs).
  3. The subscription's own regular invoices (`subscription_create`, `subscription_cycle`):
     a discount on one of them and on none of its later ones was removed between the last
     invoice with it and the next one; dated at that next invoice and flagged `is_estimated`.
     The only evidence of a removal older than the event window that no sync saw happen
     (a discount still on the subscription or its item is on each of its invoices, until
     its natural end, which int_subscription_discounts applies first).
  A subscription item's own discounts (`subscription_item.discounts`) are dated the same way,
  item by item: listed on the item in an event's `previous_attributes.items` and not on the same
  item after it (exact), else on one stored version of the subscription's item and not on the
  item in a later one, or on one regular invoice line of the item and not on its later ones
  (estimated). An item absent from a later list (removed, or beyond the
  ten items a list embeds) does not end its discounts: an item's removal ends its amount.
  `estimated_from`: the last observation that still had the discount (an estimated removal
  happened in [estimated_from, removed_at]; int_subscription_item_mrr_daily flags those days).
  Stripe also drops the discounts of a canceled subscription: such a "removal" is at or after
  the subscription's end, where it counts for nothing.
-#}
{#- incremental by subscription (macros/changed_subscriptions.sql): a subscription's removals
    come from its own events, versions, invoices and invoice lines only -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_changed_subscriptions([
        {'model': 'stg_stripe__events', 'subscription_id': 'object_id',
         'where': \"object_type = 'subscription'\"},
        'stg_stripe__subscription_item_events', 'stg_stripe__subscription_versions',
        'stg_stripe__invoices', 'stg_stripe__invoice_lines']) }}",
) }}

-- depends_on: {{ ref('stg_stripe__events') }} (an incremental build's events, by subscription)
-- Performance (bench/transform_build.py): every update event's document (the whole
-- subscription) is parsed once, for its small `previous_attributes`, and only the few updates
-- that changed a discount are read further; testing both keys on the whole document parsed it
-- twice, on every build (the 30 days of raw events).
with updated as (
    select
        raw_events.project_id,
        raw_events.created,
        raw_events.data,
        {{ json_object('raw_events.data', 'data.previous_attributes') }} as previous_attributes
    from {{ source('stripe', 'events') }} as raw_events
    {%- if is_incremental_by_subscription() %}
    -- the changed subscriptions' events only, found by the staged events' object id (not by
    -- parsing every raw document)
    inner join (
        select staged_events.project_id, staged_events.event_id
        from {{ ref('stg_stripe__events') }} as staged_events
        {{ only_changed_subscriptions('staged_events', 'object_id') }}
        where staged_events.object_type = 'subscription'
    ) as changed_events
        on raw_events.project_id = changed_events.project_id
        and raw_events.id = changed_events.event_id
    {%- endif %}
    where raw_events.type = 'customer.subscription.updated'
),

updates as (
    select
        project_id,
        {{ json_text('data', 'data.object.id') }} as subscription_id,
        {{ from_unix_seconds('created') }} as removed_at,
        {{ json_object('previous_attributes', 'discounts') }} as previous_discounts,
        {{ json_object('previous_attributes', 'discount') }} as previous_discount,
        -- what is on the subscription after the update: ids, or objects when expanded
        {{ json_id_list('data', 'data.object.discounts') }}
        || {{ list_of([json_text('data', 'data.object.discount'),
                       json_text('data', 'data.object.discount.id')], 'text') }} as kept_ids
    from updated
    where {{ json_has_key('previous_attributes', 'discounts') }}
        or {{ json_has_key('previous_attributes', 'discount') }}
),

previously_on as (
    {{ discounts_as_rows('updates', 'project_id, subscription_id, removed_at, kept_ids',
                         'previous_discounts', 'previous_discount') }}
),

removed_by_events as (
    select
        project_id,
        subscription_id,
        {{ json_id('discount') }} as discount_id,
        min(removed_at) as removed_at
    from previously_on
    where not {{ list_has('kept_ids', json_id('discount')) }}
    group by project_id, subscription_id, discount_id
),

-- an item's own discounts: those on the item before an event and not on it after
item_events as (
    select item_events.*
    from {{ ref('stg_stripe__subscription_item_events') }} as item_events
    {{ only_changed_subscriptions('item_events') }}
),

items_after_events as (
    select
        project_id,
        event_id,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_id_list('item', 'discounts') }} as kept_ids
    from (
        select project_id, event_id, {{ json_array_items('items') }} as item from item_events
    ) as event_items
),

item_discounts_before_events as (
    select
        project_id,
        subscription_id,
        event_id,
        created_at,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_array_elements('item', 'discounts') }} as discount
    from (
        select project_id, subscription_id, event_id, created_at,
            {{ json_array_items('previous_items') }} as item
        from item_events
    ) as previous_event_items
),

item_discounts_removed_by_events as (
    select
        before.project_id,
        before.subscription_id,
        {{ json_id('before.discount') }} as discount_id,
        min(before.created_at) as removed_at
    from item_discounts_before_events as before
    -- the item is still listed after the event (its removal ends its amount anyway)
    inner join items_after_events as after
        on before.project_id = after.project_id
        and before.event_id = after.event_id
        and before.subscription_item_id = after.subscription_item_id
    where not {{ list_has('after.kept_ids', json_id('before.discount')) }}
    group by before.project_id, before.subscription_id, discount_id
),

all_removed_by_events as (
    select * from removed_by_events
    union all
    select * from item_discounts_removed_by_events
),

-- 2 and 3: the warehouse's own observations of each scope a discount applies to (the
-- subscription, or one of its items): every stored version, and every regular invoice (an
-- item's regular, not proration, lines), with the discounts each one showed
versions as (
    select
        versions.project_id, versions.subscription_id, observed_at, items, discounts, discount
    from {{ ref('stg_stripe__subscription_versions') }} as versions
    {{ only_changed_subscriptions('versions') }}
),

regular_invoices as (
    select
        invoices.project_id, invoices.subscription_id, created_at as observed_at, discounts,
        discount
    from {{ ref('stg_stripe__invoices') }} as invoices
    {{ only_changed_subscriptions('invoices') }}
    where invoices.subscription_id is not null
        and billing_reason in ('subscription_create', 'subscription_cycle')
),

subscription_observations as (
    select project_id, subscription_id, observed_at, discounts, discount from versions
    union all
    select * from regular_invoices
),

-- each item of each version (ids of its own discounts, or objects when expanded)
version_items as (
    select
        project_id,
        subscription_id,
        observed_at,
        {{ json_text('item', 'id') }} as subscription_item_id,
        {{ json_object('item', 'discounts') }} as discounts
    from (
        select project_id, subscription_id, observed_at, {{ json_array_items('items') }} as item
        from versions
    ) as items_of_versions
),

item_lines as (
    select invoice_lines.project_id, invoice_lines.subscription_id, subscription_item_id,
        invoice_created_at as observed_at, discounts
    from {{ ref('stg_stripe__invoice_lines') }} as invoice_lines
    {{ only_changed_subscriptions('invoice_lines') }}
    where subscription_item_id is not null
        and line_type = 'subscription'
        and not is_proration
),

-- scope: the subscription ('') or the item whose own discounts are observed
observations as (
    select project_id, subscription_id, '' as scope, observed_at
    from subscription_observations
    union all
    select project_id, subscription_id, subscription_item_id, observed_at from version_items
    union all
    select project_id, subscription_id, subscription_item_id, observed_at from item_lines
),

subscription_sightings as (
    {{ discounts_as_rows('subscription_observations', 'project_id, subscription_id, observed_at',
                         'discounts', 'discount') }}
),

sightings as (
    select project_id, subscription_id, '' as scope, observed_at, discount
    from subscription_sightings
    union all
    select project_id, subscription_id, subscription_item_id, observed_at,
        {{ json_array_items('discounts') }} as discount
    from version_items
    union all
    select project_id, subscription_id, subscription_item_id, observed_at,
        {{ json_array_items('discounts') }} as discount
    from item_lines
    where {{ json_array_length_of('discounts') }} > 0
),

-- the last observation with each discount, and the first later one of its scope without it:
-- removed in between (a sync sees a change only when it runs; an invoice shows the discounts
-- in force when it was made)
last_seen as (
    select
        project_id,
        subscription_id,
        scope,
        {{ json_id('discount') }} as discount_id,
        max(observed_at) as last_seen_at
    from sightings
    group by project_id, subscription_id, scope, discount_id
),

removed_by_versions as (
    select
        last_seen.project_id,
        last_seen.subscription_id,
        last_seen.discount_id,
        min(observations.observed_at) as removed_at,
        max(last_seen.last_seen_at) as last_seen_at
    from last_seen
    inner join observations
        on last_seen.project_id = observations.project_id
        and last_seen.subscription_id = observations.subscription_id
        and last_seen.scope = observations.scope
        and observations.observed_at > last_seen.last_seen_at
    group by last_seen.project_id, last_seen.subscription_id, last_seen.discount_id
),

dated_removals as (
    select
        coalesce(events.project_id, versions.project_id) as project_id,
        coalesce(events.subscription_id, versions.subscription_id) as subscription_id,
        coalesce(events.discount_id, versions.discount_id) as discount_id,
        coalesce(events.removed_at, versions.removed_at) as removed_at,
        events.removed_at is null as is_estimated,
        -- an estimated removal happened at some moment in [estimated_from, removed_at]
        coalesce(events.removed_at, versions.last_seen_at) as estimated_from
    from all_removed_by_events as events
    full outer join removed_by_versions as versions
        on events.project_id = versions.project_id
        and events.subscription_id = versions.subscription_id
        and events.discount_id = versions.discount_id
),

final as (
    select
        dated_removals.*,
        -- the last load this build reflects (macros/changed_subscriptions.sql)
        project_loads.built_as_of
    from dated_removals
    {{ staged_built_as_of_join('dated_removals') }}
)

select * from final
