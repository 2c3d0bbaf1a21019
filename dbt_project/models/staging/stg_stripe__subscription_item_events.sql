{#-
  `customer.subscription.updated` events that changed the item list: the items before
  (`previous_attributes.items`, which Stripe sends whole) and after the change. An item in
  `previous_item_ids` but not in `item_ids` was removed at `created_at`. `items` and
  `previous_items`: the item objects after and before the change (their prices and
  quantities date changes in int_subscription_item_states).
  Incremental (performance: a refresh read every raw event again): only the events of the
  loads since the last build (rows_synced_since_last_build); an event never changes, and one
  loaded again replaces its row. A table built before `items` was kept is re-read whole once.
-#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'event_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    select *
    from ({{ rows_synced_since_last_build('events', ['items', 'previous_items']) }}) as synced
    -- the `type` column first: only rows without it have their JSON read
    where type = 'customer.subscription.updated'
        or (type is null and {{ json_text('data', 'type') }} = 'customer.subscription.updated')
),

final as (
    select
        project_id,
        id as event_id,
        {{ json_text('data', 'data.object.id') }} as subscription_id,
        {{ json_array_ids('data', 'data.object.items.data') }} as item_ids,
        {{ json_array_ids('data', 'data.previous_attributes.items.data') }} as previous_item_ids,
        {{ json_object('data', 'data.object.items.data') }} as items,
        {{ json_object('data', 'data.previous_attributes.items.data') }} as previous_items,
        {{ from_unix_seconds('created') }} as created_at,
        built_as_of
    from source
    where {{ json_has_key('data', 'data.previous_attributes.items') }}
)

select * from final
