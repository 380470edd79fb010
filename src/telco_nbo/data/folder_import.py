"""Multi-table import: a folder of an operator's tables (a CDP export) -> a data folder.

One mapping (YAML) describes every table::

    name: acme_cdp
    as_of: "2025-12-01"
    tables:
      accounts:                       # a table of the contract (telco_nbo.data.schema.TABLES)
        file: customers.csv           # CSV or Parquet, relative to the folder
        columns: {account_id: cust_no, contract_type: plan_term, monthly_charges: mrc_cents}
        values: {contract_type: {"M2M": month_to_month, "12M": one_year}}
        units: {monthly_charges: cents}
        defaults: {channel_preference: email}
        churn: left_flag              # optional: a churn flag instead of an end_date column
      usage_monthly: {file: usage.parquet, columns: {line_id: msisdn, month: bill_month}}

``columns`` maps a contract column to the file's column (a contract column the file already
names the same way needs no entry). Tables a user lacks are allowed: no ``households`` gives
one household per account; no ``lines``, ``usage_monthly``, ``support_tickets``, ``contacts``,
``offers`` or ``experiments`` gives that table empty (no usage: no usage features). Contract
columns a table lacks take the defaults of :data:`TABLE_DEFAULTS` (or the mapping's).
Ids get their contract prefix (``A``, ``H``, ``L``, ``T``, ``C``) when they lack it, the same way
in every table, so they still join. Columns of the accounts file the mapping does not use are
kept as typed account attributes (``account_x_<name>``) or dropped with the reason; columns of
other files the contract has no place for are dropped, and every column is accounted for.

Nothing is written unless every table is valid; problems name table, column and example rows.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telco_nbo.data import attributes
from telco_nbo.data.importers import BOOL_WORDS, read_flat_file
from telco_nbo.data.io import conform_table, empty_table
from telco_nbo.data.mapping import infer_column
from telco_nbo.data.schema import ID_COLUMNS, SCHEMAS, TABLES
from telco_nbo.data.validate import format_rows, format_values, validate_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError

TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "households": {"region": "suburban", "household_size": 1, "fiber_eligible": False, "fwa_eligible": False},
    "accounts": {
        "account_type": "consumer", "end_date": None, "contract_type": "month_to_month", "contract_end_date": None,
        "payment_method": "bank_transfer", "paperless_billing": False, "channel_preference": "email",
        "senior_citizen": False, "has_partner": False, "has_dependents": False, "has_premium_care": False,
        "monthly_charges": 0.0,
    },
    "lines": {
        "line_type": "mobile", "end_date": None, "plan_tier": "standard", "data_cap_gb": None, "monthly_price": 0.0,
        "broadband_tech": None, "device_purchase_date": None, "has_device_protection": False, "has_travel_pack": False,
        "has_mesh_wifi": False, "has_online_security": False, "has_streaming": False,
    },
    "usage_monthly": {"data_gb": 0.0, "overage_gb": 0.0, "voice_minutes": 0.0, "intl_minutes": 0.0,
                      "roaming_days": 0, "dropped_calls": 0, "bill_amount": 0.0},
    "support_tickets": {"line_id": None, "category": "other", "resolved_at": None, "is_complaint": False},
    "contacts": {"experiment_id": None, "arm": None, "channel": None, "accepted_at": None, "cancelled_at": None},
}
"""Per table, the value a contract column takes when the file has no column for it."""

UNIT_FACTORS: dict[str, float] = {
    "cents": 0.01, "mb": 1 / 1024, "kb": 1 / 1024**2, "bytes": 1 / 1024**3, "tb": 1024.0,
    "seconds": 1 / 60, "hours": 60.0,
}
"""Source unit -> factor into the contract's unit (currency, GB, minutes)."""

_PREFIX = {"households": "H", "accounts": "A", "lines": "L", "support_tickets": "T", "contacts": "C"}
# Columns holding ids of another table (they get that table's prefix).
_REFS = {"household_id": "H", "account_id": "A", "line_id": "L", "ticket_id": "T", "contact_id": "C"}


class TableMapping(BaseModel):
    """How one file maps onto one contract table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    units: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    churn: str | None = None
    drop: dict[str, str] = Field(default_factory=dict)

    @field_validator("units")
    @classmethod
    def _units(cls, v: dict[str, str]) -> dict[str, str]:
        bad = {k: u for k, u in v.items() if str(u).lower() not in UNIT_FACTORS}
        if bad:
            raise ValueError(f"unknown unit(s) {bad}; known: {sorted(UNIT_FACTORS)}")
        return {k: str(u).lower() for k, u in v.items()}


class FolderMapping(BaseModel):
    """A mapping of a folder of tables (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    as_of: dt.date
    churn_end_offset_days: int = Field(15, ge=1, le=90)
    tables: dict[str, TableMapping]

    @field_validator("tables")
    @classmethod
    def _known(cls, v: dict[str, TableMapping]) -> dict[str, TableMapping]:
        unknown = sorted(set(v) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; tables are {list(TABLES)}")
        if "accounts" not in v:
            raise ValueError("the accounts table is required")
        for name, tm in v.items():
            cols = SCHEMAS[name].columns
            bad = sorted(set(tm.columns) - set(cols))
            if bad:
                raise ValueError(f"tables.{name}.columns: unknown contract column(s) {bad}; "
                                 f"{name} has {list(cols)}")
            bad = sorted((set(tm.defaults) | set(tm.values) | set(tm.units)) - set(cols))
            if bad:
                raise ValueError(f"tables.{name}: defaults/values/units for unknown column(s) {bad}")
            keys = [ID_COLUMNS.get(name)] if name in ID_COLUMNS else ["line_id", "month"]
            bad = [k for k in keys if k in tm.defaults]
            if bad:
                raise ValueError(f"tables.{name}.defaults: a key cannot take a default ({bad})")
            if tm.churn is not None and name != "accounts":
                raise ValueError(f"tables.{name}.churn: the churn flag belongs to the accounts table")
            if tm.churn is not None and ("end_date" in tm.columns or "end_date" in tm.defaults):
                raise ValueError(f"tables.{name}: give either churn (a flag) or end_date (a date), not both")
        return v


def folder_fields_frame() -> pd.DataFrame:
    """Every contract column a folder mapping can fill: table, column, type, unit, key or default."""
    units = {"monthly_charges": "currency/month (also cents)", "monthly_price": "currency/month (also cents)",
             "bill_amount": "currency/month (also cents)", "data_gb": "GB (also mb, kb, bytes, tb)",
             "overage_gb": "GB (also mb, kb, bytes, tb)", "data_cap_gb": "GB (also mb, kb, bytes, tb)",
             "voice_minutes": "minutes (also seconds, hours)", "intl_minutes": "minutes (also seconds, hours)"}
    rows = []
    for table in TABLES:
        keys = {ID_COLUMNS.get(table)} if table in ID_COLUMNS else {"line_id", "month"}
        for col, spec in SCHEMAS[table].columns.items():
            defaults = TABLE_DEFAULTS.get(table, {})
            if col in keys:
                need = "key"
            elif table == "accounts" and col == "end_date":
                need = "default: None (active), or a churn flag (churn:)"
            elif col in defaults:
                need = f"default: {defaults[col]!r}"
            elif (table, col) in (("households", "created_date"), ("accounts", "household_id")):
                need = "default: derived"
            else:
                need = "no built-in default: map it or set defaults"
            rows.append({"table": table, "column": col, "type": str(spec.dtype), "unit": units.get(col, ""),
                         "required_or_default": need + (" (table optional)" if table != "accounts" and need == "key"
                                                        else "")})
    return pd.DataFrame(rows)


def load_folder_mapping(path: str | os.PathLike[str]) -> FolderMapping:
    """Load and check a folder mapping YAML.

    Raises:
        ConfigError: Unreadable file or a mapping that breaks the format.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"mapping {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"mapping {p} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"mapping {p} must be a YAML mapping (key: value)")
    try:
        return FolderMapping.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"mapping {p} is invalid:\n{exc}") from exc


def _read(folder: Path, table: str, tm: TableMapping) -> pd.DataFrame:
    path = folder / tm.file
    if not path.is_file():
        raise DataValidationError(table, [f"file {tm.file} not found in {folder}"])
    try:
        return read_flat_file(path)
    except DataValidationError as exc:
        raise DataValidationError(table, exc.problems) from None


def _prefixed(s: pd.Series, prefix: str) -> pd.Series:
    return s.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).startswith(prefix)
                 else f"{prefix}{v}")


def _norm(v: object) -> str:
    return str(v).strip().casefold()


def _map_table(
    table: str, raw: pd.DataFrame, tm: TableMapping, accounting: list[dict[str, str]]
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Series | None]:
    """One file -> (contract table as text/typed columns, account attributes or None, churn flag or None)."""
    contract = list(SCHEMAS[table].columns)
    source = {c: tm.columns.get(c, c) for c in contract}
    problems = []
    listed = [*tm.columns.values(), *tm.drop, *([tm.churn] if tm.churn else [])]
    missing = [c for c in listed if c not in raw.columns]
    if missing:
        problems.append(f"file {tm.file} has no column(s) {missing}; its columns: {', '.join(map(str, raw.columns))}")
    out: dict[str, pd.Series] = {}
    defaults = {**TABLE_DEFAULTS.get(table, {}), **tm.defaults}
    for col in contract:
        src = source[col]
        if src in raw.columns:
            s = raw[src]
            if col in tm.values:
                vmap = {_norm(k): v for k, v in tm.values[col].items()}
                mapped = s.map(lambda v: vmap.get(_norm(v), v) if v is not None else v)
                out[col] = mapped
            else:
                out[col] = s
            if col in tm.units:
                num = pd.to_numeric(out[col], errors="coerce")
                bad = num.isna() & out[col].notna()
                if bad.any():
                    pos = np.flatnonzero(bad.to_numpy())
                    problems.append(f"column '{src}': expected a number, got text in {format_rows(pos)} "
                                    f"(values {format_values(s.iloc[pos])})")
                out[col] = num * UNIT_FACTORS[tm.units[col]]
        elif col in defaults:
            out[col] = pd.Series([defaults[col]] * len(raw), index=raw.index, dtype=object)
        elif not (table == "accounts" and col == "end_date" and tm.churn) and not (
            table == "households" and col == "created_date"
        ) and not (table == "accounts" and col == "household_id"):
            problems.append(f"no column for '{col}' (file {tm.file}): name it under columns, or give a default")
    if problems:
        raise DataValidationError(table, problems)
    for col in contract:
        if col in out and col in _REFS:
            out[col] = _prefixed(out[col], _REFS[col])
    used = {source[c] for c in contract if source[c] in raw.columns}
    churn = None
    if tm.churn:
        used.add(tm.churn)
        churn = raw[tm.churn]
    attrs: dict[str, pd.Series] = {}
    for c in raw.columns:
        if c in used:
            accounting.append({"table": table, "column": str(c), "status": "mapped",
                               "detail": "churn flag" if c == tm.churn else
                               f"{table}.{next(k for k in contract if source[k] == c)}"})
        elif c in tm.drop:
            accounting.append({"table": table, "column": str(c), "status": "dropped", "detail": tm.drop[c]})
        elif table != "accounts":
            accounting.append({"table": table, "column": str(c), "status": "dropped",
                               "detail": f"no place in {table} (only the accounts file passes columns through)"})
        else:
            kind, reason = infer_column(raw[c])
            if kind is None:
                accounting.append({"table": table, "column": str(c), "status": "dropped", "detail": reason})
                continue
            name = attributes.attribute_name(c)
            while name in attrs:
                name += "_"
            if kind == "numeric":
                attrs[name] = pd.to_numeric(raw[c], errors="coerce").astype(np.float64)
            else:
                attrs[name] = attributes.make_categorical(raw[c])
            accounting.append({"table": table, "column": str(c), "status": "passthrough",
                               "detail": f"account_{name} ({kind}; {reason})"})
    frame = pd.DataFrame(out, index=raw.index).reset_index(drop=True)
    attr_frame = None
    if attrs:
        attr_frame = pd.DataFrame({"account_id": frame["account_id"].to_numpy(),
                                   **{k: (v.array if isinstance(v.dtype, pd.CategoricalDtype) else v.to_numpy())
                                      for k, v in attrs.items()}})
    return frame, attr_frame, churn.reset_index(drop=True) if churn is not None else None


def _with_sources(table: str, problems: list[str], mapping: FolderMapping) -> list[str]:
    """Problem lines naming the user's column beside the contract's (``'term' (contract_type)``)."""
    tm = mapping.tables.get(table)
    if tm is None:
        return problems
    out = []
    for line in problems:
        for col, src in tm.columns.items():
            if src != col:
                line = line.replace(f"column '{col}'", f"column '{src}' ({table}.{col})")
        out.append(line)
    return out


def import_folder(folder: str | os.PathLike[str], mapping: FolderMapping) -> World:
    """Read a folder of tables with one mapping into a validated world (nothing is written).

    Args:
        folder: The folder holding the files the mapping names.
        mapping: The folder mapping.

    Returns:
        The world; ``meta["columns"]`` accounts for every column of every file, ``meta["notes"]``
        says which tables were missing and what stood in for them.

    Raises:
        DataValidationError: A file is missing or a table has problems (table, column, rows).
        ConfigError: The folder does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"input folder {root} does not exist")
    as_of = pd.Timestamp(mapping.as_of)
    accounting: list[dict[str, str]] = []
    notes: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    attrs = None
    churn = None
    for name in TABLES:
        tm = mapping.tables.get(name)
        if tm is None:
            continue
        raw = _read(root, name, tm)
        if raw.empty:
            raise DataValidationError(name, [f"file {tm.file} has no data rows"])
        frame, a, c = _map_table(name, raw, tm, accounting)
        if name == "accounts":
            attrs, churn = a, c
        tables[name] = frame
    acc = tables["accounts"]
    if churn is not None:
        flag = churn.map(lambda v: BOOL_WORDS.get(_norm(v)) if v is not None else None)
        bad = flag.isna()
        if bad.any():
            pos = np.flatnonzero(bad.to_numpy())
            raise DataValidationError("accounts", [
                f"column '{mapping.tables['accounts'].churn}': not a churn flag (yes/no, true/false, 1/0) in "
                f"{format_rows(pos)} (values {format_values(churn.iloc[pos])})"])
        end = as_of + pd.Timedelta(days=mapping.churn_end_offset_days)
        acc["end_date"] = np.where(flag.astype(bool), end.strftime("%Y-%m-%d"), None)
    if "household_id" not in acc.columns:
        if "households" in tables:
            raise DataValidationError("accounts", [
                f"no column for 'household_id' (file {mapping.tables['accounts'].file}): with a households "
                "table each account must name its household"])
        # One household per account, numbered like it.
        acc["household_id"] = acc["account_id"].map(lambda v: "H" + str(v)[1:])
    if "households" not in tables:
        hh_ids = acc["household_id"].drop_duplicates()
        tables["households"] = pd.DataFrame({"household_id": hh_ids.to_numpy(), "region": "suburban",
                                             "household_size": 1, "fiber_eligible": False, "fwa_eligible": False,
                                             "created_date": None})
        notes.append("no households table: one household per account household_id (region suburban, size 1)")
    problems: dict[str, list[str]] = {}
    typed: dict[str, pd.DataFrame] = {}
    hh = tables["households"]
    if "created_date" not in hh.columns or hh["created_date"].isna().any():
        # Households without a creation date: created with their first account.
        try:
            starts = conform_table("accounts", acc)["start_date"]
        except DataValidationError:
            starts = None  # the accounts' own problems are reported below
        if starts is not None:
            first = starts.groupby(acc["household_id"].to_numpy()).min().dt.strftime("%Y-%m-%d")
            given = hh["created_date"] if "created_date" in hh.columns else pd.Series(None, index=hh.index)
            hh["created_date"] = given.where(given.notna(), hh["household_id"].map(first))
    for name in TABLES:
        if name not in tables:
            typed[name] = empty_table(name)
            if name in ("lines", "usage_monthly", "support_tickets"):
                notes.append(f"no {name} table: written empty" + (" (no usage features)" if name == "usage_monthly" else ""))
            continue
        try:
            typed[name] = conform_table(name, tables[name])
        except DataValidationError as exc:
            file = mapping.tables[name].file if name in mapping.tables else "(derived)"
            problems[name] = [*_with_sources(name, exc.problems, mapping), f"(in {file}, row r is file line r + 2)"]
    if "accounts" in problems and "households" in problems:
        # Creation dates derived from the accounts' start dates fail with them: say it once.
        rest = [x for x in problems["households"] if "created_date" not in x and "(derived)" not in x]
        if rest:
            problems["households"] = rest
        else:
            del problems["households"]
    if problems:
        first = next(iter(problems))
        lines = list(problems[first]) + [f"table '{o}': {p}" for o, ps in list(problems.items())[1:] for p in ps]
        raise DataValidationError(first, lines)
    if attrs is not None:
        typed[attributes.TABLE] = attrs
    try:
        validate_world(typed)
    except DataValidationError as exc:
        raise DataValidationError(exc.table, _with_sources(exc.table, exc.problems, mapping)) from None
    meta = {
        "source": f"folder:{mapping.name}",
        "as_of": as_of.strftime("%Y-%m-%d"),
        "mapping": mapping.model_dump(mode="json"),
        "input_folder": str(root),
        "columns": accounting,
        "notes": notes,
        "has_usage": bool(len(typed["usage_monthly"])),
        "drop_constant_features": True,
        "n_customers": int(len(typed["accounts"])),
        "n_churned": int(((typed["accounts"]["end_date"] > as_of)
                          & (typed["accounts"]["end_date"] <= as_of + pd.Timedelta(days=90))).sum()),
    }
    return World(tables=typed, truth={}, meta=meta)


__all__ = ["FolderMapping", "TABLE_DEFAULTS", "TableMapping", "folder_fields_frame", "import_folder",
           "load_folder_mapping"]
