"""The read-only Stripe REST API over one company: routing, listing, expansion, rendering."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.balance import balance_transactions
from sandbox.company import EVENT_RETENTION
from sandbox.listing import (
    CompanyIndex,
    OrderedView,
    PageRequest,
    UnknownCursor,
    exclude,
    page,
    sequence_page,
)
from sandbox.params import created_range, expand_paths, limit_of

Obj = dict[str, Any]

EMBEDDED_LIST_LIMIT = 10
MAX_EXPAND_LEVELS = 4  # Stripe's: `data.lines.data.discounts` is the deepest on a listing
MAX_EVENT_TYPES = 20  # `types[]` of GET /v1/events

# URL segment -> object type, for the simple list/retrieve endpoints.
RESOURCES = {"customers": "customer", "subscriptions": "subscription", "invoices": "invoice",
             "charges": "charge", "refunds": "refund", "prices": "price", "products": "product",
             "coupons": "coupon", "events": "event", "subscription_items": "subscription_item",
             "disputes": "dispute", "tax_rates": "tax_rate", "credit_notes": "credit_note"}
# List filters accepted per object type (query parameter -> index filter name).
LIST_FILTERS = {"customer": ("email",), "invoice": ("customer", "subscription", "status"),
                "charge": ("customer",), "refund": ("charge",), "price": ("product", "currency"),
                "subscription": ("customer",)}
ID_PREFIXES = {"cus": "customer", "sub": "subscription", "si": "subscription_item",
               "in": "invoice", "il": "line_item", "ch": "charge", "re": "refund",
               "price": "price", "prod": "product", "evt": "event", "di": "discount",
               "dp": "dispute", "txr": "tax_rate", "cn": "credit_note"}
# Expandable fields whose ids carry no type prefix (coupon ids are chosen by the merchant).
FIELD_OBJECT_TYPES = {"coupon": "coupon"}
# Objects with a `discounts[]` of expandable ids.
HAS_DISCOUNT_IDS = frozenset({"subscription", "subscription_item", "invoice", "line_item"})
# Fields Stripe returns only when the request expands them ("includable"), by object type:
# a price's tiers and currency options; an invoice's `payments` (its link to the charges that
# paid it).
INCLUDABLE = {"price": ("tiers", "currency_options"), "invoice": ("payments",)}
# Embedded lists Stripe truncates to 10 entries, by object type.
EMBEDDED_LISTS = {"subscription": "items", "invoice": "lines", "charge": "refunds"}


class ApiError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(self, status: int, error_type: str, message: str, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.code, self.param = status, error_type, code, param

    def body(self) -> Obj:
        """The JSON body Stripe sends for this error."""
        error: Obj = {"type": self.error_type, "message": str(self)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(object_type: str, object_id: str, param: str = "id") -> ApiError:
    """Stripe's 404 for an unknown id."""
    return ApiError(404, "invalid_request_error", f"No such {object_type}: '{object_id}'",
                    "resource_missing", param)


@dataclass(frozen=True)
class Route:
    """A matched endpoint: its template (for counting), family (for limits) and handler."""

    template: str
    family: str
    handler: Callable[..., Obj]
    args: tuple[str, ...]


class StripeApi:
    """Answers GET requests for one company the way the Stripe API does."""

    def __init__(self, company: Any) -> None:
        self.company = company
        self.index = CompanyIndex(company)
        self._ledger: tuple[tuple[int, int], OrderedView] | None = None

    def route(self, path: str) -> Route | None:
        """The endpoint `path` addresses, or None."""
        parts = path.rstrip("/").split("/")[1:]
        if len(parts) < 2 or parts[0] != "v1":
            return None
        name, rest = parts[1], parts[2:]
        if name == "account" and not rest:
            return Route("/v1/account", "account", self.account, ())
        if name == "invoice_payments" and not rest:
            # read with the Invoices permission, as on Stripe
            return Route("/v1/invoice_payments", "invoices", self.invoice_payments, ())
        if name == "balance_transactions" and not rest:
            return Route("/v1/balance_transactions", name, self.list_balance_transactions, ())
        if name not in RESOURCES:
            return None
        if not rest:
            return Route(f"/v1/{name}", name, self.list_objects, (RESOURCES[name],))
        if len(rest) == 1:
            return Route(f"/v1/{name}/{{id}}", name, self.retrieve, (RESOURCES[name], rest[0]))
        sub_lists = {("invoices", "lines"): ("invoice", "lines"),
                     ("charges", "refunds"): ("charge", "refunds")}
        if len(rest) == 2 and (name, rest[1]) in sub_lists:
            object_type, field = sub_lists[(name, rest[1])]
            return Route(f"/v1/{name}/{{id}}/{rest[1]}", name, self.embedded_list,
                         (object_type, rest[0], field))
        return None

    def account(self, params: Obj) -> Obj:
        """`GET /v1/account`."""
        return {"id": self.company.account_id, "object": "account", "country": "US",
                "default_currency": "usd", "livemode": self.company.livemode,
                "charges_enabled": True, "business_profile": {"name": "Sandbox SaaS"}}

    def invoice_payments(self, params: Obj) -> Obj:
        """`GET /v1/invoice_payments?invoice=`: every payment of one invoice, paged."""
        invoice_id = params.get("invoice")
        if not invoice_id:
            raise ApiError(400, "invalid_request_error", "Missing required param: invoice.",
                           "parameter_missing", "invoice")
        return self.embedded_list(params, "invoice", invoice_id, "payments",
                                  url=f"/v1/invoice_payments?invoice={invoice_id}")

    def retrieve(self, params: Obj, object_type: str, object_id: str) -> Obj:
        """`GET /v1/<objects>/{id}`."""
        obj = self.company.get(object_type, object_id)
        if obj is None or (object_type == "event" and self._event_expired(obj)):
            raise missing(object_type, object_id)
        return self._expand(self.render(obj), expand_paths(params))

    def list_objects(self, params: Obj, object_type: str) -> Obj:
        """`GET /v1/<objects>` with filters, created range, cursors and expansion."""
        if object_type == "subscription_item":
            sub_id = params.get("subscription")
            if not sub_id:
                raise ApiError(400, "invalid_request_error", "Missing required param: "
                               "subscription.", "parameter_missing", "subscription")
            return self.embedded_list(params, "subscription", sub_id, "items",
                                      url=f"/v1/subscription_items?subscription={sub_id}")
        view = self._filtered_view(object_type, params)
        gte, lte = created_range(params)
        if object_type == "event":
            cutoff = self.company.now - EVENT_RETENTION
            gte = cutoff if gte is None else max(gte, cutoff)
        req = PageRequest(limit_of(params), params.get("starting_after"),
                          params.get("ending_before"), gte, lte)
        try:
            data, has_more = page(view, req)
        except UnknownCursor as exc:
            param = "starting_after" if req.starting_after else "ending_before"
            raise missing(object_type, str(exc), param) from None
        return self._list([self.render(o) for o in data], has_more,
                          "/v1/" + next(k for k, v in RESOURCES.items() if v == object_type),
                          expand_paths(params))

    def list_balance_transactions(self, params: Obj) -> Obj:
        """`GET /v1/balance_transactions` with `type`, created range, cursors and expansion
        (`data.source`); derived from the charges, refunds, invoices (when a bank debit was
        collected) and disputes (sandbox/balance.py)."""
        built_for = tuple(self.company.versions[kind]
                          for kind in ("charge", "refund", "invoice", "dispute"))
        if self._ledger is None or self._ledger[0] != built_for:
            self._ledger = (built_for, OrderedView.of(balance_transactions(self.company)))
        view = self._ledger[1]
        if params.get("type"):
            view = exclude(view, lambda t: t["type"] != params["type"])
        gte, lte = created_range(params)
        req = PageRequest(limit_of(params), params.get("starting_after"),
                          params.get("ending_before"), gte, lte)
        try:
            data, has_more = page(view, req)
        except UnknownCursor as exc:
            param = "starting_after" if req.starting_after else "ending_before"
            raise missing("balance_transaction", str(exc), param) from None
        return self._list(list(data), has_more, "/v1/balance_transactions",
                          expand_paths(params))

    def embedded_list(self, params: Obj, object_type: str, object_id: str, field: str,
                      url: str | None = None) -> Obj:
        """Full paging of a list Stripe embeds truncated (invoice lines, items, refunds)."""
        parent = self.company.get(object_type, object_id)
        if parent is None or parent.get("deleted"):
            raise missing(object_type, object_id, object_type if url else "id")
        req = PageRequest(limit_of(params), params.get("starting_after"),
                          params.get("ending_before"))
        try:
            data, has_more = sequence_page(parent[field]["data"], req)
        except UnknownCursor as exc:
            raise missing("object", str(exc), "starting_after") from None
        return self._list([self.render(o) for o in data], has_more,
                          url or parent[field]["url"], expand_paths(params))

    def _list(self, data: list[Obj], has_more: bool, url: str, expand: list[str]) -> Obj:
        body = {"object": "list", "data": data, "has_more": has_more, "url": url}
        return self._expand(body, expand)

    def _filtered_view(self, object_type: str, params: Obj) -> OrderedView:
        """The newest-first view the list's filters select, using the most selective index."""
        wanted = [(f, params[f]) for f in LIST_FILTERS.get(object_type, ()) if params.get(f)]
        if object_type == "subscription":
            status = params.get("status")
            if status is None:
                wanted.append(("not_canceled", True))
            elif status != "all":
                wanted.append(("status", status))
        if object_type == "event":
            return self._event_view(params)
        if not wanted:
            return self.index.view(object_type)
        (first, value), rest = wanted[0], wanted[1:]
        view = self.index.view(object_type, first, value)
        for name, value in rest:
            members = self.index.view(object_type, name, value).position
            view = exclude(view, lambda o, m=members: o["id"] not in m)
        return view

    def _event_view(self, params: Obj) -> OrderedView:
        """Events of `types[]` (exact names, at most 20) or of `type` (one name, or a group
        with `*` as a wildcard), as Stripe filters them; not both."""
        types, pattern = params.get("types"), params.get("type")
        if isinstance(types, str):
            types = [types]
        if types and pattern:
            raise ApiError(400, "invalid_request_error", "You may pass either `type` or "
                           "`types`, but not both.", "parameter_invalid", "types")
        if types and len(types) > MAX_EVENT_TYPES:
            raise ApiError(400, "invalid_request_error", f"Invalid array: `types` may contain "
                           f"at most {MAX_EVENT_TYPES} event types ({len(types)} given).",
                           "parameter_invalid", "types")
        if pattern:
            wildcard = re.compile(".*".join(map(re.escape, pattern.split("*"))))
            types = [k for k in self.index.values("event", "type") if wildcard.fullmatch(k)]
        elif not types:
            return self.index.view("event")
        return self.index.union("event", "type", sorted(set(types)))

    def _event_expired(self, event: Obj) -> bool:
        return event["created"] < self.company.now - EVENT_RETENTION

    def render(self, obj: Obj) -> Obj:
        """The object as the API returns it: references as ids, embedded lists cut to 10,
        includable fields left out."""
        obj = unexpanded(obj)
        field = EMBEDDED_LISTS.get(obj.get("object", ""))
        if field is None or field not in obj:
            return obj
        embedded = obj[field]
        if len(embedded["data"]) <= EMBEDDED_LIST_LIMIT:
            return obj
        cut = dict(embedded, data=embedded["data"][:EMBEDDED_LIST_LIMIT], has_more=True)
        return dict(obj, **{field: cut})

    def _expand(self, obj: Obj, paths: list[str]) -> Obj:
        for path in paths:
            if len(path.split(".")) > MAX_EXPAND_LEVELS:
                raise ApiError(400, "invalid_request_error", "You cannot expand more than "
                               f"{MAX_EXPAND_LEVELS} levels of a property ({path}).",
                               param="expand")
            obj = self._expand_path(obj, path.split("."), path)
        return obj

    def _expand_path(self, obj: Obj, parts: list[str], path: str) -> Obj:
        head, rest = parts[0], parts[1:]
        if head in INCLUDABLE.get(obj.get("object", ""), ()) and head not in obj:
            obj = dict(obj, **{head: self._included(obj, head)})
            if not rest:
                return obj
        if head not in obj:
            raise ApiError(400, "invalid_request_error",
                           f"This property cannot be expanded ({path}).", param="expand")
        value = obj[head]
        if head == "data" and isinstance(value, list):
            if not rest:
                raise ApiError(400, "invalid_request_error",
                               f"This property cannot be expanded ({path}).", param="expand")
            return dict(obj, data=[self._expand_path(o, rest, path) for o in value])
        if isinstance(value, list):  # a list of expandable ids, such as `discounts`
            return dict(obj, **{head: [self._expanded(v, head, rest, path) for v in value]})
        return dict(obj, **{head: self._expanded(value, head, rest, path)})

    def _included(self, obj: Obj, field: str) -> Obj:
        """An includable field of the stored object (null when it has none); a list is cut to
        10 entries as Stripe embeds it."""
        full = (self.company.get(obj["object"], obj["id"]) or {}).get(field)
        if not isinstance(full, dict) or full.get("object") != "list" or len(
                full["data"]) <= EMBEDDED_LIST_LIMIT:
            return full
        return dict(full, data=full["data"][:EMBEDDED_LIST_LIMIT], has_more=True)

    def _expanded(self, value: object, head: str, rest: list[str], path: str) -> object:
        if isinstance(value, str):
            value = self._lookup(value, head, path)
        if rest and isinstance(value, dict):
            value = self._expand_path(value, rest, path)
        return value

    def _lookup(self, object_id: str, field: str, path: str) -> Obj:
        object_type = (FIELD_OBJECT_TYPES.get(field)
                       or ID_PREFIXES.get(object_id.split("_", 1)[0]))
        found = self.company.get(object_type, object_id) if object_type else None
        if found is None and object_type == "coupon":
            found = self.company.deleted_coupons.get(object_id)
        if found is None:
            raise ApiError(400, "invalid_request_error",
                           f"This property cannot be expanded ({path}).", param="expand")
        return self.render(found)


def unexpanded(obj: Obj) -> Obj:
    """The object with its expandable references as ids, as Stripe returns them unexpanded.

    The company stores discounts (and a discount's coupon) as objects; Stripe returns their
    ids unless the request expands them, and never expands anything inside an event.
    Includable fields (`INCLUDABLE`) are left out likewise, events included.
    """
    kind = obj.get("object")
    obj = without_includables(obj)
    if kind == "event":
        data = obj["data"]
        inner = unexpanded(data["object"])
        previous = data.get("previous_attributes")
        if previous and _has_objects(previous.get("discounts")):
            previous = dict(previous, discounts=_ids(previous["discounts"]))
        if inner is data["object"] and previous is data.get("previous_attributes"):
            return obj
        data = dict(data, object=inner)
        if previous is not None:
            data["previous_attributes"] = previous
        return dict(obj, data=data)
    if kind == "discount":
        source = obj.get("source") or {}
        if isinstance(source.get("coupon"), dict):
            return dict(obj, source=dict(source, coupon=source["coupon"]["id"]))
        return obj
    if kind in HAS_DISCOUNT_IDS and _has_objects(obj.get("discounts")):
        obj = dict(obj, discounts=_ids(obj["discounts"]))
    price = obj.get("price")
    if isinstance(price, dict) and _has_includables(price):  # an item's price
        obj = dict(obj, price=without_includables(price))
    field = EMBEDDED_LISTS.get(kind or "")
    embedded = obj.get(field) if field else None
    if embedded and any(_has_objects(o.get("discounts")) or _has_includables(o.get("price"))
                        for o in embedded["data"]):
        obj = dict(obj, **{field: dict(embedded, data=[unexpanded(o) for o in embedded["data"]])})
    return obj


def _has_includables(obj: object) -> bool:
    return isinstance(obj, dict) and any(
        key in obj for key in INCLUDABLE.get(obj.get("object", ""), ()))


def without_includables(obj: Obj) -> Obj:
    """The object without the fields Stripe returns only when expanded (INCLUDABLE)."""
    if not _has_includables(obj):
        return obj
    return {k: v for k, v in obj.items() if k not in INCLUDABLE[obj["object"]]}


def _has_objects(values: list | None) -> bool:
    return bool(values) and any(isinstance(v, dict) for v in values)


def _ids(values: list) -> list:
    return [v["id"] if isinstance(v, dict) else v for v in values]
