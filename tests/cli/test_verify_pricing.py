"""`verify`'s own valuation of subscriptions (commands/verify_stripe.py and
verify_pricing.py) on the examples of docs/metrics-spec.md, computed by hand:
- package: $10 per 5 seats, 12 seats, round up: 3 packages, $30; $100 a year per 10 seats,
  25 seats, round down: 2 packages, $200 a year = $16.666667 a month;
- graduated: 1-5 $0 + $49 flat, 6-20 $9, beyond $7: 12 seats $49 + 7 x 9 = $112; 25 seats
  $49 + 15 x 9 + 5 x 7 = $219; 0 seats $0 (the flat fee needs a unit);
- volume: up to 10 $8 + $20, up to 50 $6 + $40, beyond $5: 30 units 30 x 6 + 40 = $220;
  60 units 60 x 5 = $300;
- currency option: INR 1,999 a month on a $29 price is INR 1,999; tiers are read from the
  option; a price read without its tiers says so instead of guessing;
- item discounts then the subscription's: 10 x $12 with its own 25% off plus $9 with its own
  $5 off: $90 + $4 = $94; 4 x $12 plus $9 with its own 100% off, 25% off the subscription:
  $48 - $12 = $36;
- inclusive tax: EUR 119 a month with an inclusive 19% VAT rate is EUR 100; an exclusive rate
  changes nothing; an inclusive price without any rate (Stripe Tax) is left out of the MRR
  comparison, named, but still counted.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from commands.verify_pricing import PriceCannotSay, item_interval_amount
from commands.verify_stripe import StripeFigures, _value, exponents, subscription_mrr

NOW = 1_796_558_400


def _price(pid: str, currency: str = "usd", unit: int | None = None, interval: str = "month",
           **terms: object) -> dict:
    return {"id": pid, "currency": currency, "billing_scheme": terms.pop("scheme", "per_unit"),
            "unit_amount": unit, "unit_amount_decimal": None if unit is None else str(unit),
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            "tax_behavior": terms.pop("tax_behavior", "exclusive"), **terms}


GRADUATED = [{"up_to": 5, "unit_amount": 0, "flat_amount": 4900},
             {"up_to": 20, "unit_amount": 900, "flat_amount": None},
             {"up_to": None, "unit_amount": 700, "flat_amount": None}]
VOLUME = [{"up_to": 10, "unit_amount": 800, "flat_amount": 2000},
          {"up_to": 50, "unit_amount": 600, "flat_amount": 4000},
          {"up_to": None, "unit_amount": 500, "flat_amount": None}]


@pytest.mark.parametrize(("price", "quantity", "currency", "cents"), [
    (_price("package_up", unit=1000, transform_quantity={"divide_by": 5, "round": "up"}),
     12, "usd", 3000),
    (_price("package_down", unit=10000, transform_quantity={"divide_by": 10, "round": "down"}),
     25, "usd", 20000),
    (_price("graduated", scheme="tiered", tiers_mode="graduated", tiers=GRADUATED),
     12, "usd", 11200),
    (_price("graduated", scheme="tiered", tiers_mode="graduated", tiers=GRADUATED),
     25, "usd", 21900),
    (_price("graduated", scheme="tiered", tiers_mode="graduated", tiers=GRADUATED),
     0, "usd", 0),
    (_price("volume", scheme="tiered", tiers_mode="volume", tiers=VOLUME), 30, "usd", 22000),
    (_price("volume", scheme="tiered", tiers_mode="volume", tiers=VOLUME), 60, "usd", 30000),
    (_price("multi", unit=2900, currency_options={"inr": {"unit_amount": 199900,
                                                          "unit_amount_decimal": "199900"}}),
     1, "inr", 199900),
    (_price("multi_tiered", scheme="tiered", tiers_mode="volume", tiers=VOLUME,
            currency_options={"eur": {"tiers": [{**t, "unit_amount": (t["unit_amount"] or 0) // 2}
                                                for t in VOLUME]}}),
     30, "eur", 30 * 300 + 4000),
])
def test_an_item_is_valued_as_stripe_would_invoice_it(price, quantity, currency, cents):
    assert item_interval_amount(price, quantity, currency) == Decimal(cents)


def test_a_tiered_price_read_without_its_tiers_says_so():
    unexpanded = _price("tiered_unread", scheme="tiered", tiers_mode="graduated")
    with pytest.raises(PriceCannotSay, match="tiers were not read"):
        item_interval_amount(unexpanded, 3, "usd")


def _discount(percent: int | None = None, amount: int | None = None) -> dict:
    return {"id": "di", "start": NOW - 86_400, "end": None,
            "source": {"coupon": {"id": "co", "duration": "forever", "percent_off": percent,
                                  "amount_off": amount, "currency": "usd"}}}


def _item(iid: str, price: dict, quantity: int, *discounts: dict) -> dict:
    return {"id": iid, "price": price, "quantity": quantity, "discounts": list(discounts),
            "tax_rates": []}


def _mrr(sub: dict, items: list[dict]) -> Decimal:
    figures = StripeFigures()
    _value(figures, sub, items, {}, {}, NOW, exponents())
    return figures.subscription_mrr[sub["id"]].amount


def test_item_discounts_apply_before_the_subscription_discounts():
    seat, base = _price("seat", unit=1200), _price("base", unit=900)
    own = {"id": "sub_a", "currency": "usd", "discounts": []}
    assert _mrr(own, [_item("si_1", seat, 10, _discount(percent=25)),
                      _item("si_2", base, 1, _discount(amount=500))]) == Decimal("94")
    shared = {"id": "sub_b", "currency": "usd", "discounts": [_discount(percent=25)]}
    assert _mrr(shared, [_item("si_3", seat, 4),
                         _item("si_4", base, 1, _discount(percent=100))]) == Decimal("36")
    yearly = {"id": "sub_c", "currency": "usd", "discounts": []}
    package = _price("package_year", unit=10000, interval="year",
                     transform_quantity={"divide_by": 10, "round": "down"})
    assert subscription_mrr(yearly, [_item("si_5", package, 25)], {}, {}, NOW,
                            exponents()).amount == Decimal("16.666667")


def test_inclusive_tax_is_taken_out_and_an_unknown_one_is_left_out_by_name():
    vat_included = _price("vat_incl", currency="eur", unit=11900, tax_behavior="inclusive")
    inclusive = {"id": "txr_in", "percentage": 19, "inclusive": True}
    exclusive = {"id": "txr_ex", "percentage": 19, "inclusive": False}
    assert _mrr({"id": "sub_in", "currency": "eur", "discounts": [],
                 "default_tax_rates": [inclusive]},
                [_item("si_6", vat_included, 1)]) == Decimal("100")
    assert _mrr({"id": "sub_ex", "currency": "eur", "discounts": [],
                 "default_tax_rates": [exclusive]},
                [_item("si_7", _price("pro", currency="eur", unit=1100), 3)]) == Decimal("33")
    figures = StripeFigures()
    _value(figures, {"id": "sub_auto", "currency": "eur", "discounts": []},
           [_item("si_8", vat_included, 1)], {}, {}, NOW, exponents())
    assert "sub_auto" in figures.subscription_mrr  # still counted
    assert "no tax rate" in figures.mrr_left_out["sub_auto"]
