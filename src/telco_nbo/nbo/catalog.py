"""The offer catalog: a validated YAML file of what can be offered, to whom, at what price.

The built-in catalog ships with the package (``catalog.yaml`` beside this module); an operator can
pass their own file. Every offer states its price and term so the message a customer reads is
never vague.

The catalog is the one place offer ids are written: besides price, channels and eligibility, an
offer names the ownership flag an acceptance switches on (``grants_flag``), how it changes the
whole bill (``bill_change``), the needs that explain it (``needs``), a business prior on its
acceptance for an offer no model has seen yet (``acceptance_prior``), and the catalog lists the
offers a household must not get together (``conflicts``). Code derives its maps from a loaded
catalog (:func:`offer_grants`, :func:`bill_changes`, :func:`evidenced_retention_offer`), so adding
an offer is a YAML edit.
"""

from __future__ import annotations

import functools
import string
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from telco_nbo import contract
from telco_nbo.data.schema import ACCOUNT_TYPES, CHANNELS, LINE_TYPES, OFFER_KINDS
from telco_nbo.errors import ConfigError
from telco_nbo.vocabulary import LIFECYCLE_STAGES

# The vocabularies are the data contract's own lists, so the catalog cannot drift from it.
LifecycleStage = Literal[LIFECYCLE_STAGES]  # type: ignore[valid-type]  # the one list, in vocabulary
OfferKind = Literal[OFFER_KINDS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
LineType = Literal[LINE_TYPES]  # type: ignore[valid-type]
AccountType = Literal[ACCOUNT_TYPES]  # type: ignore[valid-type]
OwnershipFlag = Literal["has_device_protection", "has_travel_pack", "has_mesh_wifi", "has_online_security",
                        "has_streaming", "has_premium_care"]
"""The ownership flags of the data contract (line flags and the account's ``has_premium_care``)."""

SCORE_COLUMNS = ("churn_probability", "uplift")
"""Score columns a need may read besides the account features (the offer's counted uplift)."""

NEED_OPS = (">=", "<=", ">", "<", "==", "!=", "true", "false")
"""Comparisons a need condition may make (``true`` / ``false`` test a flag; a missing flag is false)."""
NEED_FORMATS = ("", "int", "pct", "change_pct", "days", "points")
"""How a need's ``say`` template may print a column: as is, rounded, as a percentage, as the
percentage change of a ratio (1.25 -> 25%), months as days, or a probability as points (0.034 -> 3.4)."""


class Eligibility(BaseModel):
    """Conditions an account must meet to be offered something (all stated ones must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: Literal["fiber", "fwa", "any_home"] | None = None
    account_types: list[AccountType] | None = None
    requires_line: LineType | None = None
    excludes_line: LineType | None = None
    requires_capped_mobile: bool = False
    excludes_flag: OwnershipFlag | None = None
    lifecycle: list[LifecycleStage] | None = None
    requires_active: bool = True
    # Service recovery follows a service problem (an open issue or recent network/coverage
    # tickets); without one it would be an unguarded upsell, since it is not "promotional".
    requires_service_signal: bool = False


class NeedCondition(BaseModel):
    """One test on a feature (or score) column of an account.

    Attributes:
        feature: Column read (a feature, or the scores ``churn_probability`` / ``uplift``).
        op: One of :data:`NEED_OPS`.
        value: Number (or category, with ``==`` / ``!=``) compared with; not for ``true`` / ``false``.
        other: Another column compared with instead of ``value``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    op: Literal[NEED_OPS]  # type: ignore[valid-type]
    value: float | str | None = None
    other: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")

    @model_validator(mode="after")
    def _operand(self) -> NeedCondition:
        flag = self.op in ("true", "false")
        if flag and (self.value is not None or self.other is not None):
            raise ValueError(f"'{self.op}' tests the flag {self.feature} itself: no value or other")
        if not flag and (self.value is None) == (self.other is None):
            raise ValueError(f"'{self.feature} {self.op}' needs exactly one of value or other")
        if isinstance(self.value, str) and self.op not in ("==", "!="):
            raise ValueError(f"'{self.feature} {self.op}' compares numbers: value must be a number")
        return self

    def columns(self) -> tuple[str, ...]:
        """Columns the condition reads."""
        return (self.feature,) if self.other is None else (self.feature, self.other)


class Need(BaseModel):
    """A need signal: a plain-words "why this offer" read off an account's columns.

    Attributes:
        when: Conditions that must all hold (a missing value never satisfies a comparison).
        say: The text, with ``{column}`` or ``{column:format}`` fields (formats: :data:`NEED_FORMATS`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: list[NeedCondition] = Field(min_length=1)
    say: str = Field(min_length=1)

    @field_validator("say")
    @classmethod
    def _template(cls, v: str) -> str:
        for _, name, spec, conv in string.Formatter().parse(v):
            if name is None:
                continue
            if not name or conv or not name.replace("_", "a").isalnum() or spec not in NEED_FORMATS:
                raise ValueError(f"field {{{name}{':' + spec if spec else ''}}} in '{v}': write {{column}} or "
                                 f"{{column:format}} with a format from {[f for f in NEED_FORMATS if f]}")
        return v

    def fields(self) -> list[tuple[str, str, str]]:
        """The template as ``(literal text, column or '', format)`` pieces, in order."""
        return [(lit, name or "", spec or "") for lit, name, spec, _ in string.Formatter().parse(self.say)]

    def columns(self) -> tuple[str, ...]:
        """Every column the need reads (conditions, then the text's), once each."""
        cols = [c for cond in self.when for c in cond.columns()] + [n for _, n, _ in self.fields() if n]
        return tuple(dict.fromkeys(cols))


class Conflict(BaseModel):
    """Two offers that must not both go to one household in one window.

    Each side is an ``offer_id`` or ``kind:<offer kind>``. A side naming the same offer twice
    (``HOME_FIBER`` / ``HOME_FIBER``) means "at most one account of the household gets it".

    Attributes:
        a: First selector.
        b: Second selector.
        why: Plain words shown as the suppression reason.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: str
    b: str
    why: str

    @field_validator("a", "b")
    @classmethod
    def _selector(cls, v: str) -> str:
        if v.startswith("kind:") and v[5:] not in OFFER_KINDS:
            raise ValueError(f"unknown offer kind in selector '{v}'; known: {list(OFFER_KINDS)}")
        return v


class Offer(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    kind: OfferKind
    product: str
    monthly_price: float
    monthly_margin: float
    term_months: int = Field(ge=0)
    channels: list[Channel] = Field(min_length=1)
    complexity: Literal["low", "high"] = "low"
    eligibility: Eligibility = Field(default_factory=Eligibility)
    message: str
    # Randomized evidence of this offer's effect on churn: experiment ids (or logging policy ids)
    # whose contacts measured it. An offer without any gets no retention effect in its value (no
    # effect is lent from another offer): acceptance x margin only, and it is marked for
    # exploration in the audit trail.
    effect_evidence: list[str] = Field(default_factory=list)
    # The ownership flag an acceptance switches on (an add-on the account then owns); the features
    # use it to undo flags switched on by an acceptance after the as-of date.
    grants_flag: OwnershipFlag | None = None
    # Change of the account's whole bill while the offer runs, as a fraction (a plan review that
    # moves the customer to a cheaper plan: -0.08); valued on top of the offer's own margin.
    bill_change: float = Field(default=0.0, ge=-1.0, le=1.0)
    # P(accept) the business expects for an offer the propensity model has never seen (a new
    # offer): used only then, so a new offer can be ranked before any evidence about it exists.
    acceptance_prior: float | None = Field(default=None, gt=0.0, le=1.0)
    # Why an account may need it, in plain words (evaluated in order; see Need).
    needs: list[Need] = Field(default_factory=list)

    @field_validator("message")
    @classmethod
    def _message_states_price_and_term(cls, v: str) -> str:
        # A promise to customers: every message says what it costs and for how long.
        if "{price}" not in v or "{term}" not in v:
            raise ValueError("message must contain {price} and {term}")
        return v

    @property
    def promotional(self) -> bool:
        """Whether guardrails on promotion apply (everything except service recovery)."""
        return self.kind != "service_recovery"

    def render_message(self) -> str:
        """Return the customer-facing message with price and term in plain words."""
        price = f"{abs(self.monthly_price):.2f}"
        term = (
            "no commitment, cancel any time"
            if self.term_months == 0
            else f"for a {self.term_months}-month term"
        )
        return self.message.format(product=self.product, price=price, term=term)


class Catalog(BaseModel):
    """The whole catalog, with ids unique.

    Attributes:
        offers: The offers, in the order rankings list them.
        conflicts: Offers that must not go to one household together (every id named must be a
            catalog offer). The policy config may add more (by kind, say).
        kind_needs: Need signals shared by every offer of a kind (after the offer's own needs).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offers: list[Offer] = Field(min_length=1)
    conflicts: list[Conflict] = Field(default_factory=list)
    kind_needs: dict[OfferKind, list[Need]] = Field(default_factory=dict)

    @field_validator("offers")
    @classmethod
    def _unique_ids(cls, v: list[Offer]) -> list[Offer]:
        ids = [o.offer_id for o in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate offer_id: {dup}")
        return v

    @model_validator(mode="after")
    def _needs_read_known_columns(self) -> Catalog:
        # A misspelt column would make a need silently never fire (absent columns are skipped).
        owners = [(o.offer_id, o.needs) for o in self.offers] + [(f"kind_needs.{k}", v) for k, v in self.kind_needs.items()]
        for owner, needs in owners:
            for need in needs:
                unknown = [c for c in need.columns() if c not in contract.BY_NAME and c not in SCORE_COLUMNS]
                if unknown:
                    raise ValueError(f"{owner}: need '{need.say}' reads unknown column(s) {unknown}; a need reads "
                                     f"account feature columns (telco_nbo.contract) or {list(SCORE_COLUMNS)}")
        return self

    @model_validator(mode="after")
    def _conflicts_name_offers(self) -> Catalog:
        ids = {o.offer_id for o in self.offers}
        for c in self.conflicts:
            for side in (c.a, c.b):
                if not side.startswith("kind:") and side not in ids:
                    raise ValueError(f"conflict names unknown offer_id '{side}'; catalog: {sorted(ids)}")
        return self

    def by_id(self) -> dict[str, Offer]:
        """Return offers keyed by id."""
        return {o.offer_id: o for o in self.offers}

    def get(self, offer_id: str) -> Offer:
        """Return one offer, or raise :class:`ConfigError` naming the unknown id."""
        try:
            return self.by_id()[offer_id]
        except KeyError:
            raise ConfigError(
                f"unknown offer_id '{offer_id}'; known: {sorted(self.by_id())}"
            ) from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate an offer catalog.

    Args:
        path: A YAML file; ``None`` for the built-in catalog.

    Returns:
        The validated catalog.

    Raises:
        ConfigError: The file is missing, not YAML, or breaks the catalog contract.
    """
    try:
        if path is None:
            text = resources.files("telco_nbo.nbo").joinpath("catalog.yaml").read_text()
            where = "built-in catalog"
        else:
            text = Path(path).read_text()
            where = str(path)
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read offer catalog {path}: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"offer catalog {where} is invalid:\n{exc}") from exc


@functools.cache
def builtin_catalog() -> Catalog:
    """Return the built-in catalog, read once (it is package data and the model is frozen)."""
    return load_catalog()


def offer_grants(catalog: Catalog | None = None) -> dict[str, str]:
    """Return offer id -> the ownership flag its acceptance switches on (offers that grant one).

    Args:
        catalog: A loaded catalog; ``None`` for the built-in one.
    """
    catalog = catalog or builtin_catalog()
    return {o.offer_id: o.grants_flag for o in catalog.offers if o.grants_flag is not None}


def bill_changes(catalog: Catalog | None = None) -> dict[str, float]:
    """Return offer id -> change of the whole bill while it runs (offers that change it).

    Args:
        catalog: A loaded catalog; ``None`` for the built-in one.
    """
    catalog = catalog or builtin_catalog()
    return {o.offer_id: float(o.bill_change) for o in catalog.offers if o.bill_change}


def evidenced_retention_offer(catalog: Catalog | None = None) -> str:
    """Return the retention offer whose effect on churn has its own experiment evidence.

    This is what "send the retention offer to the highest churn risks" sends: the offer whose
    effect was measured, not one that would borrow it.

    Args:
        catalog: A loaded catalog; ``None`` for the built-in one.

    Returns:
        The first such offer id in catalog order.

    Raises:
        ConfigError: No retention offer names any ``effect_evidence``.
    """
    catalog = catalog or builtin_catalog()
    for o in catalog.offers:
        if o.kind == "retention" and o.effect_evidence:
            return o.offer_id
    raise ConfigError("the catalog has no retention offer with effect_evidence: name the offer to send "
                      f"(retention offers: {[o.offer_id for o in catalog.offers if o.kind == 'retention']})")


def catalog_frame(catalog: Catalog | None = None) -> pd.DataFrame:
    """Return the catalog as the ``offers`` table of a data folder (schema ``OFFERS``).

    Args:
        catalog: A loaded catalog; ``None`` for the built-in one.

    Returns:
        One row per offer with the columns of :data:`telco_nbo.data.schema.OFFERS`.
    """
    catalog = catalog or load_catalog()
    return pd.DataFrame(
        {
            "offer_id": [o.offer_id for o in catalog.offers],
            "kind": [o.kind for o in catalog.offers],
            "product": [o.product for o in catalog.offers],
            "monthly_price": [float(o.monthly_price) for o in catalog.offers],
            "monthly_margin": [float(o.monthly_margin) for o in catalog.offers],
            "term_months": [int(o.term_months) for o in catalog.offers],
            "channels": [",".join(o.channels) for o in catalog.offers],
            "promotional": [o.promotional for o in catalog.offers],
            "description": [o.render_message() for o in catalog.offers],
        }
    )

