{#-
  Credit notes: the invoice each credits, its total and the tax inside it. A credit note's
  money moves through what it settles with (a refund, counted as the refund; the customer's
  balance; before payment, the smaller amount due), so revenue does not read it; its tax
  tells how much tax a refund it makes returns (int_revenue_transaction_taxes). The tax is
  `total_taxes[]` (API 2025-03-31 and later) or `tax_amounts[]` (older), inclusive and
  exclusive alike (both are inside `total`), else `total - total_excluding_tax`.
-#}
with source as (
    {#- a warehouse last synced by an older release has no credit_notes table until its next
        sync -#}
    {{ optional_source('credit_notes') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

listed_taxes as (
    select project_id, id as credit_note_id, sum({{ json_value('tax', 'amount', 'bigint') }})
        as tax_minor
    from (
        select project_id, id, {{ json_array_elements('data', 'total_taxes') }} as tax
        from source
        union all
        select project_id, id, {{ json_array_elements('data', 'tax_amounts') }} as tax
        from source
    ) as taxes
    group by project_id, id
),

credit_notes as (
    select
        source.project_id,
        source.id as credit_note_id,
        {{ json_id('data', 'invoice') }} as invoice_id,
        {{ json_text('data', 'status') }} as status,
        upper({{ json_text('data', 'currency') }}) as currency,
        coalesce(
            {{ json_value('data', 'total', 'bigint') }},
            {{ json_value('data', 'amount', 'bigint') }}
        ) as total_minor,
        coalesce(
            listed_taxes.tax_minor,
            {{ json_value('data', 'total', 'bigint') }}
                - {{ json_value('data', 'total_excluding_tax', 'bigint') }},
            0
        ) as tax_minor,
        {{ from_unix_seconds('source.created') }} as created_at
    from source
    left join listed_taxes
        on source.project_id = listed_taxes.project_id
        and source.id = listed_taxes.credit_note_id
),

final as (
    select
        credit_notes.*,
        {{ minor_to_major('total_minor', 'currency_exponents.exponent') }} as total,
        {{ minor_to_major('tax_minor', 'currency_exponents.exponent') }} as tax
    from credit_notes
    left join currency_exponents on credit_notes.currency = currency_exponents.currency
)

select * from final
