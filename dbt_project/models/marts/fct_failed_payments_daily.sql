with days as (
    select * from {{ ref('int_reporting_days') }}
),

failures as (
    select * from {{ ref('int_payment_failures') }}
),

dunning as (
    select * from {{ ref('int_invoices_in_dunning') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

attempts as (
    select
        failures.project_id,
        failure_days.metric_date,
        failures.currency,
        count(*) as failed_attempts,
        sum(case when failures.is_estimated then 1 else 0 end) as estimated_attempts,
        sum(failures.amount) as failed_amount
    from failures
    -- an attempt counts on the reporting day (the project's time zone) it failed on
    {{ join_reporting_day_of('failures.occurred_at', 'failures.project_id', 'failure_days') }}
    group by failures.project_id, failure_days.metric_date, failures.currency
),

in_dunning as (
    select
        dunning.project_id,
        days.metric_date,
        dunning.currency,
        count(*) as invoices_in_dunning
    from dunning
    inner join days
        on dunning.project_id = days.project_id
        and dunning.dunning_started_at < days.day_ends_at
        and (dunning.dunning_ended_at is null or dunning.dunning_ended_at >= days.day_ends_at)
    group by dunning.project_id, days.metric_date, dunning.currency
),

keys as (
    select project_id, metric_date, currency from attempts
    union
    select project_id, metric_date, currency from in_dunning
),

final as (
    select
        keys.project_id,
        keys.metric_date,
        keys.currency,
        coalesce(attempts.failed_attempts, 0) as failed_attempts,
        coalesce(attempts.estimated_attempts, 0) as estimated_attempts,
        {{ as_money('coalesce(attempts.failed_amount, 0)') }} as failed_amount,
        {{ to_usd('coalesce(attempts.failed_amount, 0)', 'fx_rates.usd_per_unit') }}
            as failed_amount_usd,
        coalesce(in_dunning.invoices_in_dunning, 0) as invoices_in_dunning
    from keys
    left join attempts
        on keys.project_id = attempts.project_id
        and keys.metric_date = attempts.metric_date
        and keys.currency = attempts.currency
    left join in_dunning
        on keys.project_id = in_dunning.project_id
        and keys.metric_date = in_dunning.metric_date
        and keys.currency = in_dunning.currency
    inner join fx_rates
        on keys.metric_date = fx_rates.metric_date
        and keys.currency = fx_rates.currency
)

select * from final
