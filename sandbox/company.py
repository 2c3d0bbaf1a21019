"""A seeded synthetic SaaS company: every Stripe object of its billing history, and mutations."""

from __future__ import annotations

import copy
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox import objects
from sandbox.active_shapes import add_zero_mrr_and_scheduled_shapes
from sandbox.catalog import COUPONS, DAY, PLANS, PRODUCTS, PlanSpec
from sandbox.collection_shapes import add_collection_shapes
from sandbox.history import HistorySimulator
from sandbox.item_mutations import ItemMutations
from sandbox.mutations import CompanyMutations
from sandbox.objects import Obj
from sandbox.pricing_shapes import add_pricing_shapes
from sandbox.retired_coupons import end_forever_promotion
from sandbox.taxes import add_vat_subscriptions
from sandbox.unread_events import UNREAD_OBJECT_TYPES, add_unread_events

OBJECT_TYPES = ("customer", "subscription", "subscription_item", "invoice", "line_item", "charge",
                "refund", "price", "product", "coupon", "discount", "event", "dispute",
                "credit_note", "tax_rate", *UNREAD_OBJECT_TYPES)

# Substrings of the planted personal data: none of them may ever reach the warehouse.
PLANTED_PII_MARKERS = ["Planted Person", "+1-555-PLANTED", "Planted Street", "Plantedville",
                       "PL4 NT3D", "PLANTEDFP"]

EVENT_RETENTION = 30 * DAY  # Stripe returns events of the last 30 days only

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class CompanyConfig:
    """What to generate: size, history length, seed, the present moment and the mode."""

    customers: int = 2000
    years: int = 3
    seed: int = 42
    now: int | None = None  # unix seconds; default: the current time
    livemode: bool = False


class Company(CompanyMutations, ItemMutations):
    """All Stripe objects of one account, by type, with lookup by id."""

    def __init__(self, now: int, livemode: bool, seed: int) -> None:
        self.now = now
        self.livemode = livemode
        self.objects: dict[str, list[Obj]] = {t: [] for t in OBJECT_TYPES}
        # Bumped per type on every change, so that listing indexes of that type are rebuilt.
        self.versions: dict[str, int] = dict.fromkeys(OBJECT_TYPES, 0)
        self._by_id: dict[str, dict[str, Obj]] = {t: {} for t in OBJECT_TYPES}
        self._counters: dict[str, int] = {}
        self._id_tag = "".join(_ID_ALPHABET[(seed * 7 + i * 13) % 62] for i in range(4))
        self._pii_numbers: dict[str, int] = {}
        self._subscriptions_by_customer: dict[str, list[Obj]] = {}
        self._customer_positions: dict[str, int] = {}
        self._shared: dict[tuple, Obj] = {}
        # deleted subscription items (the API 404s), each with its `removed_at`
        self.removed_items: dict[str, Obj] = {}
        # discounts removed or replaced (sandbox/discount_changes.py, replace_item_discounts):
        # {subscription, item (None: the subscription's), at, removed: the discounts taken off}.
        # Stripe keeps no record older than its 30 days of events; tests read the truth here.
        self.discount_changes: list[Obj] = []
        # proration lines of mid-period seat changes waiting for the next invoice, by subscription
        self.pending_prorations: dict[str, list] = {}
        self._payers: dict[str, tuple[Obj, Obj]] = {}
        self._plans = {p.key: p for p in PLANS}
        self._price_ids: dict[str, str] = {}
        self._live = False  # False while generating history: old events are not kept
        # Deleted coupons: neither listed nor retrievable, yet a discount made from one still
        # expands to it (Stripe keeps the coupon on its discounts).
        self.deleted_coupons: dict[str, Obj] = {}

    @property
    def account_id(self) -> str:
        """The id of the Stripe account this company bills with."""
        return f"acct_1{self._id_tag}SANDBOX"

    def get(self, object_type: str, object_id: str) -> Obj | None:
        """The object of that type and id, or None."""
        return self._by_id[object_type].get(object_id)

    def new_id(self, prefix: str) -> str:
        """A new Stripe-looking id, deterministic for the seed and creation order."""
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}_1{self._id_tag}{n:010d}"

    def touch(self, *object_types: str) -> None:
        """Note that objects of these types changed in place (status, deletion, ...)."""
        for object_type in object_types:
            self.versions[object_type] += 1

    def add(self, object_type: str, obj: Obj) -> None:
        """Store a new object."""
        self.objects[object_type].append(obj)
        self._by_id[object_type][obj["id"]] = obj
        if object_type == "subscription":
            self._subscriptions_by_customer.setdefault(obj["customer"], []).append(obj)
        self.versions[object_type] += 1

    def emit(self, event_type: str, at: int, obj: Obj, previous_attributes: Obj | None = None,
             **overrides: object) -> Obj | None:
        """Record an event about `obj` (with `overrides`: its state then) at `at`.

        Generated history keeps only the last 30 days of events, as Stripe does.
        """
        if not self._live and at < self.now - EVENT_RETENTION:
            return None
        snapshot = copy.deepcopy(dict(obj, **overrides)) if self._live else dict(obj, **overrides)
        evt = objects.event(self.new_id("evt"), event_type, at, snapshot, self.livemode,
                            previous_attributes)
        self.add("event", evt)
        return evt

    def subscriptions_of(self, customer_id: str) -> list[Obj]:
        """The customer's subscriptions, oldest first."""
        return self._subscriptions_by_customer.get(customer_id, [])

    def register_customer(self, cust: Obj, pii_number: int) -> None:
        """Store a new customer and remember which planted identity it carries."""
        self._pii_numbers[cust["id"]] = pii_number
        self._customer_positions[cust["id"]] = len(self.objects["customer"])
        self.add("customer", cust)

    def replace_customer(self, customer_id: str, new: Obj) -> None:
        """Put `new` in the customer's place (references to the old dict stay as they were)."""
        self.objects["customer"][self._customer_positions[customer_id]] = new
        self._by_id["customer"][customer_id] = new
        self.touch("customer")

    def pii_number(self, customer_id: str) -> int:
        """The planted identity number of a customer (0 if unknown)."""
        return self._pii_numbers.get(customer_id, 0)

    def shared(self, key: tuple, build: Callable[[], Obj]) -> Obj:
        """One nested value shared by every object that holds an equal one (saves memory)."""
        value = self._shared.get(key)
        if value is None:
            value = self._shared[key] = build()
        return value

    def payer(self, customer_obj: Obj) -> tuple[Obj, Obj]:
        """The customer's card payer details, built once and shared by all its charges."""
        payer = self._payers.get(customer_obj["id"])
        if payer is None:
            payer = objects.payer_details(customer_obj, self.pii_number(customer_obj["id"]))
            self._payers[customer_obj["id"]] = payer
        return payer

    def plan(self, key: str) -> PlanSpec:
        """The catalog plan behind a price lookup key."""
        return self._plans[key]

    def price_by_key(self, key: str) -> Obj:
        """The price object of a catalog plan."""
        return self._by_id["price"][self._price_ids[key]]

    def add_price(self, spec: PlanSpec, at: int) -> Obj:
        """Add a price outside the catalog (a scenario's own currency, say) under an existing
        catalog product; `create_subscription` then takes its id."""
        product = next(p for p in self.objects["product"] if p["name"] == PRODUCTS[spec.product])
        price = objects.price(self.new_id("price"), spec, product["id"], at, self.livemode)
        self._plans[spec.key] = spec
        self._price_ids[spec.key] = price["id"]
        self.add("price", price)
        return price

    def _create_catalog(self, at: int) -> None:
        product_ids = {}
        for key, name in PRODUCTS.items():
            pid = self.new_id("prod")
            product_ids[key] = pid
            self.add("product", objects.product(pid, name, at, self.livemode, None))
        for spec in PLANS:
            pid = self.new_id("price")
            self._price_ids[spec.key] = pid
            self.add("price", objects.price(pid, spec, product_ids[spec.product], at,
                                            self.livemode))
        for product in self.objects["product"]:
            product["default_price"] = next(
                p["id"] for p in self.objects["price"] if p["product"] == product["id"])
        for spec in COUPONS:
            self.add("coupon", objects.coupon(spec, at, self.livemode))

    def _count_redemptions(self) -> None:
        counts: dict[str, int] = {}
        for sub in self.objects["subscription"]:
            for disc in sub["discounts"]:
                cid = disc["source"]["coupon"]["id"]
                counts[cid] = counts.get(cid, 0) + 1
        for coupon in self.objects["coupon"]:
            coupon["times_redeemed"] = counts.get(coupon["id"], 0)


def generate_company(cfg: CompanyConfig) -> Company:
    """Generate the company's whole history up to `cfg.now`, deterministically for the seed."""
    now = cfg.now if cfg.now is not None else int(time.time())
    company = Company(now, cfg.livemode, cfg.seed)
    start = now - cfg.years * 365 * DAY
    company._create_catalog(start - 30 * DAY)
    simulator = HistorySimulator(company, random.Random(cfg.seed), start)
    # Millions of new dicts, no cycles: the cyclic GC would rescan them again and again.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for n in range(1, cfg.customers + 1):
            simulator.simulate_customer(n)
        simulator.refund_some_charges()
        add_zero_mrr_and_scheduled_shapes(company, random.Random(cfg.seed * 1_000 + 14))
        add_collection_shapes(company, random.Random(cfg.seed * 1_000 + 15))
        add_vat_subscriptions(company, random.Random(cfg.seed * 1_000 + 16))
        add_pricing_shapes(company, random.Random(cfg.seed * 1_000 + 6))
        add_unread_events(company, random.Random(cfg.seed * 1_000 + 18))
    finally:
        # Freeze the history into the permanent generation: later collections (while
        # serving) then never rescan millions of long-lived objects.
        gc.freeze()
        if gc_was_enabled:
            gc.enable()
    company._count_redemptions()
    end_forever_promotion(company)
    company._live = True
    return company


__all__ = ["PLANTED_PII_MARKERS", "Company", "CompanyConfig", "generate_company"]
