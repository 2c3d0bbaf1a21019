{#-
  Customers grouped by the month of their first MRR (their `new` movement in fct_mrr_movements:
  first MRR ever, so a customer returning after earlier history is no new cohort member), and
  for that month and every later month of the window: how many of them pay at the month's end
  (logo retention) and their MRR then against the MRR they started with (MRR retention, FX
  since each customer's start taken out: int_customer_mrr_monthly). Customers already paying
  on the window's first day have no `new` movement (their first month is before the window,
  unknown) and are in no cohort. USD; cohorts x months rows, a plain table.
-#}
with months as (
    select * from {{ ref('int_reporting_months') }}
),

customer_months as (
    select * from {{ ref('int_customer_mrr_monthly') }}
),

cohort_members as (
    select
        project_id,
        customer_id,
        metric_month as cohort_month,
        new_mrr as starting_mrr
    from customer_months
    where new_mrr > 0
),

cohorts as (
    select
        project_id,
        cohort_month,
        count(*) as cohort_customers,
        sum(starting_mrr) as cohort_starting_mrr
    from cohort_members
    group by project_id, cohort_month
),

-- each member's MRR at the end of a later month it had MRR in; a month without a row is one
-- without MRR (int_customer_mrr_monthly), so neither retained nor MRR
member_months as (
    select
        cohort_members.project_id,
        cohort_members.cohort_month,
        customer_months.metric_month,
        count(case when customer_months.closing_mrr > 0 then 1 end) as retained_customers,
        sum(case
            when customer_months.closing_mrr > 0 then greatest(
                customer_months.closing_mrr - customer_months.cumulative_fx_mrr, 0)
            else 0
        end) as retained_mrr
    from cohort_members
    inner join customer_months
        on cohort_members.project_id = customer_months.project_id
        and cohort_members.customer_id = customer_months.customer_id
        and cohort_members.cohort_month <= customer_months.metric_month
    group by cohort_members.project_id, cohort_members.cohort_month, customer_months.metric_month
),

final as (
    select
        cohorts.project_id,
        cohorts.cohort_month,
        months.metric_month,
        cast(12 * (extract(year from months.metric_month) - extract(year from cohorts.cohort_month))
            + extract(month from months.metric_month) - extract(month from cohorts.cohort_month)
            as integer) as months_since_start,
        months.is_partial_month,
        cohorts.cohort_customers,
        {{ as_money('cohorts.cohort_starting_mrr') }} as cohort_starting_mrr,
        coalesce(member_months.retained_customers, 0) as retained_customers,
        {{ as_money('coalesce(member_months.retained_mrr, 0)') }} as retained_mrr,
        {{ quotient('coalesce(member_months.retained_customers, 0)',
            'cohorts.cohort_customers') }} as logo_retention,
        {{ quotient('coalesce(member_months.retained_mrr, 0)', 'cohorts.cohort_starting_mrr') }}
            as mrr_retention
    from cohorts
    inner join months
        on cohorts.project_id = months.project_id
        and cohorts.cohort_month <= months.metric_month
    left join member_months
        on cohorts.project_id = member_months.project_id
        and cohorts.cohort_month = member_months.cohort_month
        and months.metric_month = member_months.metric_month
)

select * from final
