"""Checking and preparing a monitoring window against its reference.

A *reference* is the training feature frame saved with the champion model (plus the scores the
model gave it); a *current* window is a scoring batch or a slice of the prediction log. Before any
statistic is computed the current window must carry every feature the reference has, with a
compatible type: a silently missing or mistyped column would otherwise show up as "no drift"
(nothing to compare) or as a spurious 100 % drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from telco_nbo.errors import DataValidationError


@dataclass(frozen=True)
class ColumnKinds:
    """Which monitored columns are numeric and which categorical (booleans count as categorical)."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Every monitored column, numeric first."""
        return self.numerical + self.categorical


def _kind(series: pd.Series) -> str | None:
    if ptypes.is_bool_dtype(series):
        return "categorical"
    if ptypes.is_numeric_dtype(series):
        return "numerical"
    if isinstance(series.dtype, pd.CategoricalDtype) or ptypes.is_object_dtype(series) or ptypes.is_string_dtype(
        series
    ):
        return "categorical"
    return None  # datetimes, timedeltas, intervals: not monitored as features


def infer_column_kinds(reference: pd.DataFrame, columns: list[str] | None = None, exclude: list[str] = ()) -> ColumnKinds:
    """Split the reference's columns into numeric and categorical.

    Args:
        reference: The reference frame.
        columns: Columns to consider (default: all of the reference).
        exclude: Columns never monitored (ids, scores handled elsewhere).

    Returns:
        The split; datetime-like columns are left out.
    """
    cols = [c for c in (columns if columns is not None else reference.columns) if c not in set(exclude)]
    num, cat = [], []
    for c in cols:
        if reference[c].isna().all():
            continue  # nothing to compare against
        kind = _kind(reference[c])
        if kind == "numerical":
            num.append(c)
        elif kind == "categorical":
            cat.append(c)
    return ColumnKinds(tuple(num), tuple(cat))


def validate_window(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    kinds: ColumnKinds,
    *,
    table: str = "current window",
) -> None:
    """Check that ``current`` can be compared with ``reference`` on ``kinds``.

    Args:
        current: The current window.
        reference: The reference frame.
        kinds: The monitored columns.
        table: Name used in the error.

    Raises:
        DataValidationError: Empty window, missing columns, or a column whose type does not match
            the reference (e.g. text in a numeric feature), each named.
    """
    problems: list[str] = []
    if len(reference) == 0:
        raise DataValidationError("reference", ["the reference frame is empty"])
    if len(current) == 0:
        raise DataValidationError(table, ["the window is empty (0 rows)"])
    if current.columns.duplicated().any():
        dups = sorted(set(current.columns[current.columns.duplicated()]))
        problems.append(f"duplicate columns: {dups}")
    missing = [c for c in kinds.all if c not in current.columns]
    if missing:
        problems.append(f"missing feature columns: {missing}")
    for c in kinds.numerical:
        if c in current.columns and not (
            ptypes.is_numeric_dtype(current[c]) and not ptypes.is_bool_dtype(current[c])
        ):
            # Booleans are numeric to numpy but mean something else; strings never are.
            problems.append(f"column '{c}' must be numeric like the reference, got dtype {current[c].dtype}")
    for c in kinds.categorical:
        if c not in current.columns:
            continue
        ref_bool = ptypes.is_bool_dtype(reference[c])
        cur = current[c]
        if ref_bool and not ptypes.is_bool_dtype(cur):
            vals = set(pd.unique(cur.dropna()))
            if not vals <= {True, False, 0, 1}:
                problems.append(f"column '{c}' must be boolean like the reference, got dtype {cur.dtype}")
        elif not ref_bool and ptypes.is_float_dtype(cur):
            problems.append(f"column '{c}' must be categorical (text) like the reference, got dtype {cur.dtype}")
    for c in kinds.all:
        if c in current.columns and current[c].isna().all() and not reference[c].isna().all():
            problems.append(f"column '{c}' is entirely null in the window (not in the reference)")
    if problems:
        raise DataValidationError(table, problems)


def deterministic_sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Return at most ``max_rows`` rows, the same ones every time for the same frame and seed.

    Rows keep their original order (a sorted index draw), so the sample of a time-ordered log
    still reads in time order.

    Args:
        frame: Any frame.
        max_rows: Row cap.
        seed: Seed of the draw.

    Returns:
        ``frame`` itself when small enough, else a new frame with a fresh RangeIndex.
    """
    if len(frame) <= max_rows:
        return frame
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[idx].reset_index(drop=True)


def harmonize(frame: pd.DataFrame, kinds: ColumnKinds) -> pd.DataFrame:
    """Project ``frame`` on the monitored columns with one dtype per kind.

    Numerics become float64 (nullable integers would otherwise trip the library's histograms);
    categoricals become strings with nulls kept as nulls, so ``True`` in one window and ``1`` in
    the other are the same category.

    Args:
        frame: A validated window or the reference.
        kinds: The monitored columns.

    Returns:
        A new frame with exactly ``kinds.all`` columns.
    """
    out = {}
    for c in kinds.numerical:
        out[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    for c in kinds.categorical:
        s = frame[c]
        if ptypes.is_bool_dtype(s) or set(pd.unique(s.dropna())) <= {True, False}:
            s = s.map({True: "true", False: "false", 1: "true", 0: "false"})
        else:
            # Vectorized str cast; nulls put back so they stay missing values, not the text "nan".
            s = s.astype(str).where(s.notna(), None)
        out[c] = s
    return pd.DataFrame(out, index=frame.index)
