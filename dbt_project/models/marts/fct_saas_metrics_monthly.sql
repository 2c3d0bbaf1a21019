{#-
  SaaS rates per project and calendar month (USD figures as in fct_mrr_daily), after
  ChartMogul's and Baremetrics' published definitions; each column's docs name its source
  (_saas_metrics__models.yml) and docs/metrics-spec.md "SaaS metrics" gives the formulas.
  Rates are fractions (0.05 = 5 %), rounded to six decimals (macros/rates.sql), null when
  their base is 0. A month the window does not cover whole is flagged `is_partial_month`.
  Months x projects rows: a plain table, rebuilt in full on each build.
-#}
{%- set conversion_days = var('trial_conversion_days') -%}
with months as (
    select * from {{ ref('int_reporting_months') }}
),

monthly_movements as (
    select * from {{ ref('fct_mrr_movements_monthly') }}
),

mrr_daily as (
    select * from {{ ref('fct_mrr_daily') }}
),

customer_months as (
    select * from {{ ref('int_customer_mrr_monthly') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

item_mrr as (
    select * from {{ ref('int_subscription_item_mrr_daily') }}
),

customer_counts as (
    select
        project_id,
        metric_month,
        count(case when opening_mrr > 0 then 1 end) as customers_at_start,
        count(case when has_churned then 1 end) as churned_customers
    from customer_months
    group by project_id, metric_month
),

-- the customers paying when a period starts, each with its MRR then and at the period's end,
-- FX of the period taken out (int_customer_mrr_monthly): one-month periods start with the
-- month itself, twelve-month ones eleven months earlier, at the start of a month the window
-- covers whole
period_starts as (
    select
        months.project_id,
        months.metric_month,
        1 as period_months,
        months.metric_month as start_month
    from months
    union all
    select
        months.project_id,
        months.metric_month,
        12 as period_months,
        start_months.metric_month as start_month
    from months
    inner join months as start_months
        on months.project_id = start_months.project_id
        and start_months.metric_month
            = cast({{ dbt.dateadd('month', -11, 'months.metric_month') }} as date)
        and start_months.first_movement_day = start_months.metric_month
),

retained_customers as (
    select
        period_starts.project_id,
        period_starts.metric_month,
        period_starts.period_months,
        starts.opening_mrr,
        {{ retained_mrr('starts', 'ends') }} as retained_mrr
    from period_starts
    inner join customer_months as starts
        on period_starts.project_id = starts.project_id
        and period_starts.start_month = starts.metric_month
        and starts.opening_mrr > 0
    left join customer_months as ends
        on starts.project_id = ends.project_id
        and starts.customer_id = ends.customer_id
        and period_starts.metric_month = ends.metric_month
),

retention as (
    select
        project_id,
        metric_month,
        period_months,
        sum(opening_mrr) as starting_mrr,
        sum(retained_mrr) as net_retained_mrr,
        -- gross: each customer counted up to the MRR it started with (no expansion)
        sum(least(retained_mrr, opening_mrr)) as gross_retained_mrr
    from retained_customers
    group by project_id, metric_month, period_months
),

-- a trial of a subscription that had paid before it (a trial added to a paying subscription)
-- is no lead's trial: not counted
-- (its start day is a day of the project's reporting time zone)
{%- set trial_start_date = local_date('subscriptions.trial_started_at',
    "coalesce(time_zones.reporting_time_zone, 'UTC')") %}
trials as (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        {{ trial_start_date }} as trial_start_date
    from subscriptions
    left join (select distinct project_id, reporting_time_zone from months) as time_zones
        on subscriptions.project_id = time_zones.project_id
    where subscriptions.trial_started_at is not null
        and not exists (
            select 1
            from item_mrr
            where item_mrr.project_id = subscriptions.project_id
                and item_mrr.subscription_id = subscriptions.subscription_id
                and item_mrr.metric_date < {{ trial_start_date }}
                and item_mrr.net_mrr > 0
        )
),

converted_trials as (
    select distinct trials.project_id, trials.subscription_id
    from trials
    inner join item_mrr
        on trials.project_id = item_mrr.project_id
        and trials.subscription_id = item_mrr.subscription_id
        and item_mrr.metric_date between trials.trial_start_date
            and cast({{ dbt.dateadd('day', conversion_days, 'trials.trial_start_date') }} as date)
        and item_mrr.net_mrr > 0
),

trial_months as (
    select
        trials.project_id,
        cast({{ dbt.date_trunc('month', 'trials.trial_start_date') }} as date) as metric_month,
        count(*) as trials_started,
        count(converted_trials.subscription_id) as trials_converted
    from trials
    left join converted_trials
        on trials.project_id = converted_trials.project_id
        and trials.subscription_id = converted_trials.subscription_id
    group by
        trials.project_id,
        cast({{ dbt.date_trunc('month', 'trials.trial_start_date') }} as date)
),

figures as (
    select
        months.project_id,
        months.metric_month,
        months.first_day,
        months.last_day,
        months.is_partial_month,
        months.window_last_day,
        monthly_movements.opening_mrr,
        monthly_movements.new_mrr,
        monthly_movements.expansion_mrr,
        monthly_movements.reactivation_mrr,
        monthly_movements.contraction_mrr,
        monthly_movements.churn_mrr,
        monthly_movements.closing_mrr,
        coalesce(customer_counts.customers_at_start, 0) as customers_at_start,
        coalesce(customer_counts.churned_customers, 0) as churned_customers,
        month_end.paying_customers as customers_at_end,
        one_month.starting_mrr as starting_mrr_1m,
        one_month.net_retained_mrr as net_retained_mrr_1m,
        one_month.gross_retained_mrr as gross_retained_mrr_1m,
        twelve_months.starting_mrr as starting_mrr_12m,
        twelve_months.net_retained_mrr as net_retained_mrr_12m,
        twelve_months.gross_retained_mrr as gross_retained_mrr_12m,
        coalesce(trial_months.trials_started, 0) as trials_started,
        coalesce(trial_months.trials_converted, 0) as trials_converted
    from months
    inner join monthly_movements
        on months.project_id = monthly_movements.project_id
        and months.metric_month = monthly_movements.metric_month
    inner join mrr_daily as month_end
        on months.project_id = month_end.project_id
        and months.last_day = month_end.metric_date
    left join customer_counts
        on months.project_id = customer_counts.project_id
        and months.metric_month = customer_counts.metric_month
    left join retention as one_month
        on months.project_id = one_month.project_id
        and months.metric_month = one_month.metric_month
        and one_month.period_months = 1
    left join retention as twelve_months
        on months.project_id = twelve_months.project_id
        and months.metric_month = twelve_months.metric_month
        and twelve_months.period_months = 12
    left join trial_months
        on months.project_id = trial_months.project_id
        and months.metric_month = trial_months.metric_month
),

final as (
    select
        project_id,
        metric_month,
        first_day,
        last_day,
        is_partial_month,
        opening_mrr,
        closing_mrr,
        customers_at_start,
        customers_at_end,
        churned_customers,
        {{ quotient('churned_customers', 'customers_at_start') }} as customer_churn_rate,
        {{ quotient('churn_mrr + contraction_mrr', 'opening_mrr') }} as gross_mrr_churn_rate,
        {{ quotient('churn_mrr + contraction_mrr - expansion_mrr - reactivation_mrr',
            'opening_mrr') }} as net_mrr_churn_rate,
        {{ quotient('net_retained_mrr_1m', 'starting_mrr_1m') }} as net_revenue_retention_1m,
        {{ quotient('gross_retained_mrr_1m', 'starting_mrr_1m') }} as gross_revenue_retention_1m,
        {{ quotient('net_retained_mrr_12m', 'starting_mrr_12m') }} as net_revenue_retention_12m,
        {{ quotient('gross_retained_mrr_12m', 'starting_mrr_12m') }}
            as gross_revenue_retention_12m,
        {{ quotient('closing_mrr', 'customers_at_end') }} as arpa,
        -- ARPA / (churned / at start) = ARPA x at start / churned; null without churn
        case
            when customers_at_start > 0
                then {{ quotient(quotient('closing_mrr', 'customers_at_end')
                    ~ ' * customers_at_start', 'churned_customers') }}
        end as ltv,
        {{ quotient('new_mrr + expansion_mrr + reactivation_mrr',
            'contraction_mrr + churn_mrr') }} as quick_ratio,
        trials_started,
        trials_converted,
        {{ quotient('trials_converted', 'trials_started') }} as trial_conversion_rate,
        -- every trial of the month has had its whole conversion window
        cast({{ dbt.dateadd('day', conversion_days,
            dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'metric_month'))) }} as date)
            <= window_last_day as is_trial_conversion_final
    from figures
)

select * from final
