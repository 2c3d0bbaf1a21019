{#-
  One USD rate per currency and reporting day, from two tables in this order of precedence:
  1. the user's own rates (`fx_rates_relation()`: dbt_project/seeds/fx_rates_usd.csv, empty as
     shipped, or the table named by var fx_rates_relation): the latest dated on or before the day;
  2. the European Central Bank's reference rates (`int_fx_rates_ecb`, EUR cross rates): the
     latest ECB day on or before the day, so Friday's rate covers the weekend, the last business
     day's a TARGET holiday, and the last published rate every day after the data ends;
  3. a fixed USD peg (`fx_rates_pegged`: AED, BHD, JOD, OMR, QAR, SAR, which the ECB does not
     quote);
  and for a day before those start, the earliest rate (the user's first).
  A currency the warehouse holds money in that neither table has gets a null rate instead of
  stopping the build: only the rows in that currency (so only the projects using it) lose their
  USD figures, `int_fx_rates_missing` names them and the build prints a warning.
-#}
with override_rates as (
    select
        upper(currency) as currency,
        cast(rate_date as date) as rate_date,
        cast(usd_per_unit as {{ rate_type() }}) as usd_per_unit,
        'override' as rate_source,
        1 as precedence
    from {{ fx_rates_relation() }}
),

currencies_used as (
    select currency from {{ ref('stg_stripe__subscription_items') }}
    union
    select currency from {{ ref('stg_stripe__prices') }}
    union
    select currency from {{ ref('stg_stripe__invoices') }}
    union
    select currency from {{ ref('stg_stripe__invoice_lines') }}
    union
    select currency from {{ ref('stg_stripe__charges') }}
    union
    select currency from {{ ref('stg_stripe__refunds') }}
),

days as (
    select distinct metric_date from {{ ref('int_reporting_days') }}
),

-- only the currencies in use: the ECB table holds ~230k rows
reference_rates as (
    select
        ecb.currency,
        ecb.rate_date,
        ecb.usd_per_unit,
        'ecb' as rate_source,
        2 as precedence
    from {{ ecb_rates_relation() }} as ecb
    inner join currencies_used
        on ecb.currency = currencies_used.currency
),

pegged_rates as (
    select
        currency,
        rate_date,
        usd_per_unit,
        'peg' as rate_source,
        3 as precedence
    from {{ ref('fx_rates_pegged') }}
),

rates as (
    select * from override_rates
    union all
    select * from reference_rates
    union all
    select * from pegged_rates
),

rate_validity as (
    select
        currency,
        rate_date,
        usd_per_unit,
        rate_source,
        precedence,
        coalesce(
            lead(rate_date) over (partition by currency, precedence order by rate_date),
            cast('9999-12-31' as date)
        ) as valid_to,
        row_number() over (partition by currency, precedence order by rate_date) = 1
            as is_earliest
    from rates
),

day_currencies as (
    select
        days.metric_date,
        currencies_used.currency
    from days
    cross join currencies_used
    where currencies_used.currency is not null
),

candidates as (
    select
        day_currencies.metric_date,
        day_currencies.currency,
        rate_validity.usd_per_unit,
        rate_validity.rate_source,
        rate_validity.rate_date,
        rate_validity.precedence as rank_key
    from day_currencies
    inner join rate_validity
        on day_currencies.currency = rate_validity.currency
        and day_currencies.metric_date >= rate_validity.rate_date
        and day_currencies.metric_date < rate_validity.valid_to
    union all
    -- before a table's first rate: its earliest one, after every rate dated on or before
    select
        day_currencies.metric_date,
        day_currencies.currency,
        rate_validity.usd_per_unit,
        rate_validity.rate_source,
        rate_validity.rate_date,
        3 + rate_validity.precedence as rank_key
    from day_currencies
    inner join rate_validity
        on day_currencies.currency = rate_validity.currency
        and rate_validity.is_earliest
        and day_currencies.metric_date < rate_validity.rate_date
),

chosen as (
    select {{ first_row_of(['metric_date', 'currency']) }} *
    from candidates
    {{ first_row_by(['metric_date', 'currency'], 'rank_key') }}
),

final as (
    select
        day_currencies.metric_date,
        day_currencies.currency,
        chosen.usd_per_unit,
        coalesce(chosen.rate_source, 'missing') as rate_source,
        chosen.rate_date
    from day_currencies
    left join chosen
        on day_currencies.metric_date = chosen.metric_date
        and day_currencies.currency = chosen.currency
)

select * from final
