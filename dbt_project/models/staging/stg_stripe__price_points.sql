{#-
  What each price charges in each currency it is sold in: one row for its default currency and
  one per other key of its `currency_options` (a subscription billed in INR on a price whose
  default is USD is charged the INR option, never the default amount). Stripe returns `tiers`
  and `currency_options` only when the request expands them; the sync expands both
  (pipelines/settings.py). Amounts are exact, in the currency's minor unit:
  `unit_amount_decimal` (up to 12 decimals of a cent) where present, else `unit_amount`.
  `tiers`: a list of {floor, up_to, unit_amount_minor, flat_amount_minor}, a tier holding the
  units above `floor` up to and including `up_to` (null: unbounded). A tiered price whose
  tiers were not loaded (synced before the expansion) has `tiers` null: the price cannot say
  what it charges (int_subscription_item_prices falls back on the invoice line, flagged).
-#}
with source as (
    select project_id, id as price_id, data from {{ source('stripe', 'prices') }}
),

-- the default currency's terms are the price's own; each other option has its own
defaults as (
    select
        project_id,
        price_id,
        data,
        lower({{ json_text('data', 'currency') }}) as currency_key,
        true as is_default_currency,
        {{ json_document('data') }} as terms
    from source
),

option_keys as (
    select
        project_id,
        price_id,
        data,
        unnest({{ json_object_keys('data', 'currency_options') }}) as currency_key
    from source
    where {{ json_text('data', 'currency_options') }} is not null
),

options as (
    select
        project_id,
        price_id,
        data,
        currency_key,
        false as is_default_currency,
        {{ json_object('data', "currency_options.' || currency_key || '") }} as terms
    from option_keys
    where currency_key <> lower({{ json_text('data', 'currency') }})
),

points as (
    select * from defaults
    union all
    select * from options
),

final as (
    select
        project_id,
        price_id,
        upper(currency_key) as currency,
        is_default_currency,
        {{ json_text('data', 'billing_scheme') }} as billing_scheme,
        {{ json_text('data', 'tiers_mode') }} as tiers_mode,
        {{ json_value('data', 'transform_quantity.divide_by', 'bigint') }} as package_size,
        {{ json_text('data', 'transform_quantity.round') }} as package_rounding,
        coalesce({{ json_text('terms', 'tax_behavior') }}, {{ json_text('data', 'tax_behavior') }})
            as tax_behavior,
        coalesce(
            {{ json_value('terms', 'unit_amount_decimal', 'decimal(38, 12)') }},
            {{ json_value('terms', 'unit_amount', 'decimal(38, 12)') }}
        ) as unit_amount_minor,
        -- parse errors ignored on the next line: sqlfluff cannot parse `lambda x: ...` yet
        {{ price_tiers('terms') }} as tiers  -- noqa: PRS
    from points
)

select * from final
