{%- set paths = [
    'subscription', 'subscription.id', 'price', 'price.id', 'quantity', 'price.currency',
    'price.unit_amount', 'price.type', 'price.billing_scheme', 'price.recurring.interval',
    'price.recurring.interval_count', 'price.recurring.usage_type', 'price.tax_behavior',
    'current_period_start', 'current_period_end', 'discounts',
] -%}
{%- set hashed = ['data', 'created', 'subscription'] -%}

{#- incremental: a re-listed item is parsed again only if it changed (macros/restaging.sql) #}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'subscription_item_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_restaging('subscription_items', 'subscription_item_id', " ~ hashed ~ ") }}",
) }}

with source as (
    {{ restaged_rows('subscription_items', hashed) }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

parsed as {{ parse_once() }}(
    select
        source.*,
        {{ json_fields('data', paths) }} as fields
    from source
),

items as (
    select
        project_id,
        id as subscription_item_id,
        coalesce(subscription, {{ json_field_id(paths, 'subscription') }}) as subscription_id,
        {{ json_field_id(paths, 'price') }} as price_id,
        coalesce({{ json_field(paths, 'quantity', 'bigint') }}, 1) as quantity,
        upper({{ json_field(paths, 'price.currency') }}) as currency,
        {{ json_field(paths, 'price.unit_amount', 'bigint') }} as unit_amount_minor,
        {{ json_field(paths, 'price.type') }} as price_type,
        {{ json_field(paths, 'price.billing_scheme') }} as billing_scheme,
        {{ json_field(paths, 'price.recurring.interval') }} as billing_interval,
        {{ json_field(paths, 'price.recurring.interval_count', 'integer') }}
            as billing_interval_count,
        {{ json_field(paths, 'price.recurring.usage_type') }} as usage_type,
        {{ json_field(paths, 'price.tax_behavior') }} as tax_behavior,
        {{ from_unix_seconds('created') }} as created_at,
        -- the item's own discounts (objects where the sync expanded them): stg_stripe__discounts
        {{ json_field(paths, 'discounts', 'json') }} as discounts,
        {{ from_unix_seconds(json_field(paths, 'current_period_start', 'bigint')) }}
            as current_period_started_at,
        {{ from_unix_seconds(json_field(paths, 'current_period_end', 'bigint')) }}
            as current_period_ends_at,
        _synced_at as synced_at,
        built_as_of,
        content_hash
    from parsed
),

final as (
    select
        items.*,
        {{ minor_to_major('items.unit_amount_minor', 'currency_exponents.exponent') }}
            as unit_amount
    from items
    left join currency_exponents on items.currency = currency_exponents.currency
)

select * from final
