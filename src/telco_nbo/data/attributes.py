"""Account attributes: typed operator columns with no place in the contract, kept as features.

A real extract carries columns the contract has no field for (state, area code, day minutes,
loyalty segment, ...). Rather than dropping their signal, an importer keeps them in the optional
table ``account_attributes``: one row per account, ``account_id`` plus one column ``x_<name>``
per kept column, each either numeric (float64, missing = NaN) or categorical (pandas
``category`` whose categories are the sorted distinct values of the whole table). The features
turn ``x_<name>`` into the account feature ``account_x_<name>``, which every model reads.

Point in time: an attribute has no history, it is taken as it stands in the table (the same
known limit as ``payment_method`` or ``monthly_charges``, see :mod:`telco_nbo.features`).

On disk the table is ``DIR/account_attributes.parquet`` (or ``.csv``); a data folder without it is
a data folder without attributes. ``meta.json`` records each column's type under
:data:`META_KEY` so that a CSV copy loads back with the same types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from telco_nbo.errors import DataValidationError

TABLE = "account_attributes"
"""Name of the optional table (and of its file in a data folder)."""

PREFIX = "x_"
"""Prefix of an attribute column in the table; the feature is ``account_`` + the column name."""

FEATURE_PREFIX = "account_x_"
"""Prefix of the account features made from attributes."""

META_KEY = "account_attributes"
"""``World.meta`` key: attribute column -> ``"numeric"`` or ``"category"``."""

KINDS = ("numeric", "category")


def attribute_name(column: str) -> str:
    """The attribute column name for a source column: ``x_`` + lower-case letters, digits and ``_``.

    Args:
        column: The source column name (any text).

    Returns:
        For example ``x_day_mins`` for ``"Day Mins"``.
    """
    slug = re.sub(r"[^0-9a-z]+", "_", str(column).strip().lower()).strip("_")
    return PREFIX + (slug or "col")


def attribute_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Kind of each attribute column of a (valid) attributes frame, in column order."""
    return {
        c: "category" if isinstance(frame[c].dtype, pd.CategoricalDtype) else "numeric"
        for c in frame.columns
        if c != "account_id"
    }


def make_categorical(values: pd.Series) -> pd.Series:
    """Text values as a ``category`` column with the sorted distinct values as categories."""
    text = values.astype(object).where(values.notna(), None)
    cats = sorted({str(v) for v in text.dropna()})
    return pd.Series(pd.Categorical(text.map(lambda v: None if v is None else str(v)), categories=cats),
                     index=values.index, name=values.name)


def conform(frame: pd.DataFrame, kinds: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Give an attributes frame (e.g. read from CSV) its types: numeric or category per column.

    Args:
        frame: ``account_id`` and ``x_*`` columns.
        kinds: Column -> kind (from ``meta.json``); a column without a kind is numeric when its
            dtype is numeric, else categorical.

    Returns:
        A new frame.

    Raises:
        DataValidationError: A numeric column holds text.
    """
    kinds = dict(kinds or {})
    out: dict[str, pd.Series] = {}
    problems: list[str] = []
    for c in frame.columns:
        s = frame[c]
        if c == "account_id":
            out[c] = s.astype(object)
            continue
        kind = kinds.get(c)
        if kind is None:
            is_num = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
            kind = "numeric" if is_num else "category"
        if kind == "numeric":
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna() & (s.astype(str).str.strip() != "")
            if bad.any():
                rows = np.flatnonzero(bad.to_numpy())[:5].tolist()
                problems.append(f"column '{c}': expected a number, got text in rows {rows}")
            out[c] = num.astype(np.float64)
        else:
            out[c] = make_categorical(s)
    if problems:
        raise DataValidationError(TABLE, problems)
    return pd.DataFrame(out, index=frame.index)


def problems(frame: pd.DataFrame, account_ids: pd.Index | None = None) -> list[str]:
    """Problems of an attributes frame (empty when valid).

    Args:
        frame: The attributes table.
        account_ids: The accounts table's ids, to find attributes of unknown accounts.

    Returns:
        One line per problem, naming the column and example values.
    """
    out: list[str] = []
    if not isinstance(frame, pd.DataFrame):
        return [f"expected a pandas DataFrame, got {type(frame).__name__}"]
    if "account_id" not in frame.columns:
        return ["missing column 'account_id'"]
    ids = frame["account_id"]
    if ids.isna().any():
        out.append(f"blank account_id in rows {np.flatnonzero(ids.isna().to_numpy())[:5].tolist()}")
    dup = ids[ids.duplicated()]
    if len(dup):
        out.append(f"duplicate account_id {dup.astype(str).unique()[:5].tolist()}")
    for c in frame.columns:
        if c == "account_id":
            continue
        if not re.fullmatch(r"x_[0-9a-z_]+", str(c)):
            out.append(f"column '{c}': attribute columns are named x_<lower-case name>")
            continue
        dtype = frame[c].dtype
        if not (isinstance(dtype, pd.CategoricalDtype) or dtype == np.float64):
            out.append(f"column '{c}': expected float64 or category, got {dtype}")
    if account_ids is not None and not ids.isna().any():
        unknown = ~pd.Index(ids).isin(account_ids)
        if unknown.any():
            out.append(f"account_id not in accounts: {ids[unknown].astype(str).unique()[:5].tolist()}")
    return out


def write(frame: pd.DataFrame, path: Path, fmt: str = "parquet") -> None:
    """Write the attributes table (deterministic Parquet, or CSV)."""
    if fmt == "csv":
        frame.to_csv(path, index=False, lineterminator="\n")
        return
    fields = [pa.field("account_id", pa.string(), nullable=False)]
    for c, kind in attribute_kinds(frame).items():
        fields.append(pa.field(c, pa.float64() if kind == "numeric" else pa.dictionary(pa.int32(), pa.string())))
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd", compression_level=3,
                   version="2.6", use_dictionary=True, write_statistics=True, data_page_version="1.0")


def read(folder: Path, kinds: Mapping[str, str] | None = None) -> pd.DataFrame | None:
    """Read ``account_attributes`` from a data folder, or None when the folder has none.

    Raises:
        DataValidationError: The file cannot be read, or a numeric column holds text.
    """
    pq_path, csv_path = folder / f"{TABLE}.parquet", folder / f"{TABLE}.csv"
    if pq_path.exists():
        try:
            frame = pq.read_table(pq_path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise DataValidationError(TABLE, [f"cannot read {pq_path}: {exc}"]) from None
        return conform(frame, kinds)
    if csv_path.exists():
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_values=[""])
        return conform(frame, kinds)
    return None


def to_features(attributes: pd.DataFrame | None, account_ids: np.ndarray) -> dict[str, Any]:
    """Attribute columns as account features ``account_x_<name>``, aligned to ``account_ids``.

    Accounts without a row get NaN / a missing category.
    """
    if attributes is None or len(attributes.columns) <= 1:
        return {}
    pos = pd.Index(attributes["account_id"].to_numpy()).get_indexer(np.asarray(account_ids, dtype=object))
    have = pos >= 0
    out: dict[str, Any] = {}
    for c in attributes.columns:
        if c == "account_id":
            continue
        s = attributes[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = np.where(have, s.cat.codes.to_numpy()[np.maximum(pos, 0)] if len(s) else -1, -1)
            out["account_" + c] = pd.Categorical.from_codes(codes, categories=s.cat.categories)
        else:
            vals = s.to_numpy(dtype=np.float64)
            out["account_" + c] = np.where(have, vals[np.maximum(pos, 0)] if len(vals) else np.nan, np.nan)
    return out


__all__ = [
    "FEATURE_PREFIX",
    "KINDS",
    "META_KEY",
    "PREFIX",
    "TABLE",
    "attribute_kinds",
    "attribute_name",
    "conform",
    "make_categorical",
    "problems",
    "read",
    "to_features",
    "write",
]
