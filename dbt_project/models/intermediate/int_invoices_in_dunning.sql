{#-
  Invoices in dunning, as intervals: from the first failed payment attempt until it is paid,
  voided or marked uncollectible. The first failed attempt is the earliest failed charge or
  `invoice.payment_failed` event naming the invoice; when those are older than the loaded
  window, Stripe's first automatic attempt at finalization (an invoice attempted and not paid
  at once: open/uncollectible with attempts, or paid after more attempts than the payments
  that paid it). An open
  invoice whose attempt is a bank debit still `pending` (SEPA, ACH, BACS take days) is being
  paid, not dunned: it enters dunning only if the debit fails. Nor is an open invoice whose
  attempts all succeeded (a part paid by card, the rest still to pay: partial payments).
  `last_failed_at` and `next_payment_attempt_at` tell when Stripe stopped retrying.
-#}
with invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

failures as (
    select * from {{ ref('int_payment_failures') }}
),

-- invoices with a payment in progress: a linked charge still pending
invoices_being_paid as (
    select distinct invoice_payments.project_id, invoice_payments.invoice_id
    from {{ ref('stg_stripe__invoice_payments') }} as invoice_payments
    inner join {{ ref('stg_stripe__charges') }} as charges
        on invoice_payments.project_id = charges.project_id
        and invoice_payments.payment_intent_id = charges.payment_intent_id
    where charges.status = 'pending'
    union
    select distinct invoice_payments.project_id, invoice_payments.invoice_id
    from {{ ref('stg_stripe__invoice_payments') }} as invoice_payments
    inner join {{ ref('stg_stripe__charges') }} as charges
        on invoice_payments.project_id = charges.project_id
        and invoice_payments.charge_id = charges.charge_id
    where charges.status = 'pending'
),

-- attempts that collected money: a part of an open invoice paid (partial payments)
succeeded_attempts as (
    select project_id, invoice_id, count(*) as succeeded_attempts
    from {{ ref('stg_stripe__invoice_payments') }}
    where status = 'paid' and payment_type in ('charge', 'payment_intent')
    group by project_id, invoice_id
),

payment_failed_events as (
    select project_id, object_id as invoice_id, created_at
    from {{ ref('stg_stripe__events') }}
    where event_type = 'invoice.payment_failed'
),

failed_attempts as (
    select project_id, invoice_id, min(occurred_at) as first_failed_at,
        max(occurred_at) as last_failed_at
    from (
        select project_id, invoice_id, occurred_at from failures where invoice_id is not null
        union all
        select project_id, invoice_id, created_at as occurred_at from payment_failed_events
    ) as attempts
    group by project_id, invoice_id
),

final as (
    select
        invoices.project_id,
        invoices.invoice_id,
        invoices.subscription_id,
        invoices.customer_id,
        invoices.status,
        invoices.currency,
        invoices.amount_remaining,
        invoices.created_at,
        coalesce(
            failed_attempts.first_failed_at,
            coalesce(invoices.finalized_at, invoices.created_at)
        ) as dunning_started_at,
        failed_attempts.last_failed_at,
        invoices.next_payment_attempt_at,
        invoices.marked_uncollectible_at,
        coalesce(invoices.paid_at, invoices.voided_at, invoices.marked_uncollectible_at)
            as dunning_ended_at
    from invoices
    left join failed_attempts
        on invoices.project_id = failed_attempts.project_id
        and invoices.invoice_id = failed_attempts.invoice_id
    left join invoices_being_paid
        on invoices.project_id = invoices_being_paid.project_id
        and invoices.invoice_id = invoices_being_paid.invoice_id
    left join succeeded_attempts
        on invoices.project_id = succeeded_attempts.project_id
        and invoices.invoice_id = succeeded_attempts.invoice_id
    where failed_attempts.first_failed_at is not null
        or (invoices.status in ('open', 'uncollectible')
            and invoices.attempt_count > coalesce(succeeded_attempts.succeeded_attempts, 0)
            and invoices_being_paid.invoice_id is null)
        -- paid after attempts that did not all collect money: more attempts than payments
        -- (an invoice paid in two partial payments made two attempts, neither failed)
        or (invoices.status = 'paid'
            and invoices.attempt_count
            > greatest(coalesce(succeeded_attempts.succeeded_attempts, 1), 1))
)

select * from final
