{#- The daily customer movements rolled up per project and calendar month (USD). -#}
with movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

mrr_daily as (
    select * from {{ ref('fct_mrr_daily') }}
),

monthly_mrr as (
    select
        project_id,
        cast({{ dbt.date_trunc('month', 'metric_date') }} as date) as metric_month,
        min(metric_date) as first_day,
        max(metric_date) as last_day
    from mrr_daily
    group by project_id, cast({{ dbt.date_trunc('month', 'metric_date') }} as date)
),

monthly_movements as (
    select
        project_id,
        cast({{ dbt.date_trunc('month', 'metric_date') }} as date) as metric_month,
        sum(new_mrr) as new_mrr,
        sum(expansion_mrr) as expansion_mrr,
        sum(reactivation_mrr) as reactivation_mrr,
        sum(contraction_mrr) as contraction_mrr,
        sum(churn_mrr) as churn_mrr,
        sum(fx_mrr) as fx_mrr
    from movements
    group by project_id, cast({{ dbt.date_trunc('month', 'metric_date') }} as date)
),

daily_net_movements as (
    select
        project_id,
        metric_date,
        sum(new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr + fx_mrr)
            as net_movement
    from movements
    group by project_id, metric_date
),

final as (
    select
        monthly_mrr.project_id,
        monthly_mrr.metric_month,
        -- the MRR the month opened with: its first day's close minus that day's movements
        {{ as_money('first_day_mrr.mrr - coalesce(first_day_movements.net_movement, 0)') }}
            as opening_mrr,
        {{ as_money('coalesce(monthly_movements.new_mrr, 0)') }} as new_mrr,
        {{ as_money('coalesce(monthly_movements.expansion_mrr, 0)') }} as expansion_mrr,
        {{ as_money('coalesce(monthly_movements.reactivation_mrr, 0)') }} as reactivation_mrr,
        {{ as_money('coalesce(monthly_movements.contraction_mrr, 0)') }} as contraction_mrr,
        {{ as_money('coalesce(monthly_movements.churn_mrr, 0)') }} as churn_mrr,
        {{ as_money('coalesce(monthly_movements.fx_mrr, 0)') }} as fx_mrr,
        {{ as_money('last_day_mrr.mrr') }} as closing_mrr
    from monthly_mrr
    left join monthly_movements
        on monthly_mrr.project_id = monthly_movements.project_id
        and monthly_mrr.metric_month = monthly_movements.metric_month
    inner join mrr_daily as first_day_mrr
        on monthly_mrr.project_id = first_day_mrr.project_id
        and monthly_mrr.first_day = first_day_mrr.metric_date
    left join daily_net_movements as first_day_movements
        on monthly_mrr.project_id = first_day_movements.project_id
        and monthly_mrr.first_day = first_day_movements.metric_date
    inner join mrr_daily as last_day_mrr
        on monthly_mrr.project_id = last_day_mrr.project_id
        and monthly_mrr.last_day = last_day_mrr.metric_date
)

select * from final
