"""The mappable fields of the importers, the flat-table mapping format, and column typing.

Every field an importer can fill is listed in :data:`FIELDS` with the table it lands in, its type,
its unit and its default (``telco-nbo data fields`` prints them). Only the keys and the target have
no default: a column the user does not have is a documented assumption, never an edit of the CSV.

A flat mapping (YAML) names, per field, the column holding it; anything the mapping does not name
is *passed through* as a typed account attribute (``account_x_<name>``, see
:mod:`telco_nbo.data.attributes`) unless it carries no signal (constant, empty, an identifier or
free text), in which case it is dropped with that reason. See :class:`FlatMapping` for the format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telco_nbo.data.schema import (
    ACCOUNT_TYPES,
    BROADBAND_TECHS,
    CHANNELS,
    CONTRACT_TYPES,
    PAYMENT_METHODS,
    PLAN_TIERS,
    REGIONS,
    TICKET_CATEGORIES,
)
from telco_nbo.vocabulary import DAYS_PER_MONTH

INTERNET_VALUES = (*BROADBAND_TECHS, "none")


@dataclass(frozen=True)
class FieldSpec:
    """One importer field.

    Attributes:
        kind: ``id`` | ``int`` | ``float`` | ``float_or_blank`` | ``bool`` | ``category`` | ``text``.
        table: The table the field lands in (``label`` for the target, ``none`` when not stored).
        unit: Unit of the stored value ("" when unitless).
        default: Value used when the field is not mapped; None for keys and the target
            (usage fields: None means "no usage unless another usage field is mapped").
        vocabulary: Allowed values of a category field.
        role: ``key`` | ``target`` | ``field`` | ``usage`` | ``tickets``.
        description: One line for people.
    """

    kind: str
    table: str
    unit: str = ""
    default: Any = None
    vocabulary: tuple[str, ...] = ()
    role: str = "field"
    description: str = ""

    @property
    def required(self) -> bool:
        """Only the target must be mapped (a table without ids gets row-number ids)."""
        return self.role == "target"


FIELDS: dict[str, FieldSpec] = {
    "customer_id": FieldSpec("id", "accounts", role="key",
                             description="customer id (A<id>, H<id>); absent: row numbers 1..n"),
    "churn": FieldSpec("bool", "label", role="target",
                       description="left within the label window (accounts.end_date = as_of + offset)"),
    "tenure_months": FieldSpec("int", "accounts", "months", 12, description="months since the account started"),
    "monthly_charges": FieldSpec("float", "accounts", "currency/month", 0.0,
                                 description="recurring charge of all lines (split over the lines)"),
    "total_charges": FieldSpec("float_or_blank", "none", "currency", None,
                               description="checked to be a number or blank, not stored"),
    "contract": FieldSpec("category", "accounts", default="month_to_month", vocabulary=CONTRACT_TYPES,
                          description="contract_type"),
    "payment_method": FieldSpec("category", "accounts", default="bank_transfer", vocabulary=PAYMENT_METHODS),
    "paperless_billing": FieldSpec("bool", "accounts", default=False),
    "phone_service": FieldSpec("bool", "lines", default=True, description="one mobile line"),
    "multiple_lines": FieldSpec("bool", "lines", default=False, description="a second mobile line"),
    "internet_service": FieldSpec("category", "lines", default="none", vocabulary=INTERNET_VALUES,
                                  description="a broadband line with this technology"),
    "senior_citizen": FieldSpec("bool", "accounts", default=False),
    "partner": FieldSpec("bool", "accounts", default=False, description="has_partner; household_size + 1"),
    "dependents": FieldSpec("bool", "accounts", default=False, description="has_dependents; household_size + 1"),
    "online_security": FieldSpec("bool", "lines", default=False, description="broadband add-on"),
    "online_backup": FieldSpec("bool", "none", default=False, description="checked, not stored"),
    "device_protection": FieldSpec("bool", "lines", default=False, description="broadband add-on"),
    "tech_support": FieldSpec("bool", "accounts", default=False, description="has_premium_care"),
    "streaming_tv": FieldSpec("bool", "lines", default=False, description="broadband has_streaming"),
    "streaming_movies": FieldSpec("bool", "lines", default=False, description="broadband has_streaming"),
    "gender": FieldSpec("text", "none", default="", description="checked, never stored or used"),
    "region": FieldSpec("category", "households", default="suburban", vocabulary=REGIONS),
    "account_type": FieldSpec("category", "accounts", default="consumer", vocabulary=ACCOUNT_TYPES),
    "channel_preference": FieldSpec("category", "accounts", default="email", vocabulary=CHANNELS),
    "mobile_plan_tier": FieldSpec("category", "lines", default="unlimited", vocabulary=PLAN_TIERS),
    "broadband_plan_tier": FieldSpec("category", "lines", default="standard", vocabulary=PLAN_TIERS),
    # Usage of the account's first line, per month (one aggregate month or usage_months wide).
    "data_gb": FieldSpec("float", "usage_monthly", "GB/month", role="usage"),
    "overage_gb": FieldSpec("float", "usage_monthly", "GB/month", role="usage"),
    "voice_minutes": FieldSpec("float", "usage_monthly", "minutes/month", role="usage"),
    "intl_minutes": FieldSpec("float", "usage_monthly", "minutes/month", role="usage"),
    "roaming_days": FieldSpec("int", "usage_monthly", "days/month", role="usage"),
    "dropped_calls": FieldSpec("int", "usage_monthly", "calls/month", role="usage"),
    "bill_amount": FieldSpec("float", "usage_monthly", "currency/month", role="usage",
                             description="default: monthly_charges"),
    # Tickets: a count becomes that many resolved tickets in the 90 days before as_of.
    "support_calls": FieldSpec("int", "support_tickets", "tickets in 90 days", 0, role="tickets"),
    "complaints": FieldSpec("int", "support_tickets", "complaints in 90 days", 0, role="tickets",
                            description="tickets with is_complaint (in addition to support_calls)"),
    "ticket_category": FieldSpec("category", "support_tickets", default="other", vocabulary=TICKET_CATEGORIES,
                                 description="category of the support_calls tickets"),
}
"""Every field a flat mapping may name (``telco-nbo data fields`` prints this table)."""

USAGE_FIELDS = [f for f, s in FIELDS.items() if s.role == "usage"]

UNITS: dict[str, dict[str, float]] = {
    "GB/month": {"gb": 1.0, "mb": 1 / 1024, "kb": 1 / 1024**2, "bytes": 1 / 1024**3, "tb": 1024.0},
    "minutes/month": {"minutes": 1.0, "seconds": 1 / 60, "hours": 60.0},
    "months": {"months": 1.0, "days": 1 / DAYS_PER_MONTH, "weeks": 7 / DAYS_PER_MONTH, "years": 12.0},
    "currency/month": {"currency": 1.0, "cents": 0.01},
    "currency": {"currency": 1.0, "cents": 0.01},
}
"""Stored unit -> {source unit: factor to multiply by}."""


def fields_frame() -> pd.DataFrame:
    """The field table ``telco-nbo data fields`` prints: field, table, type, unit, required/default."""
    rows = []
    for name, s in FIELDS.items():
        if s.role == "key":
            need = "key (absent: row numbers)"
        elif s.role == "target":
            need = "required (target)"
        elif s.role == "usage":
            need = "default: none (no usage)" if name != "bill_amount" else "default: monthly_charges"
        else:
            need = f"default: {s.default!r}" if s.default is not None else "optional (not stored)"
        kind = s.kind if not s.vocabulary else f"{s.kind}: {' | '.join(s.vocabulary)}"
        units = UNITS.get(s.unit)
        unit = s.unit + (f" (also {', '.join(k for k in units if units[k] != 1.0)})" if units else "")
        rows.append({"field": name, "table": s.table, "type": kind, "unit": unit, "required_or_default": need,
                     "description": s.description})
    return pd.DataFrame(rows)


class FlatMapping(BaseModel):
    """How a flat one-row-per-customer table maps into the data contract.

    YAML keys: ``name``; ``description``; ``as_of`` (snapshot date); ``churn_end_offset_days``;
    ``columns`` (field -> column; with ``usage_months`` > 1 a usage field names a template with
    ``{m}``, m = 1 the latest month); ``values`` (field -> {column value: field value});
    ``defaults`` (field -> value, for fields without a column); ``units`` (field -> source unit,
    e.g. ``data_gb: mb``); ``usage_months``; ``passthrough`` (column -> ``numeric`` | ``category``:
    kept as ``account_x_<name>``); ``drop`` (column -> reason). Columns named nowhere are passed
    through when they carry signal (see :func:`infer_column`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    as_of: dt.date | None = None
    churn_end_offset_days: int = Field(15, ge=1, le=90)
    columns: dict[str, str]
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict)
    usage_months: int = Field(1, ge=1, le=6)
    passthrough: dict[str, Literal["numeric", "category"]] = Field(default_factory=dict)
    drop: dict[str, str] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _known_and_complete(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; fields are {sorted(FIELDS)} (telco-nbo data fields)")
        missing = [f for f, s in FIELDS.items() if s.required and f not in v]
        if missing:
            raise ValueError(f"required field(s) not mapped: {missing}")
        cols = list(v.values())
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise ValueError(f"column(s) mapped to more than one field: {dup}")
        return v

    @field_validator("values", mode="before")
    @classmethod
    def _no_yaml_booleans_as_keys(cls, v: Any) -> Any:
        # YAML 1.1 reads unquoted Yes/No/On/Off as booleans; say so instead of a type error.
        if isinstance(v, dict):
            for fld, vmap in v.items():
                if isinstance(vmap, dict):
                    for src in vmap:
                        if isinstance(src, bool):
                            raise ValueError(
                                f"values.{fld}: key {src!r} was read by YAML as a boolean; "
                                f"quote it (\"Yes\": ..., \"No\": ...)"
                            )
        return v

    @field_validator("values")
    @classmethod
    def _value_maps(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for fld, vmap in v.items():
            spec = FIELDS.get(fld)
            if spec is None:
                raise ValueError(f"values given for unknown field '{fld}'")
            if spec.kind not in ("bool", "category"):
                raise ValueError(f"values only apply to true/false and category fields, not '{fld}'")
            for src, target in vmap.items():
                if spec.kind == "bool" and not isinstance(target, bool):
                    raise ValueError(f"values.{fld}.{src}: expected true or false, got {target!r}")
                if spec.kind == "category" and target not in spec.vocabulary:
                    raise ValueError(f"values.{fld}.{src}: {target!r} is not one of {list(spec.vocabulary)}")
        return v

    @field_validator("defaults")
    @classmethod
    def _defaults(cls, v: dict[str, Any]) -> dict[str, Any]:
        for fld, value in v.items():
            spec = FIELDS.get(fld)
            if spec is None:
                raise ValueError(f"defaults.{fld}: unknown field; fields are {sorted(FIELDS)}")
            if spec.role in ("key", "target"):
                raise ValueError(f"defaults.{fld}: the {spec.role} cannot take a default")
            if spec.kind == "bool" and not isinstance(value, bool):
                raise ValueError(f"defaults.{fld}: expected true or false, got {value!r}")
            if spec.kind == "category" and value not in spec.vocabulary:
                raise ValueError(f"defaults.{fld} must be one of {list(spec.vocabulary)}, got {value!r}")
            if spec.kind in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"defaults.{fld}: expected a number >= 0, got {value!r}")
                if spec.kind == "int" and value != int(value):
                    raise ValueError(f"defaults.{fld}: expected a whole number, got {value!r}")
        return v

    @field_validator("units")
    @classmethod
    def _units(cls, v: dict[str, str]) -> dict[str, str]:
        for fld, unit in v.items():
            spec = FIELDS.get(fld)
            if spec is None:
                raise ValueError(f"units.{fld}: unknown field")
            allowed = UNITS.get(spec.unit, {})
            if str(unit).lower() not in allowed:
                raise ValueError(f"units.{fld}: {unit!r} is not a unit of {spec.unit or 'this field'}; "
                                 f"known: {sorted(allowed) or 'none'}")
        return {k: str(u).lower() for k, u in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> FlatMapping:
        mapped = set(self.columns.values())
        both = sorted(mapped & (set(self.passthrough) | set(self.drop)))
        if both:
            raise ValueError(f"column(s) both mapped to a field and listed under passthrough/drop: {both}")
        pd_both = sorted(set(self.passthrough) & set(self.drop))
        if pd_both:
            raise ValueError(f"column(s) both passed through and dropped: {pd_both}")
        clash = sorted(set(self.columns) & set(self.defaults))
        if clash:
            raise ValueError(f"field(s) both mapped to a column and given a default: {clash}")
        for fld, col in self.columns.items():
            templated = "{m}" in col
            if self.usage_months > 1 and FIELDS[fld].role == "usage" and not templated:
                raise ValueError(f"columns.{fld}: with usage_months {self.usage_months} name a template "
                                 f"with {{m}} (m = 1 the latest month), got {col!r}")
            if templated and (self.usage_months == 1 or FIELDS[fld].role != "usage"):
                raise ValueError(f"columns.{fld}: {{m}} templates are for usage fields with usage_months > 1")
        return self

    def source_columns(self, field: str) -> list[str]:
        """The column(s) a mapped field reads (one per month for a wide usage field)."""
        col = self.columns[field]
        if "{m}" in col:
            return [col.format(m=m) for m in range(1, self.usage_months + 1)]
        return [col]


# ----------------------------------------------------------------------------------------------
# Column typing (shared by the importer's passthrough and suggest-mapping)
# ----------------------------------------------------------------------------------------------

MAX_CATEGORIES = 60
"""A text column with more distinct values than this (and than 5% of rows) is free text."""


def _blank(text: pd.Series) -> pd.Series:
    return text.isna() | (text.astype(str).str.strip() == "")


def infer_column(text: pd.Series) -> tuple[str | None, str]:
    """Type an unmapped column from its values: ``numeric``, ``category`` or None (dropped).

    Args:
        text: The column as read (text cells, blanks null).

    Returns:
        ``(kind, reason)``: kind None means the column carries no usable signal, and the reason
        says why (empty, constant, an identifier, free text).
    """
    blank = _blank(text)
    vals = text[~blank].astype(str).str.strip()
    if vals.empty:
        return None, "empty"
    num = pd.to_numeric(vals, errors="coerce")
    n_distinct = vals.nunique()
    if n_distinct <= 1:
        return None, f"constant ({vals.iloc[0]!r})"
    if num.notna().all():
        if n_distinct == len(text) and np.array_equal(np.sort(num.to_numpy()), np.arange(1, len(text) + 1)) or (
            n_distinct == len(text) and np.array_equal(np.sort(num.to_numpy()), np.arange(len(text)))
        ):
            return None, "row numbers (an identifier)"
        return "numeric", f"numbers, {n_distinct:,} distinct"
    if n_distinct == len(vals):
        # Every value seen once: nothing a model could learn from a category (ids, e-mails, phones).
        return None, f"identifier ({n_distinct:,} distinct texts, one per row)"
    if n_distinct > max(MAX_CATEGORIES, 0.05 * len(vals)):
        return None, f"free text ({n_distinct:,} distinct values)"
    return "category", f"{n_distinct} categories"


__all__ = [
    "FIELDS",
    "FieldSpec",
    "FlatMapping",
    "INTERNET_VALUES",
    "MAX_CATEGORIES",
    "UNITS",
    "USAGE_FIELDS",
    "fields_frame",
    "infer_column",
]

