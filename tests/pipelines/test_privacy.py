"""The privacy allowlist on Stripe's own sample objects (fixtures3.json, current API shape)."""

import copy
import json
from typing import Any

import orjson
import pytest

from pipelines.privacy import AllowlistingDecoder, allowlist, allowlist_keeping
from tests.paths import STRIPE_FIXTURES

FIXTURES = STRIPE_FIXTURES


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def keys_anywhere(value: Any) -> set[str]:
    """Every dict key at any depth."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(v) for v in value))
    return set()


def test_customer_keeps_exactly_the_listed_fields(resources: dict[str, Any]) -> None:
    customer = copy.deepcopy(resources["customer"])
    customer.update(name="Jane Doe", phone="+1 555", email="jane@example.com",
                    metadata={"ssn": "123"}, address={"line1": "1 Main St"})
    kept = allowlist(customer)
    assert set(kept) == {
        "id", "object", "created", "email", "currency", "delinquent", "livemode", "balance",
        "discount", "tax_exempt", "test_clock", "address"}
    assert "Jane Doe" not in json.dumps(kept) and "Main St" not in json.dumps(kept)


def test_customer_address_keeps_only_its_country(resources: dict[str, Any]) -> None:
    """Issue 22: a country code names no one and splits revenue; the rest of the address stays
    out, also inside an event's payload and its previous attributes, and in the shipping
    address. A customer without an address keeps its null."""
    address = {"city": "Berlin", "country": "DE", "line1": "Hauptstr. 1", "line2": "3. OG",
               "postal_code": "10115", "state": "BE"}
    customer = dict(resources["customer"], address=address,
                    shipping={"address": address, "name": "Jane Doe", "phone": "+49 30"})
    kept = allowlist(customer)
    assert kept["address"] == {"country": "DE"} and "shipping" not in kept
    event = dict(resources["event"], type="customer.updated",
                 data={"object": customer,
                       "previous_attributes": {"address": dict(address, country="FR")}})
    kept_event = allowlist(event)
    assert kept_event["data"]["object"]["address"] == {"country": "DE"}
    assert kept_event["data"]["previous_attributes"] == {"address": {"country": "FR"}}
    text = json.dumps(kept_event)
    for personal in ("Berlin", "Hauptstr", "3. OG", "10115", '"BE"', "Jane Doe"):
        assert personal not in text
    assert allowlist(dict(resources["customer"], address=None))["address"] is None
    assert "address" not in allowlist(dict(resources["customer"], address="Hauptstr. 1"))


def test_charge_drops_billing_and_payment_method_details(resources: dict[str, Any]) -> None:
    charge = resources["charge"]
    assert charge["billing_details"]["name"] == "Jenny Rosen"  # the sample carries PII
    kept = allowlist(charge)
    text = json.dumps(kept)
    for key in ("billing_details", "payment_method_details", "source", "receipt_email",
                "description", "shipping", "metadata"):
        assert key not in kept
    assert "Jenny Rosen" not in text and "4242" not in text and "fingerprint" not in text
    assert (kept["amount"], kept["currency"], kept["status"]) == (100, "usd", "succeeded")


def test_invoice_drops_customer_contact_fields_but_keeps_amounts(
    resources: dict[str, Any]
) -> None:
    invoice = copy.deepcopy(resources["invoice"])
    invoice.update(customer_name="Jane", customer_email="jane@example.com",
                   customer_phone="+1 555", description="free text")
    kept = allowlist(invoice)
    for key in ("customer_name", "customer_address", "customer_phone", "customer_shipping",
                "customer_tax_ids", "customer_email", "description", "account_name"):
        assert key not in kept
    assert kept["amount_due"] == 1000 and kept["customer"] == "cus_QXg1o8vcGmoR32"
    line = kept["lines"]["data"][0]
    assert "description" not in line and line["amount"] == 1000
    assert line["period"] == {"end": 1721954054, "start": 1721954054}


def test_subscription_keeps_items_prices_and_periods(resources: dict[str, Any]) -> None:
    kept = allowlist(resources["subscription"])
    item = kept["items"]["data"][0]
    assert item["price"]["recurring"]["interval"] == "month"
    assert item["current_period_end"] == 976287773
    assert "metadata" not in keys_anywhere(kept)
    assert "description" not in kept and "payment_settings" not in kept


def test_expanded_customer_inside_another_object_is_allowlisted_too(
    resources: dict[str, Any]
) -> None:
    customer = dict(resources["customer"], name="Jane Doe")
    subscription = dict(resources["subscription"], customer=customer)
    assert "name" not in allowlist(subscription)["customer"]


def test_event_payload_and_previous_attributes_are_allowlisted(
    resources: dict[str, Any]
) -> None:
    charge = resources["charge"]
    event = dict(resources["event"], type="charge.updated",
                 data={"object": charge,
                       "previous_attributes": {"description": "old", "amount": 50}})
    kept = allowlist(event)
    assert kept["type"] == "charge.updated"
    assert "billing_details" not in kept["data"]["object"]
    assert kept["data"]["previous_attributes"] == {"amount": 50}
    assert "Jenny Rosen" not in json.dumps(kept)


def test_personal_keys_in_plain_nested_dicts_are_dropped() -> None:
    invoice = {"object": "invoice", "id": "in_1",
               "parent": {"subscription_details": {"metadata": {"k": "v"}, "subscription": "s"}}}
    assert allowlist(invoice)["parent"] == {"subscription_details": {"subscription": "s"}}


def test_unknown_object_types_keep_only_ids_amounts_and_dates() -> None:
    payment = {"object": "invoice_payment", "id": "inpay_1", "amount_paid": 5,
               "payment": {"type": "charge", "charge": "ch_1"}, "secret_note": "x"}
    assert allowlist(payment) == {"object": "invoice_payment", "id": "inpay_1",
                                  "amount_paid": 5,
                                  "payment": {"type": "charge", "charge": "ch_1"}}


def test_allowlisting_twice_changes_nothing(resources: dict[str, Any]) -> None:
    # The extraction allowlists pages in worker processes and rows again: same result.
    for name, sample in resources.items():
        once = allowlist(sample)
        assert allowlist(once) == once, name


def test_worker_processes_decode_pages_to_the_allowlisted_objects(
    resources: dict[str, Any]
) -> None:
    page = {"object": "list", "has_more": True, "url": "/v1/charges",
            "data": [resources["charge"], dict(resources["customer"], name="Jane Doe")]}
    with AllowlistingDecoder(processes=1) as decode:
        decoded = decode(orjson.dumps(page))
    assert decoded == allowlist(page)
    assert decoded["has_more"] is True and [o["id"] for o in decoded["data"]] == [
        resources["charge"]["id"], resources["customer"]["id"]]
    assert "Jenny Rosen" not in json.dumps(decoded) and "Jane Doe" not in json.dumps(decoded)


def test_line_taxes_of_current_and_older_api_versions_are_kept(resources: dict[str, Any]) -> None:
    """Issue 15 case 2: MRR takes tax out of tax-inclusive lines, so the tax amounts stay."""
    tax = {"amount": 1900, "tax_behavior": "inclusive", "taxable_amount": 10000,
           "taxability_reason": "standard_rated", "type": "tax_rate_details",
           "tax_rate_details": {"tax_rate": "txr_1"}}
    current = dict(resources["line_item"], amount=11900, taxes=[tax])
    assert allowlist(current)["taxes"] == [tax]
    older = dict(resources["line_item"], amount=11900, amount_excluding_tax=10000,
                 tax_amounts=[{"amount": 1900, "inclusive": True, "taxable_amount": 10000,
                               "tax_rate": "txr_1", "taxability_reason": None}])
    kept = allowlist(older)
    assert kept["amount_excluding_tax"] == 10000
    assert kept["tax_amounts"] == older["tax_amounts"]
    invoice = dict(resources["invoice"], total=11900, total_excluding_tax=10000, tax=1900)
    assert {k: allowlist(invoice)[k] for k in ("total", "total_excluding_tax", "tax")} == {
        "total": 11900, "total_excluding_tax": 10000, "tax": 1900}


def test_an_invoice_discount_keeps_its_coupons_terms_and_no_personal_data(
        resources: dict[str, Any]) -> None:
    """An invoice read with `discounts.source.coupon` expanded (Stripe's own discount and
    coupon samples): the discount keeps its ids, start and end, the coupon its terms; the
    coupon's metadata (free text) is dropped. A deleted coupon's terms are read there only."""
    coupon = dict(resources["coupon"], percent_off=20.0, duration="forever",
                  metadata={"note": "for Jane"})
    discount = dict(resources["discount"], source={"coupon": coupon, "type": "coupon"})
    kept = allowlist(dict(resources["invoice"], discounts=[discount]))["discounts"][0]
    assert {k: kept[k] for k in ("id", "object", "start", "end", "subscription")} == {
        k: resources["discount"][k] for k in ("id", "object", "start", "end", "subscription")}
    terms = kept["source"]["coupon"]
    assert {k: terms[k] for k in ("id", "percent_off", "amount_off", "currency", "duration",
                                  "duration_in_months")} == {
        k: coupon[k] for k in ("id", "percent_off", "amount_off", "currency", "duration",
                               "duration_in_months")}
    assert "metadata" not in terms


SEGMENT_KEYS = {"customer": ("tier",), "subscription": ("channel", "region")}


def test_named_metadata_keys_alone_pass_wherever_customers_and_subscriptions_appear(
    resources: dict[str, Any]
) -> None:
    """A project naming customer `tier` and subscription `channel`/`region` for segments keeps
    those values only: the customer's `ssn` and the subscription's `note` stay out, an item's
    metadata too (items are not named), and a page, an event and a worker decode alike."""
    customer = dict(resources["customer"], name="Jane Doe",
                    metadata={"tier": "gold", "ssn": "123-45"})
    subscription = copy.deepcopy(resources["subscription"])
    subscription["metadata"] = {"channel": "partner", "note": "call Jane at home"}
    subscription["items"]["data"][0]["metadata"] = {"tier": "item-level"}
    page = {"object": "list", "data": [customer, subscription], "has_more": False}
    kept = allowlist_keeping(page, SEGMENT_KEYS)
    assert kept["data"][0]["metadata"] == {"tier": "gold"}
    assert kept["data"][1]["metadata"] == {"channel": "partner"}
    assert "metadata" not in kept["data"][1]["items"]["data"][0]
    text = json.dumps(kept)
    assert "123-45" not in text and "call Jane" not in text and "Jane Doe" not in text
    event = {"id": "evt_1", "object": "event", "type": "customer.updated", "created": 1,
             "data": {"object": customer, "previous_attributes": {"metadata": {"ssn": "9"}}}}
    kept_event = allowlist_keeping(event, SEGMENT_KEYS)
    assert kept_event["data"]["object"]["metadata"] == {"tier": "gold"}
    assert "ssn" not in json.dumps(kept_event)
    with AllowlistingDecoder(processes=1) as decode:
        assert decode.for_project(SEGMENT_KEYS)(orjson.dumps(page)) == kept
        assert decode(orjson.dumps(page)) == allowlist(page)  # another project: none kept


def test_without_named_keys_metadata_is_dropped_as_before(resources: dict[str, Any]) -> None:
    customer = dict(resources["customer"], metadata={"tier": "gold"})
    assert allowlist_keeping(customer, None) == allowlist(customer)
    assert "metadata" not in allowlist_keeping(customer, {"subscription": ("tier",)})
    # a kept value re-allowlisted with the same keys (the webhook applier) stays as it is
    once = allowlist_keeping(customer, SEGMENT_KEYS)
    assert allowlist_keeping(once, SEGMENT_KEYS) == once
