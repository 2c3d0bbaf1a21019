{#-
  The currencies a project holds money in that have no rate in either FX table (see
  int_fx_rates_daily): their rows have null USD figures. The build warns with `fix`.
  Prices are left out: every account's catalog may list a currency nobody pays in.
-#}
with currencies_by_project as (
    select project_id, currency from {{ ref('stg_stripe__subscription_items') }}
    union
    select project_id, currency from {{ ref('stg_stripe__invoices') }}
    union
    select project_id, currency from {{ ref('stg_stripe__invoice_lines') }}
    union
    select project_id, currency from {{ ref('stg_stripe__charges') }}
    union
    select project_id, currency from {{ ref('stg_stripe__refunds') }}
),

missing as (
    select
        currency,
        min(metric_date) as first_day,
        max(metric_date) as last_day
    from {{ ref('int_fx_rates_daily') }}
    where usd_per_unit is null
    group by currency
),

final as (
    select
        currencies_by_project.project_id,
        missing.currency,
        missing.first_day,
        missing.last_day,
        'add ' || missing.currency || ' to dbt_project/seeds/fx_rates_usd.csv (or to the table'
        || ' named by var fx_rates_relation) and run stripe-warehouse transform --full-refresh'
            as fix
    from missing
    inner join currencies_by_project
        on missing.currency = currencies_by_project.currency
)

select * from final
