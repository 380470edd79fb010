"""Model scores the ranking consumes, independent of how the models were loaded.

The ranking never loads a model itself: it takes a :class:`Scores` value (per-account churn
probability, CLV and retention uplift; per account x offer acceptance propensity; optional reason
codes; the model versions that produced them). A :class:`ScoreProvider` turns a feature frame into
``Scores``: the MLflow-backed provider (champion models) is one; tests pass explicit frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.nbo.catalog import Catalog

ACCOUNT_SCORE_COLUMNS = ("account_id", "churn_probability", "clv", "retention_uplift")
OFFER_SCORE_COLUMNS = ("account_id", "offer_id", "propensity")
REASON_COLUMNS = ("account_id", "reason")


@dataclass(frozen=True)
class Scores:
    """Scores for a batch of accounts.

    Attributes:
        accounts: One row per account: ``account_id``, ``churn_probability`` (within the churn
            window, in [0, 1]), ``clv`` (value of keeping the account, currency), ``retention_uplift``
            (drop in churn probability a retention contact causes, in [-1, 1]; negative for
            "sleeping dogs") and optionally ``retention_uplift_se`` (its standard error, >= 0).
        offers: One row per scored account x offer: ``account_id``, ``offer_id``, ``propensity``
            (P(accept | contacted), in [0, 1]) and optionally ``uplift`` (per-offer drop in churn
            probability; NaN -> the account's ``retention_uplift`` for uplift kinds, else 0) and
            ``uplift_se`` (its standard error, >= 0; NaN: unknown). Pairs that the rules remove
            may be absent.
        reasons: Optional reason codes (e.g. SHAP): ``account_id``, ``reason`` and optionally
            ``offer_id`` (null -> applies to every offer of the account); row order is importance.
        model_versions: Model name -> version (or URI) that produced the scores.
    """

    accounts: pd.DataFrame
    offers: pd.DataFrame
    reasons: pd.DataFrame | None = None
    model_versions: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class ScoreProvider(Protocol):
    """Anything that scores a feature frame for a catalog (e.g. the champion models in MLflow)."""

    def score(self, features: pd.DataFrame, catalog: Catalog) -> Scores:
        """Return scores for every account of ``features`` and every offer of ``catalog``."""
        ...


@dataclass(frozen=True)
class AlignedScores:
    """Scores as arrays aligned to the feature rows and the catalog order.

    Attributes:
        churn: ``(n,)`` churn probability.
        clv: ``(n,)`` CLV.
        retention_uplift: ``(n,)`` account-level uplift.
        propensity: ``(n, m)``; NaN where a pair was not scored.
        offer_uplift: ``(n, m)``; NaN where not given.
        reasons: account index -> list of (offer_id or None, reason) in importance order.
        model_versions: As given.
        retention_uplift_se: ``(n,)`` standard error of ``retention_uplift``; NaN (or ``None``)
            where unknown, which a lower-confidence-bound decision treats as 0.
        offer_uplift_se: ``(n, m)`` standard error of ``offer_uplift`` (same convention).
    """

    churn: np.ndarray
    clv: np.ndarray
    retention_uplift: np.ndarray
    propensity: np.ndarray
    offer_uplift: np.ndarray
    reasons: dict[int, list[tuple[str | None, str]]]
    model_versions: dict[str, str]
    retention_uplift_se: np.ndarray | None = None
    offer_uplift_se: np.ndarray | None = None


def _need_columns(frame: object, table: str, cols: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(table, [f"expected a pandas DataFrame, got {type(frame).__name__}"])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataValidationError(table, [f"missing columns: {missing}"])
    return frame


def _numeric(frame: pd.DataFrame, table: str, col: str, lo: float | None, hi: float | None,
             allow_nan: bool = False) -> list[str]:
    s = frame[col]
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return [f"column '{col}' must be numeric, got dtype {s.dtype}"]
    v = s.to_numpy(dtype=float)
    problems = []
    nan = np.isnan(v)
    if nan.any() and not allow_nan:
        problems.append(f"column '{col}' has NaN in rows {list(frame.index[nan][:5])}")
    with np.errstate(invalid="ignore"):
        out = ((v < lo) if lo is not None else np.zeros_like(nan)) | ((v > hi) if hi is not None else np.zeros_like(nan))
        out |= np.isinf(v)
    if out.any():
        problems.append(f"column '{col}' outside [{lo}, {hi}] in rows {list(frame.index[out][:5])}")
    return problems


def align_scores(scores: Scores, account_ids: np.ndarray, offer_ids: np.ndarray) -> AlignedScores:
    """Validate scores and align them to the feature rows and catalog order.

    Args:
        scores: The scores.
        account_ids: Account ids in feature-row order (unique).
        offer_ids: Offer ids in catalog order.

    Returns:
        Aligned arrays.

    Raises:
        DataValidationError: Missing columns, out-of-range or NaN scores, duplicate rows, accounts
            without scores, scores for unknown accounts or offers.
    """
    acc = _need_columns(scores.accounts, "scores.accounts", ACCOUNT_SCORE_COLUMNS)
    off = _need_columns(scores.offers, "scores.offers", OFFER_SCORE_COLUMNS)
    problems: list[str] = []
    problems += _numeric(acc, "scores.accounts", "churn_probability", 0.0, 1.0)
    problems += _numeric(acc, "scores.accounts", "clv", None, None)
    problems += _numeric(acc, "scores.accounts", "retention_uplift", -1.0, 1.0)
    if "retention_uplift_se" in acc.columns:
        problems += _numeric(acc, "scores.accounts", "retention_uplift_se", 0.0, None, allow_nan=True)
    dup = acc["account_id"].duplicated(keep=False)
    if dup.any():
        problems.append(f"duplicate account_id: {sorted(acc.loc[dup, 'account_id'].unique())[:5]}")
    known = pd.Index(account_ids)
    unknown = ~acc["account_id"].isin(known)
    if unknown.any():
        problems.append(f"scores for accounts not in the feature frame: {list(acc.loc[unknown, 'account_id'][:5])}")
    missing = ~known.isin(acc["account_id"])
    if missing.any():
        problems.append(f"no scores for accounts: {list(known[missing][:5])}")
    if problems:
        raise DataValidationError("scores.accounts", problems)

    problems = _numeric(off, "scores.offers", "propensity", 0.0, 1.0)
    has_uplift = "uplift" in off.columns
    if has_uplift:
        problems += _numeric(off, "scores.offers", "uplift", -1.0, 1.0, allow_nan=True)
    if "uplift_se" in off.columns:
        problems += _numeric(off, "scores.offers", "uplift_se", 0.0, None, allow_nan=True)
    dup = off.duplicated(["account_id", "offer_id"], keep=False)
    if dup.any():
        problems.append(
            f"duplicate account x offer rows: {list(map(tuple, off.loc[dup, ['account_id', 'offer_id']].head(5).to_numpy()))}"
        )
    unknown_acc = ~off["account_id"].isin(known)
    if unknown_acc.any():
        problems.append(f"scores for accounts not in the feature frame: {list(off.loc[unknown_acc, 'account_id'][:5])}")
    catalog_ids = pd.Index(offer_ids)
    unknown_off = ~off["offer_id"].isin(catalog_ids)
    if unknown_off.any():
        problems.append(f"unknown offer_id: {sorted(off.loc[unknown_off, 'offer_id'].astype(str).unique())[:5]}; "
                        f"catalog: {list(offer_ids)}")
    if problems:
        raise DataValidationError("scores.offers", problems)

    acc_pos = pd.Series(np.arange(len(known)), index=known)
    acc_row = acc_pos.reindex(acc["account_id"]).to_numpy()
    churn = np.empty(len(known)); clv = np.empty(len(known)); upl = np.empty(len(known))
    churn[acc_row] = acc["churn_probability"].to_numpy(dtype=float)
    clv[acc_row] = acc["clv"].to_numpy(dtype=float)
    upl[acc_row] = acc["retention_uplift"].to_numpy(dtype=float)
    upl_se = None
    if "retention_uplift_se" in acc.columns:
        upl_se = np.full(len(known), np.nan)
        upl_se[acc_row] = pd.to_numeric(acc["retention_uplift_se"], errors="coerce").to_numpy(dtype=float)

    n, m = len(known), len(catalog_ids)
    i = acc_pos.reindex(off["account_id"]).to_numpy()
    j = pd.Series(np.arange(m), index=catalog_ids).reindex(off["offer_id"]).to_numpy()
    prop = np.full((n, m), np.nan)
    prop[i, j] = off["propensity"].to_numpy(dtype=float)
    ou = np.full((n, m), np.nan)
    if has_uplift:
        ou[i, j] = off["uplift"].to_numpy(dtype=float)
    ou_se = None
    if "uplift_se" in off.columns:
        ou_se = np.full((n, m), np.nan)
        ou_se[i, j] = pd.to_numeric(off["uplift_se"], errors="coerce").to_numpy(dtype=float)

    reasons: dict[int, list[tuple[str | None, str]]] = {}
    if scores.reasons is not None and len(scores.reasons):
        rs = _need_columns(scores.reasons, "scores.reasons", REASON_COLUMNS)
        bad = ~rs["account_id"].isin(known)
        if bad.any():
            raise DataValidationError("scores.reasons", [f"reasons for unknown accounts: {list(rs.loc[bad, 'account_id'][:5])}"])
        offer_col = rs["offer_id"] if "offer_id" in rs.columns else pd.Series([None] * len(rs), index=rs.index)
        bad_off = offer_col.notna() & ~offer_col.isin(catalog_ids)
        if bad_off.any():
            raise DataValidationError("scores.reasons", [f"unknown offer_id: {sorted(offer_col[bad_off].unique())[:5]}"])
        for a, o, r in zip(acc_pos.reindex(rs["account_id"]).to_numpy(), offer_col.to_numpy(),
                           rs["reason"].astype(str).to_numpy(), strict=True):
            reasons.setdefault(int(a), []).append((None if pd.isna(o) else str(o), r))
    return AlignedScores(churn, clv, upl, prop, ou, reasons, {str(k): str(v) for k, v in scores.model_versions.items()},
                         upl_se, ou_se)
