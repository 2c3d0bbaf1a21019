{#-
  Subscription discounts from every observed subscription state (current rows and history
  versions) and from the subscription's invoices: `discount` (one object, before 2025-03-31)
  and `discounts[]` (since), with the coupon under `coupon` (before 2025-09-30) or
  `source.coupon` (since). Invoices are the evidence of discounts that applied in the past:
  Stripe drops a discount from the subscription when it ends or the subscription is canceled,
  so the current state alone would erase it from every past day. Invoice `discounts[]` holds
  objects only when expanded (ids alone name no coupon and are skipped). Read from the staged
  columns, so that each JSON document is parsed once.
-#}
with observed as (
    select project_id, subscription_id, discounts, discount
    from {{ ref('stg_stripe__subscriptions') }}
    union all
    select project_id, subscription_id, discounts, discount
    from {{ ref('stg_stripe__subscription_versions') }}
    union all
    select project_id, subscription_id, discounts, discount
    from {{ ref('stg_stripe__invoices') }}
    where subscription_id is not null
),

listed as (
    select project_id, subscription_id, {{ json_array_items('discounts') }} as discount
    from observed
    where discounts is not null
),

single as (
    select project_id, subscription_id, discount
    from observed
    where discount is not null
),

unioned as (
    select * from listed
    union all
    select * from single
),

final as (
    select distinct
        project_id,
        subscription_id,
        -- `discounts[]` holds ids unless expanded; an id alone names no coupon
        {{ json_id('discount', 'id') }} as discount_id,
        coalesce(
            {{ json_id('discount', 'coupon') }},
            {{ json_id('discount', 'source.coupon') }}
        ) as coupon_id,
        {{ from_unix_seconds(json_value('discount', 'start', 'bigint')) }} as started_at,
        {{ from_unix_seconds(json_value('discount', 'end', 'bigint')) }} as ends_at,
        {{ json_id('discount', 'subscription_item') }} as subscription_item_id
    from unioned
    where json_type(discount) = 'OBJECT'
)

select * from final
