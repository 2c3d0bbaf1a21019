{#-
  Warns (never fails the build) about discounts whose coupon's terms are known neither from
  the loaded coupons nor from the discount itself. `/v1/coupons` does not list a deleted
  coupon, yet Stripe keeps applying the discounts made from it; the sync reads its terms on
  the discount (expanded `source.coupon`), but a discount only ever seen with the coupon as an
  id (an older sync, an event) cannot be priced, so the subscription's MRR is shown
  undiscounted (overstated) until a sync reads it. Each row is one affected discount.
-#}
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_stripe__discounts'}}}) }}

select
    discounts.project_id,
    discounts.subscription_id,
    discounts.discount_id,
    discounts.coupon_id
from {{ ref('stg_stripe__discounts') }} as discounts
left join {{ ref('stg_stripe__coupons') }} as coupons
    on discounts.project_id = coupons.project_id
    and discounts.coupon_id = coupons.coupon_id
where coupons.coupon_id is null
    and discounts.coupon_duration is null
