{%- set paths = [
    'customer', 'customer.id', 'status', 'currency', 'start_date', 'trial_start', 'trial_end',
    'canceled_at', 'cancel_at', 'cancel_at_period_end', 'ended_at', 'pause_collection.behavior',
    'pause_collection.resumes_at', 'current_period_start', 'current_period_end',
    'items.data[0].current_period_start', 'items.data[0].current_period_end',
    'latest_invoice', 'latest_invoice.id', 'discounts', 'discount',
] -%}
{%- set hashed = ['data', 'created', 'livemode', 'api_version'] -%}

{#- incremental: a re-listed subscription is parsed again only if it changed
    (macros/restaging.sql) #}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'subscription_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    pre_hook="{{ prepare_restaging('subscriptions', 'subscription_id', " ~ hashed ~ ") }}",
) }}

with source as (
    {{ restaged_rows('subscriptions', hashed) }}
),

parsed as {{ parse_once() }}(
    select
        source.*,
        {{ json_fields('source.data', paths) }} as fields,
        {{ content_observed_at('source') }} as content_observed_at
    from source
    {{ latest_version_join('source') }}
),

final as (
    select
        project_id,
        id as subscription_id,
        {{ json_field_id(paths, 'customer') }} as customer_id,
        {{ json_field(paths, 'status') }} as status,
        upper({{ json_field(paths, 'currency') }}) as currency,
        {{ from_unix_seconds('created') }} as created_at,
        {{ from_unix_seconds(json_field(paths, 'start_date', 'bigint')) }} as started_at,
        {{ from_unix_seconds(json_field(paths, 'trial_start', 'bigint')) }} as trial_started_at,
        {{ from_unix_seconds(json_field(paths, 'trial_end', 'bigint')) }} as trial_ended_at,
        {{ from_unix_seconds(json_field(paths, 'canceled_at', 'bigint')) }} as canceled_at,
        {{ from_unix_seconds(json_field(paths, 'cancel_at', 'bigint')) }} as cancel_at,
        coalesce({{ json_field(paths, 'cancel_at_period_end', 'boolean') }}, false)
            as is_cancel_at_period_end,
        {{ from_unix_seconds(json_field(paths, 'ended_at', 'bigint')) }} as ended_at,
        {{ json_field(paths, 'pause_collection.behavior') }} as pause_collection_behavior,
        {{ from_unix_seconds(json_field(paths, 'pause_collection.resumes_at', 'bigint')) }}
            as pause_collection_resumes_at,
        -- before 2025-03-31 the period lived on the subscription, since then on each item
        {{ from_unix_seconds(
            'coalesce(' ~ json_field(paths, 'current_period_start', 'bigint') ~ ', '
            ~ json_field(paths, 'items.data[0].current_period_start', 'bigint') ~ ')') }}
            as current_period_started_at,
        {{ from_unix_seconds(
            'coalesce(' ~ json_field(paths, 'current_period_end', 'bigint') ~ ', '
            ~ json_field(paths, 'items.data[0].current_period_end', 'bigint') ~ ')') }}
            as current_period_ends_at,
        {{ json_field_id(paths, 'latest_invoice') }} as latest_invoice_id,
        -- discounts as returned (`discount` before 2025-03-31): stg_stripe__discounts reads them
        {{ json_field(paths, 'discounts', 'json') }} as discounts,
        {{ json_field(paths, 'discount', 'json') }} as discount,
        livemode as is_livemode,
        api_version,
        _synced_at as synced_at,
        -- when this content was first observed (macros/content_dating.sql); null: at synced_at
        content_observed_at,
        built_as_of,
        content_hash
    from parsed
)

select * from final
