"""The monthly churn hazard of the synthetic world.

Churn (monthly hazard, logistic)
--------------------------------
``logit h = -4.75 + 1.2 m2m - 0.5 two_year_in_contract + 0.9 out_of_contract
+ 1.4 renewal_window (in contract, 0..60 days to the end) + 0.6 recently_lapsed (<= 60 days)
+ 0.9 bill_shock + 0.4 open_ticket + 2.2 open_complaint
+ 0.9 price_z (1 + 0.5 price_sensitivity) + 0.8 exp(-tenure_months / 4) - 0.2 min(tenure_years, 6)
- 0.5 household_has_broadband_and_mobile - 0.15 min(household_lines - 1, 4)
- 0.3 small_business + 0.35 electronic_check + 0.2 senior + 0.1 paperless``
(see :data:`HAZARD`), where ``price_z = log(account list charges / median charges of accounts
with the same region and number of lines)``. A month's hazard applies to the exposed fraction
``e`` of the month: ``P(churn in month) = 1 - (1 - h)^e``; the day is uniform in the exposed part.
Three windows are drawn from closed-form probabilities instead (so the truth is exact):
the retention experiment window, the timing cohort's first contract term, and the 90 days after
``as_of``.
"""

from __future__ import annotations

import numpy as np
from telco_nbo.vocabulary import DAYS_PER_MONTH


HAZARD: dict[str, float] = {
    "intercept": -4.75,
    "month_to_month": 1.2,
    "two_year_in_contract": -0.5,
    "out_of_contract": 0.9,
    "renewal_window": 1.4,
    "recently_lapsed": 0.6,
    "bill_shock": 0.9,
    "open_ticket": 0.4,
    "open_complaint": 2.2,
    "price_z": 0.9,
    "new_customer": 0.8,
    "tenure_years": -0.2,
    "bundle": -0.5,
    "extra_lines": -0.15,
    "small_business": -0.3,
    "electronic_check": 0.35,
    "senior": 0.2,
    "paperless": 0.1,
}
"""Coefficients of the monthly churn hazard's logit (formula in the module docstring)."""

# --------------------------------------------------------------------------------------------
# Hazard
# --------------------------------------------------------------------------------------------


def hazard_logit(
    *,
    kind: np.ndarray,
    days_to_end: np.ndarray,
    tenure_days: np.ndarray,
    bill_shock: np.ndarray,
    open_ticket: np.ndarray,
    open_complaint: np.ndarray,
    price_z: np.ndarray,
    price_sensitivity: np.ndarray,
    bundle: np.ndarray,
    household_lines: np.ndarray,
    small_business: np.ndarray,
    electronic_check: np.ndarray,
    senior: np.ndarray,
    paperless: np.ndarray,
) -> np.ndarray:
    """Logit of the monthly churn hazard (coefficients in :data:`HAZARD`).

    Args:
        kind: 0 month-to-month, 1 one-year in contract, 2 two-year in contract, 3 out of contract.
        days_to_end: Contract end minus now in days (negative once lapsed; ignored for kind 0).
        tenure_days: Days since the account started.
        bill_shock, open_ticket, open_complaint, bundle, small_business, electronic_check,
            senior, paperless: 0/1 indicators.
        price_z: log(account charges / peer median charges).
        price_sensitivity: Household trait, N(0, 1) clipped to [-2, 2].
        household_lines: Active lines in the household.

    Returns:
        ``logit h`` per row.
    """
    c = HAZARD
    in_contract = (kind == 1) | (kind == 2)
    tenure_m = tenure_days / DAYS_PER_MONTH
    return (
        c["intercept"]
        + c["month_to_month"] * (kind == 0)
        + c["two_year_in_contract"] * (kind == 2)
        + c["out_of_contract"] * (kind == 3)
        + c["renewal_window"] * (in_contract & (days_to_end >= 0) & (days_to_end <= 60))
        + c["recently_lapsed"] * ((kind == 3) & (days_to_end >= -60))
        + c["bill_shock"] * bill_shock
        + c["open_ticket"] * open_ticket
        + c["open_complaint"] * open_complaint
        + c["price_z"] * price_z * (1 + 0.5 * price_sensitivity)
        + c["new_customer"] * np.exp(-tenure_m / 4)
        + c["tenure_years"] * np.minimum(tenure_m / 12, 6)
        + c["bundle"] * bundle
        + c["extra_lines"] * np.minimum(np.maximum(household_lines - 1, 0), 4)
        + c["small_business"] * small_business
        + c["electronic_check"] * electronic_check
        + c["senior"] * senior
        + c["paperless"] * paperless
    )


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------
