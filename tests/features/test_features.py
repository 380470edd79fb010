"""Point-in-time features: exact values on a hand-built world, labels, and train/serve parity.

The tiny world below is built by hand so every expected number can be checked with a pencil;
``as_of`` is 2024-06-15, so the last visible usage month is May 2024 (June is not over yet).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from telco_nbo import contract
from telco_nbo import features as F
from telco_nbo.data.schema import SCHEMAS, TABLES
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.catalog import catalog_frame
from telco_nbo.nbo.rules import REQUIRED_COLUMNS

AS_OF = pd.Timestamp("2024-06-15")
D = pd.Timestamp
NaT = pd.NaT


def _frame(table: str, rows: list[dict], validate: bool = False) -> pd.DataFrame:
    """Rows -> a frame with the schema's columns and dtypes (missing nullable fields -> null)."""
    schema = SCHEMAS[table]
    data = {}
    for name, col in schema.columns.items():
        values = [r.get(name) for r in rows]
        dtype = str(col.dtype)
        if dtype.startswith("datetime64"):
            data[name] = pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[ns]")
        elif dtype == "str":
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = pd.Series(values).astype(dtype)
    frame = pd.DataFrame(data)
    return schema.validate(frame) if validate else frame


def _acct(aid, hid, start, *, end=None, contract="month_to_month", contract_end=None, atype="consumer", **kw):
    return {
        "account_id": aid, "household_id": hid, "account_type": atype, "start_date": start, "end_date": end,
        "contract_type": contract, "contract_end_date": contract_end, "payment_method": kw.get("pay", "credit_card"),
        "paperless_billing": True, "channel_preference": kw.get("channel", "app"), "senior_citizen": False,
        "has_partner": True, "has_dependents": False, "has_premium_care": kw.get("premium", False),
        "monthly_charges": kw.get("charges", 50.0),
    }


def _line(lid, aid, ltype, start, *, end=None, tier="standard", cap=None, device=None, tech=None, **flags):
    return {
        "line_id": lid, "account_id": aid, "line_type": ltype, "start_date": start, "end_date": end,
        "plan_tier": tier, "data_cap_gb": cap, "monthly_price": 20.0, "broadband_tech": tech,
        "device_purchase_date": device,
        **{f: flags.get(f, False) for f in F.LINE_FLAGS},
    }


def _use(lid, month, *, gb=1.0, over=0.0, intl=0.0, roam=0, dropped=0, bill=10.0):
    return {
        "line_id": lid, "month": month, "data_gb": gb, "overage_gb": over, "voice_minutes": 100.0,
        "intl_minutes": intl, "roaming_days": roam, "dropped_calls": dropped, "bill_amount": bill,
    }


def _ticket(tid, aid, cat, opened, resolved=None, complaint=False):
    return {
        "ticket_id": tid, "account_id": aid, "line_id": None, "category": cat, "opened_at": opened,
        "resolved_at": resolved, "is_complaint": complaint,
    }


def _contact(cid, aid, hid, offer, at, *, channel="app", contacted=True, accepted_at=None):
    return {
        "contact_id": cid, "account_id": aid, "household_id": hid, "offer_id": offer, "experiment_id": None,
        "arm": None, "contacted": contacted, "channel": channel if contacted else None, "contacted_at": at,
        "accepted": accepted_at is not None, "accepted_at": accepted_at, "cancelled_at": None,
    }


def tiny_world() -> dict[str, pd.DataFrame]:
    """Three households, eight accounts (six active at AS_OF), eleven lines."""
    households = _frame("households", [
        {"household_id": "H1", "region": "urban", "household_size": 3, "fiber_eligible": True,
         "fwa_eligible": False, "created_date": D("2020-01-01")},
        {"household_id": "H2", "region": "rural", "household_size": 1, "fiber_eligible": False,
         "fwa_eligible": True, "created_date": D("2023-10-01")},
        {"household_id": "H3", "region": "suburban", "household_size": 2, "fiber_eligible": False,
         "fwa_eligible": False, "created_date": D("2015-01-01")},
    ])
    accounts = _frame("accounts", [
        # at_risk (2 overage months of 3) although also in the renewal window: at_risk wins.
        _acct("A1", "H1", D("2020-01-01"), contract="two_year", contract_end=D("2024-08-01"), channel="sms"),
        # renewal: one-year contract ends in 78 days; its open ticket is only 5 days old.
        _acct("A2", "H1", D("2022-01-01"), contract="one_year", contract_end=D("2024-09-01"), atype="small_business",
              pay="bank_transfer", premium=True),
        # new (75 days) although it has an open complaint: new wins.
        _acct("A3", "H2", D("2024-04-01"), contract="one_year", contract_end=D("2025-04-01")),
        # early (258 days), month to month.
        _acct("A4", "H2", D("2023-10-01")),
        # ended before AS_OF: not active.
        _acct("A5", "H3", D("2018-01-01"), end=D("2024-01-10")),
        # at_risk (network ticket open since May 1); churns on July 1 (label 1 at 90 days).
        _acct("A6", "H3", D("2018-01-01"), end=D("2024-07-01")),
        # growth; ends 108 days after AS_OF (label 0 at 90 days, 1 at 120 days).
        _acct("A7", "H3", D("2015-01-01"), end=D("2024-10-01"), contract="one_year", contract_end=D("2025-03-01")),
        # starts after AS_OF: does not exist yet.
        _acct("A8", "H1", D("2024-07-01")),
    ])
    lines = _frame("lines", [
        _line("L01", "A1", "mobile", D("2020-01-01"), cap=10.0, device=D("2023-06-15"), has_device_protection=True),
        _line("L02", "A1", "mobile", D("2021-01-01"), tier="basic", cap=5.0, device=D("2024-01-15")),
        _line("L03", "A1", "broadband", D("2020-01-01"), tier="premium", tech="fiber", has_mesh_wifi=True),
        _line("L04", "A1", "mobile", D("2024-07-10"), tier="unlimited", device=D("2024-07-10")),
        _line("L05", "A1", "mobile", D("2020-01-01"), end=D("2024-02-01"), cap=2.0, device=D("2020-01-01")),
        _line("L06", "A2", "fixed_voice", D("2022-01-01"), tier="basic"),
        _line("L07", "A3", "mobile", D("2024-04-01"), tier="unlimited", device=D("2024-04-01"),
              has_device_protection=True),
        _line("L08", "A4", "mobile", D("2023-10-01"), tier="premium", cap=50.0, device=D("2024-08-01")),
        _line("L09", "A6", "broadband", D("2018-01-01"), tech="dsl"),
        _line("L10", "A7", "tv", D("2015-01-01"), has_streaming=True),
        _line("L11", "A5", "mobile", D("2018-01-01"), end=D("2024-01-10"), cap=5.0, device=D("2018-01-01")),
    ])
    usage_rows = []
    months = pd.date_range("2023-12-01", "2024-06-01", freq="MS")
    for m in months:
        key = m.strftime("%Y-%m")
        l01 = {"2024-03": dict(gb=12.0, over=2.0, bill=40.0), "2024-04": dict(gb=9.0, roam=3, bill=30.0),
               "2024-05": dict(gb=13.0, over=3.0, bill=45.0), "2024-01": dict(gb=8.0, over=1.0, roam=2, bill=30.0),
               "2024-06": dict(gb=99.0, over=89.0, roam=20, bill=500.0)}.get(key, dict(gb=8.0, bill=30.0))
        usage_rows.append(_use("L01", m, intl=10.0, dropped=1, **l01))
        l02 = {"2024-03": dict(gb=4.0), "2024-04": dict(gb=5.0), "2024-05": dict(gb=6.0, over=1.0, roam=5, bill=25.0)}
        usage_rows.append(_use("L02", m, **{"bill": 20.0, "gb": 3.0, **l02.get(key, {})}))
        usage_rows.append(_use("L03", m, gb=300.0, bill=50.0, dropped=2 if key == "2024-04" else 0))
        if key in ("2023-12", "2024-01"):
            usage_rows.append(_use("L05", m, gb=1.0, bill=15.0))
        if m >= D("2024-04-01"):
            usage_rows.append(_use("L07", m, gb=20.0, bill=60.0))
        usage_rows.append(_use("L08", m, gb=40.0, bill=35.0))
    usage = _frame("usage_monthly", usage_rows)
    tickets = _frame("support_tickets", [
        _ticket("T1", "A1", "billing", D("2024-06-10"), D("2024-06-12")),
        _ticket("T2", "A3", "billing", D("2024-06-01"), None, complaint=True),
        _ticket("T3", "A6", "network", D("2024-05-01"), None),
        _ticket("T4", "A2", "coverage", D("2024-06-10"), D("2024-06-20")),  # resolved after AS_OF: open
        _ticket("T5", "A7", "other", D("2024-04-01"), D("2024-04-03"), complaint=True),
        _ticket("T6", "A1", "network", D("2024-01-01"), D("2024-01-05")),
    ])
    contacts = _frame("contacts", [
        _contact("C1", "A1", "H1", "DATA_UPSELL", D("2024-06-01"), channel="sms"),
        _contact("C2", "A2", "H1", "PLAN_REVIEW", D("2024-05-20"), channel="email"),
        _contact("C3", "A2", "H1", "MESH_WIFI", D("2024-06-05"), channel="app"),  # service recovery: not promo
        _contact("C4", "A4", "H2", "TRAVEL_PACK", D("2024-03-01"), accepted_at=D("2024-03-02")),
        _contact("C5", "A4", "H2", "DEVICE_PROTECTION", D("2024-06-10"), contacted=False),  # holdout
        # Accepted after AS_OF: L01's device protection did not exist yet at AS_OF.
        _contact("C6", "A1", "H1", "DEVICE_PROTECTION", D("2024-06-12"), channel="retail",
                 accepted_at=D("2024-07-01")),
    ])
    experiments = _frame("experiments", [])
    return {
        "households": households, "accounts": accounts, "lines": lines, "usage_monthly": usage,
        "support_tickets": tickets, "offers": catalog_frame(), "contacts": contacts, "experiments": experiments,
    }


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    return tiny_world()


@pytest.fixture(scope="module")
def acc(world) -> pd.DataFrame:
    return F.build_account_features(world, AS_OF).set_index("account_id")


def test_tiny_world_is_valid(world):
    # Built without validation (pandera is slow per call); checked once here.
    assert set(world) == set(TABLES)
    for name, frame in world.items():
        SCHEMAS[name].validate(frame)


def test_usage_cutoff_rule():
    assert F.usage_cutoff("2024-03-15") == D("2024-03-01")  # February is the last full month
    assert F.usage_cutoff("2024-03-31") == D("2024-04-01")  # March is over at the end of its last day
    assert F.usage_cutoff("2024-03-31 08:00") == D("2024-04-01")
    assert F.usage_cutoff("2024-04-01") == D("2024-04-01")


def test_active_accounts_sorted_with_contract_columns(world):
    out = F.build_account_features(world, AS_OF)
    assert list(out["account_id"]) == ["A1", "A2", "A3", "A4", "A6", "A7"]
    assert isinstance(out.index, pd.RangeIndex)
    for col in [*F.DECISION_COLUMNS, *F.FEATURE_COLUMNS]:
        assert col in out.columns, col
    assert set(F.CATEGORICAL_FEATURES) <= set(F.FEATURE_COLUMNS)
    assert not {"account_id", "household_id"} & set(F.FEATURE_COLUMNS)
    for col in [c for c in out.columns if c.startswith(("account_has_", "household_has_"))]:
        assert out[col].dtype == bool, col


def test_account_frame_is_the_contract_in_order(world):
    """Every built column is declared, in declared order, with a dtype that fits its kind."""
    out = F.build_account_features(world, AS_OF)
    assert list(out.columns) == [c.name for c in contract.columns(built=True)]
    assert "account_is_active" not in out.columns  # declared for callers' frames, never built
    fits = {
        "id": pd.api.types.is_object_dtype,
        "category": pd.api.types.is_object_dtype,
        "bool": pd.api.types.is_bool_dtype,
        "count": pd.api.types.is_integer_dtype,
        "float_nan": pd.api.types.is_float_dtype,
    }
    wrong = {c.name: str(out[c.name].dtype) for c in contract.columns(built=True) if not fits[c.kind](out[c.name])}
    assert not wrong, wrong


def test_contract_declarations_are_consistent():
    names = [c.name for c in contract.COLUMNS]
    assert len(names) == len(set(names))
    for c in contract.COLUMNS:
        assert c.grain in contract.GRAINS and c.kind in contract.KINDS and c.role in contract.ROLES, c
        assert c.name.startswith(f"{c.grain}_"), c.name  # reason codes read by grain
        assert bool(c.categories) == (c.kind == "category"), c.name
        assert (c.range is not None) == (c.kind == "float_nan"), c.name  # every number is bounded
        if c.range is not None:
            assert c.range[0] < c.range[1], c.name
        assert (c.kind == "id") == (c.role == "id"), c.name
        assert c.description, c.name
    assert F.FEATURE_COLUMNS == [c.name for c in contract.COLUMNS if c.role == "feature"]
    assert F.CATEGORICAL_FEATURES == [c for c in F.FEATURE_COLUMNS if contract.column(c).kind == "category"]
    with pytest.raises(KeyError, match="not declared"):
        contract.column("account_favourite_colour")


def test_lifecycle_stages_and_precedence(acc):
    assert acc["account_lifecycle_stage"].to_dict() == {
        "A1": "at_risk", "A2": "renewal", "A3": "new", "A4": "early", "A6": "at_risk", "A7": "growth",
    }


def test_lifecycle_stage_function_rules():
    stages = F.lifecycle_stage(
        tenure_days=[10, 10, 400, 400, 400, 400, 400, 200, 400, 400],
        days_to_contract_end=[np.nan, 30, 30, 30, np.nan, -20, 91, np.nan, np.nan, 30],
        active_complaint=[True, False, True, False, False, False, False, False, False, False],
        overage_months_3m=[0, 0, 0, 2, 0, 0, 0, 0, 1, 0],
        open_ticket_over_14d=[False, False, False, False, True, False, False, False, False, False],
    )
    assert list(stages) == [
        "new", "new", "at_risk", "at_risk", "at_risk", "growth", "growth", "early", "growth", "renewal",
    ]


def test_usage_features_exact(acc):
    a1 = acc.loc["A1"]
    assert a1["account_overage_months_3m"] == 2  # March and May (June is not visible)
    assert a1["line_overage_months_6m"] == 3  # L01: Jan, Mar, May
    # Bills over all lines that paid in the month (L05 ended in February but paid Dec and Jan).
    assert a1["account_bill_mean_3m"] == pytest.approx((110 + 100 + 120) / 3)
    assert a1["account_bill_change_3m"] == pytest.approx(120 / ((100 + 110 + 100) / 3))
    assert a1["line_data_gb_mean_3m"] == pytest.approx(((12 + 9 + 13) / 3 + (4 + 5 + 6) / 3) / 2)
    assert a1["line_data_cap_util_3m"] == pytest.approx(((34 / 3) / 10 + 1.0) / 2)
    assert a1["line_roaming_days_3m"] == 5  # max over lines: L02's 5 in May
    assert a1["line_intl_minutes_3m"] == 30
    assert a1["line_dropped_calls_3m"] == 3 + 2
    assert a1["line_device_age_months"] == pytest.approx(152 / F.DAYS_PER_MONTH)  # L02's newer handset
    assert a1["line_max_plan_tier"] == 2  # premium broadband
    assert a1["account_n_lines"] == 3 and a1["account_n_mobile_lines"] == 2  # L04 starts later, L05 ended
    # Uncapped / device bought after AS_OF / no mobile line.
    assert math.isnan(acc.loc["A3", "line_data_cap_util_3m"])
    assert math.isnan(acc.loc["A4", "line_device_age_months"])
    assert math.isnan(acc.loc["A6", "line_data_gb_mean_3m"])
    # A3 started in April: only April and May are visible.
    assert acc.loc["A3", "account_bill_mean_3m"] == 60.0
    assert acc.loc["A3", "account_bill_change_3m"] == 1.0  # May vs April, the only earlier month
    assert math.isnan(acc.loc["A6", "account_bill_change_3m"])  # no usage at all


def test_ticket_and_contract_features_exact(acc):
    assert acc["account_open_tickets"].to_dict() == {"A1": 0, "A2": 1, "A3": 1, "A4": 0, "A6": 1, "A7": 0}
    assert acc["account_open_service_issue"].to_dict() == {
        "A1": False, "A2": True, "A3": False, "A4": False, "A6": True, "A7": False}
    assert acc["account_active_complaint"].to_dict() == {
        "A1": False, "A2": False, "A3": True, "A4": False, "A6": False, "A7": False}
    assert acc.loc["A1", "account_tickets_90d"] == 1
    assert acc.loc["A1", "account_billing_tickets_180d"] == 1
    assert acc.loc["A1", "account_network_tickets_180d"] == 1
    assert acc.loc["A2", "account_network_tickets_180d"] == 1  # coverage counts as network
    assert acc.loc["A7", "account_complaints_180d"] == 1
    assert acc.loc["A1", "account_months_to_contract_end"] == pytest.approx(47 / F.DAYS_PER_MONTH)
    assert acc.loc["A2", "account_months_to_contract_end"] == pytest.approx(78 / F.DAYS_PER_MONTH)
    assert math.isnan(acc.loc["A4", "account_months_to_contract_end"])
    assert acc.loc["A4", "account_tenure_months"] == pytest.approx(258 / F.DAYS_PER_MONTH)


def test_product_and_contact_features_exact(acc):
    a1 = acc.loc["A1"]
    assert a1["account_has_mobile"] and a1["account_has_broadband"] and not a1["account_has_tv"]
    assert a1["account_has_capped_mobile"] and a1["account_has_mesh_wifi"]
    # Device protection was accepted on July 1 (after AS_OF): not owned at AS_OF.
    assert not a1["account_has_device_protection"]
    assert acc.loc["A3", "account_has_device_protection"]
    assert not acc.loc["A3", "account_has_capped_mobile"]  # unlimited plan
    assert acc.loc["A2", "account_has_premium_care"] and acc.loc["A2", "account_has_fixed_voice"]
    assert acc.loc["A7", "account_has_streaming"]
    assert a1["account_contacts_sms_30d"] == 1 and a1["account_contacts_retail_30d"] == 1
    assert a1["account_promo_contacts_30d"] == 2
    assert acc.loc["A2", "account_contacts_email_30d"] == 1 and acc.loc["A2", "account_contacts_app_30d"] == 1
    assert acc.loc["A2", "account_promo_contacts_30d"] == 1  # mesh Wi-Fi is service recovery
    assert acc.loc["A1", "household_promo_contacts_30d"] == 3
    assert acc.loc["A4", "account_contacts_app_30d"] == 0  # holdout record is not a contact
    assert acc.loc["A4", "account_offers_accepted_365d"] == 1
    assert acc.loc["A1", "account_offers_accepted_365d"] == 0  # accepted after AS_OF
    assert acc.loc["A1", "account_contacts_90d"] == 2
    assert acc.loc["A1", "account_channel_preference"] == "sms"


def test_household_features_exact(world, acc):
    hh = F.build_household_features(world, AS_OF).set_index("household_id")
    assert list(hh.index) == ["H1", "H2", "H3"]
    assert hh["household_n_accounts"].to_dict() == {"H1": 2, "H2": 2, "H3": 2}
    assert hh["household_n_lines"].to_dict() == {"H1": 4, "H2": 2, "H3": 2}
    assert hh["household_n_products"].to_dict() == {"H1": 3, "H2": 1, "H3": 2}
    assert hh.loc["H2", "household_fwa_eligible"] and not hh.loc["H2", "household_fiber_eligible"]
    assert hh.loc["H2", "household_open_tickets"] == 1
    assert acc.loc["A2", "household_n_lines"] == 4 and acc.loc["A2", "household_region"] == "urban"


def test_line_features(world):
    lines = F.build_line_features(world, AS_OF).set_index("line_id")
    assert list(lines.index) == ["L01", "L02", "L03", "L06", "L07", "L08", "L09", "L10"]
    assert all(c.startswith("line_") for c in lines.columns if c not in ("account_id", "household_id"))
    assert lines.loc["L01", "line_overage_months_3m"] == 2
    assert lines.loc["L01", "line_usage_months_6m"] == 6
    assert lines.loc["L07", "line_usage_months_6m"] == 2
    assert not lines.loc["L01", "line_has_device_protection"]
    assert lines.loc["L01", "household_id"] == "H1"
    assert lines.loc["L08", "line_data_cap_util_3m"] == pytest.approx(40 / 50)


def test_churn_labels(world):
    labels = F.make_churn_labels(world, AS_OF, horizon_days=90)
    assert labels["churned"].dtype == np.int8
    assert labels.set_index("account_id")["churned"].to_dict() == {
        "A1": 0, "A2": 0, "A3": 0, "A4": 0, "A6": 1, "A7": 0}
    longer = F.make_churn_labels(world, AS_OF, horizon_days=120).set_index("account_id")["churned"]
    assert longer["A7"] == 1
    feats = F.build_account_features(world, AS_OF)
    assert list(labels["account_id"]) == list(feats["account_id"])
    with pytest.raises(ConfigError, match="observed only until"):
        F.make_churn_labels(world, AS_OF, horizon_days=90, observed_until="2024-08-01")
    with pytest.raises(ConfigError, match="positive"):
        F.make_churn_labels(world, AS_OF, horizon_days=0)


def test_missing_activity_tables_give_zeros_and_nan(world):
    bare = {k: world[k] for k in ("households", "accounts", "lines")}
    out = F.build_account_features(bare, AS_OF).set_index("account_id")
    assert (out["account_open_tickets"] == 0).all()
    assert (out["account_promo_contacts_30d"] == 0).all()
    assert (out["line_overage_months_6m"] == 0).all()
    assert out["account_bill_mean_3m"].isna().all()
    assert out["account_lifecycle_stage"].notna().all()
    assert out.loc["A1", "account_has_device_protection"]  # no contacts: nothing to repair
    # Empty (not missing) activity tables behave the same.
    empty = {**world, **{k: world[k].iloc[0:0] for k in ("usage_monthly", "support_tickets", "contacts")}}
    again = F.build_account_features(empty, AS_OF).set_index("account_id")
    pd.testing.assert_frame_equal(out[F.FEATURE_COLUMNS], again[F.FEATURE_COLUMNS])
    no_lines = F.build_account_features({k: world[k] for k in ("households", "accounts")}, AS_OF)
    assert (no_lines["account_n_lines"] == 0).all() and no_lines["line_max_plan_tier"].isna().all()


def test_inputs_not_mutated(world):
    before = {k: v.copy(deep=True) for k, v in world.items()}
    F.build_account_features(world, AS_OF)
    F.build_line_features(world, AS_OF)
    F.make_churn_labels(world, AS_OF)
    for k, v in world.items():
        pd.testing.assert_frame_equal(v, before[k])


def test_bad_input_raises_clear_errors(world):
    with pytest.raises(DataValidationError, match="accounts"):
        F.build_account_features({"households": world["households"]}, AS_OF)
    with pytest.raises(DataValidationError, match="missing column"):
        F.build_account_features({**world, "lines": world["lines"].drop(columns="line_type")}, AS_OF)
    dup = pd.concat([world["accounts"], world["accounts"].iloc[[0]]], ignore_index=True)
    with pytest.raises(DataValidationError, match="duplicate account_id: A1"):
        F.build_account_features({**world, "accounts": dup}, AS_OF)
    with pytest.raises(DataValidationError, match="empty"):
        F.build_account_features({**world, "accounts": world["accounts"].iloc[0:0]}, AS_OF)
    with pytest.raises(ConfigError, match="time zone"):
        F.build_account_features(world, pd.Timestamp("2024-06-15", tz="UTC"))
    with pytest.raises(ConfigError, match="not a date"):
        F.build_account_features(world, "yesterday-ish")


def test_model_matrix_parity_one_row_vs_many(world):
    feats = F.build_account_features(world, AS_OF)
    big = F.to_model_matrix(feats)
    one = F.to_model_matrix(feats.iloc[[3]])
    assert list(big.columns) == F.FEATURE_COLUMNS
    pd.testing.assert_series_equal(big.dtypes, one.dtypes)
    for c in F.CATEGORICAL_FEATURES:
        assert list(big[c].cat.categories) == list(F.CATEGORY_VALUES[c])
        assert list(one[c].cat.categories) == list(F.CATEGORY_VALUES[c])
        assert big[c].iloc[3] == one[c].iloc[0]
    pd.testing.assert_frame_equal(big.iloc[[3]], one)
    # A serving payload as JSON gives it (objects, None, ints) encodes identically.
    payload = pd.DataFrame(feats.iloc[[3]].astype(object).to_dict(orient="records"))
    pd.testing.assert_frame_equal(F.to_model_matrix(payload), one.reset_index(drop=True))
    numeric = [c for c in F.FEATURE_COLUMNS if c not in F.CATEGORICAL_FEATURES]
    assert (big[numeric].dtypes == np.float64).all()


def test_model_matrix_rejects_bad_payload(world):
    feats = F.build_account_features(world, AS_OF)
    with pytest.raises(DataValidationError, match="household_region"):
        F.to_model_matrix(feats.assign(household_region="mars"))
    with pytest.raises(DataValidationError, match="missing feature"):
        F.to_model_matrix(feats.drop(columns="account_tenure_months"))
    with pytest.raises(DataValidationError, match="not numeric"):
        F.to_model_matrix(feats.assign(account_monthly_charges="cheap"))


def test_lapsed_contract_is_out_of_contract_not_renewal(world):
    accounts = world["accounts"].copy()
    accounts.loc[accounts["account_id"] == "A2", "contract_end_date"] = D("2024-05-16")
    out = F.build_account_features({**world, "accounts": accounts}, AS_OF).set_index("account_id")
    assert out.loc["A2", "account_months_to_contract_end"] == pytest.approx(-30 / F.DAYS_PER_MONTH)
    assert out.loc["A2", "account_out_of_contract"]
    assert out.loc["A2", "account_lifecycle_stage"] == "growth"
    assert not out.loc["A1", "account_out_of_contract"] and not out.loc["A4", "account_out_of_contract"]


# --------------------------------------------------------------------------------------------------
# on a generated world


@pytest.fixture(scope="module")
def gen_world():
    from telco_nbo.data.synthetic import generate_world

    return generate_world(3000, seed=11)


@pytest.fixture(scope="module")
def gen_features(gen_world):
    return F.build_account_features(gen_world.tables, gen_world.meta["as_of"])


def test_generated_world_active_accounts_match_truth(gen_world, gen_features):
    truth = gen_world.truth["accounts"]
    assert sorted(truth["account_id"]) == list(gen_features["account_id"])


def test_generated_world_decision_columns_complete(gen_features):
    f = gen_features
    m2m = f["account_contract_type"] == "month_to_month"
    assert (f["account_months_to_contract_end"].isna() == m2m).all()
    others = [c for c in [*F.DECISION_COLUMNS, *REQUIRED_COLUMNS] if c != "account_months_to_contract_end"]
    assert not f[others].isna().any().any(), f[others].isna().sum()[lambda s: s > 0]
    assert f["account_id"].is_unique
    assert ((f["account_lifecycle_stage"] == "new") == (f["account_tenure_days"] < F.NEW_DAYS)).all()
    shares = f["account_lifecycle_stage"].value_counts(normalize=True)
    assert set(shares.index) == set(F.LIFECYCLE_STAGES)
    assert shares.between(0.02, 0.6).all(), shares
    # Every active account has at least one active line in the generator.
    assert (f["account_n_lines"] >= 1).all()


def test_generated_world_labels_match_true_churn_probability(gen_world, gen_features):
    as_of, world_end = gen_world.meta["as_of"], gen_world.meta["world_end"]
    labels = F.make_churn_labels(gen_world.tables, as_of, 90, observed_until=world_end)
    assert list(labels["account_id"]) == list(gen_features["account_id"])
    p = gen_world.truth["accounts"].set_index("account_id").loc[labels["account_id"], "p_churn_90d"]
    sd = math.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(labels["churned"].mean() - p.mean()) < 4 * sd


def test_generated_world_features_carry_known_causes(gen_world, gen_features):
    weak = gen_world.truth["households"].set_index("household_id")["weak_coverage"]
    f = gen_features.assign(weak=gen_features["household_id"].map(weak))
    by = f.groupby("weak")["account_network_tickets_180d"].mean()
    assert by[True] > 1.5 * by[False]


def test_generated_world_truncating_the_future_changes_nothing(gen_world):
    """Drop every row dated after an earlier as_of (and blank later end dates): same features."""
    as_of = pd.Timestamp(gen_world.meta["as_of"]) - pd.Timedelta(days=100)
    t = gen_world.tables
    cut = F.usage_cutoff(as_of)
    acc = t["accounts"].loc[t["accounts"]["start_date"] <= as_of].copy()
    acc.loc[acc["end_date"] > as_of, "end_date"] = NaT
    lines = t["lines"].loc[t["lines"]["start_date"] <= as_of].copy()
    lines.loc[lines["end_date"] > as_of, "end_date"] = NaT
    tk = t["support_tickets"].loc[t["support_tickets"]["opened_at"] <= as_of].copy()
    tk.loc[tk["resolved_at"] > as_of, "resolved_at"] = NaT
    # The tables state ownership at the data's own date: a flag an acceptance after as_of switched
    # on is still in them, and the later contact that explains it stays, as an extract made then
    # would not show the flag. Every other later contact goes.
    from telco_nbo.nbo.catalog import offer_grants

    c = t["contacts"]
    explains = c["accepted"].astype(bool) & (c["accepted_at"] > as_of) & c["offer_id"].isin(list(offer_grants()))
    past = {
        **t, "accounts": acc, "lines": lines, "support_tickets": tk,
        "usage_monthly": t["usage_monthly"].loc[t["usage_monthly"]["month"] < cut],
        "contacts": c.loc[(c["contacted_at"] <= as_of) | explains],
    }
    assert len(past["usage_monthly"]) < len(t["usage_monthly"])
    pd.testing.assert_frame_equal(F.build_account_features(past, as_of), F.build_account_features(t, as_of))


def test_generated_world_model_matrix_parity(gen_features):
    big = F.to_model_matrix(gen_features)
    one = F.to_model_matrix(gen_features.iloc[[7]])
    pd.testing.assert_series_equal(big.dtypes, one.dtypes)
    pd.testing.assert_frame_equal(big.iloc[[7]], one)
    assert big[F.CATEGORICAL_FEATURES].notna().all().all()


def test_non_numeric_table_column_is_named(world):
    usage = world["usage_monthly"].astype({"bill_amount": object})
    usage.loc[usage.index[0], "bill_amount"] = "ten"
    with pytest.raises(DataValidationError, match="bill_amount is not numeric"):
        F.build_account_features({**world, "usage_monthly": usage}, AS_OF)


def test_same_features_after_parquet_round_trip(gen_world, gen_features, tmp_path):
    from telco_nbo.data.io import load_world, write_world

    write_world(gen_world, tmp_path / "w")
    loaded = load_world(tmp_path / "w")
    again = F.build_account_features(loaded.tables, loaded.meta["as_of"])
    pd.testing.assert_frame_equal(again, gen_features)


def test_before_any_account_gives_empty_frames_with_columns(world):
    out = F.build_account_features(world, "2010-01-01")
    assert len(out) == 0 and set(F.DECISION_COLUMNS + F.FEATURE_COLUMNS) <= set(out.columns)
    assert len(F.build_line_features(world, "2010-01-01")) == 0
    assert len(F.build_household_features(world, "2010-01-01")) == 0
    assert len(F.make_churn_labels(world, "2010-01-01")) == 0
    assert list(F.to_model_matrix(out).columns) == F.FEATURE_COLUMNS


def test_world_object_accepted(gen_world, gen_features):
    pd.testing.assert_frame_equal(F.build_account_features(gen_world, gen_world.meta["as_of"]), gen_features)
