"""The event types a sync lists from `GET /v1/events`: the only list of them (issue 18).

Real accounts carry many event types a revenue warehouse never reads (`payment_intent.*`,
`payment_method.*`, `setup_intent.*`, `checkout.session.*`, `invoiceitem.*`,
`invoice.created`, `charge.updated`, ...): on a busy account they are a large share of the
events, and `/v1/events` is the listing with the most pages. A sync lists only:

* MODEL_EVENT_TYPES, the types the dbt models read (tests/pipelines/test_event_types.py scans
  the dbt SQL for event type literals and fails on one missing here), and
* REFETCH_EVENT_TYPES, the types a refresh needs to find an object created before its window
  that changed since (it re-fetches what they name, source.StripeExtraction): each change a
  model reads comes with one of them (`invoice.updated` included: a partial payment or a
  credit note changes an open or paid invoice with no other event naming the invoice). Left
  out: `invoice.created` (a new invoice is in the window's invoice listing) and
  `charge.updated` (description, metadata, balance transaction: nothing the models read).
  `price.created`, `product.created` and `coupon.created` name objects created in the
  window, which the refresh lists anyway.

`types[]` takes exact names only (up to 20 per request; only `type` takes a `*` wildcard, and
not together with `types`), so a prefix a model reads (`customer.subscription.%`) is spelled
out in full. More than 20 types are listed as several listings, run concurrently.
"""

MAX_TYPES_PER_REQUEST = 20  # Stripe's limit on `types[]` of /v1/events

# Every `customer.subscription.*` type Stripe sends: the models read the prefix.
SUBSCRIPTION_EVENT_TYPES = frozenset({
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.paused",
    "customer.subscription.resumed", "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired", "customer.subscription.trial_will_end",
})

MODEL_EVENT_TYPES = SUBSCRIPTION_EVENT_TYPES | {
    "customer.deleted",  # int_customer_lifespans
    "invoice.payment_failed",  # int_invoices_in_dunning, int_payment_failures
    "charge.failed",  # int_payment_failures
    "charge.succeeded", "charge.dispute.closed",  # int_revenue_transactions
}

REFETCH_EVENT_TYPES = frozenset({
    "customer.created", "customer.updated", "customer.deleted",
    "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
    "invoice.payment_failed", "invoice.voided", "invoice.marked_uncollectible",
    "charge.succeeded", "charge.failed", "charge.pending", "charge.captured",
    "charge.expired", "charge.refunded",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated",
    "refund.created", "refund.updated", "refund.failed", "charge.refund.updated",
    "price.updated", "price.deleted", "product.updated", "product.deleted",
    "coupon.updated", "coupon.deleted",
})

# Event types whose object the webhook applier merges into the raw tables
# (pipelines/webhooks_apply.py); a sync lists them too.
WEBHOOK_APPLIED_TYPES = frozenset({
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "invoice.payment_succeeded", "invoice.payment_failed",
    "customer.created", "customer.updated", "customer.deleted",
    "charge.failed", "charge.succeeded", "charge.refunded",
    # money collected (issue 15): an invoice paid (out of band too), a bank debit pending,
    # refunds, and disputes with their withdrawal and outcome
    "invoice.paid", "charge.pending", "refund.created", "refund.updated",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    # a payment of an open invoice that leaves some of it to pay (Stripe's partial payments)
    # sends no `invoice.paid`: `invoice_payment.paid` (its object an invoice payment, whose
    # invoice is re-read with its payments) and `invoice.updated` (`amount_paid`,
    # `amount_remaining`; also a credit note lowering an invoice). Without them the charge
    # looked like a standalone one until the invoice was paid in full.
    "invoice_payment.paid", "invoice.updated",
    # a credit note's refund returns the credit note's own tax (fct_revenue_daily)
    "credit_note.created",
})

# Sorted, so that the listings (and their requests) are the same from one sync to the next.
LISTED_EVENT_TYPES: tuple[str, ...] = tuple(sorted(
    MODEL_EVENT_TYPES | REFETCH_EVENT_TYPES | WEBHOOK_APPLIED_TYPES))


def type_groups(types: tuple[str, ...] = LISTED_EVENT_TYPES,
                size: int = MAX_TYPES_PER_REQUEST) -> list[tuple[str, ...]]:
    """`types` cut into as few listings as Stripe allows, of near-equal size (each listing
    pages on its own; equal sizes keep them finishing together)."""
    count = -(-len(types) // size)
    return [types[i::count] for i in range(count)] if types else []


EVENT_TYPE_GROUPS = type_groups()
