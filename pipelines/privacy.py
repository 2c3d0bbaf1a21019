"""The privacy allowlist: keep the billing fields revenue needs, drop everything else.

Every Stripe object (a dict with an ``object`` name) keeps only the keys listed for its
type, recursively, wherever it appears: top level, expanded, in lists, inside event
payloads. Plain nested dicts (``recurring``, ``period``, ``parent``...) under a kept key keep
their keys except the personal ones in ``DROPPED_EVERYWHERE``. Metadata is dropped: its keys
and values may hold anything. The one exception is the segments' (:func:`allowlist_keeping`):
the customer and subscription metadata keys a project's owner named for segments
(`stripe-warehouse segments`), those keys' values only; the owner decides that they are not
personal data. A customer's postal address keeps its country only (``PARTIAL_FIELDS``): an
ISO country code names no one, and revenue is split by it.
"""

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson

_BASE = frozenset({"id", "object", "created", "livemode", "currency", "status", "deleted"})
_AMOUNTS = frozenset({"amount", "amount_decimal", "amount_paid", "amount_requested", "amount_due"})

KEPT_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset(
        {"id", "object", "created", "email", "currency", "delinquent", "deleted", "livemode",
         "balance", "discount", "tax_exempt", "test_clock", "address"}
    ),
    "subscription": _BASE | {
        "customer", "items", "latest_invoice", "start_date", "billing_cycle_anchor",
        "cancel_at", "cancel_at_period_end", "canceled_at", "ended_at", "trial_start",
        "trial_end", "discounts", "discount", "collection_method", "days_until_due",
        "current_period_start", "current_period_end", "plan", "quantity", "pause_collection",
        "schedule", "test_clock", "billing_mode",
    },
    "subscription_item": _BASE | {
        "price", "plan", "quantity", "subscription", "discounts", "current_period_start",
        "current_period_end",
    },
    "price": _BASE | {
        "active", "unit_amount", "unit_amount_decimal", "recurring", "product", "type",
        "billing_scheme", "tiers", "tiers_mode", "transform_quantity", "lookup_key",
        "nickname", "custom_unit_amount", "tax_behavior", "currency_options",
    },
    "plan": _BASE | _AMOUNTS | {
        "active", "interval", "interval_count", "product", "usage_type", "billing_scheme",
        "tiers", "tiers_mode", "trial_period_days", "nickname", "transform_usage", "meter",
    },
    "product": _BASE | {"active", "name", "default_price", "type", "updated", "unit_label"},
    "coupon": _BASE | {
        "amount_off", "percent_off", "duration", "duration_in_months", "max_redemptions",
        "redeem_by", "times_redeemed", "valid", "name", "applies_to",
    },
    "promotion_code": _BASE | {"code", "coupon", "promotion", "active", "customer"},
    "discount": frozenset(
        {"id", "object", "start", "end", "coupon", "source", "customer", "subscription",
         "subscription_item", "invoice", "invoice_item", "promotion_code", "checkout_session"}
    ),
    "invoice": _BASE | _AMOUNTS | {
        "customer", "amount_remaining", "amount_shipping", "subtotal",
        "subtotal_excluding_tax", "total", "total_excluding_tax", "total_discount_amounts",
        "total_taxes", "total_pretax_credit_amounts", "starting_balance", "ending_balance",
        "period_start", "period_end", "billing_reason", "collection_method", "discounts",
        "discount", "due_date", "effective_at", "lines", "parent", "status_transitions",
        "attempt_count", "attempted", "number", "payments", "subscription", "paid",
        "latest_revision", "from_invoice", "auto_advance", "next_payment_attempt",
        "pre_payment_credit_notes_amount", "post_payment_credit_notes_amount",
        "billing_cycle_anchor", "test_clock", "paid_out_of_band", "tax",
        # the charge / PaymentIntent that paid it, on API versions before 2025-03-31
        "charge", "payment_intent",
    },
    "line_item": _BASE | {
        "amount", "discount_amounts", "discountable", "discounts", "invoice", "period",
        "quantity", "subscription", "parent", "pricing", "subtotal", "quantity_decimal",
        "taxes", "pretax_credit_amounts", "price", "plan", "proration", "type",
        # tax of API versions before 2025-03-31 (events keep the version they were made in)
        "tax_amounts", "amount_excluding_tax", "unit_amount_excluding_tax",
    },
    "charge": _BASE | {
        "amount", "amount_captured", "amount_refunded", "customer", "paid", "captured",
        "refunded", "disputed", "invoice", "payment_intent", "balance_transaction",
        "failure_code", "refunds", "payment_method", "application_fee_amount",
    },
    "refund": _BASE | {"amount", "charge", "reason", "payment_intent", "balance_transaction"},
    # the link from an invoice to what paid it (`payment.charge` / `payment.payment_intent`)
    "invoice_payment": _BASE | _AMOUNTS | {"invoice", "is_default", "payment",
                                           "status_transitions"},
    # what a credit note credits and how (its refunds), with its tax (`total_taxes`, before
    # 2025-03-31 `tax_amounts`): a refund it makes returns its tax, not the invoice's share
    "credit_note": _BASE | {
        "amount", "invoice", "customer", "type", "effective_at", "voided_at", "subtotal",
        "subtotal_excluding_tax", "total", "total_excluding_tax", "total_taxes", "tax_amounts",
        "refunds", "refund", "pre_payment_amount", "post_payment_amount", "out_of_band_amount",
        "credit_amount", "discount_amount", "amount_shipping",
    },
    # `evidence_details` holds dates and counts only (`due_by` dates a lost dispute whose
    # closing event is gone); the evidence itself (`evidence`) stays out
    "dispute": _BASE | {"amount", "charge", "payment_intent", "reason", "balance_transactions",
                        "is_charge_refundable", "evidence_details"},
    # a dispute's withdrawal (amount and dispute fee) and reinstatement
    "balance_transaction": _BASE | {"amount", "fee", "net", "type", "reporting_category",
                                    "available_on"},
    "event": frozenset(
        {"id", "object", "created", "livemode", "api_version", "type", "data",
         "pending_webhooks"}
    ),
    "list": frozenset({"object", "data", "has_more", "url", "total_count"}),
    "test_helpers.test_clock": _BASE | {"frozen_time"},
}
# Kept keys of an object whose value is a dict of which only some keys are kept: the
# customer's `address` keeps its ISO country code (segments, issue 22); street, city, postal
# code and state stay out. Any other `address` (shipping, billing details, a plain nested
# dict) is still dropped whole (DROPPED_EVERYWHERE).
PARTIAL_FIELDS: dict[str, dict[str, frozenset[str]]] = {
    "customer": {"address": frozenset({"country"})},
}

# Object types not listed above (payment records, tax rates...) keep ids, amounts and dates.
FALLBACK_FIELDS = _BASE | _AMOUNTS | {"invoice", "is_default", "payment", "status_transitions"}

# Personal or free-text keys dropped from plain nested dicts wherever they appear.
DROPPED_EVERYWHERE = frozenset(
    {"metadata", "name", "address", "phone", "email", "shipping", "billing_details",
     "payment_method_details", "description", "receipt_email", "customer_name",
     "customer_address", "customer_phone", "customer_shipping", "customer_tax_ids",
     "tax_id", "tax_ids", "card", "bank_account", "comment", "statement_descriptor"}
)


# Values that may hold Stripe objects or personal keys; anything else is kept as it is.
_CONTAINERS = (dict, list)


def allowlist(value: Any) -> Any:
    """Return ``value`` with every Stripe object reduced to its allowlisted fields."""
    if isinstance(value, list):
        return [allowlist(v) if isinstance(v, _CONTAINERS) else v for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("object")
    # Scalars are kept without a call each: most kept values are scalars, and a call per
    # value was most of the allowlist workers' CPU (bench/results/profile_backfill.txt).
    if isinstance(kind, str):
        if kind == "event":
            return _allowlist_event(value)
        kept = KEPT_FIELDS.get(kind, FALLBACK_FIELDS)
        reduced = {k: allowlist(v) if isinstance(v, _CONTAINERS) else v
                   for k, v in value.items() if k in kept}
        partial = PARTIAL_FIELDS.get(kind)
        if partial:
            _keep_partial_fields(reduced, partial)
        return reduced
    return {k: allowlist(v) if isinstance(v, _CONTAINERS) else v
            for k, v in value.items() if k not in DROPPED_EVERYWHERE}


def _keep_partial_fields(obj: dict[str, Any], partial: dict[str, frozenset[str]]) -> None:
    """Reduce each partially kept dict of ``obj`` to its listed keys with a text or null value
    (in place); a value of another shape than Stripe's (not a dict, not null) is dropped."""
    for key, subkeys in partial.items():
        if key not in obj:
            continue
        value = obj[key]
        if isinstance(value, dict):
            obj[key] = {k: v for k, v in value.items()
                        if k in subkeys and (v is None or isinstance(v, str))}
        elif value is not None:
            del obj[key]


# The metadata keys a project keeps, by object type ("customer", "subscription"): the
# registry's `segment_metadata_keys` (stripe_warehouse.registry.Connection).
SegmentKeys = dict[str, tuple[str, ...]]
SEGMENT_OBJECTS = ("customer", "subscription")


def allowlist_keeping(value: Any, segment_keys: SegmentKeys | None) -> Any:
    """:func:`allowlist`, then the named metadata keys of each customer and subscription put
    back (their values only; every other metadata key stays out). Without keys it is
    :func:`allowlist` itself, so projects naming none pay nothing for it."""
    kept = allowlist(value)
    if segment_keys:
        _keep_named_metadata(value, kept, segment_keys)
    return kept


def _keep_named_metadata(original: Any, kept: Any, segment_keys: SegmentKeys) -> None:
    """Walks the object and its allowlisted copy side by side (the allowlist keeps every list
    item and the keys it keeps have the same values' shapes)."""
    if isinstance(original, list) and isinstance(kept, list):
        for item, kept_item in zip(original, kept, strict=False):
            _keep_named_metadata(item, kept_item, segment_keys)
        return
    if not (isinstance(original, dict) and isinstance(kept, dict)):
        return
    kind = original.get("object")  # an event's `data` holds the object under this key
    named = segment_keys.get(kind) if isinstance(kind, str) else None
    metadata = original.get("metadata")
    if named and isinstance(metadata, dict):
        values = {key: metadata[key] for key in named if isinstance(metadata.get(key), str)}
        if values:
            kept["metadata"] = values
    for key, value in kept.items():
        if isinstance(value, _CONTAINERS) and key != "metadata":
            _keep_named_metadata(original.get(key), value, segment_keys)


def _allowlist_event(event: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in event.items() if k in KEPT_FIELDS["event"] and k != "data"}
    payload = event.get("data") or {}
    obj = payload.get("object")
    data: dict[str, Any] = {"object": allowlist(obj)}
    if isinstance(payload.get("previous_attributes"), dict) and isinstance(obj, dict):
        # Previous attributes are a partial copy of the object: same allowlist as the object.
        partial = dict(payload["previous_attributes"], object=obj.get("object"))
        data["previous_attributes"] = {
            k: v for k, v in allowlist(partial).items() if k in payload["previous_attributes"]
        }
    kept["data"] = data
    return kept


def allowlisted_json(body: bytes, segment_keys: SegmentKeys | None = None) -> bytes:
    """The JSON text of an API answer with :func:`allowlist_keeping` applied (run in worker
    processes)."""
    return orjson.dumps(allowlist_keeping(orjson.loads(body), segment_keys))


PARENT_CHECK_SECONDS = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit as soon as the syncing process is gone.

    A SIGKILLed parent (OOM kill, Dagster run termination) never shuts the pool down, and the
    workers, blocked on a queue whose write end they hold themselves, would wait forever. When
    the parent dies the worker is re-parented, so ``getppid`` changes. (PR_SET_PDEATHSIG is no
    substitute: it fires when the spawning *thread* exits, and pools spawn from any thread.)
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_workers_deaf_to_ctrl_c(pool: ProcessPoolExecutor, workers: int) -> None:
    """Start the pool's workers now, with SIGINT blocked (they inherit the mask through exec).

    Ctrl-C reaches the terminal's whole foreground process group: each worker printed its own
    KeyboardInterrupt traceback (or died mid-start) under the CLI's one line. The syncing
    process alone handles the interrupt and shuts the pool down. Python handles signals in the
    main thread only; from another thread the workers start on demand as before.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    # Blocked, not ignored: an interrupt arriving meanwhile stays pending for this process
    # and is raised here once unblocked, while the workers keep the blocked mask for life.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(workers):  # each submit starts a worker while none is idle yet
            pool.submit(os.getpid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class AllowlistingDecoder:
    """Decodes API answers with the allowlist applied, in worker processes.

    Parsing a page and allowlisting it is most of a backfill's CPU time (pages are ~250 KB,
    mostly fields we drop); in the syncing process it ran under the GIL beside the listings
    and dlt, which then fell behind the rate limit. Workers hand back the small allowlisted
    JSON. Use as a context manager; call it with a response body.
    """

    # what the reader hands on is already allowlisted (StripeReader.delivers_allowlisted)
    allowlists = True

    def __init__(self, processes: int | None = None) -> None:
        workers = processes or os.cpu_count() or 2
        # spawn, not fork: the syncing process runs threads, which fork does not copy safely.
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        _start_workers_deaf_to_ctrl_c(self._pool, workers)

    def __call__(self, body: bytes, segment_keys: SegmentKeys | None = None) -> Any:
        """The allowlisted, parsed answer (with the project's named metadata keys)."""
        return orjson.loads(self._pool.submit(allowlisted_json, body, segment_keys).result())

    def for_project(self, segment_keys: SegmentKeys | None) -> "ProjectDecoder":
        """This decoder keeping one project's named metadata keys (a batch shares the pool)."""
        return ProjectDecoder(self, segment_keys)

    def __enter__(self) -> "AllowlistingDecoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProjectDecoder:
    """An :class:`AllowlistingDecoder` for one project: its answers keep the project's named
    metadata keys (what a reader's ``decode(body)`` is called with)."""

    allowlists = True

    def __init__(self, decoder: AllowlistingDecoder, segment_keys: SegmentKeys | None) -> None:
        self._decoder = decoder
        self._segment_keys = segment_keys

    def __call__(self, body: bytes) -> Any:
        return self._decoder(body, self._segment_keys)
