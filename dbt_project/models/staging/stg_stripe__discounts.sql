{#-
  Subscription discounts from every observed subscription state (current rows and history
  versions) and from the subscription's invoices: `discount` (one object, before 2025-03-31)
  and `discounts[]` (since), with the coupon under `coupon` (before 2025-09-30) or
  `source.coupon` (since). Invoices are the evidence of discounts that applied in the past:
  Stripe drops a discount from the subscription when it ends or the subscription is canceled,
  so the current state alone would erase it from every past day. `discounts[]` holds ids
  unless the request expanded it: the sync expands it on subscriptions and invoices, events
  never are, so an id is resolved against the discount objects seen anywhere in the project
  (an id never seen as an object names no coupon and is left out). Read from the staged
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

expanded as (
    select distinct
        project_id,
        subscription_id,
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
),

referenced as (
    select distinct
        project_id,
        subscription_id,
        json_extract_string(discount, '$') as discount_id
    from unioned
    where json_type(discount) = 'VARCHAR'
),

known as (
    select distinct
        project_id, discount_id, coupon_id, started_at, ends_at, subscription_item_id
    from expanded
),

resolved as (
    select
        referenced.project_id,
        referenced.subscription_id,
        known.discount_id,
        known.coupon_id,
        known.started_at,
        known.ends_at,
        known.subscription_item_id
    from referenced
    inner join known
        on referenced.project_id = known.project_id
        and referenced.discount_id = known.discount_id
),

final as (
    select * from expanded
    union
    select * from resolved
)

select * from final
