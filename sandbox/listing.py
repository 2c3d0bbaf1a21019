"""Stripe list semantics over a company: filters, created ranges and cursor pagination in O(page).

Objects are kept newest first (created descending, ties by id descending, so the order is
stable); every filter value gets its own pre-sorted sub-list, rebuilt when that type changes.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def invoice_subscription(inv: Obj) -> str | None:
    """The subscription an invoice bills (current shape: `parent.subscription_details`)."""
    parent = inv.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription")


# Filter name -> how to read it from the object, per object type.
FILTERS: dict[str, dict[str, Callable[[Obj], Any]]] = {
    "customer": {"email": lambda o: o.get("email")},
    "subscription": {"customer": lambda o: o["customer"], "status": lambda o: o["status"],
                     "not_canceled": lambda o: o["status"] != "canceled"},
    "invoice": {"customer": lambda o: o["customer"], "subscription": invoice_subscription,
                "status": lambda o: o["status"]},
    "charge": {"customer": lambda o: o["customer"]},
    "refund": {"charge": lambda o: o["charge"]},
    "price": {"product": lambda o: o["product"], "currency": lambda o: o["currency"]},
    "event": {"type": lambda o: o["type"]},
}


@dataclass
class OrderedView:
    """Objects newest first, with the keys needed to bisect created ranges and find cursors."""

    objects: list[Obj] = field(default_factory=list)
    neg_created: list[int] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, objs: list[Obj]) -> OrderedView:
        """A view over `objs`, which must already be newest first, each id once: a cursor
        naming an id listed twice would go on from the other place (a page lost or repeated),
        so a duplicate is a sandbox bug answered loudly (500), never a silent wrong page."""
        position = {o["id"]: i for i, o in enumerate(objs)}
        if len(position) != len(objs):
            twice = sorted(i for i, n in Counter(o["id"] for o in objs).items() if n > 1)
            raise ValueError(f"sandbox bug: ids listed twice in one list: {', '.join(twice[:5])}")
        return cls(objs, [-o["created"] for o in objs], position)


_BUILT = object()  # marks that every group of a filter has been built
_EMPTY = OrderedView()


class CompanyIndex:
    """Sorted views of one company's objects, rebuilt lazily when the company changes."""

    def __init__(self, company: Any) -> None:
        self.company = company
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._views: dict[tuple[str, str | None, Any], OrderedView] = {}

    def view(self, object_type: str, filter_name: str | None = None, value: Any = None
             ) -> OrderedView:
        """Newest-first view of a type, or of the objects whose `filter_name` equals `value`."""
        with self._lock:
            current = self.company.versions[object_type]
            if self._versions.get(object_type) != current:
                for key in [k for k in self._views if k[0] == object_type]:
                    del self._views[key]
                self._versions[object_type] = current
            if (object_type, filter_name, _BUILT) not in self._views:
                self._build(object_type, filter_name)
            return self._views.get((object_type, filter_name, value), _EMPTY)

    def warm(self, object_types: list[str]) -> None:
        """Builds the newest-first view of each type now rather than on its first request.

        Sorting a large company's invoices takes seconds; done lazily it would stall the first
        requests of a benchmark (the sandbox serves under one GIL), which Stripe never does.
        """
        for object_type in object_types:
            if object_type in self.company.objects:
                self.view(object_type)

    def union(self, object_type: str, filter_name: str, values: list[Any]) -> OrderedView:
        """Newest-first view of the objects whose `filter_name` is any of `values` (cached)."""
        built_for = self.company.versions[object_type]
        parts = [self.view(object_type, filter_name, v) for v in values]
        key = (object_type, filter_name, ("__union__", *values))
        with self._lock:
            cached = self._views.get(key)
        if cached is None:
            cached = merge_views(parts)
            with self._lock:
                if self.company.versions[object_type] == built_for:  # not stale meanwhile
                    self._views[key] = cached
        return cached

    def values(self, object_type: str, filter_name: str) -> list[Any]:
        """Every value `filter_name` takes among the objects of `object_type`."""
        self.view(object_type, filter_name, None)
        with self._lock:
            return [key[2] for key in self._views if key[:2] == (object_type, filter_name)
                    and key[2] is not _BUILT and not isinstance(key[2], tuple)]

    def _build(self, object_type: str, filter_name: str | None) -> None:
        base = self._views.get((object_type, None, None))
        if base is None:
            listed = [o for o in self.company.objects[object_type] if not o.get("deleted")]
            listed.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
            base = OrderedView.of(listed)
            self._views[(object_type, None, None)] = base
            self._views[(object_type, None, _BUILT)] = _EMPTY
        if filter_name is None:
            return
        read = FILTERS[object_type][filter_name]
        groups: dict[Any, list[Obj]] = {}
        for obj in base.objects:
            groups.setdefault(read(obj), []).append(obj)
        for value, objs in groups.items():
            self._views[(object_type, filter_name, value)] = OrderedView.of(objs)
        self._views[(object_type, filter_name, _BUILT)] = _EMPTY


def merge_views(views: list[OrderedView]) -> OrderedView:
    """One newest-first view over several disjoint views (e.g. `types[]` of events)."""
    objs = [o for v in views for o in v.objects]
    objs.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
    return OrderedView.of(objs)


def exclude(view: OrderedView, drop: Callable[[Obj], bool]) -> OrderedView:
    """The view without the objects `drop` selects."""
    return OrderedView.of([o for o in view.objects if not drop(o)])


@dataclass(frozen=True)
class PageRequest:
    """Cursor and range parameters of a list call."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created_gte: int | None = None  # inclusive lower bound
    created_lte: int | None = None  # inclusive upper bound


class UnknownCursor(LookupError):
    """`starting_after`/`ending_before` names an object that is not in the list."""


def page(view: OrderedView, req: PageRequest) -> tuple[list[Obj], bool]:
    """The page of `view` the request selects, and whether more objects lie beyond it."""
    lo, hi = 0, len(view.objects)
    if req.created_lte is not None:
        lo = bisect.bisect_left(view.neg_created, -req.created_lte)
    if req.created_gte is not None:
        hi = bisect.bisect_right(view.neg_created, -req.created_gte)
    if req.ending_before is not None:
        pos = _cursor(view, req.ending_before)
        end = min(pos, hi)
        start = max(lo, end - req.limit)
        return view.objects[start:end], start > lo
    if req.starting_after is not None:
        lo = max(lo, _cursor(view, req.starting_after) + 1)
    end = min(hi, lo + req.limit)
    return view.objects[lo:end], end < hi


def _cursor(view: OrderedView, object_id: str) -> int:
    try:
        return view.position[object_id]
    except KeyError:
        raise UnknownCursor(object_id) from None


def sequence_page(objs: list[Obj], req: PageRequest) -> tuple[list[Obj], bool]:
    """Cursor paging over a list kept in its own order (invoice lines, subscription items)."""
    view = OrderedView(objs, [], {o["id"]: i for i, o in enumerate(objs)})
    unranged = PageRequest(req.limit, req.starting_after, req.ending_before)
    return page(view, unranged)
