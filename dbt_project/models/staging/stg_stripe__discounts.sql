{#-
  Subscription discounts unnested from every observed subscription state (current rows and
  history versions): `discount` (one object, before 2025-03-31) and `discounts[]` (since), with
  the coupon under `coupon` (before 2025-09-30) or `source.coupon` (since).
-#}
with subscriptions as (
    select project_id, id as subscription_id, data from {{ source('stripe', 'subscriptions') }}
),

versions as (
    select project_id, id as subscription_id, data
    from {{ source('stripe', 'subscription_versions') }}
),

observed as (
    select * from subscriptions
    union all
    select * from versions
),

listed as (
    select project_id, subscription_id, {{ json_array_elements('data', 'discounts') }} as discount
    from observed
),

single as (
    select project_id, subscription_id, {{ json_object('data', 'discount') }} as discount
    from observed
    where {{ json_id('data', 'discount') }} is not null
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
