"""The offer catalog: a validated YAML file of what can be offered, to whom, at what price.

The built-in catalog ships with the package (``catalog.yaml`` beside this module); an operator can
pass their own file. Every offer states its price and term so the message a customer reads is
never vague.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telco_nbo.data.schema import ACCOUNT_TYPES, CHANNELS, LINE_TYPES, OFFER_KINDS
from telco_nbo.errors import ConfigError
from telco_nbo.vocabulary import LIFECYCLE_STAGES

LifecycleStage = Literal[LIFECYCLE_STAGES]  # type: ignore[valid-type]  # the one list, in vocabulary


class Eligibility(BaseModel):
    """Conditions an account must meet to be offered something (all stated ones must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: Literal["fiber", "fwa", "any_home"] | None = None
    account_types: list[Literal["consumer", "small_business"]] | None = None
    requires_line: Literal["mobile", "broadband", "tv", "fixed_voice"] | None = None
    excludes_line: Literal["mobile", "broadband", "tv", "fixed_voice"] | None = None
    requires_capped_mobile: bool = False
    excludes_flag: (
        Literal["has_device_protection", "has_travel_pack", "has_mesh_wifi", "has_online_security",
                "has_streaming", "has_premium_care"] | None
    ) = None
    lifecycle: list[LifecycleStage] | None = None
    requires_active: bool = True
    # Service recovery follows a service problem (an open issue or recent network/coverage
    # tickets); without one it would be an unguarded upsell, since it is not "promotional".
    requires_service_signal: bool = False


class Offer(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    kind: Literal["cross_sell", "upsell", "add_on", "retention", "win_back", "service_recovery"]
    product: str
    monthly_price: float
    monthly_margin: float
    term_months: int = Field(ge=0)
    channels: list[Literal["app", "email", "sms", "call_center", "retail"]] = Field(min_length=1)
    complexity: Literal["low", "high"] = "low"
    eligibility: Eligibility = Field(default_factory=Eligibility)
    message: str
    # Randomized evidence of this offer's effect on churn: experiment ids (or logging policy ids)
    # whose contacts measured it. An offer without any gets no retention effect in its value (no
    # effect is lent from another offer): acceptance x margin only, and it is marked for
    # exploration in the audit trail.
    effect_evidence: list[str] = Field(default_factory=list)

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
    """The whole catalog, with ids unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offers: list[Offer] = Field(min_length=1)

    @field_validator("offers")
    @classmethod
    def _unique_ids(cls, v: list[Offer]) -> list[Offer]:
        ids = [o.offer_id for o in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate offer_id: {dup}")
        return v

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


# The vocabularies above must agree with the data contract.
assert set(OFFER_KINDS) == {"cross_sell", "upsell", "add_on", "retention", "win_back", "service_recovery"}
assert set(CHANNELS) == {"app", "email", "sms", "call_center", "retail"}
assert set(LINE_TYPES) == {"mobile", "broadband", "tv", "fixed_voice"}
assert set(ACCOUNT_TYPES) == {"consumer", "small_business"}
