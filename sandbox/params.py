"""Decoding of Stripe-style query strings (`expand[0]=x`, `created[gte]=1`, `types[]=a`)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_BRACKETS = re.compile(r"^([^\[]+)((?:\[[^\]]*\])*)$")


class BadParam(ValueError):
    """A query parameter has an invalid value; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def parse_query(query: str) -> dict[str, Any]:
    """`a=1&b[x]=2&c[0]=3&c[]=4` -> {"a": "1", "b": {"x": "2"}, "c": ["3", "4"]}."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        match = _BRACKETS.match(key)
        if not match:
            params[key] = value
            continue
        name, brackets = match.groups()
        subkeys = re.findall(r"\[([^\]]*)\]", brackets)
        if not subkeys:
            params[name] = value
        elif subkeys[0] == "" or subkeys[0].isdigit():
            existing = params.get(name)
            params[name] = [*existing, value] if isinstance(existing, list) else [value]
        else:
            existing = params.get(name)
            target = existing if isinstance(existing, dict) else {}
            target[subkeys[0]] = value
            params[name] = target
    return params


def as_int(params: dict[str, Any], name: str, value: Any) -> int:
    """`value` as an integer, or a BadParam about `name`."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadParam(name, f"Invalid integer: {value}") from None


def created_range(params: dict[str, Any]) -> tuple[int | None, int | None]:
    """Inclusive (gte, lte) bounds from `created=<int>` or `created[gt|gte|lt|lte]`."""
    created = params.get("created")
    if created is None:
        return None, None
    if not isinstance(created, dict):
        exact = as_int(params, "created", created)
        return exact, exact
    gte = lte = None
    for op, raw in created.items():
        value = as_int(params, f"created[{op}]", raw)
        if op == "gte":
            gte = value if gte is None else max(gte, value)
        elif op == "gt":
            gte = value + 1 if gte is None else max(gte, value + 1)
        elif op == "lte":
            lte = value if lte is None else min(lte, value)
        elif op == "lt":
            lte = value - 1 if lte is None else min(lte, value - 1)
        else:
            raise BadParam(f"created[{op}]", f"Received unknown parameter: created[{op}]")
    return gte, lte


def limit_of(params: dict[str, Any]) -> int:
    """The `limit` parameter (default 10), which Stripe requires to be within 1..100."""
    if "limit" not in params:
        return 10
    limit = as_int(params, "limit", params["limit"])
    if not 1 <= limit <= 100:
        raise BadParam("limit", f"Invalid limit: must be between 1 and 100 (got {limit})")
    return limit


def expand_paths(params: dict[str, Any]) -> list[str]:
    """The `expand[]` paths."""
    expand = params.get("expand", [])
    return [expand] if isinstance(expand, str) else list(expand)
