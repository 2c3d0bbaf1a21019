{#-
  Subscription discounts from every observed subscription state (current rows and history
  versions) and from the subscription's invoices: `discount` (one object, before 2025-03-31)
  and `discounts[]` (since), with the coupon under `coupon` (before 2025-09-30) or
  `source.coupon` (since). Invoices are the evidence of discounts that applied in the past:
  Stripe drops a discount from the subscription when it ends or the subscription is canceled,
  so the current state alone would erase it from every past day. `discounts[]` holds ids
  unless the request expanded it: the sync expands it on subscriptions and invoices, events
  never are, so an id is resolved against the discount objects seen anywhere in the project
  (an id never seen as an object names no coupon and is left out). The coupon's terms
  (`coupon_*`) are read from the discount where the sync expanded its coupon: a deleted coupon
  is no longer listed by `/v1/coupons`, yet Stripe keeps applying its discounts, so the
  discount is the only place its terms are found. A subscription item's own discounts
  (`subscription_item.discounts`, `subscription_item_id` set) come from the staged items and
  from the items of the stored subscription versions (a discount removed from its item is
  seen there only), and from the invoice lines they discounted (the sync expands a line's
  `discounts`: after the removal, a backfill sees the discount as an object there only):
  their coupon is an id (the sync cannot expand it that deep) and is priced from /v1/coupons.
  Read from the staged columns, so that each JSON document is parsed once.
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
    union all
    -- an item's own discounts (`subscription_item` names the item they apply to): as the
    -- item is now, and as each stored version had it (a removed one is on the item no more)
    select project_id, subscription_id, discounts, {{ json_null() }} as discount
    from {{ ref('stg_stripe__subscription_items') }}
    where discounts is not null and {{ json_array_length_of('discounts') }} > 0
    union all
    select
        project_id,
        subscription_id,
        {{ json_object('item', 'discounts') }} as discounts,
        {{ json_null() }} as discount
    from (
        select project_id, subscription_id, {{ json_array_items('items') }} as item
        from {{ ref('stg_stripe__subscription_versions') }}
    ) as version_items
    where {{ json_array_length_of('item', 'discounts') }} > 0
    union all
    -- the lines an item's own discounts applied to: the only object of a removed one that a
    -- backfill run after its removal reads
    select project_id, subscription_id, discounts, {{ json_null() }} as discount
    from {{ ref('stg_stripe__invoice_lines') }}
    where subscription_id is not null and {{ json_array_length_of('discounts') }} > 0
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
        {{ json_id('discount', 'subscription_item') }} as subscription_item_id,
        {{ coupon_term('discount', 'duration') }} as coupon_duration,
        cast({{ coupon_term('discount', 'duration_in_months') }} as integer)
            as coupon_duration_in_months,
        cast({{ coupon_term('discount', 'percent_off') }} as {{ money_type() }})
            as coupon_percent_off,
        cast({{ coupon_term('discount', 'amount_off') }} as bigint) as coupon_amount_off_minor,
        upper({{ coupon_term('discount', 'currency') }}) as coupon_currency
    from unioned
    where {{ json_type_of('discount') }} = 'OBJECT'
),

-- one row per discount: a sighting with the coupon as an id and one with it expanded are the
-- same discount (the terms, read where the coupon was expanded, are the same everywhere)
sighted as (
    select
        project_id,
        subscription_id,
        discount_id,
        coupon_id,
        started_at,
        ends_at,
        subscription_item_id,
        max(coupon_duration) as coupon_duration,
        max(coupon_duration_in_months) as coupon_duration_in_months,
        max(coupon_percent_off) as coupon_percent_off,
        max(coupon_amount_off_minor) as coupon_amount_off_minor,
        max(coupon_currency) as coupon_currency
    from expanded
    group by
        project_id,
        subscription_id,
        discount_id,
        coupon_id,
        started_at,
        ends_at,
        subscription_item_id
),

referenced as (
    select distinct
        project_id,
        subscription_id,
        {{ json_text('discount', '') }} as discount_id
    from unioned
    where {{ json_type_of('discount') }} = 'VARCHAR'
),

known as (
    select distinct
        project_id, discount_id, coupon_id, started_at, ends_at, subscription_item_id,
        coupon_duration, coupon_duration_in_months, coupon_percent_off,
        coupon_amount_off_minor, coupon_currency
    from sighted
),

resolved as (
    select
        referenced.project_id,
        referenced.subscription_id,
        known.discount_id,
        known.coupon_id,
        known.started_at,
        known.ends_at,
        known.subscription_item_id,
        known.coupon_duration,
        known.coupon_duration_in_months,
        known.coupon_percent_off,
        known.coupon_amount_off_minor,
        known.coupon_currency
    from referenced
    inner join known
        on referenced.project_id = known.project_id
        and referenced.discount_id = known.discount_id
),

final as (
    select * from sighted
    union
    select * from resolved
)

select * from final
