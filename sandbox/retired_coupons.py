"""Deleted coupons whose discounts live on (issue 14, case 7).

Merchants delete a promotion's coupon once the promotion is over: `/v1/coupons` stops listing
it and retrieving it is a 404, yet every discount already made from it keeps applying, forever
for a `forever` coupon. The generated company ends its forever promotion this way, a day after
its last redemption, so that the warehouse must read those coupons' terms on the discounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.catalog import DAY

if TYPE_CHECKING:
    from sandbox.company import Company

ENDED_PROMOTION = "FOREVER20"  # about 2% of subscriptions redeem it (catalog.COUPON_WEIGHTS)


def end_forever_promotion(company: Company) -> None:
    """Delete the forever promotion's coupon a day after its last redemption (if before now)."""
    starts = [d["start"] for d in company.objects["discount"]
              if d["source"]["coupon"]["id"] == ENDED_PROMOTION]
    if starts and max(starts) + DAY < company.now:
        company.delete_coupon(ENDED_PROMOTION, max(starts) + DAY)
