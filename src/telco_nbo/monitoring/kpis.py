"""Business KPIs beside the model checks, per segment and period.

Inputs are the contract tables and frames: the account feature frame
(``telco_nbo.features.build_account_features``: ``account_id``, ``account_has_<product>`` flags,
segment columns such as ``account_contract_type``), a label frame (``account_id``, the churn
label, optionally ``period``) and the ``contacts`` table of the data contract. Pure functions:
frames in, frames out.
"""

from __future__ import annotations

import pandas as pd

from telco_nbo.errors import DataValidationError

PRODUCTS = ("mobile", "broadband", "tv", "fixed_voice")
"""Line types whose ``account_has_<type>`` flags define an account's product combination."""


def _require(frame: pd.DataFrame, table: str, cols: list[str]) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataValidationError(table, [f"missing columns: {missing}"])


def product_combination(features: pd.DataFrame) -> pd.Series:
    """Product combination of each account, e.g. ``mobile+broadband`` (``none`` when no line).

    Args:
        features: Account feature frame with the ``account_has_<product>`` flags.

    Returns:
        A string series aligned with ``features``.
    """
    flags = [f"account_has_{p}" for p in PRODUCTS]
    _require(features, "account features", flags)
    label = pd.Series("", index=features.index, dtype=object)
    for p in PRODUCTS:
        has = features[f"account_has_{p}"].fillna(False).astype(bool)
        label = label.where(~has, label + "+" + p)
    label = label.str.lstrip("+")
    return label.where(label != "", "none")


def _labeled(features: pd.DataFrame, labels: pd.DataFrame, label: str) -> pd.DataFrame:
    _require(features, "account features", ["account_id"])
    _require(labels, "labels", ["account_id", label])
    keys = ["account_id", "period"] if "period" in labels.columns else ["account_id"]
    dup = labels.duplicated(keys)
    if dup.any():
        raise DataValidationError("labels", [f"duplicate {keys}: e.g. {labels.loc[dup, 'account_id'].head(3).tolist()}"])
    unknown = ~labels["account_id"].isin(features["account_id"])
    if unknown.any():
        raise DataValidationError(
            "labels", [f"{int(unknown.sum())} labels for accounts not in the feature frame, e.g. {labels.loc[unknown, 'account_id'].head(3).tolist()}"]
        )
    bad = set(pd.unique(labels[label].dropna())) - {0, 1, True, False}
    if bad or labels[label].isna().any():
        raise DataValidationError("labels", [f"column '{label}' must be 0/1 with no nulls"])
    merged = labels.merge(features, on="account_id", how="left", suffixes=("", "_feature"))
    merged["period"] = merged["period"].astype(str) if "period" in labels.columns else "all"
    merged[label] = merged[label].astype(int)
    return merged


def churn_by_product_combination(features: pd.DataFrame, labels: pd.DataFrame, label: str = "churned") -> pd.DataFrame:
    """Churn rate per product combination and period.

    Args:
        features: Account feature frame.
        labels: ``account_id``, ``label`` (1 = churned), optional ``period``.
        label: Name of the churn label column.

    Returns:
        Columns ``period, product_combination, accounts, churned, churn_rate``.
    """
    m = _labeled(features, labels, label)
    m["product_combination"] = product_combination(m)
    g = m.groupby(["period", "product_combination"], sort=True)[label].agg(accounts="count", churned="sum").reset_index()
    g["churn_rate"] = g["churned"] / g["accounts"]
    return g


def bundle_retention(features: pd.DataFrame, labels: pd.DataFrame, label: str = "churned") -> pd.DataFrame:
    """Retention of bundled (2+ product types) vs single-service accounts, per period.

    Returns:
        Columns ``period, holding, accounts, retained, retention_rate`` with ``holding`` one of
        ``bundle``, ``single``, ``none``.
    """
    m = _labeled(features, labels, label)
    n_products = sum(m[f"account_has_{p}"].fillna(False).astype(bool).astype(int) for p in PRODUCTS)
    m["holding"] = pd.cut(n_products, [-1, 0, 1, 99], labels=["none", "single", "bundle"]).astype(str)
    m["retained"] = 1 - m[label]
    g = m.groupby(["period", "holding"], sort=True)["retained"].agg(accounts="count", retained="sum").reset_index()
    g["retention_rate"] = g["retained"] / g["accounts"]
    return g


def _contacts_with_segments(contacts: pd.DataFrame, features: pd.DataFrame, segments: list[str]) -> pd.DataFrame:
    _require(contacts, "contacts", ["account_id", "contacted", "contacted_at", "accepted", "accepted_at", "cancelled_at"])
    _require(features, "account features", ["account_id", *segments])
    seg = features[["account_id", *segments]].drop_duplicates("account_id")
    m = contacts.merge(seg, on="account_id", how="left", indicator=True)
    orphans = m["_merge"] == "left_only"
    if orphans.any():
        raise DataValidationError(
            "contacts",
            [f"{int(orphans.sum())} contacts for accounts not in the feature frame, e.g. {m.loc[orphans, 'account_id'].head(3).tolist()}"],
        )
    return m.drop(columns="_merge")


def offer_acceptance(contacts: pd.DataFrame, features: pd.DataFrame, segments: list[str]) -> pd.DataFrame:
    """Offer acceptance rate per segment and month of contact (holdout records excluded).

    Returns:
        Columns ``period, <segments>, contacted, accepted, acceptance_rate``.
    """
    m = _contacts_with_segments(contacts, features, segments)
    m = m[m["contacted"].astype(bool)].copy()
    m["period"] = pd.to_datetime(m["contacted_at"]).dt.to_period("M").astype(str)
    m["accepted"] = m["accepted"].astype(bool).astype(int)
    g = m.groupby(["period", *segments], sort=True)["accepted"].agg(contacted="count", accepted="sum").reset_index()
    g["acceptance_rate"] = g["accepted"] / g["contacted"]
    return g


def early_cancellation(
    contacts: pd.DataFrame, features: pd.DataFrame, segments: list[str], within_days: int = 90
) -> pd.DataFrame:
    """Share of accepted offers cancelled within ``within_days`` of acceptance, per segment and month.

    Returns:
        Columns ``period, <segments>, accepted, cancelled_early, early_cancel_rate`` (period =
        month of acceptance).
    """
    m = _contacts_with_segments(contacts, features, segments)
    m = m[m["accepted"].astype(bool) & m["accepted_at"].notna()].copy()
    acc = pd.to_datetime(m["accepted_at"])
    canc = pd.to_datetime(m["cancelled_at"])
    m["cancelled_early"] = (canc.notna() & ((canc - acc) <= pd.Timedelta(days=within_days))).astype(int)
    m["period"] = acc.dt.to_period("M").astype(str)
    g = (
        m.groupby(["period", *segments], sort=True)["cancelled_early"]
        .agg(accepted="count", cancelled_early="sum")
        .reset_index()
    )
    g["early_cancel_rate"] = g["cancelled_early"] / g["accepted"]
    return g
