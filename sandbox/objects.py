"""Builders of Stripe objects in the current API shape (see tests/fixtures/stripe/fixtures3.json).

Constant nested values are shared between objects to keep 100k-customer companies small in
memory; nothing in the sandbox mutates a nested value in place (mutations replace it).
"""

from __future__ import annotations

from typing import Any

from sandbox.catalog import CouponSpec, PlanSpec

API_VERSION = "2025-09-30.clover"

_NO_TAX = {"enabled": False, "liability": {"type": "account"}, "status": None,
           "disabled_reason": None, "provider": None}
_NO_CANCELLATION = {"comment": None, "feedback": None, "reason": None}
_ISSUER = {"type": "self"}
_TRANSITIONS_EMPTY = {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                      "voided_at": None}

Obj = dict[str, Any]


def planted_address(n: int, country: str = "US") -> Obj:
    """A recognisable fake postal address (personal data the warehouse must drop, but for the
    country code)."""
    return {"city": "Plantedville", "country": country, "line1": f"{n} Planted Street",
            "line2": None, "postal_code": "PL4 NT3D", "state": "CA"}


def planted_name(n: int) -> str:
    """A recognisable fake person name."""
    return f"Planted Person {n}"


def planted_phone(n: int) -> str:
    """A recognisable fake phone number."""
    return f"+1-555-PLANTED-{n:04d}"


def empty_list(url: str, data: list | None = None) -> Obj:
    """A Stripe list object."""
    return {"object": "list", "data": data if data is not None else [], "has_more": False,
            "url": url}


def product(pid: str, name: str, created: int, livemode: bool, default_price: str | None) -> Obj:
    """A Stripe product."""
    return {"id": pid, "object": "product", "active": True, "created": created,
            "default_price": default_price, "description": None, "images": [],
            "livemode": livemode, "marketing_features": [], "metadata": {}, "name": name,
            "package_dimensions": None, "shippable": None, "statement_descriptor": None,
            "tax_code": None, "type": "service", "unit_label": None, "updated": created,
            "url": None}


def price(pid: str, spec: PlanSpec, product_id: str, created: int, livemode: bool) -> Obj:
    """A Stripe price rendered from a catalog plan, as stored: with `tiers` (tiered prices) and
    `currency_options` (prices sold in several currencies), which the API returns only when
    the request expands them (sandbox/api.py INCLUDABLE)."""
    recurring = None
    if spec.interval is not None:
        recurring = {"interval": spec.interval, "interval_count": spec.interval_count,
                     "meter": None, "usage_type": spec.usage_type, "trial_period_days": None}
    tiered = spec.billing_scheme == "tiered"
    transform = None
    if spec.transform_quantity is not None:
        transform = {"divide_by": spec.transform_quantity[0], "round": spec.transform_quantity[1]}
    rendered = {
        "id": pid, "object": "price", "active": True, "billing_scheme": spec.billing_scheme,
        "created": created, "currency": spec.currency, "custom_unit_amount": None,
        "livemode": livemode, "lookup_key": spec.key, "metadata": {}, "nickname": spec.key,
        "product": product_id, "recurring": recurring, "tax_behavior": spec.tax_behavior,
        "tiers_mode": spec.tiers_mode if tiered else None,
        "transform_quantity": transform, "type": "recurring" if recurring else "one_time",
        "unit_amount": spec.unit_amount,
        "unit_amount_decimal": None if spec.unit_amount is None else str(spec.unit_amount)}
    if tiered:
        rendered["tiers"] = price_tiers(spec.tiers)
    if spec.currency_options:
        # Stripe lists the default currency among the options too
        rendered["currency_options"] = {
            currency: {"custom_unit_amount": None, "tax_behavior": spec.tax_behavior, "tiers": None,
                       "unit_amount": amount, "unit_amount_decimal": str(amount)}
            for currency, amount in ((spec.currency, spec.unit_amount), *spec.currency_options)}
    return rendered


def price_tiers(tiers: tuple[tuple[int | None, int, int], ...]) -> list[Obj]:
    """A price's `tiers`, from (up_to, unit_amount, flat_amount)."""
    return [{"flat_amount": flat, "flat_amount_decimal": str(flat), "unit_amount": unit,
             "unit_amount_decimal": str(unit), "up_to": up_to} for up_to, unit, flat in tiers]


def coupon(spec: CouponSpec, created: int, livemode: bool, times_redeemed: int = 0) -> Obj:
    """A Stripe coupon."""
    return {"id": spec.id, "object": "coupon", "amount_off": spec.amount_off, "created": created,
            "currency": spec.currency, "duration": spec.duration,
            "duration_in_months": spec.duration_in_months, "livemode": livemode,
            "max_redemptions": None, "metadata": {}, "name": spec.name,
            "percent_off": spec.percent_off, "redeem_by": None, "times_redeemed": times_redeemed,
            "valid": True}


def discount(did: str, coupon_obj: Obj, customer: str, subscription: str | None, start: int,
             end: int | None, invoice: str | None = None,
             subscription_item: str | None = None) -> Obj:
    """A Stripe discount object, stored with `source.coupon` expanded (the API renders its id);
    with `subscription_item`, the discount of that item only."""
    return {"id": did, "object": "discount", "checkout_session": None, "customer": customer,
            "customer_account": None, "end": end, "invoice": invoice, "invoice_item": None,
            "promotion_code": None, "source": {"coupon": coupon_obj, "type": "coupon"},
            "start": start, "subscription": subscription, "subscription_item": subscription_item}


def customer(cid: str, n: int, created: int, currency: str, livemode: bool,
             country: str | None = "US") -> Obj:
    """A Stripe customer with planted personal data; with `country` None, no address."""
    name = planted_name(n)
    address = None if country is None else planted_address(n, country)
    return {"id": cid, "object": "customer", "address": address, "balance": 0,
            "created": created, "currency": currency, "default_source": None,
            "delinquent": False, "description": None, "discount": None,
            "email": f"customer{n}@example.com", "invoice_prefix": f"S{n:07X}",
            "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                 "footer": None, "rendering_options": None},
            "livemode": livemode, "metadata": {"crm_note": f"{name} prefers email"},
            "name": name, "next_invoice_sequence": 1, "phone": planted_phone(n),
            "preferred_locales": [],
            "shipping": None if address is None else {
                "address": planted_address(n, country or "US"), "name": name,
                "phone": planted_phone(n)},
            "tax_exempt": "none", "test_clock": None}


def subscription_item(siid: str, sub_id: str, price_obj: Obj, quantity: int | None,
                      created: int, period_start: int, period_end: int) -> Obj:
    """A Stripe subscription item (current period lives on the item)."""
    return {"id": siid, "object": "subscription_item", "billing_thresholds": None,
            "created": created, "current_period_end": period_end,
            "current_period_start": period_start, "discounts": [], "metadata": {},
            "price": price_obj, "quantity": quantity, "subscription": sub_id, "tax_rates": []}


def subscription(sid: str, customer_id: str, currency: str, created: int, livemode: bool) -> Obj:
    """A Stripe subscription skeleton; the simulation fills status and dates."""
    return {"id": sid, "object": "subscription", "application": None,
            "application_fee_percent": None, "automatic_tax": _NO_TAX,
            "billing_cycle_anchor": created, "billing_mode": {"type": "classic"},
            "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False,
            "canceled_at": None, "cancellation_details": _NO_CANCELLATION,
            "collection_method": "charge_automatically", "created": created,
            "currency": currency, "customer": customer_id, "days_until_due": None,
            "default_payment_method": None, "default_tax_rates": [], "description": None,
            "discounts": [], "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": _ISSUER},
            "items": empty_list(f"/v1/subscription_items?subscription={sid}"),
            "latest_invoice": None, "livemode": livemode, "metadata": {},
            "next_pending_invoice_item_invoice": None, "on_behalf_of": None,
            "pause_collection": None, "pending_setup_intent": None, "pending_update": None,
            "schedule": None, "start_date": created, "status": "active", "test_clock": None,
            "transfer_data": None, "trial_end": None, "trial_start": None}


_NO_CREDITED_ITEMS = {"credited_items": None}


def line_parent(subscription: str | None, subscription_item: str | None, proration: bool,
                invoice_item: str | None) -> Obj:
    """A line's `parent`: the subscription item it bills, or the invoice item it comes from."""
    if subscription is not None:
        return {"type": "subscription_item_details", "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": invoice_item, "proration": proration,
                    "proration_details": _NO_CREDITED_ITEMS,
                    "subscription": subscription, "subscription_item": subscription_item}}
    return {"type": "invoice_item_details", "subscription_item_details": None,
            "invoice_item_details": {"invoice_item": invoice_item, "proration": False,
                                     "proration_details": _NO_CREDITED_ITEMS,
                                     "subscription": None}}


def line_pricing(price_obj: Obj) -> Obj:
    """A line's `pricing`: the price and product it bills."""
    return {"type": "price_details", "unit_amount_decimal": price_obj["unit_amount_decimal"],
            "price_details": {"price": price_obj["id"], "product": price_obj["product"]}}


def line_item(lid: str, invoice_id: str, amount: int, currency: str, quantity: int | None,
              parent: Obj, pricing: Obj, period: tuple[int, int], livemode: bool,
              description: str = "", discount_amounts: list | None = None) -> Obj:
    """An invoice line item (`parent` from `line_parent`, `pricing` from `line_pricing`)."""
    return {"id": lid, "object": "line_item", "amount": amount, "currency": currency,
            "description": description, "discount_amounts": discount_amounts or [],
            "discountable": True, "discounts": [], "invoice": invoice_id, "livemode": livemode,
            "metadata": {}, "parent": parent,
            "period": {"end": period[1], "start": period[0]},
            "pretax_credit_amounts": [], "pricing": pricing,
            "quantity": quantity, "quantity_decimal": None, "subtotal": amount, "taxes": []}


def invoice_parent(subscription_id: str) -> Obj:
    """An invoice's `parent` when it bills a subscription (current API shape)."""
    return {"type": "subscription_details", "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id}}


def invoice(iid: str, customer_obj: Obj, n: int, created: int, currency: str,
            billing_reason: str, parent: Obj | None, period: tuple[int, int],
            livemode: bool) -> Obj:
    """A Stripe invoice skeleton (draft); billing settles its amounts and status."""
    return {"id": iid, "object": "invoice", "account_country": "US", "account_name": "Sandbox SaaS",
            "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": 0,
            "amount_shipping": 0, "attempt_count": 0, "attempted": False, "auto_advance": False,
            "automatic_tax": _NO_TAX, "automatically_finalizes_at": None,
            "billing_reason": billing_reason, "collection_method": "charge_automatically",
            "created": created, "currency": currency, "customer": customer_obj["id"],
            "customer_address": customer_obj.get("address"),
            "customer_email": customer_obj.get("email"),
            "customer_name": customer_obj.get("name"), "customer_phone": customer_obj.get("phone"),
            "customer_shipping": customer_obj.get("shipping"), "customer_tax_exempt": "none",
            "customer_tax_ids": [], "default_payment_method": None, "description": None,
            "discounts": [], "due_date": None, "effective_at": created, "ending_balance": 0,
            "footer": None, "issuer": _ISSUER, "last_finalization_error": None,
            "lines": empty_list(f"/v1/invoices/{iid}/lines"), "livemode": livemode,
            "metadata": {}, "next_payment_attempt": None, "number": f"S{n:07X}-{iid[-6:]}",
            "paid_out_of_band": False, "parent": parent,
            "payments": empty_list(f"/v1/invoice_payments?invoice={iid}"),
            "period_end": period[1], "period_start": period[0],
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": None, "starting_balance": 0, "statement_descriptor": None,
            "status": "draft", "status_transitions": _TRANSITIONS_EMPTY, "subtotal": 0,
            "subtotal_excluding_tax": 0, "test_clock": None, "total": 0,
            "total_discount_amounts": [], "total_excluding_tax": 0,
            "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": created}


def invoice_payment(ipid: str, invoice_id: str, charge_id: str, amount: int, currency: str,
                    created: int, status: str, paid_at: int | None, livemode: bool) -> Obj:
    """An invoice_payment: the current-shape link from an invoice to the charge that paid it."""
    return {"id": ipid, "object": "invoice_payment", "amount_paid": amount if paid_at else 0,
            "amount_requested": amount, "created": created, "currency": currency,
            "invoice": invoice_id, "is_default": status == "paid", "livemode": livemode,
            "payment": {"type": "charge", "charge": charge_id},
            "status": status, "status_transitions": {"canceled_at": None, "paid_at": paid_at}}


_OUTCOMES = {
    code: {"network_status": "declined_by_network" if code else "approved_by_network",
           "reason": code, "risk_level": "normal",
           "seller_message": "The bank declined the payment." if code else "Payment complete.",
           "type": "issuer_declined" if code else "authorized"}
    for code in (None, "card_declined", "insufficient_funds", "expired_card")}
_FAILURE_MESSAGES = {"card_declined": "Your card was declined.",
                     "insufficient_funds": "Your card has insufficient funds.",
                     "expired_card": "Your card has expired."}


def payer_details(customer_obj: Obj, n: int) -> tuple[Obj, Obj]:
    """A customer's charge `billing_details` and card `payment_method_details` (planted data)."""
    billing = {"address": planted_address(n), "email": customer_obj.get("email"),
               "name": planted_name(n), "phone": planted_phone(n), "tax_id": None}
    card = {"type": "card", "card": {
        "brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2031,
        "fingerprint": f"PLANTEDFP{n:06d}", "funding": "credit", "last4": "4242",
        "network": "visa"}}
    return billing, card


def charge(chid: str, customer_obj: Obj, payer: tuple[Obj, Obj], amount: int, currency: str,
           created: int, livemode: bool, failure_code: str | None = None,
           description: str | None = None) -> Obj:
    """A Stripe charge (succeeded, or failed with `failure_code`); `payer` from payer_details."""
    failed = failure_code is not None
    return {"id": chid, "object": "charge", "amount": amount,
            "amount_captured": 0 if failed else amount, "amount_refunded": 0,
            "application": None, "application_fee": None, "application_fee_amount": None,
            "balance_transaction": None if failed else f"txn_{chid[3:]}",
            "billing_details": payer[0],
            "calculated_statement_descriptor": "SANDBOX SAAS", "captured": not failed,
            "created": created, "currency": currency, "customer": customer_obj["id"],
            "description": description, "disputed": False, "failure_balance_transaction": None,
            "failure_code": failure_code,
            "failure_message": _FAILURE_MESSAGES.get(failure_code) if failed else None,
            "fraud_details": {}, "livemode": livemode, "metadata": {}, "on_behalf_of": None,
            "outcome": _OUTCOMES[failure_code],
            "paid": not failed, "payment_intent": None, "payment_method": f"pm_{chid[3:]}",
            "payment_method_details": payer[1],
            "receipt_email": customer_obj.get("email"), "receipt_number": None, "receipt_url": None,
            "refunded": False, "refunds": empty_list(f"/v1/charges/{chid}/refunds"),
            "review": None, "shipping": None, "source_transfer": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "failed" if failed else "succeeded", "transfer_data": None,
            "transfer_group": None}


def refund(rid: str, charge_obj: Obj, amount: int, created: int) -> Obj:
    """A Stripe refund of (part of) a charge."""
    return {"id": rid, "object": "refund", "amount": amount, "balance_transaction": None,
            "charge": charge_obj["id"], "created": created, "currency": charge_obj["currency"],
            "customer": charge_obj["customer"], "destination_details": None,
            "metadata": {}, "payment_intent": None, "payment_method": charge_obj["payment_method"],
            "reason": "requested_by_customer", "receipt_number": None,
            "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None}


def event(eid: str, etype: str, created: int, obj: Obj, livemode: bool,
          previous_attributes: Obj | None = None) -> Obj:
    """A Stripe event wrapping a snapshot of `obj` at `created`."""
    data: Obj = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {"id": eid, "object": "event", "api_version": API_VERSION, "created": created,
            "data": data, "livemode": livemode, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "type": etype}
