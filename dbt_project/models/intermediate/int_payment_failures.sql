{#-
  Failed payment attempts, each once (METRICS-SPEC `stripe_failed_payments`):
  - every failed charge, dated when it failed: its `charge.failed` event (a bank debit, ACH
    or SEPA, fails days after the charge was created), else its creation;
  - every `invoice.payment_failed` event that no failed charge accounts for: a failed charge
    of the same invoice (linked by `invoice.payments`; a charge linked to no invoice: of the
    same customer) that failed within an hour of it. Those are attempts without a charge
    object (no payment method);
  - attempts without a charge older than the events Stripe keeps (30 days), from the invoice
    itself: an invoice whose payments were read has made `attempt_count` attempts, one per
    linked charge and the rest without one; those no event above accounts for are counted,
    dated at the invoice's finalization (its first automatic attempt) and flagged
    `is_estimated` (Stripe keeps no date for them).
-#}
with charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

invoice_payments as (
    select * from {{ ref('stg_stripe__invoice_payments') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

events as (
    select * from {{ ref('stg_stripe__events') }}
    where event_type in ('charge.failed', 'invoice.payment_failed')
),

-- each link is its own equi-join (see int_revenue_transactions)
charge_invoices as (
    select project_id, charge_id, invoice_id
    from invoice_payments
    where charge_id is not null
    union
    select charges.project_id, charges.charge_id, invoice_payments.invoice_id
    from charges
    inner join invoice_payments
        on charges.project_id = invoice_payments.project_id
        and charges.payment_intent_id = invoice_payments.payment_intent_id
),

failed_charges as (
    select
        charges.project_id,
        charges.charge_id,
        charges.customer_id,
        coalesce(charges.invoice_id, charge_invoices.invoice_id) as invoice_id,
        coalesce(failed.failed_at, charges.created_at) as failed_at,
        charges.currency,
        charges.amount
    from charges
    left join (
        select project_id, charge_id, min(invoice_id) as invoice_id
        from charge_invoices
        group by project_id, charge_id
    ) as charge_invoices
        on charges.project_id = charge_invoices.project_id
        and charges.charge_id = charge_invoices.charge_id
    left join (
        select project_id, object_id as charge_id, min(created_at) as failed_at
        from events
        where event_type = 'charge.failed'
        group by project_id, object_id
    ) as failed
        on charges.project_id = failed.project_id
        and charges.charge_id = failed.charge_id
    where charges.status = 'failed'
),

payment_failed_events as (
    select
        project_id,
        event_id,
        object_id as invoice_id,
        object_customer_id as customer_id,
        object_currency as currency,
        object_amount_due_minor as amount_due_minor,
        created_at
    from events
    where event_type = 'invoice.payment_failed'
),

unmatched_events as (
    select payment_failed_events.*
    from payment_failed_events
    where not exists (
        select 1
        from failed_charges
        where failed_charges.project_id = payment_failed_events.project_id
            and failed_charges.customer_id = payment_failed_events.customer_id
            and (failed_charges.invoice_id is null
                or failed_charges.invoice_id = payment_failed_events.invoice_id)
            and abs({{ dbt.datediff(
                'failed_charges.failed_at', 'payment_failed_events.created_at', 'second') }})
                <= 3600
    )
),

-- attempts without a charge that no kept event shows (invoice evidence)
chargeless_attempts as (
    select
        invoices.project_id,
        invoices.invoice_id,
        invoices.customer_id,
        invoices.currency,
        invoices.amount_due_minor,
        coalesce(invoices.finalized_at, invoices.created_at) as finalized_at,
        invoices.attempt_count
            - coalesce(linked.charges, 0)
            - coalesce(evidenced.events, 0) as attempts
    from invoices
    left join (
        select project_id, invoice_id, count(distinct charge_id) as charges
        from charge_invoices
        group by project_id, invoice_id
    ) as linked
        on invoices.project_id = linked.project_id
        and invoices.invoice_id = linked.invoice_id
    left join (
        select project_id, invoice_id, count(*) as events
        from unmatched_events
        group by project_id, invoice_id
    ) as evidenced
        on invoices.project_id = evidenced.project_id
        and invoices.invoice_id = evidenced.invoice_id
    where coalesce(invoices.are_payments_listed, false)
        and invoices.attempt_count > 0
),

-- one row per attempt, however many (Stripe's retries plus every manual `pay`: no cap)
chargeless_attempt_rows as (
    select
        chargeless_attempts.*,
        {{ numbers_from_one_to('chargeless_attempts.attempts') }} as attempt_number
    from chargeless_attempts
    where chargeless_attempts.attempts > 0
),

final as (
    select
        project_id,
        'failed_charge' as attempt_source,
        charge_id as attempt_id,
        customer_id,
        invoice_id,
        failed_at as occurred_at,
        currency,
        amount,
        false as is_estimated
    from failed_charges
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
            as amount,
        false as is_estimated
    from unmatched_events
    left join currency_exponents on unmatched_events.currency = currency_exponents.currency
    union all
    select
        chargeless_attempt_rows.project_id,
        'invoice_attempt_count' as attempt_source,
        chargeless_attempt_rows.invoice_id || ':'
            || cast(chargeless_attempt_rows.attempt_number as varchar) as attempt_id,
        chargeless_attempt_rows.customer_id,
        chargeless_attempt_rows.invoice_id,
        chargeless_attempt_rows.finalized_at as occurred_at,
        chargeless_attempt_rows.currency,
        {{ minor_to_major(
            'chargeless_attempt_rows.amount_due_minor', 'currency_exponents.exponent') }} as amount,
        true as is_estimated
    from chargeless_attempt_rows
    left join currency_exponents on chargeless_attempt_rows.currency = currency_exponents.currency
)

select * from final
