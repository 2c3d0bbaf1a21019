{#-
  One USD rate per currency and reporting day: the latest rate dated on or before the day
  (the earliest one for days before the table starts). A currency the warehouse holds money in
  but the rate table lacks stops the build: money is never dropped or summed unconverted.
-#}
with rates as (
    select
        upper(currency) as currency,
        cast(rate_date as date) as rate_date,
        cast(usd_per_unit as {{ rate_type() }}) as usd_per_unit
    from {{ fx_rates_relation() }}
),

rate_validity as (
    select
        currency,
        usd_per_unit,
        case
            when row_number() over (partition by currency order by rate_date) = 1
                then cast('1900-01-01' as date)
            else rate_date
        end as valid_from,
        coalesce(
            lead(rate_date) over (partition by currency order by rate_date),
            cast('9999-12-31' as date)
        ) as valid_to
    from rates
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

final as (
    select
        days.metric_date,
        currencies_used.currency,
        case
            when rate_validity.usd_per_unit is null then {{ raise_error(
                "'No FX rate for currency ' || currencies_used.currency || ' on '"
                ~ " || cast(days.metric_date as varchar) || ': add it to"
                ~ " dbt_project/seeds/fx_rates_usd.csv (or to the table named by var"
                ~ " fx_rates_relation) and rebuild'") }}
            else rate_validity.usd_per_unit
        end as usd_per_unit
    from days
    cross join currencies_used
    left join rate_validity
        on currencies_used.currency = rate_validity.currency
        and days.metric_date >= rate_validity.valid_from
        and days.metric_date < rate_validity.valid_to
    where currencies_used.currency is not null
)

select * from final
