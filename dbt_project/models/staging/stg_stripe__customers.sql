{%- set paths = ['email', 'currency', 'delinquent', 'address.country'] -%}

{{ config(
    materialized='incremental',
    unique_key=['project_id', 'customer_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {{ rows_synced_since_last_build('customers') }}
),

parsed as {{ parse_once() }}(
    select
        source.*,
        {{ json_fields('data', paths) }} as fields
    from source
),

final as (
    select
        project_id,
        id as customer_id,
        {{ json_field(paths, 'email') }} as email,
        upper({{ json_field(paths, 'currency') }}) as currency,
        {#- the ISO code only: the allowlist keeps no other part of the address -#}
        nullif(upper({{ json_field(paths, 'address.country') }}), '') as country,
        {{ from_unix_seconds('created') }} as created_at,
        coalesce(deleted, false) as is_deleted,
        {{ json_field(paths, 'delinquent', 'boolean') }} as is_delinquent,
        livemode as is_livemode,
        _synced_at as synced_at,
        built_as_of
    from parsed
)

select * from final
