{#-
  MRR movements per customer and day (METRICS-SPEC "Movements"), from the window's second day
  on (the first day has no opening). Rows only where the customer had MRR on the day or the day
  before. USD amounts; `fx` is the change of the opening MRR due only to the day's rate
  (opening in original currency x (rate today - rate yesterday)), so it is never counted as
  expansion or contraction. The rest of the change, at today's rate, is:
  `new` (first MRR > 0), `reactivation` (MRR > 0 after 0, with earlier MRR or an earlier ended
  subscription), `expansion`/`contraction` (MRR stays > 0), `churn` (MRR goes to 0).
  Identity: opening + new + expansion + reactivation - contraction - churn + fx = closing.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ prepare_incremental_days() }}",
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

customer_currency_mrr as (
    select project_id, customer_id, currency, metric_date, sum(net_mrr) as mrr
    from subscription_mrr
    group by project_id, customer_id, currency, metric_date
),

-- each day a customer's MRR can move: a day with MRR, or the day after one (yesterday's MRR
-- shifted a day forward meets today's)
currency_days as (
    select
        coalesce(today.project_id, yesterday.project_id) as project_id,
        coalesce(today.customer_id, yesterday.customer_id) as customer_id,
        coalesce(today.currency, yesterday.currency) as currency,
        coalesce(today.metric_date, yesterday.next_date) as metric_date,
        coalesce(today.mrr, 0.0) as today_mrr,
        coalesce(yesterday.mrr, 0.0) as yesterday_mrr
    from customer_currency_mrr as today
    full outer join (
        select
            *,
            cast({{ dbt.dateadd('day', 1, 'metric_date') }} as date) as next_date
        from customer_currency_mrr
    ) as yesterday
        on today.project_id = yesterday.project_id
        and today.customer_id = yesterday.customer_id
        and today.currency = yesterday.currency
        and today.metric_date = yesterday.next_date
),

currency_movements as (
    select
        currency_days.project_id,
        currency_days.customer_id,
        currency_days.metric_date,
        currency_days.yesterday_mrr * previous_rates.usd_per_unit as opening_mrr,
        currency_days.today_mrr * rates.usd_per_unit as closing_mrr,
        days.as_of,
        currency_days.yesterday_mrr * (rates.usd_per_unit - previous_rates.usd_per_unit) as fx
    from currency_days
    inner join days
        on currency_days.project_id = days.project_id
        and currency_days.metric_date = days.metric_date
    {{ only_days_to_rebuild('currency_days') }}
    inner join days as previous_days
        on currency_days.project_id = previous_days.project_id
        and previous_days.metric_date
            = cast({{ dbt.dateadd('day', -1, 'currency_days.metric_date') }} as date)
    inner join fx_rates as rates
        on currency_days.currency = rates.currency
        and currency_days.metric_date = rates.metric_date
    inner join fx_rates as previous_rates
        on currency_days.currency = previous_rates.currency
        and previous_days.metric_date = previous_rates.metric_date
),

customer_days as (
    select
        project_id,
        customer_id,
        metric_date,
        -- rounded to a millionth of a dollar: a rate move alone must not leave a float residue
        -- that would read as expansion or contraction
        round(sum(opening_mrr), 6) as opening_mrr,
        round(sum(closing_mrr), 6) as closing_mrr,
        round(sum(fx), 6) as fx,
        max(as_of) as as_of
    from currency_movements
    group by project_id, customer_id, metric_date
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
        and (project_id, customer_id) in (select project_id, customer_id from starting_customers)
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
        round(customer_days.closing_mrr - customer_days.opening_mrr - customer_days.fx, 6)
            as change,
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
        opening_mrr,
        case
            when opening_mrr = 0 and closing_mrr > 0 and not coalesce(has_earlier_history, false)
                then closing_mrr
            else 0.0
        end as new_mrr,
        case when opening_mrr > 0 and closing_mrr > 0 and change > 0 then change else 0.0 end
            as expansion_mrr,
        case
            when opening_mrr = 0 and closing_mrr > 0 and coalesce(has_earlier_history, false)
                then closing_mrr
            else 0.0
        end as reactivation_mrr,
        case when opening_mrr > 0 and closing_mrr > 0 and change < 0 then -change else 0.0 end
            as contraction_mrr,
        case when opening_mrr > 0 and closing_mrr = 0 then opening_mrr + fx else 0.0 end
            as churn_mrr,
        fx as fx_mrr,
        closing_mrr,
        as_of as built_as_of
    from classified
    where opening_mrr <> 0 or closing_mrr <> 0
)

select * from final
{{ in_day_order_on_full_build() }}
