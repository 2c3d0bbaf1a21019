{%- set paths = [
    'type', 'data.object.id', 'data.object.object', 'data.object.status',
    'data.object.pause_collection.behavior', 'data.object.created',
    'data.object.customer', 'data.object.customer.id', 'data.object.currency',
    'data.object.amount_due', 'data.previous_attributes',
    'data.previous_attributes.pause_collection.behavior', 'data.previous_attributes.status',
    'data.object.cancel_at', 'data.previous_attributes.cancel_at',
] -%}

{{ config(
    materialized='incremental',
    unique_key=['project_id', 'event_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

{#- the changed keys only: a small document, parsed again cheaply for its keys -#}
{%- set previous_attributes_json = as_json(json_field(paths, 'data.previous_attributes')) -%}

with source as (
    {{ rows_synced_since_last_build(
        'events', ['previous_status_changed', 'previous_cancel_at_changed']) }}
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
        id as event_id,
        coalesce(type, {{ json_field(paths, 'type') }}) as event_type,
        {{ json_field(paths, 'data.object.id') }} as object_id,
        {{ json_field(paths, 'data.object.object') }} as object_type,
        -- the few fields the models read, not the whole object: a refresh re-stages every
        -- event it loads, and carrying each object's full JSON made this the costliest model
        {{ json_field(paths, 'data.object.status') }} as object_status,
        {{ json_field(paths, 'data.object.pause_collection.behavior') }}
            as object_pause_collection_behavior,
        {{ from_unix_seconds(json_field(paths, 'data.object.created', 'bigint')) }}
            as object_created_at,
        {{ json_field_id(paths, 'data.object.customer') }} as object_customer_id,
        upper({{ json_field(paths, 'data.object.currency') }}) as object_currency,
        {{ json_field(paths, 'data.object.amount_due', 'bigint') }} as object_amount_due_minor,
        -- `previous_attributes` lists the keys an update changed (a key present with null
        -- means it was unset before): whether status and pause_collection are among them
        {{ previous_attributes_json }} is not null as has_previous_attributes,
        {{ json_has_key(previous_attributes_json, 'status') }} as previous_status_changed,
        {{ json_field(paths, 'data.previous_attributes.status') }} as previous_status,
        {{ json_has_key(previous_attributes_json, 'pause_collection') }}
            as previous_pause_collection_changed,
        {{ json_field(paths, 'data.previous_attributes.pause_collection.behavior') }}
            as previous_pause_collection_behavior,
        -- a scheduled cancellation (int_subscription_cancellation_requests): `cancel_at` now,
        -- and whether the update changed it, from what (null: it was not scheduled before)
        {{ from_unix_seconds(json_field(paths, 'data.object.cancel_at', 'bigint')) }}
            as object_cancel_at,
        {{ json_has_key(previous_attributes_json, 'cancel_at') }} as previous_cancel_at_changed,
        {{ from_unix_seconds(json_field(paths, 'data.previous_attributes.cancel_at', 'bigint')) }}
            as previous_cancel_at,
        {{ from_unix_seconds('created') }} as created_at,
        api_version,
        _synced_at as synced_at,
        built_as_of
    from parsed
)

select * from final
