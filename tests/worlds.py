"""Small hand-made worlds for tests (importable: ``from worlds import tiny_world``).

``tiny_world()`` is a valid data folder in memory, small enough to read in one screen: 3 households,
4 accounts (household H0000001 holds two), 6 lines of every type, 6 months of usage for the mobile
lines, 3 tickets (one open), the built-in offer catalog, 1 timing experiment and 5 contacts
(treated, accepted and cancelled, and a holdout record). Every call returns new frames, so a test
may change them freely.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.world import World
from telco_nbo.nbo.catalog import catalog_frame

NaT = pd.NaT
D = pd.Timestamp


def _dates(values: list) -> pd.Series:
    return pd.Series(pd.to_datetime(values), dtype="datetime64[ns]")


def tiny_world() -> World:
    """Return a small valid world (every call builds new frames)."""
    households = pd.DataFrame(
        {
            "household_id": ["H0000001", "H0000002", "H0000003"],
            "region": ["urban", "suburban", "rural"],
            "household_size": [4, 1, 2],
            "fiber_eligible": [True, False, False],
            "fwa_eligible": [True, True, False],
            "created_date": _dates(["2019-03-01", "2021-07-15", "2023-01-10"]),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": ["A0000001", "A0000002", "A0000003", "A0000004"],
            "household_id": ["H0000001", "H0000001", "H0000002", "H0000003"],
            "account_type": ["consumer", "small_business", "consumer", "consumer"],
            "start_date": _dates(["2019-03-01", "2022-05-01", "2021-07-15", "2023-01-10"]),
            "end_date": _dates([NaT, NaT, NaT, "2025-10-20"]),
            "contract_type": ["two_year", "one_year", "month_to_month", "one_year"],
            "contract_end_date": _dates(["2027-03-01", "2026-05-01", NaT, "2026-01-10"]),
            "payment_method": ["credit_card", "bank_transfer", "electronic_check", "mailed_check"],
            "paperless_billing": [True, True, False, False],
            "channel_preference": ["app", "email", "call_center", "sms"],
            "senior_citizen": [False, False, True, False],
            "has_partner": [True, False, False, True],
            "has_dependents": [True, False, False, False],
            "has_premium_care": [False, True, False, False],
            "monthly_charges": [125.5, 45.0, 30.0, 60.25],
        }
    )
    lines = pd.DataFrame(
        {
            "line_id": ["L0000001", "L0000002", "L0000003", "L0000004", "L0000005", "L0000006"],
            "account_id": ["A0000001", "A0000001", "A0000001", "A0000002", "A0000003", "A0000004"],
            "line_type": ["mobile", "mobile", "broadband", "fixed_voice", "mobile", "tv"],
            "start_date": _dates(
                ["2019-03-01", "2020-06-10", "2019-03-01", "2022-05-01", "2025-08-20", "2023-01-10"]
            ),
            "end_date": _dates([NaT, NaT, NaT, NaT, NaT, "2025-10-20"]),
            "plan_tier": ["unlimited", "standard", "premium", "basic", "basic", "standard"],
            "data_cap_gb": [None, 20.0, None, None, 5.0, None],
            "monthly_price": [45.0, 25.0, 55.5, 45.0, 30.0, 60.25],
            "broadband_tech": [None, None, "fiber", None, None, None],
            "device_purchase_date": _dates(["2024-11-02", "2023-02-14", NaT, NaT, "2025-08-20", NaT]),
            "has_device_protection": [True, False, False, False, False, False],
            "has_travel_pack": [False, True, False, False, False, False],
            "has_mesh_wifi": [False, False, True, False, False, False],
            "has_online_security": [False, False, True, False, False, False],
            "has_streaming": [False, False, False, False, False, True],
        }
    )
    months = pd.date_range("2025-06-01", periods=6, freq="MS")
    usage_rows = []
    for line_id, start, cap in [
        ("L0000001", "2019-03-01", None),
        ("L0000002", "2020-06-10", 20.0),
        ("L0000005", "2025-08-20", 5.0),
    ]:
        for k, month in enumerate(months):
            if month < pd.Timestamp(start).replace(day=1):
                continue  # no usage before the line existed
            data = 4.0 + 3.5 * k if cap else 30.0 + k
            over = max(0.0, data - cap) if cap else 0.0
            usage_rows.append(
                {
                    "line_id": line_id,
                    "month": month,
                    "data_gb": data,
                    "overage_gb": over,
                    "voice_minutes": 120.0 + 10 * k,
                    "intl_minutes": 5.0 if line_id == "L0000002" else 0.0,
                    "roaming_days": 3 if (line_id == "L0000002" and k == 1) else 0,
                    "dropped_calls": k % 3,
                    "bill_amount": 25.0 + 2.0 * over,
                }
            )
    usage = pd.DataFrame(usage_rows)
    usage["month"] = usage["month"].astype("datetime64[ns]")
    usage["roaming_days"] = usage["roaming_days"].astype("int64")
    usage["dropped_calls"] = usage["dropped_calls"].astype("int64")

    tickets = pd.DataFrame(
        {
            "ticket_id": ["T0000001", "T0000002", "T0000003"],
            "account_id": ["A0000001", "A0000003", "A0000002"],
            "line_id": ["L0000003", "L0000005", None],
            "category": ["coverage", "billing", "other"],
            "opened_at": _dates(["2025-09-03 10:15", "2025-10-01 09:00", "2025-11-20 16:40"]),
            "resolved_at": _dates(["2025-09-05 12:00", "2025-10-01 09:30", NaT]),
            "is_complaint": [False, True, False],
        }
    )
    offers = catalog_frame()
    experiments = pd.DataFrame(
        {
            "experiment_id": ["EXP_RENEWAL_TIMING"],
            "name": ["Renewal offer timing"],
            "unit": ["household"],
            "start_date": _dates(["2025-09-01"]),
            "end_date": _dates(["2025-11-30"]),
            "control_arm": ["holdout"],
            "arms": ["holdout,early,late"],
            "primary_metric": ["churn_90d"],
            "description": ["Retention offer 90 vs 30 days before contract end, against a holdout."],
        }
    )
    first_offer = offers["offer_id"].iloc[0]
    last_offer = offers["offer_id"].iloc[-1]
    contacts = pd.DataFrame(
        {
            "contact_id": ["C0000001", "C0000002", "C0000003", "C0000004", "C0000005"],
            "account_id": ["A0000001", "A0000002", "A0000003", "A0000004", "A0000001"],
            "household_id": ["H0000001", "H0000001", "H0000002", "H0000003", "H0000001"],
            "offer_id": [first_offer, first_offer, last_offer, first_offer, last_offer],
            "experiment_id": ["EXP_RENEWAL_TIMING", None, "EXP_RENEWAL_TIMING", "EXP_RENEWAL_TIMING", None],
            "arm": ["early", None, "holdout", "late", None],
            "contacted": [True, True, False, True, True],
            "channel": ["app", "email", None, "sms", "call_center"],
            "contacted_at": _dates(
                ["2025-09-10 11:00", "2025-09-12 08:30", "2025-09-10 11:00", "2025-10-01 12:00", "2025-10-15 14:00"]
            ),
            "accepted": [True, False, False, True, False],
            "accepted_at": _dates(["2025-09-11 19:20", NaT, NaT, "2025-10-02 09:00", NaT]),
            "cancelled_at": _dates([NaT, NaT, NaT, "2025-10-15 10:00", NaT]),
            "policy_id": [None, "campaign-need-v1", None, None, "explore-uniform-v1"],
            "propensity": [np.nan, 0.5, np.nan, np.nan, 0.25],
        }
    )
    tables = {
        "households": households,
        "accounts": accounts,
        "lines": lines,
        "usage_monthly": usage,
        "support_tickets": tickets,
        "offers": offers,
        "contacts": contacts,
        "experiments": experiments,
    }
    meta = {"source": "tiny_world", "seed": 0, "as_of": "2025-12-01", "n_households": 3}
    return World(tables=tables, truth={}, meta=meta)
