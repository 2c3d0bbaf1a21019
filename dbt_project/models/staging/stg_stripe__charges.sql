{%- set paths = [
    'customer', 'customer.id', 'invoice', 'invoice.id', 'payment_intent', 'payment_intent.id',
    'status', 'captured', 'currency', 'amount', 'amount_captured', 'failure_code',
] -%}

{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns -#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'charge_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {{ rows_synced_since_last_build('charges') }}
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

charges as (
    select
        project_id,
        id as charge_id,
        {{ json_field_id(paths, 'customer') }} as customer_id,
        -- `charge.invoice` exists only before 2025-03-31
        {{ json_field_id(paths, 'invoice') }} as invoice_id,
        {{ json_field_id(paths, 'payment_intent') }} as payment_intent_id,
        {{ json_field(paths, 'status') }} as status,
        coalesce({{ json_field(paths, 'captured', 'boolean') }}, true) as is_captured,
        upper({{ json_field(paths, 'currency') }}) as currency,
        {{ json_field(paths, 'amount', 'bigint') }} as amount_minor,
        coalesce(
            {{ json_field(paths, 'amount_captured', 'bigint') }},
            {{ json_field(paths, 'amount', 'bigint') }}
        ) as amount_captured_minor,
        {{ json_field(paths, 'failure_code') }} as failure_code,
        {{ from_unix_seconds('created') }} as created_at,
        _synced_at as synced_at,
        built_as_of
    from parsed
),

final as (
    select
        charges.*,
        {{ minor_to_major('amount_minor', 'currency_exponents.exponent') }} as amount,
        {{ minor_to_major('amount_captured_minor', 'currency_exponents.exponent') }}
            as amount_captured
    from charges
    left join currency_exponents on charges.currency = currency_exponents.currency
)

select * from final
