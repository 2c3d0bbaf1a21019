with source as (
    select * from {{ source('stripe', 'subscription_versions') }}
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
        {{ json_object('data', 'discount') }} as discount
    from source
)

select * from final
