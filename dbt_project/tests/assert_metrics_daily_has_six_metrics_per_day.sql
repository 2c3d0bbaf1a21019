{#- One row per project, day and metric: every reporting day carries all six metrics. -#}
{#- reads several models: the Dagster check is on metrics_daily -#}
{{ config(meta={'dagster': {'ref': {'name': 'metrics_daily'}}}) }}
select days.project_id, days.metric_date, count(metrics.metric) as metrics
from {{ ref('int_reporting_days') }} as days
left join {{ ref('metrics_daily') }} as metrics
    on days.project_id = metrics.project_id
    and days.metric_date = metrics.metric_date
group by days.project_id, days.metric_date
having count(distinct metrics.metric) <> 6
