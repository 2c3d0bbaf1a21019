{#-
  When each removed subscription item left its subscription (issue 14 case 1). An item is
  removed when its subscription, as last synced, no longer lists it in its own `items.data`
  (the raw `subscription_items` row of a removed item is never deleted; an item known only
  from invoice lines was removed before the first sync). When the embedded list is truncated
  (`has_more`: over 10 items), the items the same sync paged are current too; a subscription
  without an item list is not judged (Stripe subscriptions have at least one item).
  Dated by the best evidence, in this order:
  1. `event`: the `customer.subscription.updated` event whose `previous_attributes.items`
     lists the item and whose subscription no longer does (exact; Stripe keeps 30 days);
  2. `proration_credit`: the start of the item's unused-time credit line, when it is the
     item's last line (exact: Stripe starts the credit at the change);
  3. `subscription_version`: the first stored version of the subscription without the item
     after one with it (the change happened between the two observations: estimated);
  4. `renewal`: the end of the item's last invoiced period, when the subscription was
     invoiced for a later period without it (estimated);
  5. `first_observation`: the first observation of the subscription without the item
     (a removal older than the event window before the first sync: estimated).
  A removal never predates an observation that still listed the item. An estimated removal
  happened somewhere in [estimated_from, removed_at]: the item's days in that range are
  flagged `is_estimated` in int_subscription_item_mrr_daily.
-#}
with item_lists as (
    select * from {{ ref('stg_stripe__subscription_item_lists') }}
),

item_events as (
    select * from {{ ref('stg_stripe__subscription_item_events') }}
),

versions as (
    select
        project_id,
        subscription_id,
        observed_at,
        {{ json_array_ids('items', '') }} as item_ids
    from {{ ref('stg_stripe__subscription_versions') }}
),

lines as (
    select * from {{ ref('stg_stripe__invoice_lines') }}
    where subscription_item_id is not null
        and period_started_at is not null
),

item_rows as (
    select project_id, subscription_id, subscription_item_id, synced_at
    from {{ ref('stg_stripe__subscription_items') }}
),

known_items as (
    select project_id, subscription_id, subscription_item_id from item_rows
    union
    select project_id, subscription_id, subscription_item_id from lines
),

removed_items as (
    select known_items.*
    from known_items
    inner join item_lists
        on known_items.project_id = item_lists.project_id
        and known_items.subscription_id = item_lists.subscription_id
    left join item_rows
        on known_items.project_id = item_rows.project_id
        and known_items.subscription_item_id = item_rows.subscription_item_id
    where {{ list_length('item_lists.item_ids') }} > 0
        and not {{ list_has('item_lists.item_ids', 'known_items.subscription_item_id') }}
        -- a truncated list: the sync pages the rest, writing their rows after the
        -- subscription's, so an item row as recent as the subscription is still listed
        and not (item_lists.has_more_items
            and coalesce(item_rows.synced_at >= item_lists.synced_at, false))
),

removal_events as (
    select
        project_id,
        subscription_id,
        unnest({{ list_without('previous_item_ids', 'item_ids') }})
            as subscription_item_id,
        created_at
    from item_events
),

event_dates as (
    select project_id, subscription_id, subscription_item_id, min(created_at) as removed_at
    from removal_events
    group by project_id, subscription_id, subscription_item_id
),

-- the last moment any observation (a version, or the item's own row) still listed the item
version_items as (
    select project_id, subscription_id, unnest(item_ids) as subscription_item_id, observed_at
    from versions
),

last_listed as (
    select project_id, subscription_id, subscription_item_id, max(observed_at) as listed_at
    from (
        select * from version_items
        union all
        select project_id, subscription_id, subscription_item_id, synced_at from item_rows
    ) as listings
    group by project_id, subscription_id, subscription_item_id
),

first_unlisted as (
    select
        removed_items.project_id,
        removed_items.subscription_item_id,
        min(versions.observed_at) as observed_at
    from removed_items
    left join last_listed
        on removed_items.project_id = last_listed.project_id
        and removed_items.subscription_item_id = last_listed.subscription_item_id
    inner join versions
        on removed_items.project_id = versions.project_id
        and removed_items.subscription_id = versions.subscription_id
        and not {{ list_has('versions.item_ids', 'removed_items.subscription_item_id') }}
        and (last_listed.listed_at is null or versions.observed_at > last_listed.listed_at)
    group by removed_items.project_id, removed_items.subscription_item_id
),

item_line_bounds as (
    select
        project_id,
        subscription_item_id,
        max(case when is_proration and amount < 0 then period_started_at end) as credit_started_at,
        max(case when not (is_proration and amount < 0) then period_started_at end)
            as other_started_at,
        max(case when not is_proration then period_ended_at end) as invoiced_until
    from lines
    group by project_id, subscription_item_id
),

subscription_periods as (
    select project_id, subscription_id, max(period_started_at) as last_period_started_at
    from lines
    where not is_proration
    group by project_id, subscription_id
),

dated as (
    select
        removed_items.*,
        event_dates.removed_at as event_at,
        case
            when bounds.other_started_at is null
                or bounds.credit_started_at > bounds.other_started_at
                then bounds.credit_started_at
        end as credit_at,
        case when last_listed.listed_at is not null then first_unlisted.observed_at end
            as version_at,
        case when subscription_periods.last_period_started_at >= bounds.invoiced_until
            then bounds.invoiced_until end as renewal_at,
        coalesce(
            first_unlisted.observed_at, item_lists.content_observed_at, item_lists.synced_at
        ) as first_observed_at,
        last_listed.listed_at,
        -- the last moment the item is known to have been there: a listing or a line's start
        greatest(last_listed.listed_at, bounds.other_started_at) as last_known_at
    from removed_items
    inner join item_lists
        on removed_items.project_id = item_lists.project_id
        and removed_items.subscription_id = item_lists.subscription_id
    left join event_dates
        on removed_items.project_id = event_dates.project_id
        and removed_items.subscription_item_id = event_dates.subscription_item_id
    left join item_line_bounds as bounds
        on removed_items.project_id = bounds.project_id
        and removed_items.subscription_item_id = bounds.subscription_item_id
    left join last_listed
        on removed_items.project_id = last_listed.project_id
        and removed_items.subscription_item_id = last_listed.subscription_item_id
    left join first_unlisted
        on removed_items.project_id = first_unlisted.project_id
        and removed_items.subscription_item_id = first_unlisted.subscription_item_id
    left join subscription_periods
        on removed_items.project_id = subscription_periods.project_id
        and removed_items.subscription_id = subscription_periods.subscription_id
),

best as (
    select
        *,
        coalesce(event_at, credit_at, version_at, renewal_at, first_observed_at) as evidence_at,
        event_at is null and credit_at is null as is_estimated
    from dated
),

final as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        greatest(evidence_at, coalesce(listed_at, evidence_at)) as removed_at,
        case
            when event_at is not null then 'event'
            when credit_at is not null then 'proration_credit'
            when version_at is not null then 'subscription_version'
            when renewal_at is not null then 'renewal'
            else 'first_observation'
        end as removal_evidence,
        is_estimated,
        -- an estimated removal happened at some moment in [estimated_from, removed_at]
        case
            when is_estimated then least(evidence_at, coalesce(last_known_at, evidence_at))
            else greatest(evidence_at, coalesce(listed_at, evidence_at))
        end as estimated_from
    from best
)

select * from final
