{#-
  The item MRR of int_subscription_item_mrr_daily priced in USD at the day's rate. A view: the
  item-day table (millions of rows) is stored once, in the intermediate model, and this join to
  a few hundred rates costs less to run than to write again; the readers' copy
  (reporting.duckdb) holds it as a table.
-#}
{{ config(materialized='view') }}

with item_mrr as (
    select * from {{ ref('int_subscription_item_mrr_daily') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

final as (
    select
        item_mrr.project_id,
        item_mrr.metric_date,
        item_mrr.subscription_item_id,
        item_mrr.subscription_id,
        item_mrr.customer_id,
        item_mrr.status,
        item_mrr.price_id,
        item_mrr.quantity,
        item_mrr.currency,
        item_mrr.gross_mrr,
        item_mrr.discount_mrr,
        item_mrr.net_mrr,
        fx_rates.usd_per_unit,
        -- each rounded to a millionth of a dollar here, so every sum above is exact
        {{ to_usd('item_mrr.gross_mrr', 'fx_rates.usd_per_unit') }} as gross_mrr_usd,
        {{ to_usd('item_mrr.discount_mrr', 'fx_rates.usd_per_unit') }} as discount_mrr_usd,
        {{ to_usd('item_mrr.net_mrr', 'fx_rates.usd_per_unit') }} as net_mrr_usd,
        item_mrr.is_estimated,
        item_mrr.built_as_of
    from item_mrr
    inner join fx_rates
        on item_mrr.metric_date = fx_rates.metric_date
        and item_mrr.currency = fx_rates.currency
)

select * from final
