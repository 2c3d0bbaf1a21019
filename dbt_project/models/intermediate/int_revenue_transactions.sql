{#-
  Money collected, one row per money movement (METRICS-SPEC `stripe_revenue`):
  - an invoice counts each payment Stripe collected for it (`invoice.payments` of type
    `charge` or `payment_intent`, status `paid`) for its `amount_paid`, when it was paid
    (the payment's `status_transitions.paid_at`), whether or not the invoice is paid in full
    yet (partial payments);
  - what a paid invoice's `amount_paid` holds beyond those was paid outside Stripe when the
    invoice says so: payments of type `payment_record` (recorded off Stripe), and all the rest
    of an invoice flagged `paid_out_of_band` (a cheque, a wire): rows of type
    `paid_out_of_band`, kept visible, never revenue. Without that evidence the rest counts as
    before on the invoice's `status_transitions.paid_at` (rows synced by an older release,
    whose payments were not read);
  - a succeeded charge counts only when standalone, i.e. it paid no invoice. An invoice names
    what paid it in `invoice.payments` (`payment.charge`, or `payment.payment_intent`, the
    charge's PaymentIntent), on API versions before 2025-03-31 in `invoice.charge` /
    `invoice.payment_intent`, and `charge.invoice` names its invoice there;
  - only a paid invoice with no linkage data at all (no payments read, no charge or payment
    intent named) still takes the old guess: a succeeded charge of the same customer,
    currency and amount within 24 hours of it is taken for its payment and left out; the
    invoice's row is flagged `is_estimated`;
  - a standalone charge counts when its money was collected: its `charge.succeeded` event
    (a bank debit is `pending` for days first), else its creation;
  - a refund (succeeded or pending) subtracts its amount when it was issued. A credit note
    moves money only through the refund it makes (counted here, once) or, credited to the
    customer's balance or before payment, through the smaller `amount_due` of the invoice it
    lowers: credit notes themselves are not read;
  - a lost dispute subtracts its amount and its dispute fee when it closed: the
    `charge.dispute.closed` event, else (older than the 30 days of events) the evidence
    deadline, flagged `is_estimated`.
  `invoice_id` names the invoice of an invoice's rows (int_revenue_transaction_taxes).
-#}
with invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

refunds as (
    select * from {{ ref('stg_stripe__refunds') }}
),

disputes as (
    select * from {{ ref('stg_stripe__disputes') }}
),

invoice_payments as (
    select * from {{ ref('stg_stripe__invoice_payments') }}
),

money_events as (
    select project_id, event_type, object_id, min(created_at) as occurred_at
    from {{ ref('stg_stripe__events') }}
    where event_type in ('charge.succeeded', 'charge.dispute.closed')
    group by project_id, event_type, object_id
),

paid_invoices as (
    select
        project_id,
        invoice_id,
        customer_id,
        currency,
        amount_paid,
        amount_paid_minor,
        charge_id,
        payment_intent_id,
        is_paid_out_of_band,
        are_payments_listed,
        coalesce(paid_at, finalized_at, created_at) as paid_at
    from invoices
    where is_paid and amount_paid_minor > 0
),

-- each link is its own equi-join: one `or`-ed join condition would compare every pair
charges_named_by_invoices as (
    select project_id, charge_id from invoice_payments where charge_id is not null
    union
    select charges.project_id, charges.charge_id
    from charges
    inner join invoice_payments
        on charges.project_id = invoice_payments.project_id
        and charges.payment_intent_id = invoice_payments.payment_intent_id
    union
    select project_id, charge_id from paid_invoices where charge_id is not null
    union
    select charges.project_id, charges.charge_id
    from charges
    inner join paid_invoices
        on charges.project_id = paid_invoices.project_id
        and charges.payment_intent_id = paid_invoices.payment_intent_id
),

-- what each invoice's payments paid: collected by Stripe, or recorded as paid outside it
collected_payments as (
    select *
    from invoice_payments
    where status = 'paid' and amount_paid_minor > 0 and paid_at is not null
        and payment_type in ('charge', 'payment_intent', 'payment_record')
),

invoice_payment_totals as (
    select
        project_id,
        invoice_id,
        sum(amount_paid) as amount_paid_by_payments
    from collected_payments
    group by project_id, invoice_id
),

-- a paid invoice's amount_paid beyond its payments: out of band when flagged, else (rows
-- whose payments were not read) collected on the invoice's paid_at as before
invoice_remainders as (
    select
        paid_invoices.*,
        paid_invoices.amount_paid - coalesce(invoice_payment_totals.amount_paid_by_payments, 0)
            as amount_remainder
    from paid_invoices
    left join invoice_payment_totals
        on paid_invoices.project_id = invoice_payment_totals.project_id
        and paid_invoices.invoice_id = invoice_payment_totals.invoice_id
),

invoices_with_linkage as (
    select distinct project_id, invoice_id from invoice_payments
),

-- the old guess, only for paid invoices that name nothing that paid them
unlinked_paid_invoices as (
    select paid_invoices.*
    from paid_invoices
    left join invoices_with_linkage
        on paid_invoices.project_id = invoices_with_linkage.project_id
        and paid_invoices.invoice_id = invoices_with_linkage.invoice_id
    where not coalesce(paid_invoices.are_payments_listed, false)
        and not coalesce(paid_invoices.is_paid_out_of_band, false)
        and paid_invoices.charge_id is null
        and paid_invoices.payment_intent_id is null
        and invoices_with_linkage.invoice_id is null
),

guessed_invoice_charges as (
    select
        charges.project_id,
        charges.charge_id,
        unlinked_paid_invoices.invoice_id
    from charges
    inner join unlinked_paid_invoices
        on charges.project_id = unlinked_paid_invoices.project_id
        and charges.customer_id = unlinked_paid_invoices.customer_id
        and charges.currency = unlinked_paid_invoices.currency
        and charges.amount_captured_minor = unlinked_paid_invoices.amount_paid_minor
    where abs({{ dbt.datediff('charges.created_at', 'unlinked_paid_invoices.paid_at', 'second') }}) <= 86400
),

invoice_charges as (
    select * from charges_named_by_invoices
    union
    select project_id, charge_id from guessed_invoice_charges
),

standalone_charges as (
    select
        charges.*,
        coalesce(succeeded.occurred_at, charges.created_at) as collected_at
    from charges
    left join invoice_charges
        on charges.project_id = invoice_charges.project_id
        and charges.charge_id = invoice_charges.charge_id
    left join money_events as succeeded
        on charges.project_id = succeeded.project_id
        and charges.charge_id = succeeded.object_id
        and succeeded.event_type = 'charge.succeeded'
    where charges.status = 'succeeded'
        and charges.is_captured
        and charges.invoice_id is null
        and invoice_charges.charge_id is null
),

lost_disputes as (
    select
        disputes.*,
        coalesce(closed.occurred_at, disputes.evidence_due_by, disputes.created_at) as closed_at,
        closed.occurred_at is null as is_estimated
    from disputes
    left join money_events as closed
        on disputes.project_id = closed.project_id
        and disputes.dispute_id = closed.object_id
        and closed.event_type = 'charge.dispute.closed'
    where disputes.status = 'lost'
),

final as (
    select
        collected_payments.project_id,
        case when collected_payments.payment_type = 'payment_record' then 'paid_out_of_band'
            else 'invoice_payment' end
            as transaction_type,
        collected_payments.invoice_payment_id as transaction_id,
        collected_payments.invoice_id,
        collected_payments.paid_at as occurred_at,
        collected_payments.currency,
        collected_payments.amount_paid as amount,
        false as is_estimated
    from collected_payments
    union all
    select
        project_id,
        case when coalesce(is_paid_out_of_band, false) then 'paid_out_of_band'
            else 'invoice_payment' end
            as transaction_type,
        invoice_id as transaction_id,
        invoice_id,
        paid_at as occurred_at,
        currency,
        amount_remainder as amount,
        exists (
            select 1
            from guessed_invoice_charges
            where guessed_invoice_charges.project_id = invoice_remainders.project_id
                and guessed_invoice_charges.invoice_id = invoice_remainders.invoice_id
        ) as is_estimated
    from invoice_remainders
    where amount_remainder > 0
    union all
    select
        project_id,
        'standalone_charge' as transaction_type,
        charge_id as transaction_id,
        null as invoice_id,
        collected_at as occurred_at,
        currency,
        amount_captured as amount,
        false as is_estimated
    from standalone_charges
    union all
    select
        project_id,
        'refund' as transaction_type,
        refund_id as transaction_id,
        null as invoice_id,
        created_at as occurred_at,
        currency,
        -amount as amount,
        false as is_estimated
    from refunds
    where status in ('succeeded', 'pending')
    union all
    select
        project_id,
        'lost_dispute' as transaction_type,
        dispute_id as transaction_id,
        null as invoice_id,
        closed_at as occurred_at,
        currency,
        -(amount + fee) as amount,
        is_estimated
    from lost_disputes
)

select * from final
