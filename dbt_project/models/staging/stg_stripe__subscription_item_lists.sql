{#-
  Each subscription's current items as last synced (its own `items.data`): the raw
  `subscription_items` table keeps the rows of removed items, so membership is read here.
  `has_more_items`: the embedded list is truncated (over 10 items), so it is not complete.
-#}
with source as (
    select * from {{ source('stripe', 'subscriptions') }}
),

final as (
    select
        project_id,
        id as subscription_id,
        {{ json_array_ids('data', 'items.data') }} as item_ids,
        coalesce({{ json_value('data', 'items.has_more', 'boolean') }}, false) as has_more_items,
        _synced_at as synced_at
    from source
)

select * from final
