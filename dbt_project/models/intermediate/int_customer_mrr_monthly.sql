{#-
  Each customer's MRR movements per calendar month (USD, from fct_mrr_movements), one row per
  project, customer and month in which the customer had MRR on some day or the day before:
  the MRR the month opened with (int_reporting_months.first_movement_day's opening) and closed
  with (its last day's), the month's movements, whether the customer churned in it, and the FX
  movement summed from the customer's first row on (`cumulative_fx_mrr`). An MRR with that FX
  taken out (closing - cumulative FX) is the MRR at the exchange rates the customer started
  at, which the retention figures compare (docs/metrics-spec.md "SaaS metrics").
-#}
with movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

months as (
    select * from {{ ref('int_reporting_months') }}
),

customer_months as (
    select
        movements.project_id,
        movements.customer_id,
        months.metric_month,
        sum(case
            when movements.metric_date = months.first_movement_day then movements.opening_mrr
            else 0
        end) as opening_mrr,
        sum(movements.new_mrr) as new_mrr,
        sum(movements.expansion_mrr) as expansion_mrr,
        sum(movements.reactivation_mrr) as reactivation_mrr,
        sum(movements.contraction_mrr) as contraction_mrr,
        sum(movements.churn_mrr) as churn_mrr,
        sum(movements.fx_mrr) as fx_mrr,
        sum(case
            when movements.metric_date = months.last_day then movements.closing_mrr
            else 0
        end) as closing_mrr,
        -- a churn is MRR going to 0 (fct_mrr_movements), whatever the day's FX did
        count(case when movements.opening_mrr > 0 and movements.closing_mrr = 0 then 1 end) > 0
            as has_churned
    from movements
    inner join months
        on movements.project_id = months.project_id
        and movements.metric_date between months.first_day and months.last_day
    group by movements.project_id, movements.customer_id, months.metric_month
),

final as (
    select
        project_id,
        customer_id,
        metric_month,
        {{ as_money('opening_mrr') }} as opening_mrr,
        {{ as_money('new_mrr') }} as new_mrr,
        {{ as_money('expansion_mrr') }} as expansion_mrr,
        {{ as_money('reactivation_mrr') }} as reactivation_mrr,
        {{ as_money('contraction_mrr') }} as contraction_mrr,
        {{ as_money('churn_mrr') }} as churn_mrr,
        {{ as_money('fx_mrr') }} as fx_mrr,
        {{ as_money('closing_mrr') }} as closing_mrr,
        {{ as_money('sum(fx_mrr) over (partition by project_id, customer_id'
            ~ ' order by metric_month rows between unbounded preceding and current row)') }}
            as cumulative_fx_mrr,
        has_churned
    from customer_months
)

select * from final
