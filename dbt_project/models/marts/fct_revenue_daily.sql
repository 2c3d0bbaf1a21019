{#- A transaction counts on the reporting day (the project's time zone) it occurred on. -#}
with transactions as (
    select * from {{ ref('int_revenue_transactions') }}
),

transaction_taxes as (
    select * from {{ ref('int_revenue_transaction_taxes') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

daily as (
    select
        transactions.project_id,
        days.metric_date,
        transactions.currency,
        {{ as_money("sum(case when transactions.transaction_type = 'invoice_payment'
            then transactions.amount else 0 end)") }} as invoice_payments,
        {{ as_money("sum(case when transactions.transaction_type = 'standalone_charge'
            then transactions.amount else 0 end)") }} as standalone_charges,
        {{ as_money("sum(case when transactions.transaction_type = 'refund'
            then -transactions.amount else 0 end)") }} as refunds,
        {{ as_money("sum(case when transactions.transaction_type = 'lost_dispute'
            then -transactions.amount else 0 end)") }} as dispute_losses,
        -- marked paid outside Stripe: shown, never collected money
        {{ as_money("sum(case when transactions.transaction_type = 'paid_out_of_band'
            then transactions.amount else 0 end)") }} as paid_out_of_band,
        {{ as_money("sum(case when transactions.transaction_type = 'paid_out_of_band'
            then 0 else transactions.amount end)") }} as revenue,
        -- the tax inside revenue (int_revenue_transaction_taxes, which has no row for money
        -- paid out of band); revenue is gross, tax included
        {{ as_money('coalesce(sum(transaction_taxes.tax_amount), 0)') }} as tax_amount,
        max(case when transactions.is_estimated then 1 else 0 end) = 1 as is_estimated
    from transactions
    left join transaction_taxes
        on transactions.project_id = transaction_taxes.project_id
        and transactions.transaction_type = transaction_taxes.transaction_type
        and transactions.transaction_id = transaction_taxes.transaction_id
    {{ join_reporting_day_of('transactions.occurred_at', 'transactions.project_id', 'days') }}
    group by transactions.project_id, days.metric_date, transactions.currency
),

final as (
    select
        daily.project_id,
        daily.metric_date,
        daily.currency,
        daily.invoice_payments,
        daily.standalone_charges,
        daily.refunds,
        daily.dispute_losses,
        daily.paid_out_of_band,
        daily.revenue,
        daily.is_estimated,
        daily.tax_amount,
        daily.revenue - daily.tax_amount as revenue_excluding_tax,
        fx_rates.usd_per_unit,
        {{ to_usd('daily.revenue', 'fx_rates.usd_per_unit') }} as revenue_usd,
        {{ to_usd('daily.revenue - daily.tax_amount', 'fx_rates.usd_per_unit') }}
            as revenue_excluding_tax_usd
    from daily
    inner join fx_rates
        on daily.metric_date = fx_rates.metric_date
        and daily.currency = fx_rates.currency
)

select * from final
