{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns; one built
    before paying_subscriptions gets it, every day recomputed once (prepare_incremental_days) -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ prepare_incremental_days(['paying_subscriptions']) }}",
    on_schema_change='sync_all_columns',
) }}

with days as (
    select reporting_days.*
    from {{ ref('int_reporting_days') }} as reporting_days
    {{ only_days_to_rebuild('reporting_days') }}
),

-- Performance: only the columns used below, so that the view converts net MRR alone (its
-- other USD columns cost a multiplication and a rounding per item-day each)
subscription_mrr as (
    select
        subscription_mrr_daily.project_id,
        subscription_mrr_daily.metric_date,
        subscription_mrr_daily.subscription_id,
        subscription_mrr_daily.customer_id,
        subscription_mrr_daily.status,
        subscription_mrr_daily.net_mrr_usd
    from {{ ref('fct_subscription_mrr_daily') }} as subscription_mrr_daily
    {{ only_days_to_rebuild('subscription_mrr_daily') }}
),

customer_lifespans as (
    select * from {{ ref('int_customer_lifespans') }}
),

-- each counted subscription's net MRR of the day: $0 ones (metered-only, 100%-off) included
subscription_totals as (
    select project_id, metric_date, subscription_id, sum(net_mrr_usd) as net_mrr_usd
    from subscription_mrr
    group by project_id, metric_date, subscription_id
),

mrr_totals as (
    select
        project_id,
        metric_date,
        sum(net_mrr_usd) as mrr,
        sum(case when status = 'past_due' then net_mrr_usd else 0 end) as mrr_at_risk
    from subscription_mrr
    group by project_id, metric_date
),

-- METRICS-SPEC "Which subscriptions count": every counted subscription, whatever its amount;
-- paying_subscriptions: the ones whose net MRR is above zero
subscription_counts as (
    select
        project_id,
        metric_date,
        count(*) as active_subscriptions,
        count(*) filter (where net_mrr_usd > 0) as paying_subscriptions
    from subscription_totals
    group by project_id, metric_date
),

customer_mrr as (
    select project_id, metric_date, customer_id, sum(net_mrr_usd) as mrr
    from subscription_mrr
    group by project_id, metric_date, customer_id
),

paying_customers as (
    select project_id, metric_date, count(*) as paying_customers
    from customer_mrr
    where mrr > 0
    group by project_id, metric_date
),

customers_existing as (
    select
        days.project_id,
        days.metric_date,
        count(customer_lifespans.customer_id) as total_customers
    from days
    inner join customer_lifespans
        on days.project_id = customer_lifespans.project_id
        and customer_lifespans.created_at < days.day_ends_at
        and (customer_lifespans.deleted_at is null
            or customer_lifespans.deleted_at >= days.day_ends_at)
    group by days.project_id, days.metric_date
),

final as (
    select
        days.project_id,
        days.metric_date,
        {{ as_money('coalesce(mrr_totals.mrr, 0)') }} as mrr,
        {{ as_money('12 * coalesce(mrr_totals.mrr, 0)') }} as arr,
        coalesce(subscription_counts.active_subscriptions, 0) as active_subscriptions,
        coalesce(subscription_counts.paying_subscriptions, 0) as paying_subscriptions,
        coalesce(paying_customers.paying_customers, 0) as paying_customers,
        coalesce(customers_existing.total_customers, 0) as total_customers,
        {{ as_money('coalesce(mrr_totals.mrr_at_risk, 0)') }} as mrr_at_risk,
        days.as_of as built_as_of
    from days
    left join mrr_totals
        on days.project_id = mrr_totals.project_id
        and days.metric_date = mrr_totals.metric_date
    left join subscription_counts
        on days.project_id = subscription_counts.project_id
        and days.metric_date = subscription_counts.metric_date
    left join paying_customers
        on days.project_id = paying_customers.project_id
        and days.metric_date = paying_customers.metric_date
    left join customers_existing
        on days.project_id = customers_existing.project_id
        and days.metric_date = customers_existing.metric_date
)

select * from final
{{ in_day_order_on_full_build() }}
