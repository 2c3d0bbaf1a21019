{#-
  For every reporting day, each item of each *counted* subscription with its monthly amount
  (gross, recurring discount, net) in the original currency, read at the end of the day.
  A subscription is counted (METRICS-SPEC "Which subscriptions count on a day") when:
  - it has started, and its trial is over (trials are excluded until converted: it counts
    from the day the trial ends into a paid period; a trial canceled before it ends never counts;
    the days before a trial added to a paying subscription, before `trial_start`, still count);
  - no cancellation was requested yet: canceled subscriptions are removed immediately at
    `canceled_at`, or for a `cancel_at` schedule without it at the request's time
    (int_subscription_cancellation_requests), even when they keep running (var
    `churn_at_cancellation_request`; false counts them until `ended_at`), and it has not ended;
  - its status is `active` or `past_due` (`trialing` past its trial end counts as converted;
    `unpaid`, `incomplete`, `incomplete_expired`, `paused`, `canceled` do not);
  - collection is not paused (`pause_collection`).
  Discounts (METRICS-SPEC): forever and repeating coupons while they last, percent_off on the
  amount, amount_off spread over the billing interval in months. An item's own discounts
  (`subscription_item.discounts`) come first, on that item only (never more than its amount);
  the subscription's discounts then apply to what the items' own discounts leave, allocated to
  the items pro rata of it, as Stripe applies them; the net amount never goes below zero.
  `is_valued_from_invoice_line`: the item's amount is its latest invoice line's, the price
  could not say it (int_subscription_item_prices). Money (macros/time_and_money.sql): the percentage,
  the spread and each item's share are rounded to a millionth, half away from zero.
-#}
{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ prepare_incremental_days(
        required_columns=['is_estimated', 'is_valued_from_invoice_line']) }}",
    on_schema_change='sync_all_columns',
) }}

with days as (
    select reporting_days.*
    from {{ ref('int_reporting_days') }} as reporting_days
    {{ only_days_to_rebuild('reporting_days') }}
),

-- each project's reporting time zone: the local days of the few instants below (`zone`)
{%- set zone = "coalesce(time_zones.reporting_time_zone, 'UTC')" %}
time_zones as (
    select distinct project_id, reporting_time_zone from days
),

-- with the moment the cancellation was requested (a scheduled `cancel_at` included)
subscriptions as (
    select
        subscriptions.*,
        least(subscriptions.canceled_at, cancellation_requests.cancellation_requested_at)
            as cancellation_requested_at
    from {{ ref('stg_stripe__subscriptions') }} as subscriptions
    left join {{ ref('int_subscription_cancellation_requests') }} as cancellation_requests
        on subscriptions.project_id = cancellation_requests.project_id
        and subscriptions.subscription_id = cancellation_requests.subscription_id
),

states as (
    select * from {{ ref('int_subscription_states') }}
),

item_prices as (
    select * from {{ ref('int_subscription_item_prices') }}
),

-- Performance (bench/transform_build.py): the segment a day reads is picked once per span of
-- time in which the same segments are in force, not once per item and day (a window over
-- every item-day was the model's largest cost). An instant t is in a segment when
-- valid_from < t <= valid_to (or valid_to null). Between two consecutive boundaries
-- (valid_from or valid_to values) of an item's segments, the instants (span_from, span_to]
-- are in the same segments; after the last one, (span_from, open) in the open-ended ones.
item_boundaries as (
    select project_id, subscription_id, subscription_item_id, valid_from as boundary
    from item_prices
    where valid_from is not null
    union
    select project_id, subscription_id, subscription_item_id, valid_to as boundary
    from item_prices
    where valid_from is not null and valid_to is not null
),

item_spans as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        boundary as span_from,
        lead(boundary) over (
            partition by project_id, subscription_id, subscription_item_id order by boundary
        ) as span_to
    from item_boundaries
),

-- the segment of each span: of those in force throughout it, the one that started last
-- (ties: `priority`, then the later end, for a stable pick)
{%- set span_key = ['item_spans.project_id', 'item_spans.subscription_id',
    'item_spans.subscription_item_id', 'item_spans.span_from'] %}
item_span_prices as (
    select {{ first_row_of(span_key) }}
        item_spans.span_from,
        item_spans.span_to,
        item_prices.*
    from item_spans
    inner join item_prices
        on item_spans.project_id = item_prices.project_id
        and item_spans.subscription_id = item_prices.subscription_id
        and item_spans.subscription_item_id = item_prices.subscription_item_id
        and item_prices.valid_from <= item_spans.span_from
        and (item_prices.valid_to is null or item_prices.valid_to >= item_spans.span_to)
    -- spans ended before the first day read (a refresh rebuilds a few days) are not needed
    where item_spans.span_to is null
        or item_spans.span_to >= (select min(days.day_ends_at) from days)
    {{ first_row_by(span_key, 'item_prices.valid_from desc, item_prices.priority desc,'
        ~ ' item_prices.valid_to desc nulls first') }}
),

discounts as (
    select * from {{ ref('int_subscription_discounts') }}
    where subscription_item_id is null
),

item_discounts as (
    select * from {{ ref('int_subscription_discounts') }}
    where subscription_item_id is not null
),

-- (filtering this CTE on `is_estimated` made DuckDB drop the discounts of every row)
removals as (
    select
        removals.project_id,
        removals.subscription_item_id,
        removals.is_estimated as is_removal_estimated,
        {{ local_date('removals.estimated_from', zone) }} as estimated_from_date,
        {{ local_date('removals.removed_at', zone) }} as removed_date
    from {{ ref('int_subscription_item_removals') }} as removals
    left join time_zones
        on removals.project_id = time_zones.project_id
),

-- item changes dated at an upper bound (int_subscription_item_states), and discounts of the
-- item or its subscription ended at an upper bound (int_subscription_discounts): [from, to]
-- days of the project's time zone
estimated_changes as (
    select
        states.project_id,
        states.subscription_item_id,
        {{ local_date('states.estimated_from', zone) }} as estimated_from_date,
        {{ local_date('states.valid_from', zone) }} as estimated_to_date
    from {{ ref('int_subscription_item_states') }} as states
    left join time_zones
        on states.project_id = time_zones.project_id
    where states.is_estimated
    union all
    select
        ended.project_id,
        coalesce(ended.subscription_item_id, items.subscription_item_id) as subscription_item_id,
        {{ local_date('ended.valid_to_estimated_from', zone) }} as estimated_from_date,
        {{ local_date('ended.valid_to', zone) }} as estimated_to_date
    from {{ ref('int_subscription_discounts') }} as ended
    left join time_zones
        on ended.project_id = time_zones.project_id
    -- a subscription's discount: each of its items
    left join (select distinct project_id, subscription_id, subscription_item_id
               from item_prices) as items
        on ended.subscription_item_id is null
        and ended.project_id = items.project_id
        and ended.subscription_id = items.subscription_id
    where ended.is_valid_to_estimated
),

-- the uncertain days of each item, one row each: joined on equality below. (A correlated
-- `exists` over the union above ran once per item-day on PostgreSQL, which cannot turn it
-- into a join: 10 bench projects' build did not finish in 13 minutes.)
estimated_item_days as (
    select distinct
        estimated_changes.project_id,
        estimated_changes.subscription_item_id,
        days.metric_date
    from estimated_changes
    inner join days
        on estimated_changes.project_id = days.project_id
        and days.metric_date between estimated_changes.estimated_from_date
        and estimated_changes.estimated_to_date
),

-- Performance: materialized, so that DuckDB joins each subscription to its days first (a
-- range join on few rows) and only then to its states and item spans by subscription; left to
-- reorder, it joined the states and spans first and then each day on the project alone
-- (20k refresh: 0.84 of the CPU time)
lifecycle_days as materialized (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.currency as subscription_currency,
        days.metric_date,
        days.day_ends_at,
        days.as_of
    from subscriptions
    inner join days
        on subscriptions.project_id = days.project_id
        and coalesce(subscriptions.started_at, subscriptions.created_at) <= days.day_ends_at
    -- not in a trial on the day: a trial added to a paying subscription keeps the days before it
    where (subscriptions.trial_ended_at is null or subscriptions.trial_ended_at <= days.day_ends_at
        or subscriptions.trial_started_at > days.day_ends_at)
        and (subscriptions.ended_at is null or subscriptions.ended_at > days.day_ends_at)
        {% if var('churn_at_cancellation_request') -%}
        and (subscriptions.cancellation_requested_at is null
            or subscriptions.cancellation_requested_at > days.day_ends_at)
        {%- endif %}
),

counted_days as (
    select
        lifecycle_days.*,
        states.status
    from lifecycle_days
    inner join states
        on lifecycle_days.project_id = states.project_id
        and lifecycle_days.subscription_id = states.subscription_id
        and states.valid_from <= lifecycle_days.day_ends_at
        and (states.valid_to is null or states.valid_to > lifecycle_days.day_ends_at)
    where states.status in ('active', 'past_due', 'trialing')
        and not states.is_collection_paused
),

item_days as (
    select
        counted_days.project_id,
        counted_days.metric_date,
        counted_days.day_ends_at,
        counted_days.as_of,
        counted_days.subscription_id,
        counted_days.customer_id,
        counted_days.status,
        item_prices.subscription_item_id,
        item_prices.price_id,
        item_prices.quantity,
        coalesce(item_prices.currency, counted_days.subscription_currency) as currency,
        item_prices.interval_units,
        item_prices.monthly_amount as gross_mrr,
        item_prices.is_valued_from_invoice_line,
        -- an item removed at an estimated moment: its days in the uncertain range; a
        -- tax-inclusive price whose tax was estimated (int_subscription_item_prices)
        coalesce(removals.is_removal_estimated
            and counted_days.metric_date between removals.estimated_from_date
            and removals.removed_date, false)
            or coalesce(item_prices.is_tax_estimated, false)
        -- or a price or quantity change dated at an upper bound, on its uncertain days
        or estimated_item_days.subscription_item_id is not null as is_estimated
    from counted_days
    -- the day is read at day_ends_at: the one span of the item holding that instant
    inner join item_span_prices as item_prices
        on counted_days.project_id = item_prices.project_id
        and counted_days.subscription_id = item_prices.subscription_id
        and item_prices.span_from < counted_days.day_ends_at
        and (item_prices.span_to is null or item_prices.span_to >= counted_days.day_ends_at)
    left join removals
        on item_prices.project_id = removals.project_id
        and item_prices.subscription_item_id = removals.subscription_item_id
    left join estimated_item_days
        on counted_days.project_id = estimated_item_days.project_id
        and item_prices.subscription_item_id = estimated_item_days.subscription_item_id
        and counted_days.metric_date = estimated_item_days.metric_date
),

-- Performance: only a subscription with a discount needs its day's total (to share the
-- discount among its items); most have none, and their items' discount is 0
discounted_subscriptions as (
    select distinct project_id, subscription_id from discounts
),

-- each item's own discounts, on that item's amount only (an inner join: few items have any)
item_discount_days as (
    select
        item_days.project_id,
        item_days.subscription_item_id,
        item_days.metric_date,
        cast(least(
            max(item_days.gross_mrr),
            {{ as_money('max(item_days.gross_mrr) * least(sum(item_discounts.percent_off), 100)'
                ~ ' * 0.01') }}
            + {{ per_month('sum(item_discounts.amount_off)', 'max(item_days.interval_units)') }}
        ) as {{ money_type() }}) as item_discount_mrr
    from item_days
    inner join item_discounts
        on item_days.project_id = item_discounts.project_id
        and item_days.subscription_item_id = item_discounts.subscription_item_id
        and item_discounts.valid_from <= item_days.day_ends_at
        and (item_discounts.valid_to is null or item_discounts.valid_to > item_days.day_ends_at)
    group by item_days.project_id, item_days.subscription_item_id, item_days.metric_date
),

item_discounted as (
    select
        item_days.*,
        coalesce(item_discount_days.item_discount_mrr, 0) as item_discount_mrr
    from item_days
    left join item_discount_days
        on item_days.project_id = item_discount_days.project_id
        and item_days.subscription_item_id = item_discount_days.subscription_item_id
        and item_days.metric_date = item_discount_days.metric_date
),

subscription_totals as (
    select
        item_discounted.project_id,
        item_discounted.subscription_id,
        item_discounted.metric_date,
        max(item_discounted.day_ends_at) as day_ends_at,
        -- what the subscription's own discounts apply to: what the items' discounts leave
        sum(item_discounted.gross_mrr - item_discounted.item_discount_mrr)
            as subscription_gross_mrr,
        max(item_discounted.interval_units) as interval_units
    from item_discounted
    inner join discounted_subscriptions
        on item_discounted.project_id = discounted_subscriptions.project_id
        and item_discounted.subscription_id = discounted_subscriptions.subscription_id
    group by item_discounted.project_id, item_discounted.subscription_id,
        item_discounted.metric_date
),

subscription_discounts as (
    select
        subscription_totals.project_id,
        subscription_totals.subscription_id,
        subscription_totals.metric_date,
        subscription_totals.subscription_gross_mrr,
        cast(least(
            subscription_totals.subscription_gross_mrr,
            {{ as_money('subscription_totals.subscription_gross_mrr'
                ~ ' * least(sum(discounts.percent_off), 100) * 0.01') }}
            + {{ per_month(
                'sum(discounts.amount_off)', 'max(subscription_totals.interval_units)') }}
        ) as {{ money_type() }}) as subscription_discount_mrr
    from subscription_totals
    inner join discounts
        on subscription_totals.project_id = discounts.project_id
        and subscription_totals.subscription_id = discounts.subscription_id
        and discounts.valid_from <= subscription_totals.day_ends_at
        and (discounts.valid_to is null or discounts.valid_to > subscription_totals.day_ends_at)
    group by
        subscription_totals.project_id,
        subscription_totals.subscription_id,
        subscription_totals.metric_date,
        subscription_totals.subscription_gross_mrr
),

-- the subscription's discount shared by its items in proportion to what their own discounts
-- leave of them
allocated as (
    select
        item_discounted.*,
        cast(item_discounted.item_discount_mrr + case
            -- no discount on the day (the division below would give 0 too, at a cost per row)
            when subscription_discounts.subscription_id is null then 0
            when subscription_discounts.subscription_gross_mrr > 0 then {{ divide_money(
                'coalesce(subscription_discounts.subscription_discount_mrr, 0)'
                ~ ' * (item_discounted.gross_mrr - item_discounted.item_discount_mrr)',
                'subscription_discounts.subscription_gross_mrr') }}
            else 0
        end as {{ money_type() }}) as discount_mrr
    from item_discounted
    left join subscription_discounts
        on item_discounted.project_id = subscription_discounts.project_id
        and item_discounted.subscription_id = subscription_discounts.subscription_id
        and item_discounted.metric_date = subscription_discounts.metric_date
),

final as (
    select
        project_id,
        metric_date,
        subscription_item_id,
        subscription_id,
        customer_id,
        status,
        price_id,
        quantity,
        currency,
        gross_mrr,
        discount_mrr,
        {{ as_money('greatest(gross_mrr - discount_mrr, 0)') }} as net_mrr,
        is_estimated,
        is_valued_from_invoice_line,
        as_of as built_as_of
    from allocated
)

select * from final
{{ in_day_order_on_full_build() }}
