{#-
  For every project and day after the first: opening MRR + new + expansion + reactivation
  - contraction - churn + fx = closing MRR, with opening and closing from fct_mrr_daily, exactly.
-#}
{#- reads several models: the Dagster check is on fct_mrr_movements -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_mrr_movements'}}}) }}
with mrr_daily as (
    select * from {{ ref('fct_mrr_daily') }}
),

movements as (
    select
        project_id,
        metric_date,
        sum(new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr + fx_mrr)
            as net_movement
    from {{ ref('fct_mrr_movements') }}
    group by project_id, metric_date
),

checked as (
    select
        today.project_id,
        today.metric_date,
        yesterday.mrr as opening_mrr,
        coalesce(movements.net_movement, 0) as net_movement,
        today.mrr as closing_mrr
    from mrr_daily as today
    inner join mrr_daily as yesterday
        on today.project_id = yesterday.project_id
        and yesterday.metric_date = cast({{ dbt.dateadd('day', -1, 'today.metric_date') }} as date)
    left join movements
        on today.project_id = movements.project_id
        and today.metric_date = movements.metric_date
)

select *
from checked
-- exact: money is DECIMAL, so no tolerance
where opening_mrr + net_movement <> closing_mrr
