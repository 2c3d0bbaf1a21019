with source as (
    select * from {{ source('stripe', 'customers') }}
),

final as (
    select
        project_id,
        id as customer_id,
        {{ json_text('data', 'email') }} as email,
        upper({{ json_text('data', 'currency') }}) as currency,
        {{ from_unix_seconds('created') }} as created_at,
        coalesce(deleted, false) as is_deleted,
        {{ json_value('data', 'delinquent', 'boolean') }} as is_delinquent,
        livemode as is_livemode,
        _synced_at as synced_at
    from source
)

select * from final
