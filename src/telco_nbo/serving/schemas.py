"""Request and response schemas of the scoring API (pydantic).

An account in a request is one row of :func:`telco_nbo.features.build_account_features`, typed by
the column contract (:mod:`telco_nbo.contract`): the columns the ranking rules read
(:data:`telco_nbo.nbo.rules.REQUIRED_COLUMNS`) and the model features are required (a missing
field is named in the 400 answer, never guessed); the other declared columns are accepted but
optional (so a feature row can be posted as it is). Every field is typed by its declared kind
(strict booleans: ``"yes"`` is not true; counts; nullable numbers; vocabularies from the declared
categories), bounded (every number finite and inside its declared range, :data:`FIELD_RANGES`;
counts 0..:data:`MAX_COUNT`; ids at most :data:`MAX_ID_LENGTH` characters) and nothing else (an
unknown field is a typo, named in the answer).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StringConstraints,
                      create_model, model_validator)

from telco_nbo import contract
from telco_nbo.contract import FEATURE_COLUMNS, MAX_COUNT
from telco_nbo.nbo.rules import REQUIRED_COLUMNS
from telco_nbo.nbo.schemas import AccountDecision

MAX_BATCH = 1000
"""Accounts per request at most (bigger batches belong to ``telco-nbo rank``)."""

MAX_ID_LENGTH = 64
"""Characters of an account, household or offer id at most."""

# A value outside a declared range is a unit or encoding mistake, refused rather than scored: an
# XGBoost split does not care, but CLV multiplies the monthly charges, and a float32 matrix turns
# 1e39 into an infinity.
FIELD_RANGES: dict[str, tuple[float, float]] = {c.name: c.range for c in contract.COLUMNS if c.range is not None}
"""Closed range of every number a request may carry (from the contract); counts are 0..:data:`MAX_COUNT`."""


def _whole(v: Any) -> Any:
    # JSON Schema's "integer" includes 2.0 (a count written by a float column): take it as 2; any
    # other type goes on to the strict check ("3", true and 2.5 are refused).
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**63 else v


# Strict types: what the OpenAPI document says is what is accepted (lax parsing would also take
# "3" for a count, true for a number).
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
# (Strict and the bounds before the validator: in the other order pydantic writes the bounds into
# the JSON schema as "ge"/"le", which no JSON Schema reader knows.)
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT), BeforeValidator(_whole)]


def _number(col: str) -> Any:
    lo, hi = FIELD_RANGES[col]
    return Annotated[float, Field(strict=True, ge=lo, le=hi, allow_inf_nan=False)]


def feature_kinds() -> dict[str, str]:
    """Column -> kind (id, category, bool, count, float_nan) of every required request field.

    The required fields are the columns the rules read, then the model features, in that order;
    the kinds are the contract's.
    """
    return contract.kinds(dict.fromkeys([*REQUIRED_COLUMNS, *FEATURE_COLUMNS]))


def _type(col: str, kind: str) -> Any:
    if kind == "id":
        return Id
    if kind == "category":
        return Literal[contract.column(col).categories]  # type: ignore[valid-type]
    if kind == "bool":
        return StrictBool
    if kind == "count":
        return Count
    return _number(col) | None  # a real number may be unknown (NaN in the feature frame)


def _annotation(col: str, kind: str) -> Any:
    return _type(col, kind), Field(...) if kind == "float_nan" else ...


def _optional(col: str, kind: str) -> Any:
    typ = _type(col, kind)
    return (typ if kind == "float_nan" else typ | None), None


REQUIRED_KINDS = feature_kinds()
OPTIONAL_KINDS: dict[str, str] = {c.name: c.kind for c in contract.COLUMNS if c.name not in REQUIRED_KINDS}
"""The other declared columns (rule columns read when present, helper columns): accepted, optional."""

EXTRA_COLUMNS: dict[str, str] = {c.name: c.kind for c in contract.columns("helper")}
"""The optional fields that neither the rules nor the models read (the contract's helper columns)."""

AccountFeatures = create_model(  # type: ignore[call-overload]
    "AccountFeatures",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__="One account's features (a row of build_account_features); every listed field is required.",
    **{c: _annotation(c, k) for c, k in REQUIRED_KINDS.items()},
    **{c: _optional(c, k) for c, k in OPTIONAL_KINDS.items()},
)
"""Pydantic model of one account's features (built from the feature contract)."""


SELECTORS = ("account_id", "account_ids", "account", "accounts")


def _exactly_one_selector(schema: dict[str, Any]) -> None:
    # The rule the validator enforces, told in the OpenAPI document: exactly one selector is given
    # and not null (a null selector counts as absent).
    schema["oneOf"] = [{"required": [k], "properties": {k: {"not": {"type": "null"}}}} for k in SELECTORS]


class _Selector(BaseModel):
    """Which accounts: exactly one of ``account_id``, ``account_ids``, ``account``, ``accounts``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_exactly_one_selector)

    account_id: Id | None = Field(None, description="An account of the data folder the service was started with")
    account_ids: list[Id] | None = Field(None, max_length=MAX_BATCH, description="Accounts of the data folder",
                                         json_schema_extra={"minItems": 1, "uniqueItems": True})
    account: AccountFeatures | None = Field(None, description="One account's features")  # type: ignore[valid-type]
    accounts: list[AccountFeatures] | None = Field(None, max_length=MAX_BATCH, description="A batch of accounts' features "  # type: ignore[valid-type]
                                                   "(account_id unique within the request: 409 otherwise)",
                                                   json_schema_extra={"minItems": 1})

    @model_validator(mode="after")
    def _exactly_one(self) -> _Selector:
        given = [k for k in ("account_id", "account_ids", "account", "accounts") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of account_id, account_ids, account, accounts"
                             + (f" (got {', '.join(given)})" if given else ""))
        for k in ("account_ids", "accounts"):
            v = getattr(self, k)
            if v is not None and len(v) == 0:
                raise ValueError(f"{k} is empty: nothing to score")
        return self


class RankRequest(_Selector):
    """``POST /rank``."""

    top_k: Annotated[int, BeforeValidator(_whole)] = Field(3, strict=True, ge=1, le=50,
                                                           description="Offers per account at most")
    model_reasons: StrictBool = Field(False, description="Also attach the top SHAP reasons of the churn score to every "
                                                   "offer (one TreeSHAP pass; /explain gives them in full)")


class ScoreRequest(_Selector):
    """``POST /score``."""

    offer_ids: list[Id] | None = Field(None, min_length=1, max_length=100,
                                       description="Offers to score (default: the whole catalog)")


class ExplainRequest(_Selector):
    """``POST /explain``."""

    k: Annotated[int, BeforeValidator(_whole)] = Field(3, strict=True, ge=1, le=20,
                                                       description="Reason codes per account and model")
    offer_ids: list[Id] | None = Field(None, max_length=100, description="Also explain the propensity of these offers")


class RankResponse(BaseModel):
    """``POST /rank`` answer."""

    decisions: list[AccountDecision]
    model_versions: dict[str, str]


class AccountScores(BaseModel):
    """Scores of one account."""

    account_id: str
    churn_probability: float = Field(ge=0, le=1)
    clv: float
    retention_uplift: float
    propensity: dict[str, float] = Field(description="offer_id -> P(accept | contacted)")


class ScoreResponse(BaseModel):
    """``POST /score`` answer."""

    scores: list[AccountScores]
    model_versions: dict[str, str]


class ReasonOut(BaseModel):
    """One reason code."""

    feature: str
    value: Any = None
    contribution: float
    direction: Literal["raises", "lowers"]
    sentence: str


class AccountExplanation(BaseModel):
    """Reason codes of one account."""

    account_id: str
    churn: list[ReasonOut]
    propensity: dict[str, list[ReasonOut]] = Field(default_factory=dict)


class ExplainResponse(BaseModel):
    """``POST /explain`` answer."""

    explanations: list[AccountExplanation]
    model_versions: dict[str, str]


class ErrorDetail(BaseModel):
    """One schema violation (a 400 for a body the request schema refuses)."""

    loc: list[str | int] = Field(description="Where: the path of the field in the body")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx / 5xx answer: ``error`` always; ``problems`` (the service's checks) or ``detail`` (schema)."""

    error: str
    problems: list[str] = Field(default_factory=list, description="Each problem named (service checks)")
    detail: list[ErrorDetail] | None = Field(None, description="Each schema violation (400 for the body)")
