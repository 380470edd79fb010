"""How one contact is valued: the economics that the truth, the simulator and off-policy estimates share.

The value of contacting account ``a`` with offer ``o`` on channel ``c``, relative to not
contacting it, is::

    value = accepted x accept_value(a, o) - churned_90d x kept_value(a) - cost(c)
            (minus the same without the contact: - churned_90d_without x kept_value(a))

* ``accept_value(a, o) = (monthly_margin_o + bill_change_o x bill_a) x annuity(months_o)``: the
  margin an acceptance earns over ``months_o = min(term, 12)`` months (no-commitment offers: 6),
  discounted at 1 % a month; ``bill_change`` is the change of the account's whole bill while the
  offer runs, the catalog offer's ``bill_change`` (a plan review cuts it by 8 %).
* ``kept_value(a) = margin_rate x bill_a x annuity(36)``: what keeping the customer is worth, 36
  months of its margin (``margin_rate`` = 50 % of the bill), discounted.
* ``cost(c)``: the cost of one contact on the channel.

Every term is observable in a data folder (acceptance in ``contacts``, churn in
``accounts.end_date``, the bill in ``accounts.monthly_charges``), so the realized value of a
logged contact has exactly the expectation the truth gives: off-policy estimates and the truth
measure the same thing. The figures are the synthetic world's; on real data they are the
operator's assumptions (pass an :class:`Economics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telco_nbo.data.schema import CHANNELS
from telco_nbo.nbo.catalog import Catalog, bill_changes


def _default_costs() -> dict[str, float]:
    # The same figures as the engine's default config (telco_nbo.nbo.config.NboConfig).
    return {"app": 0.05, "email": 0.02, "sms": 0.08, "call_center": 4.0, "retail": 6.0}


@dataclass(frozen=True)
class Economics:
    """Valuation constants (defaults: the synthetic world's).

    Attributes:
        margin_rate: Share of the bill that is margin.
        monthly_discount: Discount rate per month.
        horizon_months: Months an offer with a term earns at most.
        no_commitment_months: Months an offer without a term earns.
        kept_months: Months of margin a kept customer is worth.
        contact_costs: Cost of one contact per channel.
        bill_change: Offer id -> change of the whole bill while the offer runs (fraction);
            ``None`` for the built-in catalog's ``bill_change`` fields (see :meth:`from_catalog`).
    """

    margin_rate: float = 0.5
    monthly_discount: float = 0.01
    horizon_months: int = 12
    no_commitment_months: int = 6
    kept_months: int = 36
    contact_costs: dict[str, float] = field(default_factory=_default_costs)
    # None rather than a copy made here: reading the catalog is deferred to first use, so building
    # the module's DEFAULT_ECONOMICS at import reads no file.
    bill_change: dict[str, float] | None = None

    @classmethod
    def from_catalog(cls, catalog: Catalog, **kwargs: Any) -> Economics:
        """Economics whose bill changes are the given catalog's (other fields as ``kwargs``)."""
        return cls(bill_change=bill_changes(catalog), **kwargs)

    def bill_changes(self) -> dict[str, float]:
        """Offer id -> change of the whole bill (the built-in catalog's when not given)."""
        return bill_changes() if self.bill_change is None else self.bill_change

    def annuity(self, months: np.ndarray | float) -> np.ndarray:
        """``sum_{k=1..months} (1 + r)^-k`` (closed form; fractional months interpolate)."""
        v = 1.0 / (1.0 + self.monthly_discount)
        return v * (1 - v ** np.asarray(months, dtype=float)) / (1 - v)

    def offer_months(self, term_months: np.ndarray) -> np.ndarray:
        """Months of margin an acceptance earns: the term (capped at the horizon) or the no-commitment months."""
        term = np.asarray(term_months, dtype=float)
        return np.where(term > 0, np.minimum(term, self.horizon_months), self.no_commitment_months)

    def accept_value(self, offer_ids: np.ndarray, monthly_margin: np.ndarray, term_months: np.ndarray,
                     bill: np.ndarray) -> np.ndarray:
        """Margin of an acceptance (``(n, m)`` for ``m`` offers and ``n`` bills, or elementwise).

        Args:
            offer_ids: Offer ids (``(m,)``, or ``(n,)`` elementwise with the others).
            monthly_margin: Catalog monthly margin of each offer.
            term_months: Catalog term of each offer.
            bill: Monthly bill of each account.
        """
        by_offer = self.bill_changes()
        change = np.array([by_offer.get(str(o), 0.0) for o in np.asarray(offer_ids, dtype=object)])
        per_month = np.asarray(monthly_margin, float) + change * np.asarray(bill, float)
        return per_month * self.annuity(self.offer_months(term_months))

    def kept_value(self, bill: np.ndarray) -> np.ndarray:
        """What keeping an account with this monthly bill is worth."""
        return self.margin_rate * np.asarray(bill, float) * float(self.annuity(self.kept_months))

    def cost(self, channels: np.ndarray) -> np.ndarray:
        """Contact cost per channel name (0 where there is no contact)."""
        ch = np.asarray(channels, dtype=object)
        return np.array([self.contact_costs.get(c, 0.0) if isinstance(c, str) else 0.0 for c in ch], float)

    def cost_vector(self) -> np.ndarray:
        """Cost per channel in :data:`~telco_nbo.data.schema.CHANNELS` order."""
        return np.array([self.contact_costs[c] for c in CHANNELS], float)


DEFAULT_ECONOMICS = Economics()
