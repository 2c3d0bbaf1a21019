{#-
  Each customer's month (USD, int_customer_mrr_monthly): its MRR when the month opened and at
  its end, whether it paid then, churned in it, and what of its opening MRR the month retained
  (one-month net and gross retention, FX of the month taken out: macros/rates.sql
  retained_mrr). Summed over customers it gives fct_saas_metrics_monthly's one-month figures;
  kept per customer so that the semantic layer (_semantic_layer.yml) can split them by a
  customer's attribute (country): the NRR of the customers of a country.
-#}
with customer_months as (
    select * from {{ ref('int_customer_mrr_monthly') }}
),

months as (
    select * from {{ ref('int_reporting_months') }}
),

final as (
    select
        customer_months.project_id,
        customer_months.customer_id,
        customer_months.metric_month,
        months.is_partial_month,
        customer_months.opening_mrr,
        customer_months.closing_mrr,
        customer_months.opening_mrr > 0 as is_paying_at_start,
        customer_months.closing_mrr > 0 as is_paying_at_end,
        customer_months.has_churned,
        -- retention is measured on the customers paying when the month opened only
        case
            when customer_months.opening_mrr > 0
                then {{ as_money(retained_mrr('customer_months', 'customer_months')) }}
        end as net_retained_mrr_1m,
        case
            when customer_months.opening_mrr > 0
                then {{ as_money('least(' ~ retained_mrr('customer_months', 'customer_months')
                    ~ ', customer_months.opening_mrr)') }}
        end as gross_retained_mrr_1m
    from customer_months
    inner join months
        on customer_months.project_id = months.project_id
        and customer_months.metric_month = months.metric_month
)

select * from final
