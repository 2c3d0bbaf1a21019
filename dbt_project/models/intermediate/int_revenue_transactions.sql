{#-
  Money collected, one row per transaction (METRICS-SPEC `stripe_revenue`):
  - a paid invoice counts its `amount_paid` when it was paid (`status_transitions.paid_at`);
  - a succeeded charge counts only when standalone, i.e. it paid no invoice: not named by
    `charge.invoice` (before 2025-03-31), by an invoice's `payments` or `charge`/
    `payment_intent`, and (when the invoice's payments were not synced) not matching the
    customer, currency and amount of an invoice paid within a day of it;
  - a refund (succeeded or pending) subtracts its amount when it was issued.
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

invoice_payments as (
    select * from {{ ref('stg_stripe__invoice_payments') }}
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
        coalesce(paid_at, finalized_at, created_at) as paid_at
    from invoices
    where is_paid and amount_paid_minor > 0
),

-- each link is its own equi-join: one `or`-ed join condition would compare every pair
charges_named_by_invoices as (
    select project_id, charge_id from invoice_payments where charge_id is not null
    union
    select project_id, charge_id from paid_invoices where charge_id is not null
    union
    select charges.project_id, charges.charge_id
    from charges
    inner join paid_invoices
        on charges.project_id = paid_invoices.project_id
        and charges.payment_intent_id = paid_invoices.payment_intent_id
),

charges_matching_paid_invoices as (
    select charges.project_id, charges.charge_id
    from charges
    inner join paid_invoices
        on charges.project_id = paid_invoices.project_id
        and charges.customer_id = paid_invoices.customer_id
        and charges.currency = paid_invoices.currency
        and charges.amount_captured_minor = paid_invoices.amount_paid_minor
    where abs({{ dbt.datediff('charges.created_at', 'paid_invoices.paid_at', 'second') }}) <= 86400
),

invoice_charges as (
    select * from charges_named_by_invoices
    union
    select * from charges_matching_paid_invoices
),

standalone_charges as (
    select charges.*
    from charges
    left join invoice_charges
        on charges.project_id = invoice_charges.project_id
        and charges.charge_id = invoice_charges.charge_id
    where charges.status = 'succeeded'
        and charges.is_captured
        and charges.invoice_id is null
        and invoice_charges.charge_id is null
),

final as (
    select
        project_id,
        'invoice_payment' as transaction_type,
        invoice_id as transaction_id,
        paid_at as occurred_at,
        currency,
        amount_paid as amount
    from paid_invoices
    union all
    select
        project_id,
        'standalone_charge' as transaction_type,
        charge_id as transaction_id,
        created_at as occurred_at,
        currency,
        amount_captured as amount
    from standalone_charges
    union all
    select
        project_id,
        'refund' as transaction_type,
        refund_id as transaction_id,
        created_at as occurred_at,
        currency,
        -amount as amount
    from refunds
    where status in ('succeeded', 'pending')
)

select * from final
