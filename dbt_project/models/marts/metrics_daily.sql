{#- THE published contract: one row per project, day of its reporting window and metric. -#}
with days as (
    select * from {{ ref('int_reporting_days') }}
),

mrr_daily as (
    select * from {{ ref('fct_mrr_daily') }}
),

revenue_daily as (
    select project_id, metric_date, sum(revenue_usd) as revenue
    from {{ ref('fct_revenue_daily') }}
    group by project_id, metric_date
),

failed_payments_daily as (
    select project_id, metric_date, sum(failed_attempts) as failed_attempts
    from {{ ref('fct_failed_payments_daily') }}
    group by project_id, metric_date
),

daily as (
    select
        days.project_id,
        days.metric_date,
        coalesce(mrr_daily.mrr, 0) as mrr,
        coalesce(mrr_daily.arr, 0) as arr,
        coalesce(revenue_daily.revenue, 0) as revenue,
        coalesce(mrr_daily.active_subscriptions, 0) as active_subscriptions,
        coalesce(mrr_daily.total_customers, 0) as customers,
        coalesce(failed_payments_daily.failed_attempts, 0) as failed_payments
    from days
    left join mrr_daily
        on days.project_id = mrr_daily.project_id
        and days.metric_date = mrr_daily.metric_date
    left join revenue_daily
        on days.project_id = revenue_daily.project_id
        and days.metric_date = revenue_daily.metric_date
    left join failed_payments_daily
        on days.project_id = failed_payments_daily.project_id
        and days.metric_date = failed_payments_daily.metric_date
),

final as (
    {%- set metrics = [
        ('stripe_mrr', 'mrr', 'USD'),
        ('stripe_arr', 'arr', 'USD'),
        ('stripe_revenue', 'revenue', 'USD'),
        ('stripe_active_subscriptions', 'active_subscriptions', 'count'),
        ('stripe_customers', 'customers', 'count'),
        ('stripe_failed_payments', 'failed_payments', 'count'),
    ] %}
    {%- for metric, column, unit in metrics %}
    select
        project_id,
        metric_date,
        '{{ metric }}' as metric,
        -- exact for money and counts alike (docs/metrics-spec.md "Money")
        {{ as_money(column) }} as value,
        '{{ unit }}' as unit
    from daily
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
