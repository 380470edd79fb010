"""Synthetic reference / current windows for the monitoring tests (columns from the feature contract)."""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ["month_to_month", "one_year", "two_year"]
REGIONS = ["urban", "suburban", "rural"]
STAGES = ["new", "early", "growth", "renewal", "at_risk"]
PAYMENTS = ["electronic_check", "mailed_check", "bank_transfer", "credit_card"]

DRIFTED_FEATURES = {"account_monthly_charges", "account_contract_type", "line_data_gb_mean_3m"}


def make_window(n: int, seed: int, *, drift: bool = False, broken_segment: str | None = None) -> pd.DataFrame:
    """An account-grain window with features, a calibrated churn score and labels.

    Args:
        n: Rows.
        seed: RNG seed.
        drift: Inject a price rise (monthly charges +25 %), a contract-mix shift towards
            month-to-month, heavier data use, and a higher-risk score distribution.
        broken_segment: Contract type whose labels no longer follow the score (AUC ~ 0.5).
    """
    rng = np.random.default_rng(seed)
    p_contract = [0.6, 0.25, 0.15] if drift else [0.35, 0.3, 0.35]
    contract = rng.choice(CONTRACTS, n, p=p_contract)
    charges = rng.lognormal(4.0, 0.35, n) * (1.25 if drift else 1.0)
    data_gb = rng.gamma(4.0, 3.0, n) * (1.5 if drift else 1.0)
    logit = rng.normal(-2.0 if drift else -2.4, 1.9, n) + (contract == "month_to_month") * 0.8
    score = 1 / (1 + np.exp(-logit))
    churned = (rng.random(n) < score).astype(int)
    if broken_segment is not None:
        m = contract == broken_segment
        churned[m] = (rng.random(m.sum()) < score[m].mean()).astype(int)
    frame = pd.DataFrame(
        {
            "account_id": [f"A{seed:02d}{i:06d}" for i in range(n)],
            "household_id": [f"H{seed:02d}{i:06d}" for i in range(n)],
            "account_tenure_months": rng.gamma(2.0, 15.0, n),
            "account_monthly_charges": charges,
            "account_bill_mean_3m": rng.lognormal(4.1, 0.3, n),
            "line_data_gb_mean_3m": data_gb,
            "account_open_tickets": rng.poisson(0.3, n),
            "household_n_lines": rng.integers(1, 6, n),
            "account_contract_type": contract,
            "household_region": rng.choice(REGIONS, n, p=[0.5, 0.3, 0.2]),
            "account_payment_method": rng.choice(PAYMENTS, n),
            "account_lifecycle_stage": rng.choice(STAGES, n, p=[0.1, 0.2, 0.4, 0.2, 0.1]),
            "account_paperless_billing": rng.random(n) < 0.6,
            "account_has_mobile": rng.random(n) < 0.85,
            "account_has_broadband": rng.random(n) < 0.5,
            "account_has_tv": rng.random(n) < 0.2,
            "account_has_fixed_voice": rng.random(n) < 0.1,
            "churn_score": score,
            "churned": churned,
        }
    )
    return frame


def make_contact_log(seed: int, *, fade_segment: str | None = None, harmful_segment: str | None = None, n: int = 3000) -> pd.DataFrame:
    """Treated/control log: 3 segments x 2 periods; true retention uplift 0.08 unless faded/harmful in 2024-05."""
    rng = np.random.default_rng(seed)
    parts = []
    for seg in ["young_family", "senior", "single"]:
        for period in ["2024-04", "2024-05"]:
            effect = 0.08
            if period == "2024-05" and seg == fade_segment:
                effect = -0.01
            if period == "2024-05" and seg == harmful_segment:
                effect = -0.10
            treated = rng.integers(0, 2, n)
            churn_p = 0.25 - effect * treated
            parts.append(
                pd.DataFrame(
                    {"segment": seg, "period": period, "treated": treated, "outcome": (rng.random(n) < churn_p).astype(int)}
                )
            )
    return pd.concat(parts, ignore_index=True)


def make_contacts(features: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A contacts table (data contract columns) for a random half of the window's accounts."""
    rng = np.random.default_rng(seed)
    acc = features.sample(frac=0.5, random_state=seed)
    n = len(acc)
    contacted_at = pd.Timestamp("2024-05-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    contacted = rng.random(n) < 0.9
    accepted = contacted & (rng.random(n) < 0.3)
    accepted_at = pd.Series(contacted_at + pd.to_timedelta(rng.integers(0, 5, n), unit="D")).where(accepted)
    cancel_days = rng.integers(1, 200, n)
    cancelled = accepted & (rng.random(n) < 0.4)
    cancelled_at = (accepted_at + pd.to_timedelta(cancel_days, unit="D")).where(cancelled)
    return pd.DataFrame(
        {
            "contact_id": [f"C{i:07d}" for i in range(n)],
            "account_id": acc["account_id"].to_numpy(),
            "household_id": acc["household_id"].to_numpy(),
            "offer_id": "RET-DISC-10",
            "experiment_id": None,
            "arm": None,
            "contacted": contacted,
            "channel": np.where(contacted, "email", None),
            "contacted_at": contacted_at,
            "accepted": accepted,
            "accepted_at": accepted_at.to_numpy(),
            "cancelled_at": cancelled_at.to_numpy(),
        }
    )
