{#- Incremental like the other staging models: the raw table is insert-only (a version seen
    again is not written again), so a build parses the versions of the loads it has not seen
    (rows_synced_since_last_build) and adds them by key; a re-read version replaces itself.
    Rebuilt whole it was the slowest node of a refresh, which adds few or no versions. The
    retention job's full refresh drops the versions it deleted from stripe_raw. -#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'subscription_id', 'version_hash'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {{ rows_synced_since_last_build('subscription_versions') }}
),

final as (
    select
        project_id,
        id as subscription_id,
        version_hash,
        observed_at,
        source as observed_by,
        {{ json_text('data', 'status') }} as status,
        {{ json_text('data', 'pause_collection.behavior') }} as pause_collection_behavior,
        {{ from_unix_seconds(json_value('data', 'canceled_at', 'bigint')) }} as canceled_at,
        {{ from_unix_seconds(json_value('data', 'cancel_at', 'bigint')) }} as cancel_at,
        {{ from_unix_seconds(json_value('data', 'trial_end', 'bigint')) }} as trial_ended_at,
        {{ json_object('data', 'items.data') }} as items,
        {{ json_object('data', 'discounts') }} as discounts,
        {{ json_object('data', 'discount') }} as discount,
        built_as_of
    from source
)

select * from final
