{#-
  Warns (never fails the build) about `amount_off` discounts whose coupon's currency is not
  their subscription's: the amount is not added to the subscription's MRR (a USD amount is
  never taken off a EUR subscription), so that MRR is shown undiscounted. Each row is one
  affected discount.
-#}
{{ config(severity='warn') }}

select project_id, subscription_id, coupon_id, amount_off_currency
from {{ ref('int_subscription_discounts') }}
where is_amount_off_in_another_currency
