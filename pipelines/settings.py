"""Constants of the Stripe extraction: endpoints, paging, limits (API version: core)."""

PAGE_SIZE = 100  # Stripe's maximum `limit`

# Raw table -> list endpoint.
LIST_ENDPOINTS = {
    "customers": "/v1/customers",
    "subscriptions": "/v1/subscriptions",
    "subscription_items": "/v1/subscription_items",
    "invoices": "/v1/invoices",
    "charges": "/v1/charges",
    "refunds": "/v1/refunds",
    "disputes": "/v1/disputes",
    "credit_notes": "/v1/credit_notes",
    "prices": "/v1/prices",
    "products": "/v1/products",
    "coupons": "/v1/coupons",
    "events": "/v1/events",
}
INVOICE_LINES_ENDPOINT = "/v1/invoices/{id}/lines"
# An invoice's payments (its link to the charges / PaymentIntents that paid it) beyond the 10
# the invoice embeds.
INVOICE_PAYMENTS_ENDPOINT = "/v1/invoice_payments"
ACCOUNT_ENDPOINT = "/v1/account"

# Stripe returns `discounts[]` as ids unless expanded, and an id names no coupon: ask for the
# objects wherever a subscription or invoice is read. Events are never expanded; staging
# resolves their ids against the objects read here (stg_stripe__discounts). A subscription's
# discounts also bring their coupon (`source.coupon` is an id unless expanded): `/v1/coupons`
# does not list a deleted coupon, yet its discounts keep applying, so the discount is where
# its terms are read. An invoice's discounts bring their coupon too (`data.discounts.source.
# coupon`, four levels in a listing): after a subscription discount is removed, its invoices
# are the only objects that still show it, and a deleted coupon's terms are on it only (a
# removal older than the event window, or a replacement whose event holds ids). A listed
# subscription's latest invoice cannot (five levels): the invoice listing loads those in its
# window, and an older one with discounts is re-read whole (pipelines/source.py).
# An invoice's `payments` is includable (left out unless expanded, and never in events): it is
# the only link from an invoice to the charge that paid it on the current API
# (`charge.invoice`, `invoice.charge` and `invoice.payment_intent` are gone), so every read
# of an invoice asks for it.
# A subscription item's own discounts (`items.data.discounts`) are ids too: expanded, their
# coupon stays an id (five levels deep in a listing), read from /v1/coupons.
# An invoice line's discounts (`lines.data.discounts`: an item's own discounts apply on its
# lines) are expanded wherever an invoice is read, four levels in a listing
# (`data.lines.data.discounts`, Stripe's deepest): after an item discount is removed, its
# invoices' lines are the only place a later backfill finds it as an object (events hold ids).
# A subscription's latest invoice cannot expand them (five levels): the invoice listing reads
# those in its window, an older one with discounts is re-read whole (pipelines/source.py).
# A price's `tiers` and `currency_options` are returned only when expanded ("includable"):
# without them a tiered price, or a subscription billed in another currency than its
# price's default, cannot be valued from the price (int_price_valuations).
RETRIEVE_EXPANSIONS = {
    "subscriptions": ["discounts.source.coupon", "items.data.discounts"],
    "invoices": ["discounts.source.coupon", "payments", "lines.data.discounts"],
    "prices": ["tiers", "currency_options"],
}
# Listed subscriptions also bring their latest invoice (for a long plan it may predate the
# window), with its discounts.
LIST_EXPANSIONS = {
    "subscriptions": ["data.discounts.source.coupon", "data.latest_invoice",
                      "data.latest_invoice.discounts", "data.latest_invoice.payments",
                      "data.items.data.discounts"],
    "invoices": ["data.discounts.source.coupon", "data.payments", "data.lines.data.discounts"],
    "prices": ["data.tiers", "data.currency_options"],
}
# A subscription's items beyond the ten it embeds, paged from /v1/subscription_items.
ITEM_PAGE_EXPANSIONS = ["data.discounts"]
# An invoice's lines beyond the ten it embeds, paged from /v1/invoices/{id}/lines.
LINE_PAGE_EXPANSIONS = ["data.discounts"]


def retrieve_params(table: str) -> dict[str, list[str]]:
    """The query of a retrieve of one object of `table` (its expansions)."""
    expand = RETRIEVE_EXPANSIONS.get(table)
    return {"expand": expand} if expand else {}


# Stripe `object` name -> raw table, for objects events name.
TABLE_OF_OBJECT = {
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "credit_note": "credit_notes",
    "price": "prices",
    "product": "products",
    "coupon": "coupons",
}


def object_to_refetch(obj: dict) -> tuple[str, str] | None:
    """The raw table and id of what an event's object changed, to re-read from Stripe.

    Its own table and id; for an invoice payment (`invoice_payment.paid`, a payment of an
    invoice, partial ones included) the invoice it pays, which is stored with its payments
    (an invoice payment has no table of its own). None for objects no table keeps.
    """
    kind = obj.get("object", "")
    if kind == "invoice_payment":
        invoice = obj.get("invoice")
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else invoice
        return ("invoices", invoice_id) if invoice_id else None
    table = TABLE_OF_OBJECT.get(kind)
    return (table, obj["id"]) if table and obj.get("id") else None



# Requests per second Stripe allows (overall, per endpoint), by key mode.
RATE_LIMITS = {"live": (100.0, 25.0), "test": (25.0, 25.0)}

MIN_WORKERS = 2
MAX_WORKERS = 32  # ~100 req/s at 50-300 ms each (latency grows with load) needs ~30 in flight
MAX_ATTEMPTS = 8  # per request, for 429 / 5xx / dropped connections
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
