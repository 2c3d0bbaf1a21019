"""Simulates each customer's billing history from sign-up until `now`."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from sandbox import objects, trials
from sandbox.billing import Attempt, Collection, Line, create_invoice, refund_charge
from sandbox.catalog import (
    ADD_ONS,
    BASE_PLANS,
    COUPON_WEIGHTS,
    CURRENCY_WEIGHTS,
    DAY,
    ONE_TIME,
    add_months,
    line_amount,
    period_end,
)
from sandbox.countries import pick_country
from sandbox.discount_changes import maybe_change_discount
from sandbox.item_mutations import maybe_remove_add_on
from sandbox.objects import Obj
from sandbox.seat_changes import maybe_change_seats_mid_period, replace_item

if TYPE_CHECKING:
    from sandbox.company import Company

DUNNING_RETRY_DAYS = (3, 5, 7)  # retries after the first failed attempt, then give up
DECLINE_CODES = ("card_declined", "insufficient_funds", "expired_card")
INCOMPLETE_WINDOW = 23 * 3600  # a first payment left unpaid this long expires the subscription
MONTHLY_CHURN = 0.025


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


class HistorySimulator:
    """Writes customers, subscriptions, invoices, charges and refunds into a company."""

    def __init__(self, company: Company, rng: random.Random, start: int) -> None:
        self.co = company
        self.rng = rng
        self.start = start
        self.now = company.now
        self._all_modules = False
        self._first_payment_fails = False
        # item removals draw from their own stream: the rest of the history stays as it was
        self.removal_rng = random.Random(f"item-removals:{start}")
        self.seat_rng = random.Random(f"mid-period-seats:{start}")  # likewise
        self.discount_rng = random.Random(f"discount-changes:{start}")  # likewise
        self.country_rng = random.Random(f"countries:{start}")  # likewise

    def simulate_customer(self, n: int) -> None:
        """Create customer number `n` and everything it ever bought."""
        rng, co = self.rng, self.co
        # Sign-ups grow linearly over the years (density ~ t), as for a growing SaaS.
        created = self.start + int((self.now - DAY - self.start) * rng.random() ** 0.5)
        if n == 3:  # signed up two hours ago and the first payment failed: `incomplete`
            created = self.now - 7200
        # Customers 1 and 2 always show the rare shapes (>10 items, >10 lines) to small tests.
        currency = "usd" if n <= 3 else _weighted(rng, CURRENCY_WEIGHTS)
        country = "US" if n <= 3 else pick_country(self.country_rng, currency)
        cust = objects.customer(co.new_id("cus"), n, created, currency, co.livemode, country)
        co.register_customer(cust, n)
        co.emit("customer.created", created, cust)
        ended_at: int | None = created
        self._all_modules = n == 1
        self._first_payment_fails = n == 3
        if n <= 3 or rng.random() < 0.9:
            plan_key = "starter_usd_month" if n == 1 else _weighted(rng, BASE_PLANS[currency])
            ended_at = self.simulate_subscription(cust, plan_key, created + rng.randint(0, 3600))
        roll = rng.random()
        if n == 2:
            self._manual_invoice(cust, rng.randint(created, self.now), lines=15)
        if roll < 0.05 and currency in ONE_TIME:
            self._manual_invoice(cust, rng.randint(created, self.now), lines=rng.randint(1, 3))
        elif roll < 0.06 and currency in ONE_TIME:
            self._manual_invoice(cust, rng.randint(created, self.now), lines=rng.randint(11, 25))
        elif roll < 0.09:
            self._standalone_charge(cust, n, rng.randint(created, self.now))
        if ended_at is not None and roll >= 0.09 and rng.random() < 0.04:
            deleted_at = ended_at + rng.randint(DAY, 60 * DAY)
            if deleted_at < self.now:
                co.delete_customer(cust["id"], deleted_at)

    def _items_for(self, sub_id: str, plan_key: str, created: int) -> list[tuple[Obj, int | None]]:
        """The subscription's (item, quantity) list: base plan plus add-ons."""
        rng, co = self.rng, self.co
        spec = co.plan(plan_key)
        if spec.billing_scheme == "tiered":
            quantity: int | None = rng.randint(5, 40)
        elif spec.product == "pro":
            quantity = rng.randint(1, 20)
        else:
            quantity = 1
        keys: list[tuple[str, int | None]] = [(plan_key, quantity)]
        addon = ADD_ONS.get((spec.currency, spec.interval or ""))
        if addon and spec.interval_count == 1 and rng.random() < 0.15:
            keys.append((addon, 1))
        if spec.currency == "usd" and spec.interval == "month" and spec.interval_count == 1:
            if rng.random() < 0.08:
                keys.append(("api_usd_month", None))
            if self._all_modules or rng.random() < 0.01:
                keys.extend((f"module{i}_usd_month", 1) for i in range(1, 13))
        return [(objects.subscription_item(co.new_id("si"), sub_id, co.price_by_key(k), q,
                                           created, created, created), q) for k, q in keys]

    def simulate_subscription(self, cust: Obj, plan_key: str, start: int) -> int | None:
        """Simulate one subscription; returns when it ended (None if it is still running)."""
        rng, co, now = self.rng, self.co, self.now
        spec = co.plan(plan_key)
        sub = objects.subscription(co.new_id("sub"), cust["id"], spec.currency, start, co.livemode)
        items = self._items_for(sub["id"], plan_key, start)
        sub["items"] = objects.empty_list(sub["items"]["url"], [si for si, _ in items])
        for si, _ in items:
            co.add("subscription_item", si)
        co.add("subscription", sub)
        discount = None
        if rng.random() < 0.12:
            cpn = co.get("coupon", _weighted(rng, COUPON_WEIGHTS))
            if cpn["currency"] in (None, spec.currency):
                months = cpn["duration_in_months"]
                discount = objects.discount(co.new_id("di"), cpn, cust["id"], sub["id"], start,
                                            add_months(start, months) if months else None)
                co.add("discount", discount)
        trial_days = 14 if rng.random() < 0.3 and not self._first_payment_fails else 0
        period_start = start
        sub["status"] = "trialing" if trial_days else "incomplete"
        co.emit("customer.subscription.created", start, sub)
        first_reason = "subscription_create"
        if trial_days:
            trial_end = start + trial_days * DAY
            sub.update(trial_start=start, trial_end=trial_end, billing_cycle_anchor=trial_end)
            lines = [Line(si["price"], q, 0, (start, trial_end), si["id"],
                          description="Trial period") for si, q in items]
            self._invoice(sub, lines, start, "subscription_create", [], Collection())
            self._set_period(items, start, trial_end)
            if trial_end > now:
                return None
            if rng.random() < 0.3:  # the trial lapses: no payment method, Stripe cancels
                if trials.chosen(sub["id"], "paused-trial", trials.PAUSED_TRIAL_SHARE):
                    return trials.pause_at_trial_end(co, sub)  # ... or pauses it
                return self._end(sub, trial_end, trial_end, "cancellation_requested")
            sub["status"] = "active"
            co.emit("customer.subscription.updated", trial_end, sub,
                    {"status": "trialing"})
            period_start, first_reason = trial_end, "subscription_cycle"
        prorations: list[Line] = []
        reason = first_reason
        while True:
            pend = period_end(period_start, spec.interval, spec.interval_count)
            self._set_period(items, period_start, pend)
            lines = prorations + [self._period_line(si, q, period_start, pend) for si, q in items]
            prorations = []
            discounts = self._discounts_at(discount, period_start, sub)
            collection = self._collection(period_start)
            if self._first_payment_fails and reason == "subscription_create":
                # Stripe does not retry the first invoice: it waits 23 h for the customer.
                collection = Collection([Attempt(period_start, "card_declined")])
            inv = self._invoice(sub, lines, period_start, reason, discounts, collection)
            if inv["status"] == "uncollectible":
                return self._dunning_exhausted(sub, inv, reason == "subscription_create")
            if inv["status"] == "open":
                self._dunning_pending(sub, inv, reason == "subscription_create")
                return inv["created"] if sub["status"] == "incomplete_expired" else None
            if sub["status"] == "incomplete":  # the first payment went through
                sub["status"] = "active"
                co.emit("customer.subscription.updated", inv["status_transitions"]["paid_at"],
                        sub, {"status": "incomplete"})
            reason = "subscription_cycle"
            months = spec.interval_count * {"year": 12, "month": 1, "week": 0.25}[spec.interval]
            if rng.random() < MONTHLY_CHURN * months:
                cancel = rng.randint(period_start + 1, pend - 1)
                if cancel < now:
                    return self._cancel(sub, cancel, pend, at_period_end=rng.random() < 0.6)
            discount = maybe_change_discount(co, self.discount_rng, sub, discount, period_start,
                                             pend)
            if pend > now:
                maybe_change_seats_mid_period(co, self.seat_rng, sub, items, period_start)
                if rng.random() < 0.02:
                    paused_at = rng.randint(period_start, now)
                    sub["pause_collection"] = {"behavior": "void", "resumes_at": None}
                    co.emit("customer.subscription.updated", paused_at, sub,
                            {"pause_collection": None})
                trials.maybe_add_trial(co, sub, period_start)
                return None
            maybe_remove_add_on(co, self.removal_rng, sub, items, period_start, pend)
            change = self._quantity_change(sub, items, period_start, pend)
            if change:
                prorations = change
            period_start = pend

    def _set_period(self, items: list[tuple[Obj, int | None]], start: int, end: int) -> None:
        for si, _ in items:
            si["current_period_start"], si["current_period_end"] = start, end

    def _period_line(self, si: Obj, quantity: int | None, start: int, end: int) -> Line:
        spec = self.co.plan(si["price"]["lookup_key"])
        if spec.usage_type == "metered":
            quantity = self.rng.randint(0, 50_000)
        return Line(si["price"], quantity, line_amount(spec, quantity or 0), (start, end), si["id"],
                    description=f"{quantity} x {spec.key}")

    def _discounts_at(self, discount: Obj | None, at: int, sub: Obj) -> list[Obj]:
        """Discounts that apply to the invoice created at `at`, keeping `sub.discounts` current."""
        if discount is None:
            return []
        cpn = discount["source"]["coupon"]
        if cpn["duration"] == "once":
            applies = at == discount["start"] or (sub["trial_end"] == at)
        else:
            applies = discount["end"] is None or at < discount["end"]
        ends_later = discount["end"] is None or discount["end"] > self.now
        keep = cpn["duration"] != "once" and ends_later
        sub["discounts"] = [discount] if keep else []
        return [discount] if applies else []

    def _collection(self, created: int) -> Collection:
        """Payment attempts for an invoice created at `created`: mostly paid at once."""
        rng, now = self.rng, self.now
        roll = rng.random()
        if roll < 0.93:
            return Collection([Attempt(created)])
        paid_on = rng.randint(1, len(DUNNING_RETRY_DAYS)) if roll < 0.995 else None
        attempts = [Attempt(created, rng.choice(DECLINE_CODES))]
        at = created
        for i, days in enumerate(DUNNING_RETRY_DAYS, start=1):
            at += days * DAY
            if at > now:
                return Collection(attempts, next_attempt=at)
            if paid_on == i:
                attempts.append(Attempt(at))
                return Collection(attempts)
            attempts.append(Attempt(at, rng.choice(DECLINE_CODES)))
        return Collection(attempts, exhausted=True)

    def _invoice(self, sub: Obj, lines: list[Line], created: int, reason: str,
                 discounts: list[Obj], collection: Collection) -> Obj:
        inv = create_invoice(self.co, sub["customer"], sub["currency"], created, reason,
                             sub["id"], lines, discounts, collection)
        sub["latest_invoice"] = inv["id"]
        return inv

    def _dunning_pending(self, sub: Obj, inv: Obj, first: bool) -> None:
        """The latest invoice is still being retried at `now`."""
        previous = sub["status"]
        if first and self.now - inv["created"] > INCOMPLETE_WINDOW:
            expired = inv["created"] + INCOMPLETE_WINDOW
            # Stripe voids the first invoice of a subscription that expires incomplete.
            inv.update(status="void", next_payment_attempt=None,
                       status_transitions={**inv["status_transitions"], "voided_at": expired})
            self.co.emit("invoice.voided", expired, inv)
            self._end(sub, expired, None, "payment_failed", status="incomplete_expired")
            return
        sub["status"] = "incomplete" if first else "past_due"
        self._mark_delinquent(sub)
        if previous != sub["status"]:
            self.co.emit("customer.subscription.updated", inv["status_transitions"]["finalized_at"],
                         sub, {"status": previous})

    def _dunning_exhausted(self, sub: Obj, inv: Obj, first: bool) -> int | None:
        """All retries failed: Stripe either cancels the subscription or leaves it unpaid."""
        gave_up = inv["status_transitions"]["marked_uncollectible_at"]
        if first:
            return self._end(sub, inv["created"] + INCOMPLETE_WINDOW, None, "payment_failed",
                             status="incomplete_expired")
        if self.rng.random() < 0.2:
            sub["status"] = "unpaid"
            self._mark_delinquent(sub)
            self.co.emit("customer.subscription.updated", gave_up, sub,
                         {"status": "past_due"})
            return None
        return self._end(sub, gave_up, gave_up, "payment_failed")

    def _mark_delinquent(self, sub: Obj) -> None:
        """An unpaid invoice makes the customer delinquent, as Stripe flags it."""
        customer = self.co.get("customer", sub["customer"])
        if customer is not None and not customer.get("deleted"):
            customer["delinquent"] = True

    def _cancel(self, sub: Obj, requested: int, pend: int, at_period_end: bool) -> int | None:
        """The customer cancels at `requested`, either now or at the end of the period."""
        if not at_period_end:
            return self._end(sub, requested, requested, "cancellation_requested")
        sub.update(cancel_at_period_end=True, cancel_at=pend, canceled_at=requested,
                   cancellation_details={"comment": None, "feedback": "too_expensive",
                                         "reason": "cancellation_requested"})
        self.co.emit("customer.subscription.updated", requested, sub,
                     {"cancel_at_period_end": False, "cancel_at": None, "canceled_at": None})
        return self._end(sub, requested, pend, "cancellation_requested")

    def _end(self, sub: Obj, canceled_at: int, ended_at: int | None, reason: str,
             status: str = "canceled") -> int | None:
        """Mark the subscription ended (or, if `ended_at` is after now, scheduled to end)."""
        ended = ended_at if ended_at is not None else canceled_at
        if ended > self.now:
            return None  # still running until its period ends
        sub.update(status=status, canceled_at=canceled_at, ended_at=ended,
                   cancellation_details={**sub["cancellation_details"], "reason": reason})
        sub["discounts"] = []
        self.co.emit("customer.subscription.deleted", ended, sub)
        return ended

    def _quantity_change(self, sub: Obj, items: list[tuple[Obj, int | None]], start: int,
                         end: int) -> list[Line]:
        """Maybe change the seat count: at renewal, or mid-cycle with proration lines."""
        rng = self.rng
        si, quantity = items[0]
        if quantity is None or si["price"]["lookup_key"].startswith("starter"):
            return []
        if rng.random() > 0.08:
            return []
        new_q = max(1, quantity + rng.choice((-3, -2, -1, 1, 2, 3, 5)))
        spec = self.co.plan(si["price"]["lookup_key"])
        # a new item dict (not set in place), so the events emitted before keep the old quantity
        new_si = dict(si, quantity=new_q)
        previous = sub["items"]  # Stripe sends the whole previous item list
        sub["items"] = dict(sub["items"], data=[new_si if i is si else i
                                                for i in sub["items"]["data"]])
        replace_item(self.co, si, new_si)
        items[0] = (new_si, new_q)
        si = new_si
        if rng.random() < 0.5:
            self.co.emit("customer.subscription.updated", end, sub, {"items": previous})
            return []
        at = rng.randint(start + 1, end - 1)
        share = (end - at) / (end - start)
        self.co.emit("customer.subscription.updated", at, sub, {"items": previous})
        return [Line(si["price"], quantity, -round(line_amount(spec, quantity) * share), (at, end),
                     si["id"], proration=True, description=f"Unused time on {quantity} seats"),
                Line(si["price"], new_q, round(line_amount(spec, new_q) * share), (at, end),
                     si["id"], proration=True, description=f"Remaining time on {new_q} seats")]

    def _manual_invoice(self, cust: Obj, at: int, lines: int) -> None:
        """A one-off invoice of invoice items (billing_reason manual)."""
        price = self.co.price_by_key(ONE_TIME[cust["currency"]])
        amount = price["unit_amount"]
        items = [Line(price, 1, amount, (at, at), description=f"Onboarding session {i + 1}")
                 for i in range(lines)]
        create_invoice(self.co, cust["id"], cust["currency"], at, "manual", None, items, [],
                       self._collection(at))

    def _standalone_charge(self, cust: Obj, n: int, at: int) -> None:
        """A charge without an invoice, sometimes refunded later."""
        ch = objects.charge(self.co.new_id("ch"), cust, self.co.payer(cust),
                            self.rng.randint(10, 500) * 100,
                            cust["currency"], at, self.co.livemode,
                            description=f"Consulting for {objects.planted_name(n)}")
        self.co.add("charge", ch)
        self.co.emit("charge.succeeded", at, ch)

    def refund_some_charges(self) -> None:
        """Refund about 3% of succeeded charges, fully or partly, a few days after them."""
        rng = self.rng
        for ch in list(self.co.objects["charge"]):
            if ch["status"] != "succeeded" or rng.random() > 0.03:
                continue
            at = ch["created"] + rng.randint(3600, 10 * DAY)
            if at >= self.now:
                continue
            amount = ch["amount"] if rng.random() < 0.6 else max(1, ch["amount"] // 2)
            refund_charge(self.co, ch, amount, at)
