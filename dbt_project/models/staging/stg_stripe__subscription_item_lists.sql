{#-
  Each subscription's current items as last synced (its own `items.data`): the raw
  `subscription_items` table keeps the rows of removed items, so membership is read here.
  `has_more_items`: the embedded list is truncated (over 10 items), so it is not complete.
  Incremental: a re-listed subscription is parsed again only if it changed (macros/restaging.sql).
-#}
{%- set hashed = ['data'] -%}
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

final as (
    select
        source.project_id,
        source.id as subscription_id,
        {{ json_array_ids('source.data', 'items.data') }} as item_ids,
        coalesce({{ json_value('source.data', 'items.has_more', 'boolean') }}, false)
            as has_more_items,
        source._synced_at as synced_at,
        -- when this content was first observed (macros/content_dating.sql: the subscription's,
        -- from the same raw row); null: at synced_at
        subscriptions.content_observed_at,
        source.built_as_of,
        source.content_hash
    from source
    left join {{ ref('stg_stripe__subscriptions') }} as subscriptions
        on source.project_id = subscriptions.project_id
        and source.id = subscriptions.subscription_id
)

select * from final
