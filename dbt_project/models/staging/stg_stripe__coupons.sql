with source as (
    select * from {{ source('stripe', 'coupons') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

coupons as (
    select
        project_id,
        id as coupon_id,
        {{ json_text('data', 'duration') }} as duration,
        {{ json_value('data', 'duration_in_months', 'integer') }} as duration_in_months,
        {{ json_value('data', 'percent_off', money_type()) }} as percent_off,
        {{ json_value('data', 'amount_off', 'bigint') }} as amount_off_minor,
        upper({{ json_text('data', 'currency') }}) as currency,
        {{ from_unix_seconds('created') }} as created_at
    from source
),

final as (
    select
        coupons.*,
        {{ minor_to_major('amount_off_minor', 'currency_exponents.exponent') }} as amount_off
    from coupons
    left join currency_exponents on coupons.currency = currency_exponents.currency
)

select * from final
