{#-
  Discounts that recur, as intervals: `forever` coupons from the discount's start on,
  `repeating` ones for `duration_in_months` (Stripe's `discount.end` when present), `once`
  coupons never (they discount one invoice, not the recurring amount). The coupon's terms are
  the listed coupon's, else those the sync read on the discount (its expanded `source.coupon`):
  a deleted coupon is not listed, yet its discounts keep applying.
-#}
with discounts as (
    select * from {{ ref('stg_stripe__discounts') }}
),

coupons as (
    select * from {{ ref('stg_stripe__coupons') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

-- the coupon's terms: the listed coupon's, else those read on the discount itself (a deleted
-- coupon is no longer listed, and its discounts keep applying)
priced as (
    select
        discounts.*,
        coalesce(coupons.duration, discounts.coupon_duration) as duration,
        coalesce(coupons.duration_in_months, discounts.coupon_duration_in_months)
            as duration_in_months,
        coalesce(coupons.percent_off, discounts.coupon_percent_off) as percent_off,
        coalesce(
            coupons.amount_off,
            {{ minor_to_major('discounts.coupon_amount_off_minor', 'currency_exponents.exponent') }}
        ) as amount_off,
        coalesce(coupons.currency, discounts.coupon_currency) as amount_off_currency
    from discounts
    left join coupons
        on discounts.project_id = coupons.project_id
        and discounts.coupon_id = coupons.coupon_id
    left join currency_exponents
        on discounts.coupon_currency = currency_exponents.currency
),

joined as (
    select
        priced.project_id,
        priced.subscription_id,
        priced.coupon_id,
        priced.duration,
        priced.percent_off,
        priced.amount_off,
        priced.amount_off_currency,
        coalesce(priced.started_at, subscriptions.started_at) as valid_from,
        case
            when priced.duration = 'repeating' then coalesce(
                priced.ends_at,
                {{ dbt.dateadd(
                    'month',
                    'priced.duration_in_months',
                    'coalesce(priced.started_at, subscriptions.started_at)') }}
            )
        end as valid_to
    from priced
    left join subscriptions
        on priced.project_id = subscriptions.project_id
        and priced.subscription_id = subscriptions.subscription_id
    where priced.duration in ('forever', 'repeating')
),

final as (
    select distinct
        project_id,
        subscription_id,
        coupon_id,
        duration,
        coalesce(percent_off, 0) as percent_off,
        coalesce(amount_off, 0) as amount_off,
        amount_off_currency,
        valid_from,
        valid_to
    from joined
)

select * from final
