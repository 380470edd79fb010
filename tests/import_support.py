"""Helpers of the import tests: flatten a world the way an operator's one-row-per-customer export looks.

The flat table is built from the raw tables with pandas (not from telco_nbo.features), as an
operator's warehouse query would: one row per account active at as_of, usage of the last three
finished months aggregated into columns, ticket counts, plans, household attributes, and a churn
flag for the next 90 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACT_WORDS = {"month_to_month": "Month-to-month", "one_year": "One year", "two_year": "Two year"}
YES_NO = {True: "Yes", False: "No"}


def flatten_world(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, horizon_days: int = 90) -> pd.DataFrame:
    """One row per account active at ``as_of`` with operator-style columns and ``churn`` Yes/No."""
    acc = tables["accounts"]
    active = (acc["start_date"] <= as_of) & (acc["end_date"].isna() | (acc["end_date"] > as_of))
    acc = acc.loc[active].sort_values("account_id").reset_index(drop=True)
    ids = acc["account_id"]
    lines = tables["lines"]
    lines = lines.loc[(lines["start_date"] <= as_of) & (lines["end_date"].isna() | (lines["end_date"] > as_of))]
    mobile = lines.loc[lines["line_type"] == "mobile"]
    bb = lines.loc[lines["line_type"] == "broadband"].drop_duplicates("account_id").set_index("account_id")
    by_line = lines.groupby("account_id")
    tier_rank = {"basic": 0, "standard": 1, "premium": 2, "unlimited": 3}
    plan = lines.assign(r=lines["plan_tier"].map(tier_rank)).groupby("account_id")["r"].max()
    rank_tier = {v: k for k, v in tier_rank.items()}

    # Usage of the last three finished months, over the account's lines.
    cutoff = (as_of + pd.Timedelta(days=1)).to_period("M").to_timestamp()
    u = tables["usage_monthly"]
    u = u.loc[(u["month"] < cutoff) & (u["month"] >= cutoff - pd.DateOffset(months=3))]
    u = u.merge(tables["lines"][["line_id", "account_id"]], on="line_id")
    per_month = u.groupby(["account_id", "month"]).agg(
        bill=("bill_amount", "sum"), data=("data_gb", "sum"), overage=("overage_gb", "sum"))
    usage = u.groupby("account_id").agg(
        voice=("voice_minutes", "sum"), intl=("intl_minutes", "sum"), roaming=("roaming_days", "max"),
        dropped=("dropped_calls", "sum"))
    usage["bill_avg"] = per_month["bill"].groupby(level=0).mean()
    usage["data_avg"] = per_month["data"].groupby(level=0).mean()
    usage["overage_months"] = (per_month["overage"] > 0).groupby(level=0).sum()

    tk = tables["support_tickets"]
    tk = tk.loc[tk["opened_at"] <= as_of]
    recent = tk["opened_at"] > as_of - pd.Timedelta(days=90)
    half = tk["opened_at"] > as_of - pd.Timedelta(days=180)
    is_open = tk["resolved_at"].isna() | (tk["resolved_at"] > as_of)

    def count(mask: pd.Series) -> pd.Series:
        return tk.loc[mask].groupby("account_id").size().reindex(ids).fillna(0).astype(int).to_numpy()

    ct = tables["contacts"]
    ct = ct.loc[ct["contacted"] & (ct["contacted_at"] <= as_of)]
    contacts_90d = ct.loc[ct["contacted_at"] > as_of - pd.Timedelta(days=90)].groupby("account_id").size()
    hh = tables["households"].set_index("household_id")
    end = acc["end_date"]
    churn = end.notna() & (end > as_of) & (end <= as_of + pd.Timedelta(days=horizon_days))
    to_end = (acc["contract_end_date"] - as_of).dt.days / 30.4375
    device = mobile.groupby("account_id")["device_purchase_date"].max()
    device_age = ((as_of - device).dt.days / 30.4375).where(device <= as_of)

    def flag(frame: pd.DataFrame, col: str) -> np.ndarray:
        return frame.groupby("account_id")[col].any().reindex(ids).fillna(False).astype(bool).map(YES_NO).to_numpy()

    def col(frame: pd.DataFrame, name: str, fill: float = np.nan) -> np.ndarray:
        return frame[name].reindex(ids).fillna(fill).to_numpy()

    n_mobile = mobile.groupby("account_id").size().reindex(ids).fillna(0).astype(int)
    return pd.DataFrame({
        "customer_id": ids.str[1:].to_numpy(),
        "tenure_months": ((as_of - acc["start_date"]).dt.days // 30.4375).astype(int).to_numpy(),
        "contract": acc["contract_type"].map(CONTRACT_WORDS).to_numpy(),
        "contract_months_left": to_end.round(2).to_numpy(),
        "payment_method": acc["payment_method"].to_numpy(),
        "paperless_billing": acc["paperless_billing"].map(YES_NO).to_numpy(),
        "senior_citizen": acc["senior_citizen"].map(YES_NO).to_numpy(),
        "partner": acc["has_partner"].map(YES_NO).to_numpy(),
        "dependents": acc["has_dependents"].map(YES_NO).to_numpy(),
        "tech_support": acc["has_premium_care"].map(YES_NO).to_numpy(),
        "account_segment": acc["account_type"].to_numpy(),
        "monthly_charges": acc["monthly_charges"].round(2).to_numpy(),
        "phone_service": (n_mobile > 0).map(YES_NO).to_numpy(),
        "multiple_lines": (n_mobile > 1).map(YES_NO).to_numpy(),
        "mobile_lines": n_mobile.to_numpy(),
        "internet_service": bb["broadband_tech"].reindex(ids).fillna("No").to_numpy(),
        "online_security": flag(lines, "has_online_security"),
        "device_protection": flag(lines, "has_device_protection"),
        "streaming_tv": flag(lines, "has_streaming"),
        "travel_pack": flag(lines, "has_travel_pack"),
        "mesh_wifi": flag(lines, "has_mesh_wifi"),
        "lines_total": by_line.size().reindex(ids).fillna(0).astype(int).to_numpy(),
        "plan": plan.reindex(ids).map(rank_tier).fillna("none").to_numpy(),
        "data_cap_gb": mobile.groupby("account_id")["data_cap_gb"].min().reindex(ids).to_numpy(),
        "device_age_months": device_age.reindex(ids).round(1).to_numpy(),
        "data_gb_3m_avg": col(usage, "data_avg"),
        "voice_min_3m": col(usage, "voice"),
        "intl_minutes_3m": col(usage, "intl", 0.0),
        "roaming_days_3m": col(usage, "roaming", 0.0),
        "dropped_calls_3m": col(usage, "dropped", 0.0),
        "avg_bill_3m": col(usage, "bill_avg"),
        "overage_months_3m": col(usage, "overage_months", 0.0),
        "support_calls_90d": count(recent),
        "complaints_180d": count(half & tk["is_complaint"]),
        "network_tickets_180d": count(half & tk["category"].isin(["network", "coverage"])),
        "billing_tickets_180d": count(half & (tk["category"] == "billing")),
        "open_tickets": count(is_open),
        "region": hh["region"].reindex(acc["household_id"]).to_numpy(),
        "household_size": hh["household_size"].reindex(acc["household_id"]).to_numpy(),
        "fiber_available": hh["fiber_eligible"].reindex(acc["household_id"]).map(YES_NO).to_numpy(),
        "fwa_available": hh["fwa_eligible"].reindex(acc["household_id"]).map(YES_NO).to_numpy(),
        "accounts_in_household": acc.groupby("household_id")["account_id"].transform("size").to_numpy(),
        "contacts_90d": contacts_90d.reindex(ids).fillna(0).astype(int).to_numpy(),
        "churn": churn.map(YES_NO).to_numpy(),
    })


def to_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a CSV reader gives it: text cells, blanks null."""
    return frame.astype(object).where(frame.notna(), None).map(lambda v: v if v is None else str(v))
