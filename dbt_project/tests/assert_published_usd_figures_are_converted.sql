{#-
  Currencies are never summed unconverted: published USD MRR equals the sum of each item's
  original-currency amount times its day's rate, and revenue likewise per currency, exactly
  (each product rounded to a millionth of a dollar by `to_usd`, as the marts do).
  MRR is checked on the days the last build rewrote (per project, from the earliest day of
  fct_mrr_daily carrying its latest `built_as_of`), like `unique_combination`'s
  `rebuilt_days_only`: older days were checked by the build that wrote them, and a full build
  writes, so checks, every day. Recomputing every item-day on each refresh cost a second of
  the refresh build (bench/transform_build.py). Revenue (a few rows a day) is checked whole.
  tests/dbt/test_exact_money.py plants a wrong figure to see this test fail.
-#}
{#- reads several models: the Dagster check is on metrics_daily -#}
{{ config(meta={'dagster': {'ref': {'name': 'metrics_daily'}}}) }}
with last_builds as (
    select project_id, max(built_as_of) as built_as_of
    from {{ ref('fct_mrr_daily') }}
    group by project_id
),

rebuilt_from as (
    select mrr_daily.project_id, min(mrr_daily.metric_date) as first_day
    from {{ ref('fct_mrr_daily') }} as mrr_daily
    inner join last_builds
        on mrr_daily.project_id = last_builds.project_id
        and mrr_daily.built_as_of = last_builds.built_as_of
    group by mrr_daily.project_id
),

published as (
    select published.project_id, published.metric_date, published.metric, published.value
    from {{ ref('metrics_daily') }} as published
    inner join rebuilt_from
        on published.project_id = rebuilt_from.project_id
        and published.metric_date >= rebuilt_from.first_day
    where published.metric = 'stripe_mrr'
    union all
    select project_id, metric_date, metric, value
    from {{ ref('metrics_daily') }}
    where metric = 'stripe_revenue'
),

recomputed_mrr as (
    select
        items.project_id,
        items.metric_date,
        'stripe_mrr' as metric,
        sum({{ to_usd('items.net_mrr', 'rates.usd_per_unit') }}) as value
    from {{ ref('int_subscription_item_mrr_daily') }} as items
    inner join rebuilt_from
        on items.project_id = rebuilt_from.project_id
        and items.metric_date >= rebuilt_from.first_day
    inner join {{ ref('int_fx_rates_daily') }} as rates
        on items.currency = rates.currency
        and items.metric_date = rates.metric_date
    group by items.project_id, items.metric_date
),

recomputed_revenue as (
    select
        revenue.project_id,
        revenue.metric_date,
        'stripe_revenue' as metric,
        sum({{ to_usd('revenue.revenue', 'rates.usd_per_unit') }}) as value
    from {{ ref('fct_revenue_daily') }} as revenue
    inner join {{ ref('int_fx_rates_daily') }} as rates
        on revenue.currency = rates.currency
        and revenue.metric_date = rates.metric_date
    group by revenue.project_id, revenue.metric_date
),

recomputed as (
    select * from recomputed_mrr
    union all
    select * from recomputed_revenue
)

select published.*, recomputed.value as recomputed_value
from published
left join recomputed
    on published.project_id = recomputed.project_id
    and published.metric_date = recomputed.metric_date
    and published.metric = recomputed.metric
where published.value <> coalesce(recomputed.value, 0)
