{#-
  MRR, its movements and the SaaS rates per project, calendar month and segment value, in long
  format (segment, segment_value): each customer-month of int_customer_mrr_monthly counted in
  the one value of each segment it belongs to (int_customer_segments_monthly), so the values of
  a segment sum to fct_saas_metrics_monthly's MRR, movements and customer counts. Rates follow
  fct_saas_metrics_monthly's formulas (macros/rates.sql), over the value's customers:
  customer churn, gross and net MRR churn, NRR and GRR over one month, ARPA, quick ratio.
  A table rebuilt on each build: months x segment values rows, read from the monthly customer
  rows (not the days).
-#}
with months as (
    select * from {{ ref('int_reporting_months') }}
),

customer_months as (
    select * from {{ ref('int_customer_mrr_monthly') }}
),

segments as (
    select * from {{ ref('int_customer_segments_monthly') }}
),

segment_customers as (
    select
        segments.segment,
        segments.segment_value,
        customer_months.*,
        -- one-month retention: the customers paying at the month's start (FX taken out)
        case
            when customer_months.opening_mrr > 0
                then {{ retained_mrr('customer_months', 'customer_months') }}
            else 0
        end as retained_mrr
    from customer_months
    inner join segments
        on customer_months.project_id = segments.project_id
        and customer_months.customer_id = segments.customer_id
        and customer_months.metric_month = segments.metric_month
),

figures as (
    select
        project_id,
        metric_month,
        segment,
        segment_value,
        sum(opening_mrr) as opening_mrr,
        sum(new_mrr) as new_mrr,
        sum(expansion_mrr) as expansion_mrr,
        sum(reactivation_mrr) as reactivation_mrr,
        sum(contraction_mrr) as contraction_mrr,
        sum(churn_mrr) as churn_mrr,
        sum(fx_mrr) as fx_mrr,
        sum(closing_mrr) as closing_mrr,
        count(case when opening_mrr > 0 then 1 end) as customers_at_start,
        count(case when closing_mrr > 0 then 1 end) as customers_at_end,
        count(case when has_churned then 1 end) as churned_customers,
        sum(retained_mrr) as net_retained_mrr_1m,
        sum(least(retained_mrr, opening_mrr)) as gross_retained_mrr_1m
    from segment_customers
    group by project_id, metric_month, segment, segment_value
),

final as (
    select
        figures.project_id,
        figures.metric_month,
        figures.segment,
        figures.segment_value,
        months.first_day,
        months.last_day,
        months.is_partial_month,
        {{ as_money('figures.opening_mrr') }} as opening_mrr,
        {{ as_money('figures.new_mrr') }} as new_mrr,
        {{ as_money('figures.expansion_mrr') }} as expansion_mrr,
        {{ as_money('figures.reactivation_mrr') }} as reactivation_mrr,
        {{ as_money('figures.contraction_mrr') }} as contraction_mrr,
        {{ as_money('figures.churn_mrr') }} as churn_mrr,
        {{ as_money('figures.fx_mrr') }} as fx_mrr,
        {{ as_money('figures.closing_mrr') }} as closing_mrr,
        figures.customers_at_start,
        figures.customers_at_end,
        figures.churned_customers,
        {{ quotient('figures.churned_customers', 'figures.customers_at_start') }}
            as customer_churn_rate,
        {{ quotient('figures.churn_mrr + figures.contraction_mrr', 'figures.opening_mrr') }}
            as gross_mrr_churn_rate,
        {{ quotient('figures.churn_mrr + figures.contraction_mrr - figures.expansion_mrr'
            ~ ' - figures.reactivation_mrr', 'figures.opening_mrr') }} as net_mrr_churn_rate,
        {{ quotient('figures.net_retained_mrr_1m', 'figures.opening_mrr') }}
            as net_revenue_retention_1m,
        {{ quotient('figures.gross_retained_mrr_1m', 'figures.opening_mrr') }}
            as gross_revenue_retention_1m,
        {{ quotient('figures.closing_mrr', 'figures.customers_at_end') }} as arpa,
        {{ quotient('figures.new_mrr + figures.expansion_mrr + figures.reactivation_mrr',
            'figures.contraction_mrr + figures.churn_mrr') }} as quick_ratio
    from figures
    inner join months
        on figures.project_id = months.project_id
        and figures.metric_month = months.metric_month
)

select * from final
