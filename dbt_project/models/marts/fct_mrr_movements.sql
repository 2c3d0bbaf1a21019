{#-
  MRR movements per customer and day (METRICS-SPEC "Movements"), from the window's second day
  on (the first day has no opening). Rows only where the customer had MRR on the day or the day
  before. USD amounts, each item priced as in fct_subscription_mrr_daily; `fx` is the change of
  the opening MRR due only to the day's rate (yesterday's items at today's rate - at yesterday's
  rate), so it is never counted as expansion or contraction. The rest of the change, at today's
  rate, is:
  `new` (first MRR > 0), `reactivation` (MRR > 0 after 0, with earlier MRR or an earlier ended
  subscription), `expansion`/`contraction` (MRR stays > 0), `churn` (MRR goes to 0).
  Identity: opening + new + expansion + reactivation - contraction - churn + fx = closing,
  exactly (DECIMAL money), per customer and, summed, against fct_mrr_daily.
-#}
{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ prepare_incremental_days() }}",
    on_schema_change='sync_all_columns',
) }}

with days as (
    select * from {{ ref('int_reporting_days') }}
),

-- item MRR in the original currency (converted below, with the fx movement)
all_subscription_mrr as (
    select * from {{ ref('int_subscription_item_mrr_daily') }}
),

-- the days rewritten and, for their opening, the day before
subscription_mrr as (
    select all_subscription_mrr.*
    from all_subscription_mrr
    {% if is_incremental() -%}
    inner join {{ rebuild_window_table() }} as rebuild_window
        on all_subscription_mrr.project_id = rebuild_window.project_id
        and all_subscription_mrr.metric_date
            >= cast({{ dbt.dateadd('day', -1, 'rebuild_window.rebuild_from_date') }} as date)
    {%- endif %}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

-- each item priced as fct_subscription_mrr_daily prices it (the day's rate, rounded per item),
-- so that customers' MRR sums to fct_mrr_daily's exactly; and at the next day's rate: what the
-- same MRR is worth tomorrow before any change, from which tomorrow's fx movement follows
-- Performance: items share a few price points, so each distinct amount of a currency and day
-- is converted once (the same exact product and rounding as per item), then joined back
amounts as (
    select distinct currency, metric_date, net_mrr
    from subscription_mrr
),

amounts_usd as (
    select
        amounts.currency,
        amounts.metric_date,
        amounts.net_mrr,
        {{ to_usd('amounts.net_mrr', 'rates.usd_per_unit') }} as mrr,
        {{ to_usd('amounts.net_mrr', 'next_rates.usd_per_unit') }} as mrr_at_next_rate
    from amounts
    inner join fx_rates as rates
        on amounts.currency = rates.currency
        and amounts.metric_date = rates.metric_date
    left join fx_rates as next_rates
        on amounts.currency = next_rates.currency
        and next_rates.metric_date
            = cast({{ dbt.dateadd('day', 1, 'amounts.metric_date') }} as date)
),

item_usd as (
    select
        subscription_mrr.project_id,
        subscription_mrr.customer_id,
        subscription_mrr.metric_date,
        amounts_usd.mrr,
        amounts_usd.mrr_at_next_rate
    from subscription_mrr
    inner join amounts_usd
        on subscription_mrr.currency = amounts_usd.currency
        and subscription_mrr.metric_date = amounts_usd.metric_date
        and subscription_mrr.net_mrr is not distinct from amounts_usd.net_mrr
),

customer_mrr as (
    select
        project_id,
        customer_id,
        metric_date,
        sum(mrr) as mrr,
        sum(mrr_at_next_rate) as mrr_at_next_rate
    from item_usd
    group by project_id, customer_id, metric_date
),

-- each day a customer's MRR can move: a day with MRR, or the day after one (yesterday's MRR
-- shifted a day forward meets today's)
movement_days as (
    select
        coalesce(today.project_id, yesterday.project_id) as project_id,
        coalesce(today.customer_id, yesterday.customer_id) as customer_id,
        coalesce(today.metric_date, yesterday.next_date) as metric_date,
        coalesce(yesterday.mrr, 0) as opening_mrr,
        coalesce(today.mrr, 0) as closing_mrr,
        -- the opening MRR revalued at today's rate; a customer opening at 0 has no fx movement
        case
            when coalesce(yesterday.mrr, 0) = 0 then 0
            else yesterday.mrr_at_next_rate - yesterday.mrr
        end as fx
    from customer_mrr as today
    full outer join (
        select
            *,
            cast({{ dbt.dateadd('day', 1, 'metric_date') }} as date) as next_date
        from customer_mrr
    ) as yesterday
        on today.project_id = yesterday.project_id
        and today.customer_id = yesterday.customer_id
        and today.metric_date = yesterday.next_date
),

-- exact money (macros/time_and_money.sql): no residue can read as expansion or contraction
customer_days as (
    select
        movement_days.project_id,
        movement_days.customer_id,
        movement_days.metric_date,
        movement_days.opening_mrr,
        movement_days.closing_mrr,
        movement_days.fx,
        days.as_of
    from movement_days
    inner join days
        on movement_days.project_id = days.project_id
        and movement_days.metric_date = days.metric_date
    {{ only_days_to_rebuild('movement_days') }}
    inner join days as previous_days
        on movement_days.project_id = previous_days.project_id
        and previous_days.metric_date
            = cast({{ dbt.dateadd('day', -1, 'movement_days.metric_date') }} as date)
),

-- only a customer whose MRR starts from 0 is new or reactivated: the first MRR day is looked
-- up for those alone (the item MRR table holds every subscription item's every day)
starting_customers as (
    select distinct project_id, customer_id
    from customer_days
    where opening_mrr = 0 and closing_mrr > 0
),

first_mrr_days as (
    select project_id, customer_id, min(metric_date) as first_mrr_date
    from {{ ref('int_subscription_item_mrr_daily') }}
    where net_mrr > 0
        and (project_id, customer_id) in (
            select starting_customers.project_id, starting_customers.customer_id
            from starting_customers
        )
    group by project_id, customer_id
),

earliest_ended_subscriptions as (
    select project_id, customer_id, min(coalesce(canceled_at, ended_at)) as first_ended_at
    from subscriptions
    where coalesce(canceled_at, ended_at) is not null
    group by project_id, customer_id
),

classified as (
    select
        customer_days.*,
        customer_days.closing_mrr - customer_days.opening_mrr - customer_days.fx as change,
        (first_mrr_days.first_mrr_date < customer_days.metric_date
            or earliest_ended_subscriptions.first_ended_at
                < cast(customer_days.metric_date as timestamp)) as has_earlier_history
    from customer_days
    left join first_mrr_days
        on customer_days.project_id = first_mrr_days.project_id
        and customer_days.customer_id = first_mrr_days.customer_id
    left join earliest_ended_subscriptions
        on customer_days.project_id = earliest_ended_subscriptions.project_id
        and customer_days.customer_id = earliest_ended_subscriptions.customer_id
),

final as (
    select
        project_id,
        customer_id,
        metric_date,
        {{ as_money('opening_mrr') }} as opening_mrr,
        cast(case
            when opening_mrr = 0 and closing_mrr > 0 and not coalesce(has_earlier_history, false)
                then closing_mrr
            else 0
        end as {{ money_type() }}) as new_mrr,
        {{ as_money('case when opening_mrr > 0 and closing_mrr > 0 and change > 0'
            ~ ' then change else 0 end') }}
            as expansion_mrr,
        cast(case
            when opening_mrr = 0 and closing_mrr > 0 and coalesce(has_earlier_history, false)
                then closing_mrr
            else 0
        end as {{ money_type() }}) as reactivation_mrr,
        {{ as_money('case when opening_mrr > 0 and closing_mrr > 0 and change < 0'
            ~ ' then -change else 0 end') }}
            as contraction_mrr,
        {{ as_money('case when opening_mrr > 0 and closing_mrr = 0'
            ~ ' then opening_mrr + fx else 0 end') }}
            as churn_mrr,
        {{ as_money('fx') }} as fx_mrr,
        {{ as_money('closing_mrr') }} as closing_mrr,
        as_of as built_as_of
    from classified
    where opening_mrr <> 0 or closing_mrr <> 0
)

select * from final
{{ in_day_order_on_full_build() }}
