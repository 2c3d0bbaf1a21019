{#-
  Money collected, one row per money movement (METRICS-SPEC `stripe_revenue`):
  - a paid invoice counts its `amount_paid` when it was paid (`status_transitions.paid_at`);
    one paid out of band (`paid_out_of_band`: a cheque, a wire) is money Stripe never
    collected: its row has type `paid_out_of_band`, kept visible, never revenue;
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
  - a refund (succeeded or pending) subtracts its amount when it was issued (a credit note
    that refunds money is that refund: credit notes are not read);
  - a lost dispute subtracts its amount and its dispute fee when it closed: the
    `charge.dispute.closed` event, else (older than the 30 days of events) the evidence
    deadline, flagged `is_estimated`.
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
    where
        abs({{ dbt.datediff('charges.created_at', 'unlinked_paid_invoices.paid_at', 'second') }})
        <= 86400
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
        project_id,
        case when coalesce(is_paid_out_of_band, false) then 'paid_out_of_band'
            else 'invoice_payment' end
            as transaction_type,
        invoice_id as transaction_id,
        paid_at as occurred_at,
        currency,
        amount_paid as amount,
        exists(
            select 1
            from guessed_invoice_charges
            where guessed_invoice_charges.project_id = paid_invoices.project_id
                and guessed_invoice_charges.invoice_id = paid_invoices.invoice_id
        ) as is_estimated
    from paid_invoices
    union all
    select
        project_id,
        'standalone_charge' as transaction_type,
        charge_id as transaction_id,
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
        closed_at as occurred_at,
        currency,
        -(amount + fee) as amount,
        is_estimated
    from lost_disputes
)

select * from final
