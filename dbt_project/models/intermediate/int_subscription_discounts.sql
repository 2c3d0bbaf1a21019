{#-
  Discounts that recur, as intervals: `forever` coupons from the discount's start on,
  `repeating` ones for `duration_in_months` (Stripe's `discount.end` when present), `once`
  coupons never (they discount one invoice, not the recurring amount).
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

joined as (
    select
        discounts.project_id,
        discounts.subscription_id,
        discounts.coupon_id,
        coupons.duration,
        coupons.percent_off,
        coupons.amount_off,
        coupons.currency as amount_off_currency,
        coalesce(discounts.started_at, subscriptions.started_at) as valid_from,
        case
            when coupons.duration = 'repeating' then coalesce(
                discounts.ends_at,
                {{ dbt.dateadd(
                    'month',
                    'coupons.duration_in_months',
                    'coalesce(discounts.started_at, subscriptions.started_at)') }}
            )
        end as valid_to
    from discounts
    inner join coupons
        on discounts.project_id = coupons.project_id
        and discounts.coupon_id = coupons.coupon_id
    left join subscriptions
        on discounts.project_id = subscriptions.project_id
        and discounts.subscription_id = subscriptions.subscription_id
    where coupons.duration in ('forever', 'repeating')
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
