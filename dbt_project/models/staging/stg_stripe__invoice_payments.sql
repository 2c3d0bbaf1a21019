{#-
  The payments of each invoice, unnested from `invoice.payments` (API 2025-03-31 and later):
  the current-shape link from an invoice to the charge that paid it, and what each paid:
  `payment_type` is `charge` or `payment_intent` (money Stripe collected) or `payment_record`
  (a payment recorded as made outside Stripe); `amount_paid` (major units, the invoice's
  currency) is set once the payment is `paid`, at `paid_at`.
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

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

parsed as (
    select
        project_id,
        invoice_id,
        {{ json_id('payment', 'id') }} as invoice_payment_id,
        {{ json_text('payment', 'status') }} as status,
        {{ json_text('payment', 'payment.type') }} as payment_type,
        {{ json_id('payment', 'payment.charge') }} as charge_id,
        {{ json_id('payment', 'payment.payment_intent') }} as payment_intent_id,
        {{ json_id('payment', 'payment.payment_record') }} as payment_record_id,
        upper({{ json_text('payment', 'currency') }}) as currency,
        {{ json_value('payment', 'amount_paid', 'bigint') }} as amount_paid_minor,
        {{ from_unix_seconds(json_value('payment', 'status_transitions.paid_at', 'bigint')) }}
            as paid_at,
        synced_at,
        built_as_of
    from payments
    where {{ json_type_of('payment') }} = 'OBJECT'
),

final as (
    select
        parsed.project_id,
        parsed.invoice_id,
        parsed.invoice_payment_id,
        parsed.status,
        parsed.payment_type,
        parsed.charge_id,
        parsed.payment_intent_id,
        parsed.payment_record_id,
        parsed.currency,
        parsed.amount_paid_minor,
        {{ minor_to_major('parsed.amount_paid_minor', 'currency_exponents.exponent') }}
            as amount_paid,
        parsed.paid_at,
        parsed.synced_at,
        parsed.built_as_of
    from parsed
    left join currency_exponents on parsed.currency = currency_exponents.currency
)

select * from final
