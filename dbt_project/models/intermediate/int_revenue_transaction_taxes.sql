{#-
  The tax inside each money transaction of int_revenue_transactions (issue 15 case 2), in the
  transaction's currency and with its sign; `stripe_revenue` is gross (tax included), and
  fct_revenue_daily subtracts this for revenue excluding tax:
  - an invoice payment holds the invoice's tax (total - total_excluding_tax) in proportion to
    what was paid: all of it when the invoice is paid in full;
  - a refund made by a credit note returns the credit note's own tax in the proportion of
    the credit note it refunds (`total_taxes` x refunded / total): a credit note is written
    line by line, each credited line with its own tax rates, and a custom line (a service
    credit) may carry none, so EUR 20 credited without tax on an invoice of EUR 119 holding
    19 of VAT returns no tax, not 3.19;
  - any other refund returns tax in the proportion of the invoice its charge paid (linked
    through the invoice's payments, by charge or PaymentIntent, or `charge.invoice` before
    2025-03-31): EUR 59.50 refunded of EUR 119 that held 19 of VAT returns 9.50;
  - a standalone charge, and a refund of one, carry no tax Stripe reports: 0.
  Each share is one division rounded to a millionth, half away from zero (`divide_money`).
-#}
with transactions as (
    select * from {{ ref('int_revenue_transactions') }}
),

invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
    where tax_minor <> 0 and total_minor > 0
),

refunds as (
    select * from {{ ref('stg_stripe__refunds') }}
),

charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

invoice_payments as (
    select * from {{ ref('stg_stripe__invoice_payments') }}
),

credit_notes as (
    select * from {{ ref('stg_stripe__credit_notes') }}
    where total_minor > 0
),

credit_note_refunds as (
    select * from {{ ref('stg_stripe__credit_note_refunds') }}
),

-- the invoice each charge paid: its payments (current API: by `payment.charge`, or by
-- `payment.payment_intent`, the charge's PaymentIntent, as Billing pays invoices; only the
-- first was read, and refunds of charges paid through a PaymentIntent returned no tax),
-- else `charge.invoice` (older)
charge_invoices as (
    select project_id, charge_id, invoice_id from invoice_payments where charge_id is not null
    union
    select charges.project_id, charges.charge_id, invoice_payments.invoice_id
    from charges
    inner join invoice_payments
        on charges.project_id = invoice_payments.project_id
        and charges.payment_intent_id = invoice_payments.payment_intent_id
    union
    select project_id, charge_id, invoice_id from charges where invoice_id is not null
),

invoice_payment_taxes as (
    select
        transactions.project_id,
        transactions.transaction_type,
        transactions.transaction_id,
        {{ divide_money('transactions.amount * invoices.tax', 'invoices.total') }} as tax_amount
    from transactions
    inner join invoices
        on transactions.project_id = invoices.project_id
        and transactions.invoice_id = invoices.invoice_id
    where transactions.transaction_type = 'invoice_payment'
),

-- a refund a credit note made: the credit note's tax, pro rata of what it refunds
credit_note_refund_taxes as (
    select {{ first_row_of(['transactions.project_id', 'transactions.transaction_id']) }}
        transactions.project_id,
        transactions.transaction_type,
        transactions.transaction_id,
        {{ divide_money('transactions.amount * credit_notes.tax', 'credit_notes.total') }}
            as tax_amount
    from transactions
    inner join credit_note_refunds
        on transactions.project_id = credit_note_refunds.project_id
        and transactions.transaction_id = credit_note_refunds.refund_id
    inner join credit_notes
        on credit_note_refunds.project_id = credit_notes.project_id
        and credit_note_refunds.credit_note_id = credit_notes.credit_note_id
    where transactions.transaction_type = 'refund'
    -- one refund named by two credit notes (should not happen): one of them
    {{ first_row_by(['transactions.project_id', 'transactions.transaction_id'],
        'credit_notes.credit_note_id') }}
),

-- the invoices each refund's charge paid. Performance: materialized, so that each refund
-- finds its invoices by charge first; left to reorder, DuckDB joined the refunds to every
-- taxed invoice of their project and only then to charge_invoices (20k refresh: 2.2M
-- intermediate rows, most of the model's time)
refund_invoices as materialized (
    select refunds.project_id, refunds.refund_id, charge_invoices.invoice_id
    from refunds
    inner join charge_invoices
        on refunds.project_id = charge_invoices.project_id
        and refunds.charge_id = charge_invoices.charge_id
),

refund_taxes as (
    select {{ first_row_of(['transactions.project_id', 'transactions.transaction_id']) }}
        transactions.project_id,
        transactions.transaction_type,
        transactions.transaction_id,
        {{ divide_money('transactions.amount * invoices.tax', 'invoices.total') }} as tax_amount
    from transactions
    inner join refund_invoices
        on transactions.project_id = refund_invoices.project_id
        and transactions.transaction_id = refund_invoices.refund_id
    inner join invoices
        on refund_invoices.project_id = invoices.project_id
        and refund_invoices.invoice_id = invoices.invoice_id
    left join credit_note_refund_taxes
        on transactions.project_id = credit_note_refund_taxes.project_id
        and transactions.transaction_id = credit_note_refund_taxes.transaction_id
    where transactions.transaction_type = 'refund'
        and credit_note_refund_taxes.transaction_id is null
    -- a charge named by two sources for different invoices (should not happen): one of them
    {{ first_row_by(['transactions.project_id', 'transactions.transaction_id'],
        'invoices.invoice_id') }}
),

final as (
    select * from invoice_payment_taxes
    union all
    select * from refund_taxes
    union all
    select * from credit_note_refund_taxes
)

select * from final
