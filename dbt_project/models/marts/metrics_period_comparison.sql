{{ config(materialized='view') }}
{#-
  Each metric per calendar month against the month before: stock metrics (MRR, ARR, active
  subscriptions, customers) take the month's last reported day, flow metrics (revenue, failed
  payments) the month's sum. `growth_rate` is (value - previous) / previous (null when the
  previous is 0); for stripe_mrr it is month-over-month MRR growth.
-#}
with metrics as (
    select * from {{ ref('metrics_daily') }}
),

monthly as (
    select
        project_id,
        metric,
        unit,
        cast({{ dbt.date_trunc('month', 'metric_date') }} as date) as period_start,
        max(metric_date) as period_last_day,
        count(*) as reported_days,
        sum(value) as period_sum
    from metrics
    group by project_id, metric, unit, cast({{ dbt.date_trunc('month', 'metric_date') }} as date)
),

period_values as (
    select
        monthly.project_id,
        monthly.metric,
        monthly.unit,
        monthly.period_start,
        monthly.period_last_day,
        monthly.reported_days,
        case
            when monthly.metric in ('stripe_revenue', 'stripe_failed_payments')
                then monthly.period_sum
            else last_values.value
        end as value
    from monthly
    inner join metrics as last_values
        on monthly.project_id = last_values.project_id
        and monthly.metric = last_values.metric
        and monthly.period_last_day = last_values.metric_date
),

final as (
    select
        project_id,
        metric,
        unit,
        period_start,
        period_last_day,
        reported_days,
        {{ as_money('value') }} as value,
        {{ as_money('lag(value) over (partition by project_id, metric order by period_start)') }}
            as previous_value,
        {{ as_money('value - lag(value) over (partition by project_id, metric'
            ~ ' order by period_start)') }} as change,
        case
            when lag(value) over (partition by project_id, metric order by period_start) <> 0
                then {{ ratio(
                    '(value - lag(value) over (partition by project_id, metric'
                    ~ ' order by period_start))',
                    'lag(value) over (partition by project_id, metric order by period_start)') }}
        end as growth_rate
    from period_values
)

select * from final
