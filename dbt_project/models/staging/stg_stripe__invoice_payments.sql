{#-
  The payments of each invoice, unnested from `invoice.payments` (API 2025-03-31 and later):
  the current-shape link from an invoice to the charge that paid it.
-#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'invoice_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {{ rows_synced_since_last_build('invoices') }}
),

payments as (
    select
        project_id,
        id as invoice_id,
        _synced_at as synced_at,
        built_as_of,
        {{ json_array_elements('data', 'payments.data') }} as payment
    from source
),

final as (
    select
        project_id,
        invoice_id,
        {{ json_id('payment', 'id') }} as invoice_payment_id,
        {{ json_text('payment', 'status') }} as status,
        {{ json_id('payment', 'payment.charge') }} as charge_id,
        {{ json_id('payment', 'payment.payment_intent') }} as payment_intent_id,
        synced_at,
        built_as_of
    from payments
    where json_type(payment) = 'OBJECT'
)

select * from final
