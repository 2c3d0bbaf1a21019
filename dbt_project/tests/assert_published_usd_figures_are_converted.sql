{#-
  Currencies are never summed unconverted: published USD MRR equals the sum of each item's
  original-currency amount times its day's rate, and revenue likewise per currency, exactly
  (each product rounded to a millionth of a dollar by `to_usd`, as the marts do).
-#}
with published as (
    select project_id, metric_date, metric, value
    from {{ ref('metrics_daily') }}
    where metric in ('stripe_mrr', 'stripe_revenue')
),

recomputed_mrr as (
    select
        items.project_id,
        items.metric_date,
        'stripe_mrr' as metric,
        sum({{ to_usd('items.net_mrr', 'rates.usd_per_unit') }}) as value
    from {{ ref('int_subscription_item_mrr_daily') }} as items
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
