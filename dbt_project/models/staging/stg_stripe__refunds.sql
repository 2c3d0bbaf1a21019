with source as (
    select * from {{ source('stripe', 'refunds') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

refunds as (
    select
        project_id,
        id as refund_id,
        {{ json_id('data', 'charge') }} as charge_id,
        {{ json_text('data', 'status') }} as status,
        upper({{ json_text('data', 'currency') }}) as currency,
        {{ json_value('data', 'amount', 'bigint') }} as amount_minor,
        {{ from_unix_seconds('created') }} as created_at
    from source
),

final as (
    select
        refunds.*,
        {{ minor_to_major('amount_minor', 'currency_exponents.exponent') }} as amount
    from refunds
    left join currency_exponents on refunds.currency = currency_exponents.currency
)

select * from final
