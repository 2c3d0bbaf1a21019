{#-
  Discounts that recur, as intervals: `forever` coupons from the discount's start on,
  `repeating` ones for `duration_in_months` (Stripe's `discount.end` when present), `once`
  coupons never (they discount one invoice, not the recurring amount). The coupon's terms are
  the listed coupon's, else those the sync read on the discount (its expanded `source.coupon`):
  a deleted coupon is not listed, yet its discounts keep applying. A discount removed or
  replaced ends when it left the subscription (int_subscription_discount_removals), if that is
  before its natural end; `is_valid_to_estimated` flags an end dated by a sync's observation
  (it happened in [valid_to_estimated_from, valid_to]; those days are flagged `is_estimated`
  in int_subscription_item_mrr_daily).
  An `amount_off` in another currency than the subscription's is never mixed into its MRR:
  it counts as 0, flagged `is_amount_off_in_another_currency` (the build warns about each,
  warn_amount_off_discounts_in_another_currency). A subscription item's own discount has
  `subscription_item_id` set: it discounts that item only.
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

removals as (
    select * from {{ ref('int_subscription_discount_removals') }}
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

-- a discount removed or replaced stops when it left the subscription
ended as (
    select
        priced.*,
        removals.removed_at,
        removals.estimated_from as removal_estimated_from,
        coalesce(removals.is_estimated, false) as is_removal_estimated
    from priced
    left join removals
        on priced.project_id = removals.project_id
        and priced.subscription_id = removals.subscription_id
        and priced.discount_id = removals.discount_id
),

joined as (
    select
        ended.project_id,
        ended.subscription_id,
        ended.subscription_item_id,
        ended.coupon_id,
        ended.duration,
        ended.percent_off,
        ended.amount_off,
        ended.amount_off_currency,
        ended.removed_at,
        ended.removal_estimated_from,
        ended.is_removal_estimated,
        -- an amount off in another currency than the subscription's is never added to it
        coalesce(ended.amount_off, 0) > 0
            and ended.amount_off_currency <> subscriptions.currency
            as is_amount_off_in_another_currency,
        coalesce(ended.started_at, subscriptions.started_at) as valid_from,
        case
            when ended.duration = 'repeating' then coalesce(
                ended.ends_at,
                {{ dbt.dateadd(
                    'month',
                    'ended.duration_in_months',
                    'coalesce(ended.started_at, subscriptions.started_at)') }}
            )
        end as natural_end
    from ended
    left join subscriptions
        on ended.project_id = subscriptions.project_id
        and ended.subscription_id = subscriptions.subscription_id
    where ended.duration in ('forever', 'repeating')
),

final as (
    select distinct
        project_id,
        subscription_id,
        -- set: the discount of this item only (`subscription_item.discounts`), applied to it
        -- before the subscription's own discounts (int_subscription_item_mrr_daily)
        subscription_item_id,
        coupon_id,
        duration,
        coalesce(percent_off, 0) as percent_off,
        case
            when is_amount_off_in_another_currency then 0 else coalesce(amount_off, 0)
        end as amount_off,
        amount_off_currency,
        valid_from,
        case
            when removed_at is not null and (natural_end is null or removed_at < natural_end)
                then removed_at
            else natural_end
        end as valid_to,
        -- the removal was seen by a later sync, not dated by Stripe: it happened at or before
        removed_at is not null and is_removal_estimated
            and (natural_end is null or removed_at < natural_end) as is_valid_to_estimated,
        -- an estimated end happened at some moment in [valid_to_estimated_from, valid_to]
        case
            when removed_at is not null and is_removal_estimated
                and (natural_end is null or removed_at < natural_end)
                then removal_estimated_from
        end as valid_to_estimated_from,
        is_amount_off_in_another_currency
    from joined
)

select * from final
