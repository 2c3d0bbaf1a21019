{#-
  The customer and subscription `metadata` values the segments read, one row per object and
  key. The privacy allowlist (pipelines/privacy.py) keeps a metadata key only when the
  project's owner named it for segments (`stripe-warehouse segments PROJECT --metadata-key`);
  every other key never reaches the warehouse, so every key found here is a named one.
-#}
with customers as (
    select project_id, id as object_id, data from {{ source('stripe', 'customers') }}
),

subscriptions as (
    select project_id, id as object_id, data from {{ source('stripe', 'subscriptions') }}
),

objects as (
    select 'customer' as object_type, project_id, object_id, data
    from customers
    where {{ json_has_key('data', 'metadata') }}
    union all
    select 'subscription' as object_type, project_id, object_id, data
    from subscriptions
    where {{ json_has_key('data', 'metadata') }}
),

keys as (
    select
        object_type,
        project_id,
        object_id,
        {{ json_object('data', 'metadata') }} as metadata,
        unnest({{ json_object_keys('data', 'metadata') }}) as metadata_key
    from objects
),

final as (
    select
        object_type,
        project_id,
        object_id,
        metadata_key,
        {{ json_text_of_key('metadata', 'metadata_key') }} as metadata_value
    from keys
)

select * from final
