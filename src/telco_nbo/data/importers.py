"""Importers: a flat one-row-per-customer churn table -> the tables of a data folder.

Most public and internal churn extracts are flat: one row per customer with tenure, contract,
services, charges, usage, service calls and a churn flag. This module maps such a table onto the
household -> account -> line hierarchy of :mod:`telco_nbo.data.schema`, so the same features,
models and offers run on it, without losing the columns the contract has no place for.

What one customer row becomes
-----------------------------
* one household ``H<id>`` and one account ``A<id>`` (``<id>`` is the source customer id, so
  results join back to the source system; a table without an id column gets row numbers 1..n,
  and the command line says so);
* lines: a phone service gives one mobile line ``L<id>-M1`` (two, ``-M2``, with multiple lines);
  an internet service (DSL / fiber; also ``fwa`` / ``cable``) gives a broadband line ``L<id>-BB``
  with ``broadband_tech`` and the add-on flags;
* usage fields (``data_gb``, ``voice_minutes``, ``intl_minutes``, ``roaming_days``,
  ``dropped_calls``, ``overage_gb``, ``bill_amount``) become ``usage_monthly`` rows of the
  account's first line: one aggregate month (the last month fully known at ``as_of``) or, with
  ``usage_months: N``, a wide layout of N months whose columns are named by a ``{m}`` template;
* ticket counts (``support_calls``, ``complaints``) become that many resolved tickets spread over
  the 90 days before ``as_of`` (category ``ticket_category``, default ``other``);
* every other column is kept as a typed account attribute ``account_x_<name>`` (numeric or
  categorical, :mod:`telco_nbo.data.attributes`) that churn, propensity and uplift read, unless it
  is constant, empty, an identifier or free text; then it is dropped, with that reason;
* dates, from the snapshot date ``as_of`` (default 2025-12-01, or ``--as-of``):
  ``start_date = as_of - tenure months``; a churner gets ``end_date = as_of +
  churn_end_offset_days`` (default 15), so "the account ended within 90 days after as_of"
  reproduces the churn column exactly; ``contract_end_date`` rolls forward from the start by the
  contract length to the first date after ``as_of`` (null for month-to-month);
* the account's monthly charge is split evenly over its lines (to the cent).

Every field except the key and the target takes a default when the table has no column for it
(:data:`telco_nbo.data.mapping.FIELDS`; ``telco-nbo data fields`` prints them with table, type and
unit). A default fills a model feature with one value: such constant features are reported at
import and left out of training (``meta["drop_constant_features"]``), never fed as zeros.
``meta["columns"]`` accounts for every input column: mapped (to which field), passthrough (as
which feature, which type) or dropped (why). The mapping format is :class:`FlatMapping`;
``telco-nbo data suggest-mapping`` drafts one.

Every input problem (missing column, duplicate or blank id, text in a number column, unknown
category value, empty file) is reported before anything is written, naming column, rows and
values (rows count data rows from 0; the file line is row + 2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from telco_nbo.data import attributes
from telco_nbo.data.io import empty_table, read_csv_text
from telco_nbo.data.mapping import FIELDS, UNITS, USAGE_FIELDS, FieldSpec, FlatMapping, infer_column
from telco_nbo.data.schema import CONTRACT_MONTHS, TABLES
from telco_nbo.data.validate import format_rows, format_values, validate_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.features import usage_cutoff

DEFAULT_AS_OF = "2025-12-01"
BUILTIN_MAPPINGS = {"ibm": "ibm_mapping.yaml"}
"""Name -> mapping file shipped beside this module."""

MAX_TICKETS_PER_ROW = 1000
"""A ticket count above this in one row is taken for a data error, not a busy customer."""

BOOL_WORDS = {
    "yes": True, "no": False, "y": True, "n": False, "true": True, "false": False,
    "1": True, "0": False, "no internet service": False, "no phone service": False,
}


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


def _parse_column(
    fld: str, spec: FieldSpec, col: str, raw: pd.Series, mapping: FlatMapping, problems: list[str]
) -> pd.Series:
    """One source column as the field's typed values (problems appended, never raised here)."""
    text = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
    blank = text.isna() | (text == "")
    if spec.kind == "id":
        if blank.any():
            problems.append(f"column '{col}': blank customer id in {format_rows(np.flatnonzero(blank))}")
        dup = text.duplicated(keep=False) & ~blank
        if dup.any():
            for value, rows in list(text[dup].groupby(text[dup], sort=False).groups.items())[:5]:
                problems.append(f"duplicate {col} '{value}' in {format_rows(rows)}")
            n_dup = text[dup].nunique()
            if n_dup > 5:
                problems.append(f"... and {n_dup - 5:,} more duplicated {col} values")
        return text
    if spec.kind in ("int", "float", "float_or_blank"):
        num = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = ~blank & num.isna()
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.append(
                f"column '{col}': expected a number, got text in {format_rows(pos)} (values {format_values(raw.iloc[pos])})"
            )
        if spec.kind != "float_or_blank" and blank.any():
            problems.append(f"column '{col}': blank in {format_rows(np.flatnonzero(blank))}")
        neg = num < 0
        if neg.any():
            pos = np.flatnonzero(neg)
            problems.append(f"column '{col}': negative in {format_rows(pos)} (values {format_values(raw.iloc[pos])})")
        unit = mapping.units.get(fld)
        if unit is not None:
            num = num * UNITS[spec.unit][unit]
            if spec.kind == "int":
                num = num.round()
        if spec.kind == "int":
            frac = num.notna() & (num != np.floor(num))
            if frac.any():
                pos = np.flatnonzero(frac)
                problems.append(
                    f"column '{col}': expected whole {spec.unit or 'numbers'}, got {format_values(raw.iloc[pos])} "
                    f"in {format_rows(pos)}"
                )
        return num
    if spec.kind in ("bool", "category"):
        given = mapping.values.get(fld)
        vmap = {_norm(k): v for k, v in given.items()} if given else (
            BOOL_WORDS if spec.kind == "bool" else {_norm(v): v for v in spec.vocabulary}
        )
        normed = text.map(lambda v: _norm(v) if isinstance(v, str) else v)
        mapped = normed.map(vmap)
        bad = mapped.isna()
        if bad.any():
            pos = np.flatnonzero(bad)
            known = ", ".join(repr(k) for k in (given or vmap))
            unknown = format_values(raw.iloc[pos].fillna(""))
            problems.append(f"column '{col}': unknown value {unknown} in {format_rows(pos)} (known: {known})")
        return mapped
    return text


def _parse_fields(flat: pd.DataFrame, mapping: FlatMapping, table: str) -> pd.DataFrame:
    """Check the flat table and return one typed column per mapped field (and per month).

    A wide usage field gives columns ``<field>@<m>`` (m = 1 the latest month).

    Raises:
        DataValidationError: Every problem found (missing columns, ids, numbers, categories).
    """
    problems: list[str] = []
    for fld in mapping.columns:
        for col in mapping.source_columns(fld):
            if col not in flat.columns:
                kind = "required" if FIELDS[fld].required else "mapped"
                problems.append(f"missing column '{col}' ({kind}, field {fld})")
    if problems:
        raise DataValidationError(table, problems + [f"columns of the file: {', '.join(map(str, flat.columns))}"])
    if flat.empty:
        raise DataValidationError(table, ["no data rows (only a header)"])

    out: dict[str, pd.Series] = {}
    for fld in mapping.columns:
        spec = FIELDS[fld]
        cols = mapping.source_columns(fld)
        for m, col in enumerate(cols, start=1):
            key = f"{fld}@{m}" if len(cols) > 1 or spec.role == "usage" else fld
            out[key] = _parse_column(fld, spec, col, flat[col], mapping, problems)
    for key, values in out.items():
        if key.split("@")[0] == "roaming_days" and (values > 31).any():
            col = mapping.source_columns("roaming_days")[int(key.split("@")[1]) - 1]
            pos = np.flatnonzero((values > 31).to_numpy())
            problems.append(f"column '{col}': more than 31 roaming days in a month in {format_rows(pos)} "
                            f"(values {format_values(flat[col].iloc[pos])})")
    counts = [f for f in ("support_calls", "complaints") if f in out]
    for fld in counts:
        too_many = out[fld] > MAX_TICKETS_PER_ROW
        if too_many.any():
            pos = np.flatnonzero(too_many)
            problems.append(f"column '{mapping.columns[fld]}': more than {MAX_TICKETS_PER_ROW} tickets in "
                            f"{format_rows(pos)} (values {format_values(flat[mapping.columns[fld]].iloc[pos])})")
    if problems:
        raise DataValidationError(table, problems + ["(row r is line r + 2 of the file)"])
    return pd.DataFrame(out)


def _passthrough(flat: pd.DataFrame, mapping: FlatMapping, table: str) -> tuple[dict[str, pd.Series], list[dict[str, str]]]:
    """Attribute columns and the accounting of every column the mapping does not map.

    Returns:
        ``(attribute name -> typed series, accounting rows)``; an accounting row is
        ``{"column", "status", "detail"}`` with status ``mapped``, ``passthrough`` or ``dropped``.

    Raises:
        DataValidationError: A column forced numeric holds text, or a listed column is missing.
    """
    used: dict[str, str] = {}
    for fld in mapping.columns:
        for col in mapping.source_columns(fld):
            used[col] = fld
    missing = [c for c in [*mapping.passthrough, *mapping.drop] if c not in flat.columns]
    if missing:
        raise DataValidationError(table, [f"mapping lists column(s) not in the file: {missing}"])
    accounting: list[dict[str, str]] = []
    attrs: dict[str, pd.Series] = {}
    names: set[str] = set()
    problems: list[str] = []
    for col in flat.columns:
        if col in used:
            accounting.append({"column": str(col), "status": "mapped", "detail": f"field {used[col]}"})
            continue
        if col in mapping.drop:
            accounting.append({"column": str(col), "status": "dropped", "detail": mapping.drop[col] or "mapping says drop"})
            continue
        text = flat[col]
        kind = mapping.passthrough.get(col)
        if kind is None:
            kind, reason = infer_column(text)
            if kind is None:
                accounting.append({"column": str(col), "status": "dropped", "detail": reason})
                continue
        else:
            reason = "mapping says " + kind
        name = attributes.attribute_name(col)
        while name in names:  # two columns with the same slug ("Day Mins", "day_mins")
            name += "_"
        names.add(name)
        if kind == "numeric":
            clean = text.map(lambda v: v.strip() if isinstance(v, str) else v)
            blank = clean.isna() | (clean == "")
            num = pd.to_numeric(clean.where(~blank), errors="coerce")
            bad = ~blank & num.isna()
            if bad.any():
                pos = np.flatnonzero(bad)
                problems.append(f"column '{col}': passthrough numeric, got text in {format_rows(pos)} "
                                f"(values {format_values(text.iloc[pos])})")
            attrs[name] = num.astype(np.float64)
        else:
            clean = text.map(lambda v: v.strip() if isinstance(v, str) else v)
            attrs[name] = attributes.make_categorical(clean.where(clean.notna() & (clean != ""), None))
        accounting.append({"column": str(col), "status": "passthrough",
                           "detail": f"account_{name} ({kind}; {reason})"})
    if problems:
        raise DataValidationError(table, problems + ["(row r is line r + 2 of the file)"])
    return attrs, accounting


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


def _value(fields: pd.DataFrame, mapping: FlatMapping, name: str, n: int) -> np.ndarray:
    """The field's values: its column if mapped, else the mapping's default, else the field's."""
    if name in fields.columns:
        return fields[name].to_numpy()
    default = mapping.defaults.get(name, FIELDS[name].default)
    return np.full(n, default, dtype=object if isinstance(default, str) else None)


def _flag(fields: pd.DataFrame, mapping: FlatMapping, name: str) -> np.ndarray:
    return _value(fields, mapping, name, len(fields)).astype(bool)


def _parse_as_of(value: str | dt.date | pd.Timestamp | None, mapping: FlatMapping) -> pd.Timestamp:
    raw = value if value is not None else (mapping.as_of or DEFAULT_AS_OF)
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError):
        raise ConfigError(f"as_of must be a date YYYY-MM-DD, got {raw!r}") from None
    if ts is pd.NaT or ts != ts.normalize() or ts.tzinfo is not None:
        raise ConfigError(f"as_of must be a plain date YYYY-MM-DD, got {raw!r}")
    return ts


def _usage(
    fields: pd.DataFrame, mapping: FlatMapping, as_of: pd.Timestamp, first_line: np.ndarray,
    line_start: np.ndarray, monthly: np.ndarray,
) -> tuple[pd.DataFrame, int]:
    """usage_monthly rows of each account's first line; (rows, rows skipped before the line started)."""
    mapped = [f for f in USAGE_FIELDS if f in mapping.columns]
    if not mapped:
        return empty_table("usage_monthly"), 0

    latest = usage_cutoff(as_of) - pd.DateOffset(months=1)  # last month fully known at as_of
    parts = []
    skipped = 0
    has_line = first_line != None  # noqa: E711 - object array of ids or None
    for m in range(1, mapping.usage_months + 1):
        month = (latest - pd.DateOffset(months=m - 1)).to_datetime64().astype("datetime64[ns]")
        # A month before the line's first month cannot hold its usage (the contract refuses it).
        line_month = line_start.astype("datetime64[M]").astype("datetime64[ns]")
        keep = has_line & (line_month <= month)
        skipped += int((has_line & ~keep).sum())
        cols: dict[str, Any] = {"line_id": first_line[keep], "month": np.full(int(keep.sum()), month)}
        for f in USAGE_FIELDS:
            key = f"{f}@{m}"
            if key in fields.columns:
                vals = fields[key].to_numpy(dtype=np.float64)
            elif f in mapping.defaults:
                vals = np.full(len(fields), float(mapping.defaults[f]))
            elif f == "bill_amount":
                vals = monthly  # what a month without overage bills
            else:
                vals = np.zeros(len(fields))
            cols[f] = vals[keep]
        parts.append(pd.DataFrame(cols))
    usage = pd.concat(parts, ignore_index=True)
    for c in ("roaming_days", "dropped_calls"):
        usage[c] = np.round(usage[c]).astype(np.int64)
    usage["month"] = usage["month"].astype("datetime64[ns]")
    return usage.sort_values(["line_id", "month"], kind="stable").reset_index(drop=True), skipped


def _tickets(
    fields: pd.DataFrame, mapping: FlatMapping, as_of: pd.Timestamp, cid: np.ndarray, acc_ids: np.ndarray,
    start: np.ndarray,
) -> pd.DataFrame:
    """Ticket counts as resolved tickets spread over the 90 days before as_of."""
    kinds = [(f, f == "complaints") for f in ("support_calls", "complaints")
             if f in fields.columns or mapping.defaults.get(f)]
    if not kinds:
        return empty_table("support_tickets")
    category = mapping.defaults.get("ticket_category", FIELDS["ticket_category"].default)
    parts = []
    t = as_of.to_datetime64().astype("datetime64[ns]")
    day = np.timedelta64(1, "D")
    for fld, complaint in kinds:
        counts = _value(fields, mapping, fld, len(fields)).astype(np.float64).astype(np.int64)
        owner = np.repeat(np.arange(len(counts)), counts)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        # Evenly inside (as_of - 90 days, as_of - 1 day], never before the account started.
        offset = 1 + (89 * k) // np.maximum(counts[owner], 1)
        opened = np.maximum(t - offset * day, start[owner])
        resolved = np.minimum(opened + day, t)
        tag = "C" if complaint else "S"
        parts.append(pd.DataFrame({
            "ticket_id": np.array([f"T{c}-{tag}{i + 1}" for c, i in zip(cid[owner], k)], dtype=object),
            "account_id": acc_ids[owner],
            "line_id": np.full(len(owner), None, dtype=object),
            "category": np.full(len(owner), category, dtype=object),
            "opened_at": opened.astype("datetime64[ns]"),
            "resolved_at": resolved.astype("datetime64[ns]"),
            "is_complaint": np.full(len(owner), complaint),
        }))
    return pd.concat(parts, ignore_index=True).sort_values("ticket_id", kind="stable").reset_index(drop=True)


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
        A world with households, accounts and lines filled, usage and tickets when mapped, the
        unmapped columns with signal in ``account_attributes``; ``meta["columns"]`` accounts for
        every input column (mapped / passthrough / dropped and why).

    Raises:
        DataValidationError: The flat table has problems (all listed).
        ConfigError: ``as_of`` is not a date.
    """
    as_of_ts = _parse_as_of(as_of, mapping)
    flat = flat.reset_index(drop=True)
    f = _parse_fields(flat, mapping, source_name)
    attrs, accounting = _passthrough(flat, mapping, source_name)
    n = len(f)
    row_ids = "customer_id" not in f.columns
    if row_ids:
        # No id column: row numbers (1-based, as a person counts them) so results join back by row.
        cid = np.array([str(i) for i in range(1, n + 1)], dtype=object)
    else:
        cid = f["customer_id"].astype(str).to_numpy(object)
    hh_ids = np.array([f"H{c}" for c in cid], dtype=object)
    acc_ids = np.array([f"A{c}" for c in cid], dtype=object)

    tenure = _value(f, mapping, "tenure_months", n).astype(np.float64).astype(np.int64)
    start = _add_months(as_of_ts, -tenure)
    churn = _flag(f, mapping, "churn")
    end = pd.Series(
        np.where(churn, as_of_ts + pd.Timedelta(days=mapping.churn_end_offset_days), pd.NaT),
        dtype="datetime64[ns]",
    )
    contract = _value(f, mapping, "contract", n).astype(object)
    length = np.array([CONTRACT_MONTHS[c] for c in contract], dtype=np.int64)
    periods = tenure // length + 1  # first renewal strictly after as_of
    contract_end = _add_months(as_of_ts, periods * length - tenure)
    contract_end = contract_end.where(contract != "month_to_month")

    internet = _value(f, mapping, "internet_service", n).astype(object)
    partner, dependents = _flag(f, mapping, "partner"), _flag(f, mapping, "dependents")
    households = pd.DataFrame(
        {
            "household_id": hh_ids,
            "region": _value(f, mapping, "region", n).astype(object),
            "household_size": (1 + partner.astype(np.int64) + dependents.astype(np.int64)),
            "fiber_eligible": internet == "fiber",
            "fwa_eligible": np.zeros(n, dtype=bool),
            "created_date": start.to_numpy(),
        }
    )
    monthly = _value(f, mapping, "monthly_charges", n).astype(np.float64)
    accounts = pd.DataFrame(
        {
            "account_id": acc_ids,
            "household_id": hh_ids,
            "account_type": _value(f, mapping, "account_type", n).astype(object),
            "start_date": start.to_numpy(),
            "end_date": end.to_numpy(),
            "contract_type": contract,
            "contract_end_date": contract_end.to_numpy(),
            "payment_method": _value(f, mapping, "payment_method", n).astype(object),
            "paperless_billing": _flag(f, mapping, "paperless_billing"),
            "channel_preference": _value(f, mapping, "channel_preference", n).astype(object),
            "senior_citizen": _flag(f, mapping, "senior_citizen"),
            "has_partner": partner,
            "has_dependents": dependents,
            "has_premium_care": _flag(f, mapping, "tech_support"),
            "monthly_charges": monthly,
        }
    )

    # Lines: mobile 1-2 per phone service, one broadband per internet service.
    phone = _flag(f, mapping, "phone_service")
    multi = _flag(f, mapping, "multiple_lines") & phone
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
    mobile_tier = _value(f, mapping, "mobile_plan_tier", n).astype(object)[owner]
    bb_tier = _value(f, mapping, "broadband_plan_tier", n).astype(object)[owner]
    lines = pd.DataFrame(
        {
            "line_id": line_ids,
            "account_id": acc_ids[owner],
            "line_type": np.where(is_mobile, "mobile", "broadband").astype(object),
            "start_date": start.to_numpy()[owner],
            "end_date": end.to_numpy()[owner],
            "plan_tier": np.where(is_mobile, mobile_tier, bb_tier).astype(object),
            "data_cap_gb": np.full(len(owner), np.nan),
            "monthly_price": price.astype(float),
            "broadband_tech": np.where(bb, internet[owner], None).astype(object),
            "device_purchase_date": pd.Series(pd.NaT, index=range(len(owner)), dtype="datetime64[ns]"),
            "has_device_protection": bb & _flag(f, mapping, "device_protection")[owner],
            "has_travel_pack": np.zeros(len(owner), dtype=bool),
            "has_mesh_wifi": np.zeros(len(owner), dtype=bool),
            "has_online_security": bb & _flag(f, mapping, "online_security")[owner],
            "has_streaming": bb & (_flag(f, mapping, "streaming_tv") | _flag(f, mapping, "streaming_movies"))[owner],
        }
    )
    lines["data_cap_gb"] = lines["data_cap_gb"].astype(float)

    # Usage goes on the account's first line (its first mobile line when it has one).
    first = np.full(n, None, dtype=object)
    first_rank0 = rank == 0
    first[owner[first_rank0]] = line_ids[first_rank0]
    usage, skipped = _usage(f, mapping, as_of_ts, first, start.to_numpy(), monthly)
    no_line = int(((n_lines == 0)).sum()) if len(usage) else 0
    tickets = _tickets(f, mapping, as_of_ts, cid, acc_ids, start.to_numpy().astype("datetime64[ns]"))

    tables = {name: empty_table(name) for name in TABLES}
    tables.update(households=households, accounts=accounts, lines=lines, usage_monthly=usage, support_tickets=tickets)
    if attrs:
        tables[attributes.TABLE] = pd.DataFrame({"account_id": acc_ids, **{k: v.to_numpy() if not isinstance(
            v.dtype, pd.CategoricalDtype) else v.array for k, v in attrs.items()}})
    validate_world(tables)
    defaults_used = {
        k: mapping.defaults.get(k, s.default) for k, s in FIELDS.items()
        if k not in mapping.columns and s.role in ("field",) and s.table != "none"
    }
    notes = []
    if row_ids:
        notes.append(f"no id column: accounts are numbered by row, A1..A{n}")
    if skipped:
        notes.append(f"{skipped:,} usage month(s) before the line started were not kept")
    if no_line:
        notes.append(f"{no_line:,} account(s) have no line (no phone, no internet): their usage was not kept")
    meta = {
        "source": f"csv:{mapping.name}",
        "as_of": as_of_ts.strftime("%Y-%m-%d"),
        "mapping": mapping.model_dump(mode="json"),
        "input_file": source_name,
        "columns": accounting,
        "ignored_columns": [a["column"] for a in accounting if a["status"] == "dropped"],
        "ids": "row_numbers" if row_ids else "column",
        "defaults_used": defaults_used,
        "notes": notes,
        "n_customers": int(n),
        "n_churned": int(churn.sum()),
        "churn_rule": (
            f"accounts.end_date = as_of + {mapping.churn_end_offset_days} days for churners: "
            "ended within 90 days after as_of <=> churn"
        ),
        "has_usage": bool(len(usage)),
        # Model features that only carry a default are dropped from training, not fed as zeros.
        "drop_constant_features": True,
    }
    return World(tables=tables, truth={}, meta=meta)


def read_flat_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a flat table (CSV, or Parquet) with every cell as text (blank cells null).

    Raises:
        DataValidationError: The file is empty or unreadable.
        ConfigError: The file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"input file {p} does not exist")
    if p.stat().st_size == 0:
        raise DataValidationError(p.name, [f"file {p} is empty"])
    if p.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise DataValidationError(p.name, [f"cannot read {p} as Parquet: {exc}"]) from None
        # Same footing as CSV: text cells, so one parser checks both.
        return frame.astype(object).where(frame.notna(), None).map(lambda v: v if v is None else str(v))
    return read_csv_text(p, p.name)


def import_flat_csv(
    path: str | os.PathLike[str],
    mapping: FlatMapping | str = "ibm",
    *,
    as_of: str | dt.date | pd.Timestamp | None = None,
) -> World:
    """Read a flat churn table (CSV or Parquet) and map it into a validated world (nothing is written).

    Args:
        path: The file.
        mapping: A :class:`FlatMapping`, a built-in mapping name or a mapping YAML path.
        as_of: Snapshot date; default the mapping's ``as_of`` or 2025-12-01.

    Returns:
        The world; write it with :func:`telco_nbo.data.io.write_world`.

    Raises:
        DataValidationError: The file is empty or has problems (all listed, naming the problem).
        ConfigError: The file or the mapping cannot be read.
    """
    p = Path(path)
    spec = mapping if isinstance(mapping, FlatMapping) else load_mapping(mapping)
    flat = read_flat_file(p)
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
    "read_flat_file",
]
