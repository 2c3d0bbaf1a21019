"""Changes applied to a generated company by refresh and webhook tests, with their events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox import objects
from sandbox.billing import Attempt, Collection, Line, create_invoice
from sandbox.catalog import DAY, line_amount, period_end
from sandbox.objects import Obj
from sandbox.renewals import discounts_of

if TYPE_CHECKING:
    from sandbox.company import Company

_ENDED = ("canceled", "incomplete_expired")


class CompanyMutations:
    """Mutations of a `Company`: each updates the objects and returns the events it emitted."""

    def _require(self: Company, object_type: str, object_id: str) -> Obj:
        obj = self.get(object_type, object_id)
        if obj is None or obj.get("deleted"):
            raise KeyError(f"no {object_type} {object_id!r} in this company")
        return obj

    def _events_since(self: Company, count: int) -> list[Obj]:
        return self.objects["event"][count:]

    def cancel_subscription(self: Company, sub_id: str, at: int, at_period_end: bool = False
                            ) -> list[Obj]:
        """Cancel now (customer.subscription.deleted) or at period end (….updated)."""
        sub = self._require("subscription", sub_id)
        mark = len(self.objects["event"])
        details = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
        if at_period_end:
            previous = {"cancel_at_period_end": sub["cancel_at_period_end"],
                        "cancel_at": sub["cancel_at"], "canceled_at": sub["canceled_at"]}
            end = sub["items"]["data"][0]["current_period_end"]
            sub.update(cancel_at_period_end=True, cancel_at=end, canceled_at=at,
                       cancellation_details=details)
            self.emit("customer.subscription.updated", at, sub, previous)
        else:
            sub.update(status="canceled", canceled_at=at, ended_at=at, cancellation_details=details,
                       discounts=[])
            self.emit("customer.subscription.deleted", at, sub)
        self.touch("subscription")
        return self._events_since(mark)

    def change_quantity(self: Company, sub_id: str, quantity: int, at: int) -> list[Obj]:
        """Change the first item's quantity at `at`; the proration is invoiced at once."""
        sub = self._require("subscription", sub_id)
        mark = len(self.objects["event"])
        item = sub["items"]["data"][0]
        old = item["quantity"] or 0
        spec = self.plan(item["price"]["lookup_key"])
        start, end = item["current_period_start"], item["current_period_end"]
        item["quantity"] = quantity
        self.emit("customer.subscription.updated", at, sub,
                  {"items": {"data": [{"id": item["id"], "quantity": old}]}})
        share = max(0.0, (end - at) / (end - start)) if end > start else 0.0
        lines = [Line(item["price"], old, -round(line_amount(spec, old) * share), (at, end),
                      item["id"], proration=True, description=f"Unused time on {old}"),
                 Line(item["price"], quantity, round(line_amount(spec, quantity) * share),
                      (at, end), item["id"], proration=True,
                      description=f"Remaining time on {quantity}")]
        inv = create_invoice(self, sub["customer"], sub["currency"], at, "subscription_update",
                             sub_id, lines, [], Collection([Attempt(at)]))
        sub["latest_invoice"] = inv["id"]
        self.touch("subscription")
        return self._events_since(mark)

    def fail_payment(self: Company, sub_id: str, at: int) -> list[Obj]:
        """Renew the subscription at `at` and fail the payment: it becomes past_due."""
        sub = self._require("subscription", sub_id)
        mark = len(self.objects["event"])
        items = sub["items"]["data"]
        start = items[0]["current_period_end"]
        recurring = items[0]["price"]["recurring"]
        end = period_end(start, recurring["interval"], recurring["interval_count"])
        for item in items:
            item["current_period_start"], item["current_period_end"] = start, end
        lines = [Line(i["price"], i["quantity"],
                      line_amount(self.plan(i["price"]["lookup_key"]), i["quantity"] or 0),
                      (start, end), i["id"]) for i in items]
        collection = Collection([Attempt(at, "card_declined")], next_attempt=at + 3 * DAY)
        inv = create_invoice(self, sub["customer"], sub["currency"], at, "subscription_cycle",
                             sub_id, lines, discounts_of(sub), collection)
        previous = {"status": sub["status"], "latest_invoice": sub["latest_invoice"]}
        sub.update(status="past_due", latest_invoice=inv["id"])
        self._require("customer", sub["customer"])["delinquent"] = True
        self.emit("customer.subscription.updated", at, sub, previous)
        self.touch("subscription")
        return self._events_since(mark)

    def create_subscription(self: Company, customer_id: str, price_id: str, at: int,
                            trial_days: int = 0, tax_rates: list[Obj] | None = None,
                            quantity: int = 1) -> list[Obj]:
        """Subscribe the customer to `quantity` of one price at `at`, optionally with a trial
        and with `tax_rates` as the subscription's `default_tax_rates`."""
        cust = self._require("customer", customer_id)
        price = self._require("price", price_id)
        mark = len(self.objects["event"])
        recurring = price["recurring"]
        sub = objects.subscription(self.new_id("sub"), customer_id, price["currency"], at,
                                   self.livemode)
        first_end = at + trial_days * DAY if trial_days else period_end(
            at, recurring["interval"], recurring["interval_count"])
        licensed = recurring["usage_type"] != "metered"
        item = objects.subscription_item(self.new_id("si"), sub["id"], price,
                                         quantity if licensed else None, at, at, first_end)
        sub["items"] = objects.empty_list(sub["items"]["url"], [item])
        sub["default_tax_rates"] = list(tax_rates or [])
        if trial_days:
            sub.update(status="trialing", trial_start=at, trial_end=first_end)
        self.add("subscription_item", item)
        self.add("subscription", sub)
        self.emit("customer.subscription.created", at, sub)
        amount = 0 if trial_days or not licensed else line_amount(
            self.plan(price["lookup_key"]), quantity)
        line = Line(price, item["quantity"], amount, (at, first_end), item["id"])
        inv = create_invoice(self, cust["id"], price["currency"], at, "subscription_create",
                             sub["id"], [line], [], Collection([Attempt(at)]))
        sub["latest_invoice"] = inv["id"]
        self.touch("subscription")
        return self._events_since(mark)

    def replace_discounts(self: Company, sub_id: str, at: int, coupon_id: str | None = None
                          ) -> list[Obj]:
        """Remove the subscription's discounts at `at` (customer.subscription.updated with the
        removed ones in `previous_attributes.discounts`), replaced by one made from `coupon_id`
        if given."""
        sub = self._require("subscription", sub_id)
        mark = len(self.objects["event"])
        previous = {"discounts": list(sub["discounts"])}
        replacements = []
        if coupon_id is not None:
            disc = objects.discount(self.new_id("di"), self._require("coupon", coupon_id),
                                    sub["customer"], sub_id, at, None)
            self.add("discount", disc)
            replacements.append(disc)
        sub["discounts"] = replacements
        self.emit("customer.subscription.updated", at, sub, previous)
        self.touch("subscription")
        return self._events_since(mark)

    def delete_coupon(self: Company, coupon_id: str, at: int) -> list[Obj]:
        """Delete the coupon (coupon.deleted): `/v1/coupons` no longer lists it and retrieving
        it is a 404, while the discounts made from it keep applying and expanding to it."""
        cpn = self._require("coupon", coupon_id)
        mark = len(self.objects["event"])
        self.emit("coupon.deleted", at, cpn, deleted=True)
        cpn["valid"] = False
        self.objects["coupon"].remove(cpn)
        del self._by_id["coupon"][coupon_id]
        self.deleted_coupons[coupon_id] = cpn
        self.touch("coupon")
        return self._events_since(mark)

    def delete_customer(self: Company, customer_id: str, at: int) -> list[Obj]:
        """Delete the customer: its running subscriptions are canceled, then customer.deleted."""
        cust = self._require("customer", customer_id)
        mark = len(self.objects["event"])
        for sub in self.subscriptions_of(customer_id):
            if sub["status"] not in _ENDED:
                self.cancel_subscription(sub["id"], at)
        self.emit("customer.deleted", at, cust, deleted=True)
        # Stripe retrieves a deleted customer as this stub.
        self.replace_customer(customer_id, {"id": customer_id, "object": "customer",
                                            "deleted": True})
        self.touch("customer", "subscription")
        return self._events_since(mark)
