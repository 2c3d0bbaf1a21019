{#-
  Invoices in dunning, as intervals: from the first failed payment attempt (an
  `invoice.payment_failed` event or a failed charge naming the invoice; for an open invoice
  already attempted with no such record, its finalization) until it is paid, voided or marked
  uncollectible.
-#}
with invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

failures as (
    select * from {{ ref('int_payment_failures') }}
),

payment_failed_events as (
    select project_id, object_id as invoice_id, created_at
    from {{ ref('stg_stripe__events') }}
    where event_type = 'invoice.payment_failed'
),

first_failures as (
    select project_id, invoice_id, min(occurred_at) as first_failed_at
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
        invoices.customer_id,
        invoices.currency,
        invoices.amount_remaining,
        coalesce(
            first_failures.first_failed_at,
            case
                when invoices.status = 'open' and invoices.attempt_count > 0
                    then coalesce(invoices.finalized_at, invoices.created_at)
            end
        ) as dunning_started_at,
        coalesce(invoices.paid_at, invoices.voided_at, invoices.marked_uncollectible_at)
            as dunning_ended_at
    from invoices
    left join first_failures
        on invoices.project_id = first_failures.project_id
        and invoices.invoice_id = first_failures.invoice_id
    where first_failures.first_failed_at is not null
        or (invoices.status = 'open' and invoices.attempt_count > 0)
)

select * from final
