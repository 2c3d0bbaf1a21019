"""Alert rules: the kinds a project can set, their thresholds, validated into one-line errors.

A rule is stored in the registry beside its project's connection as a small dict
(``{"id", "kind", "threshold", "period"}``); :func:`parse_rule` turns user input (and stored
dicts, on every read) into a :class:`Rule`. The rules themselves are documented in
``docs/metrics-spec.md`` "Alerts".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stripe_warehouse.errors import WarehouseError

# kind -> what its threshold means (the help text and the error messages quote these)
RULE_KINDS: dict[str, str] = {
    "mrr_change": "MRR moved beyond +/-N% (e.g. 10%) or +/-$N (e.g. $500) since the day (or "
                  "week, --period week) before",
    "failed_payments": "failed payment attempts on a day above N (e.g. 20) or above K times "
                       "their trailing 28-day average (e.g. 3x)",
    "churned_mrr": "MRR churned on a day above $N (e.g. $1000), naming the customers",
    "customer_loss": "one customer's contraction or churn on a day above $N (e.g. $200)",
    "stale_data": "no successful sync for longer than the tier's cadence x 2 (no threshold)",
    "connection_revoked": "Stripe rejected the project's credentials (no threshold)",
    "sync_failing": "the project's last sync failed, and every one since the last success "
                    "(no threshold)",
}
NO_THRESHOLD = ("stale_data", "connection_revoked", "sync_failing")
PERIODS = {"day": 1, "week": 7}
_THRESHOLD = re.compile(r"^(?P<dollar>\$)?(?P<number>\d+(\.\d+)?)(?P<suffix>%|x)?$")


class InvalidAlertRule(WarehouseError):
    """An alert rule the user gave (or the registry holds) that cannot be evaluated."""


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold: ``amount`` in ``unit`` (``usd``, ``percent``, ``count``, ``times``)."""

    amount: Decimal
    unit: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Rule:
    """One alert rule of a project."""

    id: str
    kind: str
    threshold: Threshold | None
    period: str = "day"

    def stored(self) -> dict[str, str | None]:
        """The dict kept in the registry."""
        return {"id": self.id, "kind": self.kind,
                "threshold": None if self.threshold is None else self.threshold.text,
                "period": self.period}

    def describe(self) -> str:
        """One line: ``mrr_change (day) beyond 10%``."""
        if self.threshold is None:
            return self.kind
        period = f" ({self.period} over {self.period})" if self.kind == "mrr_change" else ""
        word = "beyond +/-" if self.kind == "mrr_change" else "above "
        return f"{self.kind}{period} {word}{self.threshold}"


# the units each kind accepts, and the example its error message gives
_ACCEPTED_UNITS = {
    "mrr_change": (("percent", "usd"), "10% or $500"),
    "failed_payments": (("count", "times"), "20 or 3x"),
    "churned_mrr": (("usd",), "$1000"),
    "customer_loss": (("usd",), "$200"),
}


def parse_threshold(kind: str, text: str | None) -> Threshold | None:
    """The threshold of a rule of ``kind``; InvalidAlertRule naming the expected form."""
    if kind in NO_THRESHOLD:
        if text is not None:
            raise InvalidAlertRule(f"rule {kind} takes no threshold (got {text!r}): "
                                   f"run `stripe-warehouse alerts add PROJECT {kind}`")
        return None
    units, example = _ACCEPTED_UNITS[kind]
    match = _THRESHOLD.match((text or "").strip())
    if match is None:
        raise InvalidAlertRule(f"malformed threshold {text!r} for rule {kind}: give a "
                               f"positive number like {example}")
    try:
        amount = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        raise InvalidAlertRule(f"malformed threshold {text!r} for rule {kind}: give a "
                               f"positive number like {example}") from None
    if match["dollar"] and match["suffix"]:
        unit = "mixed"
    else:
        unit = {"%": "percent", "x": "times"}.get(match["suffix"] or "",
                                                   "usd" if match["dollar"] else "count")
    if unit == "count" and "count" not in units and "usd" in units:
        unit = "usd"  # "1000" for a money rule means dollars
    if unit not in units or amount <= 0:
        raise InvalidAlertRule(f"malformed threshold {text!r} for rule {kind}: give a "
                               f"positive number like {example}")
    return Threshold(amount, unit, match.group(0))


def parse_rule(rule_id: str, kind: str, threshold: str | None,
               period: str | None = None) -> Rule:
    """A validated rule; one-line InvalidAlertRule naming the fix for anything wrong."""
    if kind not in RULE_KINDS:
        raise InvalidAlertRule(f"unknown alert rule {kind!r}: choose one of "
                               f"{', '.join(RULE_KINDS)}")
    period = period or "day"
    if period not in PERIODS or (period != "day" and kind != "mrr_change"):
        raise InvalidAlertRule(f"--period {period} is not valid for rule {kind}: only "
                               "mrr_change takes --period (day or week)")
    return Rule(rule_id, kind, parse_threshold(kind, threshold), period)


def rule_from_stored(stored: dict[str, str | None]) -> Rule:
    """A rule read back from the registry."""
    return parse_rule(str(stored["id"]), str(stored["kind"]), stored.get("threshold"),
                      stored.get("period"))
