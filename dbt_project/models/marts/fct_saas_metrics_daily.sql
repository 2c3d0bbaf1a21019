{#-
  The SaaS figures that make sense per day, per project and reporting day (the days of
  fct_mrr_daily), USD: ARPA at the day's end, and the churn rates and quick ratio over the
  trailing 30 days as Baremetrics charts them daily ("in the last 30 days ... / ... 30 days
  ago"): the movements of the 30 days ending with the day (fct_mrr_movements) over the MRR and
  paying customers at the end of the day 30 days before (the base). Rates as in
  fct_saas_metrics_monthly (macros/rates.sql: exact DECIMAL, six decimals, null when the base is
  0); null too, and `is_trailing_window_covered` false, while the window reaches back before the
  history (the window's first 30 days). docs/metrics-spec.md "SaaS metrics per day" says which
  monthly figures are not daily and why. One row per project and day: a plain table, rebuilt
  in full; window functions and one range join over project-days, no per-day subquery.
-#}
{%- set trailing_days = 30 -%}
with mrr_daily as (
    select * from {{ ref('fct_mrr_daily') }}
),

movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

daily_movements as (
    select
        project_id,
        metric_date,
        sum(new_mrr) as new_mrr,
        sum(expansion_mrr) as expansion_mrr,
        sum(reactivation_mrr) as reactivation_mrr,
        sum(contraction_mrr) as contraction_mrr,
        sum(churn_mrr) as churn_mrr
    from movements
    group by project_id, metric_date
),

-- a churn is a customer's MRR going to 0 (fct_mrr_movements), as the monthly mart counts it
churns as (
    select project_id, customer_id, metric_date
    from movements
    where opening_mrr > 0 and closing_mrr = 0
),

-- each customer once however often it churned in the window (fct_saas_metrics_monthly too);
-- a range join of the few churn days onto the 30 days they fall in
churned_customers as (
    select
        mrr_daily.project_id,
        mrr_daily.metric_date,
        count(distinct churns.customer_id) as churned_customers
    from mrr_daily
    inner join churns
        on mrr_daily.project_id = churns.project_id
        and churns.metric_date between
            cast({{ dbt.dateadd('day', 1 - trailing_days, 'mrr_daily.metric_date') }} as date)
            and mrr_daily.metric_date
    group by mrr_daily.project_id, mrr_daily.metric_date
),

-- the days of a project are consecutive (int_reporting_days), so the last 30 rows are the last
-- 30 days and the row 30 back is the base day: checked against its date (the window is
-- covered), every window figure null otherwise
trailing_sums as (
    {%- set by_day = 'over (partition by mrr_daily.project_id order by mrr_daily.metric_date'
        ~ ' rows between ' ~ (trailing_days - 1) ~ ' preceding and current row)' %}
    {%- set back = 'over (partition by mrr_daily.project_id order by mrr_daily.metric_date)' %}
    {%- set base_day = dbt.dateadd('day', -trailing_days, 'mrr_daily.metric_date') %}
    {%- set covered = 'coalesce(lag(mrr_daily.metric_date, ' ~ trailing_days ~ ') ' ~ back
        ~ ' = cast(' ~ base_day ~ ' as date), false)' %}
    {%- set window_figures = {
        'base_mrr': 'lag(mrr_daily.mrr, ' ~ trailing_days ~ ') ' ~ back,
        'base_customers': 'lag(mrr_daily.paying_customers, ' ~ trailing_days ~ ') ' ~ back,
        'new_mrr_sum': 'sum(coalesce(daily_movements.new_mrr, 0)) ' ~ by_day,
        'expansion_mrr_sum': 'sum(coalesce(daily_movements.expansion_mrr, 0)) ' ~ by_day,
        'reactivation_mrr_sum': 'sum(coalesce(daily_movements.reactivation_mrr, 0)) ' ~ by_day,
        'contraction_mrr_sum': 'sum(coalesce(daily_movements.contraction_mrr, 0)) ' ~ by_day,
        'churn_mrr_sum': 'sum(coalesce(daily_movements.churn_mrr, 0)) ' ~ by_day,
        'churned_customers': 'coalesce(churned_customers.churned_customers, 0)',
    } %}
    select
        mrr_daily.project_id,
        mrr_daily.metric_date,
        mrr_daily.mrr,
        mrr_daily.paying_customers,
        max(mrr_daily.metric_date) over (partition by mrr_daily.project_id)
            = mrr_daily.metric_date as is_partial_day,
        cast({{ base_day }} as date) as base_day,
        {{ covered }} as is_trailing_window_covered,
        {%- for name, figure in window_figures.items() %}
        case when {{ covered }} then {{ figure }} end as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from mrr_daily
    left join daily_movements
        on mrr_daily.project_id = daily_movements.project_id
        and mrr_daily.metric_date = daily_movements.metric_date
    left join churned_customers
        on mrr_daily.project_id = churned_customers.project_id
        and mrr_daily.metric_date = churned_customers.metric_date
),

final as (
    select
        project_id,
        metric_date,
        is_partial_day,
        mrr,
        paying_customers,
        {{ quotient('mrr', 'paying_customers') }} as arpa,
        base_day,
        is_trailing_window_covered,
        {{ as_money('base_mrr') }} as base_mrr_30d,
        base_customers as base_customers_30d,
        {{ as_money('new_mrr_sum') }} as new_mrr_30d,
        {{ as_money('expansion_mrr_sum') }} as expansion_mrr_30d,
        {{ as_money('reactivation_mrr_sum') }} as reactivation_mrr_30d,
        {{ as_money('contraction_mrr_sum') }} as contraction_mrr_30d,
        {{ as_money('churn_mrr_sum') }} as churn_mrr_30d,
        churned_customers as churned_customers_30d,
        {{ quotient('churned_customers', 'base_customers') }} as customer_churn_rate_30d,
        {{ quotient('churn_mrr_sum + contraction_mrr_sum', 'base_mrr') }}
            as gross_mrr_churn_rate_30d,
        {{ quotient('churn_mrr_sum + contraction_mrr_sum - expansion_mrr_sum'
            ~ ' - reactivation_mrr_sum', 'base_mrr') }} as net_mrr_churn_rate_30d,
        {{ quotient('new_mrr_sum + expansion_mrr_sum + reactivation_mrr_sum',
            'contraction_mrr_sum + churn_mrr_sum') }} as quick_ratio_30d
    from trailing_sums
)

select * from final
