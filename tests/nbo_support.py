"""Builders for NBO tests: account feature frames straight from the feature contract, and scores.

The frames are drawn with numpy from a seed and a few knobs (so hypothesis can search over the
knobs and shrink them), with households of 1-3 accounts and every decision column of
/tmp/feature_contract.md (``telco_nbo.features.build_account_features``'s output).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.schema import CHANNELS
from telco_nbo.nbo.catalog import Catalog, load_catalog
from telco_nbo.nbo.scores import Scores

STAGES = ("new", "early", "growth", "renewal", "at_risk")


def make_features(
    n: int,
    seed: int = 0,
    *,
    p_issue: float = 0.1,
    p_complaint: float = 0.08,
    p_contacted: float = 0.15,
    p_fiber: float = 0.5,
    p_small_business: float = 0.15,
    p_ended: float = 0.0,
) -> pd.DataFrame:
    """Return ``n`` accounts (in households of 1-3) with the contract's decision and model columns.

    Args:
        n: Number of accounts.
        seed: Random seed.
        p_issue: Share with an open service issue.
        p_complaint: Share with an active complaint.
        p_contacted: Rate of recent contacts (drives the caps).
        p_fiber: Share of fiber-eligible households.
        p_small_business: Share of small-business accounts.
        p_ended: Share of ended accounts (``account_is_active`` False; column added only if > 0).
    """
    rng = np.random.default_rng(seed)
    # Households: consecutive accounts share one, sizes 1-3.
    sizes = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    hh_of = np.repeat(np.arange(n), sizes)[:n]
    n_hh = hh_of.max() + 1
    hh_fiber = rng.random(n_hh) < p_fiber
    hh_fwa = rng.random(n_hh) < 0.4
    hh_size = rng.integers(1, 6, n_hh)
    mobile = rng.random(n) < 0.85
    broadband = rng.random(n) < 0.5
    contract = rng.choice(["month_to_month", "one_year", "two_year"], size=n, p=[0.45, 0.3, 0.25])
    months_to_end = np.where(contract == "month_to_month", np.nan, rng.uniform(0, 24, n))
    contacts = {c: rng.poisson(p_contacted, n) for c in CHANNELS}
    promo = np.minimum(sum(contacts.values()), rng.poisson(p_contacted, n))
    hh_promo = pd.Series(promo).groupby(hh_of).transform("sum").to_numpy()
    issue = rng.random(n) < p_issue
    f = pd.DataFrame({
        "account_id": [f"A{i:07d}" for i in range(n)],
        "household_id": [f"H{h:07d}" for h in hh_of],
        "account_type": np.where(rng.random(n) < p_small_business, "small_business", "consumer"),
        "household_fiber_eligible": hh_fiber[hh_of],
        "household_fwa_eligible": hh_fwa[hh_of],
        "account_has_mobile": mobile,
        "account_has_broadband": broadband,
        "account_has_tv": broadband & (rng.random(n) < 0.4),
        "account_has_fixed_voice": rng.random(n) < 0.2,
        "account_has_capped_mobile": mobile & (rng.random(n) < 0.6),
        "account_has_device_protection": mobile & (rng.random(n) < 0.3),
        "account_has_travel_pack": mobile & (rng.random(n) < 0.1),
        "account_has_mesh_wifi": broadband & (rng.random(n) < 0.15),
        "account_has_online_security": broadband & (rng.random(n) < 0.3),
        "account_has_streaming": rng.random(n) < 0.3,
        "account_has_premium_care": rng.random(n) < 0.1,
        "account_lifecycle_stage": rng.choice(STAGES, size=n, p=[0.1, 0.15, 0.45, 0.15, 0.15]),
        "account_open_tickets": issue.astype(np.int64) + rng.poisson(0.1, n),
        "account_open_service_issue": issue,
        "account_active_complaint": rng.random(n) < p_complaint,
        "account_months_to_contract_end": months_to_end,
        "account_channel_preference": rng.choice(CHANNELS, size=n),
        **{f"account_contacts_{c}_30d": v.astype(np.int64) for c, v in contacts.items()},
        "account_promo_contacts_30d": promo.astype(np.int64),
        "household_promo_contacts_30d": hh_promo.astype(np.int64),
        # A few model features, used by the need signals.
        "household_size": hh_size[hh_of],
        "account_tenure_months": rng.uniform(0, 72, n),
        "account_contract_type": contract,
        "account_n_mobile_lines": np.where(mobile, rng.integers(1, 4, n), 0),
        "account_network_tickets_180d": rng.poisson(0.3, n),
        "account_bill_change_3m": rng.lognormal(0, 0.15, n),
        "line_overage_months_6m": np.where(mobile, rng.integers(0, 7, n), 0),
        "line_data_cap_util_3m": rng.uniform(0, 1.3, n),
        "line_roaming_days_3m": rng.poisson(1.0, n),
        "line_intl_minutes_3m": rng.exponential(30, n),
        "line_dropped_calls_3m": rng.poisson(2, n),
        "line_device_age_months": rng.uniform(0, 36, n),
    })
    if p_ended > 0:
        f["account_is_active"] = rng.random(n) >= p_ended
    return f


def make_scores(features: pd.DataFrame, catalog: Catalog | None = None, seed: int = 1,
                *, ties: bool = False) -> Scores:
    """Return random but valid scores for every account x offer.

    Args:
        features: The feature frame.
        catalog: Catalog (built-in if None).
        seed: Random seed.
        ties: Draw propensities from a coarse grid so expected values tie often.
    """
    catalog = catalog or load_catalog()
    rng = np.random.default_rng(seed)
    ids = features["account_id"].to_numpy()
    offer_ids = [o.offer_id for o in catalog.offers]
    n, m = len(ids), len(offer_ids)
    accounts = pd.DataFrame({
        "account_id": ids,
        "churn_probability": rng.beta(1.5, 8, n),
        "clv": rng.gamma(3, 250, n),
        "retention_uplift": rng.normal(0.02, 0.04, n).clip(-0.2, 0.3),
    })
    prop = rng.choice([0.1, 0.2], size=n * m) if ties else rng.beta(1.2, 8, n * m)
    offers = pd.DataFrame({
        "account_id": np.repeat(ids, m),
        "offer_id": np.tile(offer_ids, n),
        "propensity": prop,
    })
    return Scores(accounts, offers, model_versions={"telco-churn": "1", "telco-propensity": "3"})
