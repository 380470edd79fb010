"""Business configuration of the next-best-offer policy (pydantic, loadable from YAML).

Everything a marketing or risk owner may want to tune without touching code lives here: the value
horizon, what a contact costs per channel, weights per offer kind, contact caps, the timing rule's
defaults and the offer kinds that must not go to one household together (conflicts between named
offers are in the offer catalog, with the offers). The defaults are a
reasonable starting point for a mid-size operator, not truths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from telco_nbo.data.schema import CHANNELS
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.catalog import Catalog, Channel, Conflict, LifecycleStage, OfferKind

__all__ = ["CapacityConfig", "Conflict", "ContactCaps", "NboConfig", "TimingConfig", "TimingWindow", "load_nbo_config"]



class TimingWindow(BaseModel):
    """When an offer may go out under one arm of an offer-timing experiment.

    All stated bounds must hold; ``never`` means the arm is "do not offer" (the control arm won).

    Attributes:
        never: Do not offer at all in segments where this arm won.
        min_tenure_days: Offer only to accounts at least this many days old.
        max_tenure_days: Offer only to accounts at most this many days old (e.g. "day 30" arms).
        max_days_to_contract_end: Offer only when the contract ends within this many days
            (month-to-month accounts, which have no end, never match).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    never: bool = False
    min_tenure_days: float | None = Field(default=None, ge=0)
    max_tenure_days: float | None = Field(default=None, gt=0)
    max_days_to_contract_end: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _says_something(self) -> TimingWindow:
        if not self.never and self.min_tenure_days is None and self.max_tenure_days is None \
                and self.max_days_to_contract_end is None:
            raise ValueError("a timing window needs never: true or at least one bound")
        return self


def _default_arms() -> dict[str, TimingWindow]:
    # The arms of the synthetic offer-timing experiment (EXP-TIMING-1): control (no offer), an
    # offer at day 30 of tenure, an offer 60 days before contract end. A batch runs about monthly,
    # so "day 30" is the window from day 30 to day 60. Other arm names are mapped in the YAML.
    return {
        "control": TimingWindow(never=True),
        "day30": TimingWindow(min_tenure_days=30, max_tenure_days=60),
        "pre_end60": TimingWindow(max_days_to_contract_end=60),
    }


class TimingConfig(BaseModel):
    """The applicability timing rule for retention-type offers.

    Attributes:
        offer_kinds: Kinds the timing rule governs.
        renewal_window_months: Without an A/B-derived rule, these kinds are offered only when the
            contract ends within this many months, or the account is in the renewal / at-risk stage.
        default_stages: Lifecycle stages in which the default rule allows them.
        segment_column: Feature column whose value is passed to ``TimingRule.arm_for`` (a timing
            rule object may override it with its own ``segment_column`` attribute).
        arms: Arm name -> timing window, for arms a readout may declare the winner.
        evidence_decides: An offer with randomized evidence of its own effect (its
            ``effect_evidence`` names the uplift experiment) is timed by that evidence -- the
            readout's verdict where there is one, else its per-account effect in the value -- and
            not by the renewal default, which holds for offers nobody measured. ``False``: the
            default governs every offer of ``offer_kinds``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_kinds: list[OfferKind] = Field(default_factory=lambda: ["retention"])
    renewal_window_months: float = Field(default=3.0, gt=0)
    default_stages: list[LifecycleStage] = Field(
        default_factory=lambda: ["renewal", "at_risk"]
    )
    segment_column: str = "account_lifecycle_stage"
    arms: dict[str, TimingWindow] = Field(default_factory=_default_arms)
    evidence_decides: bool = True


def _nonneg_per_channel(v: dict[str, int], what: str) -> dict[str, int]:
    """``v`` unchanged, or a ValueError naming the negative entries."""
    bad = {k: n for k, n in v.items() if n < 0}
    if bad:
        raise ValueError(f"{what} must be >= 0, got {bad}")
    return v


class ContactCaps(BaseModel):
    """Contact caps over the 30-day window the features count contacts in.

    Attributes:
        promo_per_account: Promotional contacts an account may receive per window.
        promo_per_household: Promotional contacts (and new promotional offers) per household per window.
        per_channel: Contacts of any kind per account per channel per window; a channel at its cap
            cannot carry a new offer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    promo_per_account: int = Field(default=1, ge=0)
    promo_per_household: int = Field(default=1, ge=0)
    per_channel: dict[Channel, int] = Field(
        default_factory=lambda: {"app": 4, "email": 4, "sms": 2, "call_center": 1, "retail": 2}
    )

    @field_validator("per_channel")
    @classmethod
    def _nonneg(cls, v: dict[str, int]) -> dict[str, int]:
        return _nonneg_per_channel(v, "channel caps")


class CapacityConfig(BaseModel):
    """A campaign's limits, applied by batch ranking after the household step (see :mod:`telco_nbo.nbo.capacity`).

    Attributes:
        max_contacts: Accounts the campaign may contact at most (``None``: no budget).
        per_channel: Contacts a channel can carry in this run (call-center seats x calls per seat,
            say); channels not named are unlimited.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_contacts: int | None = Field(default=None, ge=0)
    per_channel: dict[Channel, int] = Field(default_factory=dict)

    @field_validator("per_channel")
    @classmethod
    def _nonneg(cls, v: dict[str, int]) -> dict[str, int]:
        return _nonneg_per_channel(v, "channel capacities")

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return self.max_contacts is not None or bool(self.per_channel)


def _default_conflicts() -> list[Conflict]:
    # Conflicts between named offers belong to the offers: they are in the catalog (its
    # ``conflicts``). The ones here are written by kind, so they hold for any catalog.
    return [
        # A discount to keep one account while asking another to pay more reads as incoherent.
        Conflict(a="kind:retention", b="kind:upsell", why="no retention offer next to an upsell in one household"),
        Conflict(a="kind:retention", b="kind:cross_sell",
                 why="no retention offer next to a cross-sell in one household"),
    ]


class NboConfig(BaseModel):
    """The next-best-offer policy's levers.

    Attributes:
        horizon_months: Value horizon: margins count at most this many months.
        no_commitment_months: Cap on months of margin counted for offers without a term; the
            account's expected retained months (from its churn probability) count up to this.
        churn_window_months: The window the churn probability refers to (the label is churn within
            90 days), used to turn it into a monthly hazard.
        contact_costs: Cost of one contact per channel (same currency as margins).
        kind_weights: Business lever per offer kind; multiplies the offer's value (not its cost).
        uplift_experiment: The experiment the account-level uplift model learned from; its uplift
            counts in the value (uplift on churn x CLV) only for offers whose ``effect_evidence``
            names it, when the scores give no per-offer uplift. No offer borrows another's effect.
        complaint_blocked_kinds: "Generic promotions" held back while a complaint is active.
        min_expected_value: An offer is made only if its decision value is above this margin.
        risk: ``"neutral"``: the decision value is the expected value. ``"lcb"`` (default): it is a lower
            confidence bound -- the expected value minus ``lcb_z`` standard errors of the offer's
            estimated effect on churn (x CLV) -- so an offer whose value rests on a noisy effect
            estimate must clear the margin with room to spare, and is ranked by that bound.
        lcb_z: Standard errors subtracted under ``risk: lcb`` (1.0 ~ a one-sided 84 % bound).
        lcb_per_offer: Under ``risk: lcb``, also subtract the per-offer effects' standard errors
            (``uplift_se`` of the scores' offers, e.g. the logged effects). Off by default: those
            effects are empirical-Bayes posterior means, already corrected for picking the largest
            of noisy estimates across offers, and the same error applies to every account of an
            offer (the bound would only scale down all of an offer's contacts at once, turning away
            offers whose value is their margin; see benchmarks/RESULTS.md, policy section).
        capacity: A campaign's contact budget and channel capacities (batch ranking only).
        channel_fallback: Channel order by offer complexity when the preferred channel is not
            among the offer's channels (or is at its cap).
        caps: Contact caps.
        timing: The timing rule's defaults and arm windows.
        conflicts: Offers that must not go to one household together, on top of the catalog's own
            (see :meth:`household_conflicts`); the defaults are written by offer kind.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_months: int = Field(default=12, ge=1, le=120)
    no_commitment_months: float = Field(default=6.0, gt=0)
    churn_window_months: float = Field(default=3.0, gt=0)
    contact_costs: dict[Channel, float] = Field(
        default_factory=lambda: {"app": 0.05, "email": 0.02, "sms": 0.08, "call_center": 4.0, "retail": 6.0}
    )
    kind_weights: dict[OfferKind, float] = Field(default_factory=dict)
    uplift_experiment: str = "EXP-RETENTION-1"
    complaint_blocked_kinds: list[OfferKind] = Field(
        default_factory=lambda: ["cross_sell", "upsell", "add_on", "win_back"]
    )
    min_expected_value: float = 0.0
    # A lower bound by default: ranking by the largest of noisy effect estimates picks their
    # overstatements (the winner's curse). On three 5,000-household worlds the bound kept 0 of the
    # 143-436 discounts the risk-neutral rule sent, which lost 4.3k-11.4k in true value.
    risk: Literal["neutral", "lcb"] = "lcb"
    lcb_z: float = Field(default=1.0, ge=0)
    lcb_per_offer: bool = False
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    channel_fallback: dict[Literal["low", "high"], list[Channel]] = Field(
        default_factory=lambda: {
            "high": ["call_center", "retail", "app", "email", "sms"],
            "low": ["app", "sms", "email", "call_center", "retail"],
        }
    )
    caps: ContactCaps = Field(default_factory=ContactCaps)
    timing: TimingConfig = Field(default_factory=TimingConfig)
    conflicts: list[Conflict] = Field(default_factory=_default_conflicts)

    @field_validator("contact_costs")
    @classmethod
    def _all_channels_costed(cls, v: dict[str, float]) -> dict[str, float]:
        missing = sorted(set(CHANNELS) - set(v))
        if missing:
            raise ValueError(f"contact_costs needs every channel; missing {missing}")
        if any(c < 0 for c in v.values()):
            raise ValueError("contact costs must be >= 0")
        return v

    @field_validator("kind_weights")
    @classmethod
    def _weights_nonneg(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()):
            raise ValueError(f"kind weights must be >= 0, got {v}")
        return v

    @field_validator("channel_fallback")
    @classmethod
    def _fallback_complete(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for level in ("low", "high"):
            order = v.get(level)
            if order is None or sorted(order) != sorted(CHANNELS):
                raise ValueError(f"channel_fallback.{level} must list every channel once: {list(CHANNELS)}")
        return v

    def household_conflicts(self, catalog: Catalog) -> list[Conflict]:
        """Return every conflict the policy applies: the catalog's, then this config's.

        The catalog's come first so the reason shown for a pair named in both is the catalog's.

        Args:
            catalog: The offer catalog.
        """
        return [*catalog.conflicts, *self.conflicts]

    def kind_weight(self, kind: str) -> float:
        """Return the weight of an offer kind (1.0 unless configured)."""
        return float(self.kind_weights.get(kind, 1.0))  # type: ignore[call-overload]


def load_nbo_config(path: str | Path | None = None) -> NboConfig:
    """Load the policy configuration.

    Args:
        path: A YAML file with any subset of :class:`NboConfig` fields; ``None`` for the defaults.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: The file cannot be read, is not YAML, or breaks the contract.
    """
    if path is None:
        return NboConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read NBO config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"NBO config {path} must be a mapping, got {type(raw).__name__}")
    try:
        return NboConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"NBO config {path} is invalid:\n{exc}") from exc
