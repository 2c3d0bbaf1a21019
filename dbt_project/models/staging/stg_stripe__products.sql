{#- Products by id: their names label the `plan` segment (a product name is not personal data). -#}
with source as (
    select * from {{ source('stripe', 'products') }}
),

final as (
    select
        project_id,
        id as product_id,
        {{ json_text('data', 'name') }} as product_name
    from source
)

select * from final
