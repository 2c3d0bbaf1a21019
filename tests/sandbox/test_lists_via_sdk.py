"""List semantics of the sandbox, exercised with the real stripe SDK over HTTP."""

from __future__ import annotations

import pytest
import stripe

from sandbox.company import Company
from tests.sandbox.conftest import NOW

DAY = 86_400


def _ids(objs) -> list[str]:
    return [o.id for o in objs]


def _newest_first(objs: list[dict]) -> list[str]:
    return [o["id"] for o in sorted(objs, key=lambda o: (o["created"], o["id"]), reverse=True)]


def test_auto_paging_returns_every_invoice_once_newest_first(client, company: Company):
    listed = _ids(client.v1.invoices.list(params={"limit": 100}).auto_paging_iter())
    assert listed == _newest_first(company.objects["invoice"])
    assert len(listed) == len(set(listed)) > 500


def test_paging_backwards_with_ending_before_has_no_gaps_or_duplicates(client, company: Company):
    expected = _newest_first([c for c in company.objects["customer"] if not c.get("deleted")])
    oldest_page = client.v1.customers.list(
        params={"limit": 100, "starting_after": expected[-21]})
    assert _ids(oldest_page.data) == expected[-20:]
    assert oldest_page.has_more is False
    collected: list[str] = []
    cursor = expected[-20]
    while True:
        page = client.v1.customers.list(params={"limit": 9, "ending_before": cursor})
        collected = _ids(page.data) + collected
        if not page.has_more:
            break
        cursor = page.data[0].id
    assert collected == expected[:-20]


def test_created_filters_bound_the_listed_objects(client, company: Company):
    lo, hi = NOW - 200 * DAY, NOW - 100 * DAY
    listed = list(client.v1.charges.list(
        params={"limit": 100, "created": {"gte": lo, "lt": hi}}).auto_paging_iter())
    expected = [c for c in company.objects["charge"] if lo <= c["created"] < hi]
    assert _ids(listed) == _newest_first(expected)
    assert listed and all(lo <= c.created < hi for c in listed)
    exact = expected[0]["created"]
    same_second = client.v1.charges.list(params={"created": exact})
    assert exact_ids(same_second) == {c["id"] for c in expected if c["created"] == exact}


def exact_ids(page) -> set[str]:
    return {o.id for o in page.data}


def test_subscriptions_default_excludes_canceled_and_status_all_includes_them(
        client, company: Company):
    default = list(client.v1.subscriptions.list(params={"limit": 100}).auto_paging_iter())
    everything = list(client.v1.subscriptions.list(
        params={"status": "all", "limit": 100}).auto_paging_iter())
    canceled = [s for s in company.objects["subscription"] if s["status"] == "canceled"]
    assert canceled, "the company should have canceled subscriptions"
    assert "canceled" not in {s.status for s in default}
    assert len(everything) == len(company.objects["subscription"])
    assert len(default) == len(everything) - len(canceled)
    past_due = client.v1.subscriptions.list(params={"status": "past_due", "limit": 100})
    assert {s.id for s in past_due.data} == {
        s["id"] for s in company.objects["subscription"] if s["status"] == "past_due"}


def test_customer_filter_lists_only_that_customers_invoices(client, company: Company):
    sub = next(s for s in company.objects["subscription"] if s["status"] == "active")
    listed = list(client.v1.invoices.list(
        params={"customer": sub["customer"], "limit": 5}).auto_paging_iter())
    expected = [i for i in company.objects["invoice"] if i["customer"] == sub["customer"]]
    assert _ids(listed) == _newest_first(expected)
    by_sub = list(client.v1.invoices.list(params={"subscription": sub["id"]}).auto_paging_iter())
    assert {i.parent.subscription_details.subscription for i in by_sub} == {sub["id"]}


def test_event_types_filter_and_thirty_day_cutoff(client, company: Company):
    wanted = ["invoice.payment_failed", "customer.subscription.deleted"]
    listed = list(client.v1.events.list(
        params={"types": wanted, "limit": 100}).auto_paging_iter())
    assert listed and {e.type for e in listed} <= set(wanted)
    expected = [e for e in company.objects["event"]
                if e["type"] in wanted and e["created"] >= NOW - 30 * DAY]
    assert _ids(listed) == _newest_first(expected)
    everything = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    assert min(e.created for e in everything) >= NOW - 30 * DAY
    assert all(e.api_version == "2025-09-30.clover" for e in everything)
    wildcard = list(client.v1.events.list(params={"type": "charge.*"}).auto_paging_iter())
    assert wildcard and {e.type.split(".")[0] for e in wildcard} == {"charge"}
    assert {"charge.succeeded", "charge.updated"} <= {e.type for e in wildcard}
    one = list(client.v1.events.list(params={"type": "charge.updated"}).auto_paging_iter())
    assert one and {e.type for e in one} == {"charge.updated"}


def test_event_types_list_takes_exact_names_only(client, company: Company):
    """`types[]` has no wildcard (only `type` has): `charge.*` there names no event."""
    assert client.v1.events.list(params={"types": ["charge.*"]}).data == []
    split = list(client.v1.events.list(
        params={"types": ["charge.succeeded", "charge.*"], "limit": 100}).auto_paging_iter())
    assert split and {e.type for e in split} == {"charge.succeeded"}


def test_many_events_are_of_types_a_revenue_warehouse_never_reads(company: Company):
    """Payment intents, saved cards, Checkout, invoice creations, charge updates: about two
    events in five, as on real accounts."""
    from pipelines.event_types import LISTED_EVENT_TYPES

    types = [e["type"] for e in company.objects["event"]]
    unread = [t for t in types if t not in LISTED_EVENT_TYPES]
    assert 0.3 < len(unread) / len(types) < 0.5
    assert {"payment_intent.created", "payment_intent.succeeded", "setup_intent.succeeded",
            "payment_method.attached", "checkout.session.completed", "invoice.created",
            "charge.updated"} <= set(unread)


def test_thirty_day_cutoff_hides_older_events_even_when_asked_by_created(company: Company):
    from sandbox.api import StripeApi

    api = StripeApi(company)
    company_event = company.objects["event"][0]
    old = dict(company_event, id="evt_old_on_purpose", created=NOW - 31 * DAY)
    company.objects["event"].append(old)
    company._by_id["event"][old["id"]] = old
    company.touch("event")
    try:
        body = api.list_objects({"created": {"lte": NOW - 30 * DAY - 1}}, "event")
        assert body["data"] == []
    finally:
        company.objects["event"].remove(old)
        del company._by_id["event"][old["id"]]
        company.touch("event")


def test_expand_replaces_ids_by_objects(client, company: Company):
    page = client.v1.subscriptions.list(
        params={"limit": 5, "expand": ["data.latest_invoice", "data.customer"]})
    for sub in page.data:
        assert sub.customer.object == "customer"
        assert sub.latest_invoice.object == "invoice"
        assert sub.latest_invoice.id == company.get("subscription", sub.id)["latest_invoice"]
    one = client.v1.subscriptions.retrieve(page.data[0].id,
                                           params={"expand": ["latest_invoice", "customer"]})
    assert one.latest_invoice.parent.subscription_details.subscription == one.id
    assert one.customer.id == company.get("subscription", one.id)["customer"]


def _discounted(company: Company) -> dict:
    return next(s for s in company.objects["subscription"] if s["discounts"])


def test_discounts_are_ids_unless_expanded_as_stripe_returns_them(client, company: Company):
    sub = _discounted(company)
    stored = sub["discounts"][0]
    plain = client.v1.subscriptions.retrieve(sub["id"])
    assert plain.discounts == [stored["id"]]
    expanded = client.v1.subscriptions.retrieve(sub["id"], params={"expand": ["discounts"]})
    [discount] = expanded.discounts
    assert discount.object == "discount" and discount.subscription == sub["id"]
    # the coupon is not auto-expanded either (2025-09-30.clover)
    assert discount.source.coupon == stored["source"]["coupon"]["id"]
    deeper = client.v1.subscriptions.retrieve(
        sub["id"], params={"expand": ["discounts.source.coupon"]})
    coupon = stored["source"]["coupon"]
    assert deeper.discounts[0].source.coupon.percent_off == coupon["percent_off"]


def test_listed_invoices_expand_their_discounts(client, company: Company):
    invoice = next(i for i in company.objects["invoice"] if i["discounts"])
    created = {"gte": invoice["created"], "lte": invoice["created"]}
    plain = client.v1.invoices.list(params={"created": created, "customer": invoice["customer"]})
    [listed] = [i for i in plain.data if i.id == invoice["id"]]
    assert listed.discounts == [d["id"] for d in invoice["discounts"]]
    expanded = client.v1.invoices.list(
        params={"created": created, "customer": invoice["customer"], "expand": ["data.discounts"]})
    [listed] = [i for i in expanded.data if i.id == invoice["id"]]
    assert [d.id for d in listed.discounts] == [d["id"] for d in invoice["discounts"]]
    assert all(d.object == "discount" for d in listed.discounts)


def test_listed_invoices_expand_their_discounts_coupon_even_a_deleted_one(client,
                                                                          company: Company):
    """`data.discounts.source.coupon` (four levels) renders each discount in Stripe's shape
    (fixtures3 `discount`: `source: {coupon, type: "coupon"}`) with its coupon object, also
    for a coupon deleted since (no longer listed nor retrievable, kept on its discounts); a
    subscription's latest invoice cannot (five levels: a 400)."""
    deleted = company.deleted_coupons["FOREVER20"]
    invoice = next(i for i in company.objects["invoice"]
                   if any(d["source"]["coupon"]["id"] == deleted["id"] for d in i["discounts"]))
    assert deleted["id"] not in _ids(client.v1.coupons.list(params={"limit": 100}).data)
    created = {"gte": invoice["created"], "lte": invoice["created"]}
    listed = client.v1.invoices.list(params={
        "created": created, "customer": invoice["customer"],
        "expand": ["data.discounts.source.coupon"]})
    [served] = [i for i in listed.data if i.id == invoice["id"]]
    [discount] = served.discounts
    assert (discount.object, discount.source.type) == ("discount", "coupon")
    assert discount.subscription == invoice["parent"]["subscription_details"]["subscription"]
    assert (discount.source.coupon.id, discount.source.coupon.percent_off,
            discount.source.coupon.duration) == ("FOREVER20", 20, "forever")
    retrieved = client.v1.invoices.retrieve(
        invoice["id"], params={"expand": ["discounts.source.coupon"]})
    assert retrieved.discounts[0].source.coupon.percent_off == 20
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.list(params={
            "limit": 1, "expand": ["data.latest_invoice.discounts.source.coupon"]})
    assert caught.value.http_status == 400


def test_listed_invoices_expand_their_lines_discounts_four_levels_deep(client, company: Company):
    """An item's own discount is on its invoice lines (an id unless expanded); a listing expands
    it as `data.lines.data.discounts`, four levels, Stripe's deepest; a fifth level is a 400
    ("You cannot expand more than 4 levels of a property"), as `data.lines.data.price.product`
    is on Stripe."""
    invoice = next(i for i in company.objects["invoice"]
                   if any(line["discounts"] for line in i["lines"]["data"]))
    [stored] = [line for line in invoice["lines"]["data"] if line["discounts"]]
    created = {"gte": invoice["created"], "lte": invoice["created"]}
    params = {"created": created, "customer": invoice["customer"]}
    [plain] = [i for i in client.v1.invoices.list(params=params).data if i.id == invoice["id"]]
    [line] = [ln for ln in plain.lines.data if ln.id == stored["id"]]
    assert line.discounts == stored["discounts"]
    expanded = client.v1.invoices.list(
        params={**params, "expand": ["data.lines.data.discounts"]})
    [listed] = [i for i in expanded.data if i.id == invoice["id"]]
    [line] = [ln for ln in listed.lines.data if ln.id == stored["id"]]
    assert [d.id for d in line.discounts] == stored["discounts"]
    assert {d.object for d in line.discounts} == {"discount"}
    assert {d.subscription_item for d in line.discounts} == {
        stored["parent"]["subscription_item_details"]["subscription_item"]}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.list(params={"limit": 1, "expand": ["data.lines.data.price.product"]})
    assert caught.value.http_status == 400
    assert "more than 4 levels" in str(caught.value)


def test_event_payloads_carry_discount_ids(fresh_company: Company):
    from sandbox.api import StripeApi

    sub = _discounted(fresh_company)
    [event] = fresh_company.cancel_subscription(sub["id"], NOW, at_period_end=True)
    served = StripeApi(fresh_company).retrieve({}, "event", event["id"])
    assert served["data"]["object"]["discounts"] == [sub["discounts"][0]["id"]]
    listed = StripeApi(fresh_company).list_objects({"type": "customer.subscription.*"}, "event")
    [payload] = [e["data"]["object"] for e in listed["data"] if e["id"] == event["id"]]
    assert payload["discounts"] == [sub["discounts"][0]["id"]]


def test_embedded_lists_are_cut_to_ten_and_paged_by_their_own_endpoint(client, company: Company):
    big_invoice = next(i for i in company.objects["invoice"] if len(i["lines"]["data"]) > 10)
    served = client.v1.invoices.retrieve(big_invoice["id"])
    assert len(served.lines.data) == 10 and served.lines.has_more is True
    assert served.lines.url == f"/v1/invoices/{big_invoice['id']}/lines"
    lines = list(client.v1.invoices.line_items.list(
        big_invoice["id"], params={"limit": 4}).auto_paging_iter())
    assert _ids(lines) == [ln["id"] for ln in big_invoice["lines"]["data"]]
    big_sub = next(s for s in company.objects["subscription"] if len(s["items"]["data"]) > 10)
    served_sub = client.v1.subscriptions.retrieve(big_sub["id"])
    assert len(served_sub["items"].data) == 10 and served_sub["items"].has_more is True
    items = list(client.v1.subscription_items.list(
        params={"subscription": big_sub["id"], "limit": 5}).auto_paging_iter())
    assert _ids(items) == [i["id"] for i in big_sub["items"]["data"]]


def test_deleted_customer_is_retrievable_as_stub_but_not_listed(client, company: Company):
    deleted = [c for c in company.objects["customer"] if c.get("deleted")]
    assert deleted, "the company should have deleted customers"
    stub = client.v1.customers.retrieve(deleted[0]["id"])
    assert stub.to_dict() == {"id": deleted[0]["id"], "object": "customer", "deleted": True}
    listed = {c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()}
    assert len(listed) == len(company.objects["customer"]) - len(deleted)
    assert not {c["id"] for c in deleted} & listed


def test_account_reports_mode_of_the_key(client, company: Company):
    account = client.v1.accounts.retrieve_current()
    assert account.id == company.account_id and account.livemode is False


def test_unknown_cursor_is_a_stripe_error(client):
    try:
        client.v1.customers.list(params={"starting_after": "cus_nope"})
    except stripe.InvalidRequestError as exc:
        assert exc.http_status == 404 and exc.code == "resource_missing"
    else:
        raise AssertionError("an unknown cursor must be refused")


def test_created_gt_and_lte_bounds_are_exclusive_and_inclusive(client, company: Company):
    created = sorted(c["created"] for c in company.objects["charge"])
    exact = created[len(created) // 2]
    above = client.v1.charges.list(params={"limit": 100, "created": {"gt": exact}})
    at_most = client.v1.charges.list(params={"limit": 100, "created": {"lte": exact}})
    assert min(c.created for c in above.data) > exact
    assert at_most.data[0].created == exact


def test_invoice_status_filter_and_refund_paging(client, company: Company):
    open_invoices = list(client.v1.invoices.list(params={"status": "open"}).auto_paging_iter())
    assert {i.id for i in open_invoices} == {
        i["id"] for i in company.objects["invoice"] if i["status"] == "open"}
    refunded = next(c for c in company.objects["charge"] if c["refunds"]["data"])
    refunds = list(client.v1.refunds.list(params={"charge": refunded["id"]}).auto_paging_iter())
    assert {r.id for r in refunds} == {r["id"] for r in refunded["refunds"]["data"]}
    assert all(r.charge == refunded["id"] for r in refunds)


def test_expanding_a_field_that_is_not_expandable_is_400(client, company: Company):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.list(params={"expand": ["data.no_such_field"]})
    assert caught.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscription_items.list(params={"subscription": "sub_missing"})
    assert caught.value.http_status == 404


def test_tax_rates_are_listed_and_retrieved(client, company: Company):
    """`/v1/tax_rates`: the VAT rates the company's EUR subscriptions carry (issue 15 case 2)."""
    listed = list(client.v1.tax_rates.list(params={"limit": 100}).auto_paging_iter())
    assert _ids(listed) == _newest_first(company.objects["tax_rate"])
    assert {(r.percentage, r.inclusive) for r in listed} == {(19, True), (19, False)}
    assert client.v1.tax_rates.retrieve(listed[0].id).country == "DE"


def test_balance_transactions_are_the_ledger_of_charges_and_refunds(client, company: Company):
    """`/v1/balance_transactions`: one `charge` line per succeeded charge (its captured amount,
    under the id the charge names) and one negative `refund` line per refund, filtered by
    `type` and `created`, with `data.source` expandable."""
    lo, hi = NOW - 60 * DAY, NOW
    listed = list(client.v1.balance_transactions.list(
        params={"limit": 100, "created": {"gte": lo, "lt": hi}, "expand": ["data.source"]}
    ).auto_paging_iter())
    charges = [c for c in company.objects["charge"]
               if c["status"] == "succeeded" and lo <= c["created"] < hi]
    refunds = [r for r in company.objects["refund"] if lo <= r["created"] < hi]
    assert charges and refunds
    by_source = {t.source.id: t for t in listed}
    assert set(by_source) == {o["id"] for o in charges + refunds}
    for charge in charges:
        txn = by_source[charge["id"]]
        assert (txn.id, txn.type, txn.amount, txn.currency) == (
            charge["balance_transaction"], "charge", charge["amount_captured"],
            charge["currency"])
    for refund in refunds:
        txn = by_source[refund["id"]]
        assert (txn.type, txn.amount, txn.currency) == ("refund", -refund["amount"],
                                                        refund["currency"])
    created = [t.created for t in listed]
    assert created == sorted(created, reverse=True)
    only_refunds = client.v1.balance_transactions.list(
        params={"limit": 100, "type": "refund", "created": {"gte": lo, "lt": hi}})
    assert {t.type for t in only_refunds.data} == {"refund"}
