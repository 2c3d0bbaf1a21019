{%- set paths = [
    'customer', 'customer.id', 'subscription', 'subscription.id',
    'parent.subscription_details.subscription', 'parent.subscription_details.subscription.id',
    'status', 'paid', 'paid_out_of_band', 'billing_reason', 'currency', 'amount_due',
    'amount_paid', 'amount_remaining', 'subtotal', 'total', 'attempt_count', 'payment_intent',
    'payment_intent.id', 'charge', 'charge.id', 'status_transitions.finalized_at',
    'status_transitions.paid_at', 'status_transitions.voided_at',
    'status_transitions.marked_uncollectible_at', 'period_start', 'period_end',
    'next_payment_attempt', 'discounts', 'discount', 'payments.object', 'total_excluding_tax',
    'tax',
] -%}

{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns -#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'invoice_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {#- a table built before a column was added is re-read whole once, so no row lacks it #}
    {{ rows_synced_since_last_build('invoices',
        ['next_payment_attempt_at', 'discounts', 'are_payments_listed', 'tax']) }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

parsed as {{ parse_once() }}(
    select
        source.*,
        {{ json_fields('data', paths) }} as fields
    from source
),

invoices as (
    select
        project_id,
        id as invoice_id,
        {{ json_field_id(paths, 'customer') }} as customer_id,
        -- before 2025-03-31 `invoice.subscription`, since then `parent.subscription_details`
        coalesce(
            {{ json_field_id(paths, 'subscription') }},
            {{ json_field_id(paths, 'parent.subscription_details.subscription') }}
        ) as subscription_id,
        {{ json_field(paths, 'status') }} as status,
        -- before 2025-03-31 `paid`, since then only `status = 'paid'`
        coalesce(
            {{ json_field(paths, 'paid', 'boolean') }},
            {{ json_field(paths, 'status') }} = 'paid'
        ) as is_paid,
        coalesce({{ json_field(paths, 'paid_out_of_band', 'boolean') }}, false)
            as is_paid_out_of_band,
        {{ json_field(paths, 'billing_reason') }} as billing_reason,
        upper({{ json_field(paths, 'currency') }}) as currency,
        {{ json_field(paths, 'amount_due', 'bigint') }} as amount_due_minor,
        {{ json_field(paths, 'amount_paid', 'bigint') }} as amount_paid_minor,
        {{ json_field(paths, 'amount_remaining', 'bigint') }} as amount_remaining_minor,
        {{ json_field(paths, 'subtotal', 'bigint') }} as subtotal_minor,
        {{ json_field(paths, 'total', 'bigint') }} as total_minor,
        -- the invoice's taxes, inclusive and exclusive: total - total_excluding_tax (older
        -- API versions also carried the sum as `tax`)
        coalesce(
            {{ json_field(paths, 'total', 'bigint') }}
                - {{ json_field(paths, 'total_excluding_tax', 'bigint') }},
            {{ json_field(paths, 'tax', 'bigint') }},
            0
        ) as tax_minor,
        coalesce({{ json_field(paths, 'attempt_count', 'integer') }}, 0) as attempt_count,
        {{ json_field_id(paths, 'payment_intent') }} as payment_intent_id,
        {{ json_field_id(paths, 'charge') }} as charge_id,
        -- whether the row carries `payments` (includable: read when the sync expands it), so
        -- that an invoice without payments is told from one whose payments were not read
        {{ json_field(paths, 'payments.object') }} is not null as are_payments_listed,
        {{ from_unix_seconds('created') }} as created_at,
        {{ from_unix_seconds(json_field(paths, 'status_transitions.finalized_at', 'bigint')) }}
            as finalized_at,
        {{ from_unix_seconds(json_field(paths, 'status_transitions.paid_at', 'bigint')) }}
            as paid_at,
        {{ from_unix_seconds(json_field(paths, 'status_transitions.voided_at', 'bigint')) }}
            as voided_at,
        {{ from_unix_seconds(
            json_field(paths, 'status_transitions.marked_uncollectible_at', 'bigint')) }}
            as marked_uncollectible_at,
        -- null once Stripe stops retrying (paid, or dunning over): evidence of when dunning ended
        {{ from_unix_seconds(json_field(paths, 'next_payment_attempt', 'bigint')) }}
            as next_payment_attempt_at,
        -- the discounts applied (objects when expanded): stg_stripe__discounts reads them
        {{ json_field(paths, 'discounts', 'json') }} as discounts,
        {{ json_field(paths, 'discount', 'json') }} as discount,
        {{ from_unix_seconds(json_field(paths, 'period_start', 'bigint')) }} as period_started_at,
        {{ from_unix_seconds(json_field(paths, 'period_end', 'bigint')) }} as period_ended_at,
        _synced_at as synced_at,
        built_as_of
    from parsed
),

final as (
    select
        invoices.*,
        {{ minor_to_major('amount_due_minor', 'currency_exponents.exponent') }} as amount_due,
        {{ minor_to_major('amount_paid_minor', 'currency_exponents.exponent') }} as amount_paid,
        {{ minor_to_major('amount_remaining_minor', 'currency_exponents.exponent') }}
            as amount_remaining,
        {{ minor_to_major('subtotal_minor', 'currency_exponents.exponent') }} as subtotal,
        {{ minor_to_major('total_minor', 'currency_exponents.exponent') }} as total,
        {{ minor_to_major('tax_minor', 'currency_exponents.exponent') }} as tax
    from invoices
    left join currency_exponents on invoices.currency = currency_exponents.currency
)

select * from final
