{%- set paths = [
    'type', 'data.object.id', 'data.object.object', 'data.object', 'data.previous_attributes',
] -%}

{{ config(
    materialized='incremental',
    unique_key=['project_id', 'event_id'],
    incremental_strategy='delete+insert',
) }}

with source as (
    {{ rows_synced_since_last_build('events') }}
),

parsed as (
    select
        source.*,
        {{ json_fields('data', paths) }} as fields
    from source
),

final as (
    select
        project_id,
        id as event_id,
        coalesce(type, {{ json_field(paths, 'type') }}) as event_type,
        {{ json_field(paths, 'data.object.id') }} as object_id,
        {{ json_field(paths, 'data.object.object') }} as object_type,
        {{ json_field(paths, 'data.object', 'json') }} as object_data,
        {{ json_field(paths, 'data.previous_attributes', 'json') }} as previous_attributes,
        {{ from_unix_seconds('created') }} as created_at,
        api_version,
        _synced_at as synced_at
    from parsed
)

select * from final
