"""Importers: a flat one-row-per-customer churn table -> the eight tables of a data folder.

Most public and internal churn extracts are flat: one row per customer with tenure, contract,
services, charges and a churn flag (the IBM "Telco Customer Churn" sample is the best known). This
module maps such a table onto the household -> account -> line hierarchy of
:mod:`telco_nbo.data.schema`, so the same features, models and offers run on it.

What one customer row becomes
-----------------------------
* one household ``H<id>`` and one account ``A<id>`` (``<id>`` is the source customer id, so
  results join back to the source system);
* lines: a phone service gives one mobile line ``L<id>-M1`` (two, ``-M2``, with multiple lines);
  an internet service (DSL / fiber; also ``fwa`` / ``cable`` for other telcos) gives a broadband
  line ``L<id>-BB`` with ``broadband_tech`` and the add-on flags ``has_online_security``,
  ``has_device_protection`` and ``has_streaming`` (streaming TV or movies);
* ``accounts.has_premium_care`` <- tech support; contract and payment method through value maps;
* dates, from the snapshot date ``as_of`` (default 2025-12-01, or ``--as-of``):
  ``start_date = as_of - tenure months``; a churner (churn flag true) gets
  ``end_date = as_of + churn_end_offset_days`` (default 15), so "the account ended within 90
  days after as_of" reproduces the churn column exactly; ``contract_end_date`` rolls forward from
  the start by the contract length to the first date after ``as_of`` (null for month-to-month);
* the account's monthly charge is split evenly over its lines (to the cent; the last line takes
  the rounding rest) because a flat table has no per-line prices.

Documented assumptions (a flat table does not say these; the mapping's ``defaults`` set them):
``region`` (``suburban``), ``account_type`` (``consumer``), ``channel_preference`` (``email``),
mobile ``plan_tier`` (``unlimited``, hence a null data cap) and broadband ``plan_tier``
(``standard``). ``household_size = 1 + partner + dependents``. A household is
``fiber_eligible`` only when it already has fiber (there is no address data; assuming
eligibility elsewhere could offer what the network cannot deliver) and never ``fwa_eligible``.
Columns without a place in the contract (IBM's ``gender``, ``OnlineBackup``, ``TotalCharges``)
are checked where mapped but not stored; ``gender`` is deliberately never used.

The flat table has **no usage, tickets, offers, contacts or experiments**: those tables are
written empty (right columns and dtypes). In particular ``usage_monthly`` is empty, so usage
features are absent for imported data.

Mapping file format (YAML)
--------------------------
::

    name: acme                      # meta "source" becomes "csv:acme"
    description: free text
    as_of: "2025-12-01"             # optional default snapshot date
    churn_end_offset_days: 15       # optional, 1..90
    columns:                        # importer field -> column name in the CSV
      customer_id: cust_id          # required fields: customer_id, tenure_months,
      tenure_months: months_active  #   monthly_charges, churn, contract, payment_method,
      ...                           #   paperless_billing, phone_service, internet_service
    values:                         # importer field -> {CSV value: importer value}
      contract: {"M2M": month_to_month, "1Y": one_year, "2Y": two_year}
      internet_service: {"DSL": dsl, "Fibre": fiber, "None": none}
      churn: {"Y": true, "N": false}
    defaults:                       # optional; see the assumptions above
      region: suburban
      account_type: consumer
      channel_preference: email
      mobile_plan_tier: unlimited
      broadband_plan_tier: standard

Fields (:data:`FIELDS`): ``customer_id``, ``tenure_months`` (whole months >= 0),
``monthly_charges`` (>= 0), ``total_charges`` (number or blank; blank is normal for tenure 0),
``churn``, ``contract`` (month_to_month / one_year / two_year), ``payment_method``
(electronic_check / mailed_check / bank_transfer / credit_card), ``paperless_billing``,
``phone_service``, ``multiple_lines``, ``internet_service`` (dsl / fiber / fwa / cable / none),
``senior_citizen``, ``partner``, ``dependents``, ``online_security``, ``online_backup``,
``device_protection``, ``tech_support``, ``streaming_tv``, ``streaming_movies``, ``gender``,
``region`` (urban / suburban / rural), ``account_type`` (consumer / small_business).
True/false fields accept Yes/No, True/False, 1/0 and "No internet service" / "No phone service"
(false) unless ``values`` gives a map for them. Matching of values ignores case and surrounding
spaces. YAML reads unquoted ``Yes``/``No`` as booleans: quote them as keys.

Every input problem (missing column, duplicate or blank id, text in a number column, unknown
category value, empty file) is reported before anything is written, naming column, rows and
values (rows count data rows from 0; the file line is row + 2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from telco_nbo.data.io import empty_table, read_csv_text
from telco_nbo.data.schema import (
    ACCOUNT_TYPES,
    BROADBAND_TECHS,
    CHANNELS,
    CONTRACT_MONTHS,
    CONTRACT_TYPES,
    PAYMENT_METHODS,
    PLAN_TIERS,
    REGIONS,
    TABLES,
)
from telco_nbo.data.validate import _fmt_rows, _fmt_values, validate_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError

DEFAULT_AS_OF = "2025-12-01"
BUILTIN_MAPPINGS = {"ibm": "ibm_mapping.yaml"}
"""Name -> mapping file shipped beside this module."""

INTERNET_VALUES = (*BROADBAND_TECHS, "none")


@dataclass(frozen=True)
class FieldSpec:
    """One importer field: its kind, whether the CSV must have it, and its allowed values."""

    kind: str  # "id" | "int" | "float" | "float_or_blank" | "bool" | "category" | "text"
    required: bool
    vocabulary: tuple[str, ...] = ()


FIELDS: dict[str, FieldSpec] = {
    "customer_id": FieldSpec("id", True),
    "tenure_months": FieldSpec("int", True),
    "monthly_charges": FieldSpec("float", True),
    "total_charges": FieldSpec("float_or_blank", False),
    "churn": FieldSpec("bool", True),
    "contract": FieldSpec("category", True, CONTRACT_TYPES),
    "payment_method": FieldSpec("category", True, PAYMENT_METHODS),
    "paperless_billing": FieldSpec("bool", True),
    "phone_service": FieldSpec("bool", True),
    "multiple_lines": FieldSpec("bool", False),
    "internet_service": FieldSpec("category", True, INTERNET_VALUES),
    "senior_citizen": FieldSpec("bool", False),
    "partner": FieldSpec("bool", False),
    "dependents": FieldSpec("bool", False),
    "online_security": FieldSpec("bool", False),
    "online_backup": FieldSpec("bool", False),
    "device_protection": FieldSpec("bool", False),
    "tech_support": FieldSpec("bool", False),
    "streaming_tv": FieldSpec("bool", False),
    "streaming_movies": FieldSpec("bool", False),
    "gender": FieldSpec("text", False),
    "region": FieldSpec("category", False, REGIONS),
    "account_type": FieldSpec("category", False, ACCOUNT_TYPES),
}
"""Importer fields a mapping may name (see the module docstring)."""

_BOOL_DEFAULT = {
    "yes": True, "no": False, "y": True, "n": False, "true": True, "false": False,
    "1": True, "0": False, "no internet service": False, "no phone service": False,
}


class Defaults(BaseModel):
    """Values a flat table does not carry (documented assumptions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = "suburban"
    account_type: str = "consumer"
    channel_preference: str = "email"
    mobile_plan_tier: str = "unlimited"
    broadband_plan_tier: str = "standard"

    @model_validator(mode="after")
    def _in_vocabularies(self) -> Defaults:
        checks = {
            "region": REGIONS, "account_type": ACCOUNT_TYPES, "channel_preference": CHANNELS,
            "mobile_plan_tier": PLAN_TIERS, "broadband_plan_tier": PLAN_TIERS,
        }
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"defaults.{key} must be one of {list(allowed)}, got {getattr(self, key)!r}")
        return self


class FlatMapping(BaseModel):
    """A mapping from a flat churn table's columns and values to importer fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    as_of: dt.date | None = None
    churn_end_offset_days: int = Field(15, ge=1, le=90)
    columns: dict[str, str]
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)

    @field_validator("columns")
    @classmethod
    def _known_and_complete(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; fields are {sorted(FIELDS)}")
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
                    raise ValueError(
                        f"values.{fld}.{src}: {target!r} is not one of {list(spec.vocabulary)}"
                    )
        return v


def load_mapping(mapping: str | os.PathLike[str]) -> FlatMapping:
    """Load a built-in mapping by name (``"ibm"``) or a mapping YAML file.

    Args:
        mapping: A name of :data:`BUILTIN_MAPPINGS` or a path.

    Returns:
        The validated mapping.

    Raises:
        ConfigError: Unknown name, unreadable file, or a mapping that breaks the format.
    """
    key = str(mapping)
    if key in BUILTIN_MAPPINGS:
        text = resources.files("telco_nbo.data").joinpath(BUILTIN_MAPPINGS[key]).read_text(encoding="utf-8")
        where = f"built-in mapping '{key}'"
    else:
        path = Path(mapping)
        if not path.is_file():
            raise ConfigError(
                f"mapping '{key}' is neither a built-in mapping ({', '.join(BUILTIN_MAPPINGS)}) nor a file"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read mapping {path}: {exc}") from exc
        where = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping {where} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"mapping {where} must be a YAML mapping (key: value), got {type(raw).__name__}")
    try:
        return FlatMapping.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"mapping {where} is invalid:\n{exc}") from exc


# ----------------------------------------------------------------------------------------------
# Flat table -> typed fields
# ----------------------------------------------------------------------------------------------


def _norm(v: object) -> str:
    return str(v).strip().casefold()


def _parse_fields(flat: pd.DataFrame, mapping: FlatMapping, table: str) -> pd.DataFrame:
    """Check the flat table and return one typed column per mapped field.

    Raises:
        DataValidationError: Every problem found (missing columns, ids, numbers, categories).
    """
    problems: list[str] = []
    missing = [(f, c) for f, c in mapping.columns.items() if c not in flat.columns]
    for fld, col in missing:
        kind = "required" if FIELDS[fld].required else "mapped"
        problems.append(f"missing column '{col}' ({kind}, field {fld})")
    if problems:
        raise DataValidationError(table, problems)
    if flat.empty:
        raise DataValidationError(table, ["no data rows (only a header)"])

    out: dict[str, pd.Series] = {}
    for fld, col in mapping.columns.items():
        spec = FIELDS[fld]
        raw = flat[col]
        text = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
        blank = text.isna() | (text == "")
        if spec.kind == "id":
            if blank.any():
                problems.append(f"column '{col}': blank customer id in {_fmt_rows(np.flatnonzero(blank))}")
            dup = text.duplicated(keep=False) & ~blank
            if dup.any():
                for value, rows in list(text[dup].groupby(text[dup], sort=False).groups.items())[:5]:
                    problems.append(f"duplicate {col} '{value}' in {_fmt_rows(rows)}")
                n_dup = text[dup].nunique()
                if n_dup > 5:
                    problems.append(f"... and {n_dup - 5:,} more duplicated {col} values")
            out[fld] = text
        elif spec.kind in ("int", "float", "float_or_blank"):
            num = pd.to_numeric(text.where(~blank), errors="coerce")
            bad = ~blank & num.isna()
            if bad.any():
                pos = np.flatnonzero(bad)
                problems.append(
                    f"column '{col}': expected a number, got text in {_fmt_rows(pos)} "
                    f"(values {_fmt_values(raw.iloc[pos])})"
                )
            if spec.kind != "float_or_blank" and blank.any():
                problems.append(f"column '{col}': blank in {_fmt_rows(np.flatnonzero(blank))}")
            neg = num < 0
            if neg.any():
                pos = np.flatnonzero(neg)
                problems.append(f"column '{col}': negative in {_fmt_rows(pos)} (values {_fmt_values(raw.iloc[pos])})")
            if spec.kind == "int":
                frac = num.notna() & (num != np.floor(num))
                if frac.any():
                    pos = np.flatnonzero(frac)
                    problems.append(
                        f"column '{col}': expected whole months, got {_fmt_values(raw.iloc[pos])} in {_fmt_rows(pos)}"
                    )
            out[fld] = num
        elif spec.kind in ("bool", "category"):
            given = mapping.values.get(fld)
            vmap = {_norm(k): v for k, v in given.items()} if given else (
                _BOOL_DEFAULT if spec.kind == "bool" else {_norm(v): v for v in spec.vocabulary}
            )
            normed = text.map(lambda v: _norm(v) if isinstance(v, str) else v)
            mapped = normed.map(vmap)
            bad = mapped.isna()
            if bad.any():
                pos = np.flatnonzero(bad)
                known = ", ".join(repr(k) for k in (given or vmap))
                unknown = _fmt_values(raw.iloc[pos].fillna(""))
                problems.append(
                    f"column '{col}': unknown value {unknown} in {_fmt_rows(pos)} (known: {known})"
                )
            out[fld] = mapped
        else:
            out[fld] = text
    if problems:
        raise DataValidationError(table, problems + ["(row r is line r + 2 of the file)"])
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------
# Typed fields -> tables
# ----------------------------------------------------------------------------------------------


def _add_months(base: pd.Timestamp, months: np.ndarray) -> pd.Series:
    """``base`` shifted by ``months`` (vectorized), the day clipped to the month's length."""
    idx = base.year * 12 + (base.month - 1) + np.asarray(months, dtype=np.int64)
    year, month = idx // 12, idx % 12 + 1
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    days_in = first.dt.days_in_month.to_numpy()
    day = np.minimum(base.day, days_in)
    return (first + pd.to_timedelta(day - 1, unit="D")).astype("datetime64[ns]")


def _flag(fields: pd.DataFrame, name: str) -> np.ndarray:
    if name in fields.columns:
        return fields[name].astype(bool).to_numpy()
    return np.zeros(len(fields), dtype=bool)


def _parse_as_of(value: str | dt.date | pd.Timestamp | None, mapping: FlatMapping) -> pd.Timestamp:
    raw = value if value is not None else (mapping.as_of or DEFAULT_AS_OF)
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError):
        raise ConfigError(f"as_of must be a date YYYY-MM-DD, got {raw!r}") from None
    if ts is pd.NaT or ts != ts.normalize() or ts.tzinfo is not None:
        raise ConfigError(f"as_of must be a plain date YYYY-MM-DD, got {raw!r}")
    return ts


def flat_to_world(
    flat: pd.DataFrame,
    mapping: FlatMapping,
    *,
    as_of: str | dt.date | pd.Timestamp | None = None,
    source_name: str = "input",
) -> World:
    """Map a flat one-row-per-customer frame (all cells text) into a validated world.

    Args:
        flat: The flat table as read with every cell as text (see :func:`read_csv_text`).
        mapping: How its columns and values map to importer fields.
        as_of: Snapshot date; default the mapping's ``as_of`` or 2025-12-01.
        source_name: Name used in error messages (the file name).

    Returns:
        A world with households, accounts and lines filled and the other tables empty.

    Raises:
        DataValidationError: The flat table has problems (all listed).
        ConfigError: ``as_of`` is not a date.
    """
    as_of_ts = _parse_as_of(as_of, mapping)
    f = _parse_fields(flat, mapping, source_name)
    n = len(f)
    d = mapping.defaults
    cid = f["customer_id"].astype(str).to_numpy(object)
    hh_ids = np.array([f"H{c}" for c in cid], dtype=object)
    acc_ids = np.array([f"A{c}" for c in cid], dtype=object)

    tenure = f["tenure_months"].astype(np.int64).to_numpy()
    start = _add_months(as_of_ts, -tenure)
    churn = _flag(f, "churn")
    end = pd.Series(
        np.where(churn, as_of_ts + pd.Timedelta(days=mapping.churn_end_offset_days), pd.NaT),
        dtype="datetime64[ns]",
    )
    contract = f["contract"].to_numpy(object)
    length = np.array([CONTRACT_MONTHS[c] for c in contract], dtype=np.int64)
    periods = tenure // length + 1  # first renewal strictly after as_of
    contract_end = _add_months(as_of_ts, periods * length - tenure)
    contract_end = contract_end.where(contract != "month_to_month")

    internet = f["internet_service"].to_numpy(object)
    partner, dependents = _flag(f, "partner"), _flag(f, "dependents")
    region = f["region"].to_numpy(object) if "region" in f else np.full(n, d.region, dtype=object)
    account_type = (
        f["account_type"].to_numpy(object) if "account_type" in f else np.full(n, d.account_type, dtype=object)
    )

    households = pd.DataFrame(
        {
            "household_id": hh_ids,
            "region": region,
            "household_size": (1 + partner.astype(np.int64) + dependents.astype(np.int64)),
            "fiber_eligible": internet == "fiber",
            "fwa_eligible": np.zeros(n, dtype=bool),
            "created_date": start.to_numpy(),
        }
    )
    monthly = f["monthly_charges"].astype(float).to_numpy()
    accounts = pd.DataFrame(
        {
            "account_id": acc_ids,
            "household_id": hh_ids,
            "account_type": account_type,
            "start_date": start.to_numpy(),
            "end_date": end.to_numpy(),
            "contract_type": contract,
            "contract_end_date": contract_end.to_numpy(),
            "payment_method": f["payment_method"].to_numpy(object),
            "paperless_billing": _flag(f, "paperless_billing"),
            "channel_preference": np.full(n, d.channel_preference, dtype=object),
            "senior_citizen": _flag(f, "senior_citizen"),
            "has_partner": partner,
            "has_dependents": dependents,
            "has_premium_care": _flag(f, "tech_support"),
            "monthly_charges": monthly,
        }
    )

    # Lines: mobile 1-2 per phone service, one broadband per internet service.
    phone = _flag(f, "phone_service")
    multi = _flag(f, "multiple_lines") & phone
    has_bb = internet != "none"
    n_lines = phone.astype(np.int64) + multi.astype(np.int64) + has_bb.astype(np.int64)
    owner = np.repeat(np.arange(n), n_lines)
    # Position of each line within its account: mobile lines first, then broadband.
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    n_mobile = (phone.astype(np.int64) + multi.astype(np.int64))[owner]
    is_mobile = rank < n_mobile
    suffix = np.where(is_mobile, np.char.add("M", (rank + 1).astype(str)), "BB").astype(object)
    line_ids = np.array([f"L{c}-{s}" for c, s in zip(cid[owner], suffix)], dtype=object)
    # Split the account's charge evenly, to the cent; the last line takes the rounding rest.
    share = np.round(monthly[owner] / n_lines[owner], 2)
    last = rank == n_lines[owner] - 1
    sums = np.bincount(owner, weights=np.where(last, 0.0, share), minlength=n)
    price = np.where(last, np.round(monthly[owner] - sums[owner], 2), share)
    price = np.maximum(price, 0.0)
    bb = ~is_mobile
    lines = pd.DataFrame(
        {
            "line_id": line_ids,
            "account_id": acc_ids[owner],
            "line_type": np.where(is_mobile, "mobile", "broadband").astype(object),
            "start_date": start.to_numpy()[owner],
            "end_date": end.to_numpy()[owner],
            "plan_tier": np.where(is_mobile, d.mobile_plan_tier, d.broadband_plan_tier).astype(object),
            "data_cap_gb": np.full(len(owner), np.nan),
            "monthly_price": price.astype(float),
            "broadband_tech": np.where(bb, internet[owner], None).astype(object),
            "device_purchase_date": pd.Series(pd.NaT, index=range(len(owner)), dtype="datetime64[ns]"),
            "has_device_protection": bb & _flag(f, "device_protection")[owner],
            "has_travel_pack": np.zeros(len(owner), dtype=bool),
            "has_mesh_wifi": np.zeros(len(owner), dtype=bool),
            "has_online_security": bb & _flag(f, "online_security")[owner],
            "has_streaming": bb & (_flag(f, "streaming_tv") | _flag(f, "streaming_movies"))[owner],
        }
    )
    lines["data_cap_gb"] = lines["data_cap_gb"].astype(float)

    tables = {name: empty_table(name) for name in TABLES}
    tables.update(households=households, accounts=accounts, lines=lines)
    validate_world(tables)
    used = dict(mapping.columns)
    meta = {
        "source": f"csv:{mapping.name}",
        "as_of": as_of_ts.strftime("%Y-%m-%d"),
        "mapping": mapping.model_dump(mode="json"),
        "input_file": source_name,
        "ignored_columns": [c for c in flat.columns if c not in used.values()],
        "n_customers": int(n),
        "n_churned": int(churn.sum()),
        "churn_rule": (
            f"accounts.end_date = as_of + {mapping.churn_end_offset_days} days for churners: "
            "ended within 90 days after as_of <=> churn"
        ),
        "has_usage": False,
    }
    return World(tables=tables, truth={}, meta=meta)


def import_flat_csv(
    path: str | os.PathLike[str],
    mapping: FlatMapping | str = "ibm",
    *,
    as_of: str | dt.date | pd.Timestamp | None = None,
) -> World:
    """Read a flat churn CSV and map it into a validated world (nothing is written).

    Args:
        path: The CSV file.
        mapping: A :class:`FlatMapping`, a built-in mapping name or a mapping YAML path.
        as_of: Snapshot date; default the mapping's ``as_of`` or 2025-12-01.

    Returns:
        The world; write it with :func:`telco_nbo.data.io.write_world`.

    Raises:
        DataValidationError: The file is empty or has problems (all listed, naming the problem).
        ConfigError: The file or the mapping cannot be read.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"input file {p} does not exist")
    spec = mapping if isinstance(mapping, FlatMapping) else load_mapping(mapping)
    if p.stat().st_size == 0:
        raise DataValidationError(p.name, [f"file {p} is empty"])
    flat = read_csv_text(p, p.name)
    world = flat_to_world(flat, spec, as_of=as_of, source_name=p.name)
    world.meta["input_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return world


__all__ = [
    "BUILTIN_MAPPINGS",
    "DEFAULT_AS_OF",
    "FIELDS",
    "FlatMapping",
    "flat_to_world",
    "import_flat_csv",
    "load_mapping",
]
