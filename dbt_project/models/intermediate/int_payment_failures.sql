{#-
  Failed payment attempts, each once (METRICS-SPEC `stripe_failed_payments`): every failed
  charge, plus every `invoice.payment_failed` event that no failed charge of the same customer
  within an hour accounts for (an attempt without a charge object, e.g. no payment method).
-#}
with charges as (
    select * from {{ ref('stg_stripe__charges') }}
    where status = 'failed'
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

payment_failed_events as (
    select
        events.project_id,
        events.event_id,
        events.object_id as invoice_id,
        events.object_customer_id as customer_id,
        events.object_currency as currency,
        events.object_amount_due_minor as amount_due_minor,
        events.created_at
    from {{ ref('stg_stripe__events') }} as events
    where events.event_type = 'invoice.payment_failed'
),

unmatched_events as (
    select payment_failed_events.*
    from payment_failed_events
    where not exists (
        select 1
        from charges
        where charges.project_id = payment_failed_events.project_id
            and charges.customer_id = payment_failed_events.customer_id
            and abs({{ dbt.datediff('charges.created_at', 'payment_failed_events.created_at', 'second') }})
                <= 3600
    )
),

final as (
    select
        project_id,
        'failed_charge' as attempt_source,
        charge_id as attempt_id,
        customer_id,
        invoice_id,
        created_at as occurred_at,
        currency,
        amount
    from charges
    union all
    select
        unmatched_events.project_id,
        'invoice_payment_failed_event' as attempt_source,
        unmatched_events.event_id as attempt_id,
        unmatched_events.customer_id,
        unmatched_events.invoice_id,
        unmatched_events.created_at as occurred_at,
        unmatched_events.currency,
        {{ minor_to_major('unmatched_events.amount_due_minor', 'currency_exponents.exponent') }}
            as amount
    from unmatched_events
    left join currency_exponents on unmatched_events.currency = currency_exponents.currency
)

select * from final
