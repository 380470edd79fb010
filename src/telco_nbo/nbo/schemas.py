"""Typed decisions: what the ranking returns per account (pydantic, JSON round-trippable).

A decision answers "which offer, on which channel, for this account, and why", and keeps the audit
trail: every catalog offer is either in ``offers`` (with its value parts and reasons) or in
``suppressed`` (with the rule that removed it and every other rule that would have).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["app", "email", "sms", "call_center", "retail"]
Layer = Literal["eligibility", "applicability", "suitability", "value", "household", "selection", "capacity"]


class ValueBreakdown(BaseModel):
    """Expected value of one offer and its parts (see :mod:`telco_nbo.nbo.arbitration`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    propensity: float = Field(ge=0, le=1, description="P(accept | contacted)")
    margin_months: float = Field(ge=0, description="Months of margin counted over the horizon")
    acceptance_value: float = Field(description="propensity x monthly margin x margin_months")
    uplift: float = Field(description="Drop in churn probability the offer causes")
    clv: float
    retention_value: float = Field(description="uplift x CLV")
    kind_weight: float = Field(ge=0, description="Business lever for the offer kind")
    contact_cost: float = Field(ge=0, description="Cost of the contact on the chosen channel")
    expected_value: float = Field(description="kind_weight x (acceptance + retention) - contact_cost")
    uplift_se: float | None = Field(default=None, ge=0,
                                    description="Standard error of the uplift estimate the value rests on")
    decision_value: float | None = Field(
        default=None, description="What the policy decided on: expected_value, or its lower confidence bound "
                                  "(risk: lcb)")


class RankedOffer(BaseModel):
    """One offer made to an account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(ge=1)
    offer_id: str
    kind: str
    product: str
    promotional: bool
    channel: Channel
    score: float = Field(ge=0, le=1, description="Acceptance propensity")
    expected_value: float
    value: ValueBreakdown
    monthly_price: float
    term_months: int = Field(ge=0)
    message: str = Field(description="Customer-facing text with price and term")
    reasons: list[str] = Field(default_factory=list, description="Need signals, then model reason codes")


class SuppressedOffer(BaseModel):
    """One catalog offer not made, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_id: str
    layer: Layer
    rule_id: str
    reason: str
    also_blocked_by: list[str] = Field(default_factory=list, description="Other rules that remove it too")
    value_removed: float | None = Field(
        default=None, ge=0, description="Decision value the offer would have had (>= 0): what removing it cost, "
                                        "as the policy estimates it; null where unscored")


class AccountDecision(BaseModel):
    """The decision for one account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str
    household_id: str
    as_of: dt.date | None = None
    churn_probability: float = Field(ge=0, le=1)
    clv: float
    offers: list[RankedOffer]
    suppressed: list[SuppressedOffer]
    model_versions: dict[str, str] = Field(default_factory=dict)

    @property
    def best(self) -> RankedOffer | None:
        """The top offer, if any."""
        return self.offers[0] if self.offers else None


class DecisionBatch(BaseModel):
    """Decisions for a batch of accounts (what the API returns for a batch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decisions: list[AccountDecision]
