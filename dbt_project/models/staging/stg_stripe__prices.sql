with source as (
    select * from {{ source('stripe', 'prices') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

prices as (
    select
        project_id,
        id as price_id,
        {{ json_id('data', 'product') }} as product_id,
        {{ json_text('data', 'nickname') }} as nickname,
        {{ json_text('data', 'lookup_key') }} as lookup_key,
        upper({{ json_text('data', 'currency') }}) as currency,
        {{ json_value('data', 'unit_amount', 'bigint') }} as unit_amount_minor,
        {{ json_text('data', 'type') }} as price_type,
        {{ json_text('data', 'billing_scheme') }} as billing_scheme,
        {{ json_text('data', 'recurring.interval') }} as billing_interval,
        {{ json_value('data', 'recurring.interval_count', 'integer') }} as billing_interval_count,
        {{ json_text('data', 'recurring.usage_type') }} as usage_type,
        {{ json_text('data', 'tax_behavior') }} as tax_behavior,
        {{ from_unix_seconds('created') }} as created_at
    from source
),

final as (
    select
        prices.*,
        {{ minor_to_major('prices.unit_amount_minor', 'currency_exponents.exponent') }}
            as unit_amount
    from prices
    left join currency_exponents on prices.currency = currency_exponents.currency
)

select * from final
