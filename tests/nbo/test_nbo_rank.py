"""Arbitration and batch ranking: value arithmetic, channels, household step, outputs, bad scores."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from nbo_support import make_features, make_scores
from test_nbo_rules import one_account

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.arbitration import expected_months
from telco_nbo.nbo.catalog import Catalog, load_catalog
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import OUTPUT_COLUMNS, decisions_from_frame, rank_accounts, rank_batch
from telco_nbo.nbo.schemas import AccountDecision, DecisionBatch
from telco_nbo.nbo.scores import Scores

CATALOG = load_catalog()
OFFER_IDS = [o.offer_id for o in CATALOG.offers]


def scores_for(features: pd.DataFrame, propensity: dict[str, float] | float = 0.2, churn: float = 0.3,
               clv: float = 1000.0, uplift: float = 0.05, reasons: pd.DataFrame | None = None) -> Scores:
    ids = features["account_id"].tolist()
    prop = propensity if isinstance(propensity, dict) else {}
    default = propensity if not isinstance(propensity, dict) else 0.01
    offers = pd.DataFrame([(a, o, prop.get(o, default)) for a in ids for o in OFFER_IDS],
                          columns=["account_id", "offer_id", "propensity"])
    accounts = pd.DataFrame({"account_id": ids, "churn_probability": churn, "clv": clv, "retention_uplift": uplift})
    return Scores(accounts, offers, reasons, {"telco-churn": "4"})


def test_expected_value_parts_by_hand():
    f = one_account(account_lifecycle_stage="renewal", account_months_to_contract_end=1.0,
                    account_channel_preference="email")
    cfg = NboConfig(kind_weights={"retention": 2.0}, caps={"promo_per_household": 5, "promo_per_account": 5},
                    conflicts=[])
    out = rank_batch(f, scores_for(f, {"RETENTION_DISCOUNT": 0.4, "HOME_FIBER": 0.1}), config=cfg, top_k=None)
    row = out.set_index("offer_id").loc["RETENTION_DISCOUNT"]
    assert row["selected"] and row["channel"] == "email"  # preferred channel is one of the offer's
    assert row["margin_months"] == 12  # min(term 12, horizon 12)
    assert row["acceptance_value"] == pytest.approx(0.4 * -10.0 * 12)
    assert row["uplift"] == pytest.approx(0.05) and row["retention_value"] == pytest.approx(0.05 * 1000)
    assert row["contact_cost"] == pytest.approx(0.02)
    assert row["expected_value"] == pytest.approx(2.0 * (-48.0 + 50.0) - 0.02)
    fiber = out.set_index("offer_id").loc["HOME_FIBER"]
    # Preferred email is not a HOME_FIBER channel: high complexity falls back to the call center.
    assert fiber["channel"] == "call_center" and fiber["contact_cost"] == 4.0
    assert fiber["expected_value"] == pytest.approx(0.1 * 31.0 * 12 - 4.0)
    # No-commitment offer: months = min(expected months retained, 6).
    upsell = out.set_index("offer_id").loc["DATA_UPSELL"]
    assert upsell["margin_months"] == pytest.approx(min(expected_months(np.array([0.3]), cfg)[0], 6.0))


def test_expected_months_matches_a_direct_survival_sum():
    cfg = NboConfig(horizon_months=12, churn_window_months=3)
    p = np.array([0.0, 0.1, 0.5, 1.0])
    keep = (1 - p) ** (1 / 3)
    direct = np.array([sum(k ** t for t in range(12)) for k in keep])
    np.testing.assert_allclose(expected_months(p, cfg), direct)


def test_sleeping_dogs_get_no_retention_offer():
    f = one_account(account_lifecycle_stage="at_risk")
    out = rank_batch(f, scores_for(f, 0.3, uplift=-0.05), top_k=None).set_index("offer_id")
    for oid in ("RETENTION_DISCOUNT", "PLAN_REVIEW"):
        # Under the default lower-bound rule the step says "bound" (with no error given, bound = estimate).
        assert not out.loc[oid, "selected"] and out.loc[oid, "rule_id"] == "VAL_BELOW_BOUND"
        assert out.loc[oid, "expected_value"] < 0


def test_kind_weights_move_the_ranking():
    f = one_account(account_lifecycle_stage="at_risk")
    s = scores_for(f, {"TRAVEL_PACK": 0.5, "RETENTION_DISCOUNT": 0.5}, uplift=0.08)
    cfg = NboConfig(caps={"promo_per_household": 5, "promo_per_account": 5}, conflicts=[])
    base = rank_batch(f, s, config=cfg, top_k=1)
    assert base.loc[base.selected, "offer_id"].tolist() == ["TRAVEL_PACK"]
    boosted = rank_batch(f, s, config=cfg.model_copy(update={"kind_weights": {"retention": 3.0}}), top_k=1)
    assert boosted.loc[boosted.selected, "offer_id"].tolist() == ["RETENTION_DISCOUNT"]


def test_no_offer_borrows_another_offers_uplift():
    # The uplift model learned RETENTION_DISCOUNT's effect (EXP-RETENTION-1); a plan review has no
    # evidence of its own, so it is valued on acceptance only and the audit trail says so.
    f = one_account(account_lifecycle_stage="at_risk")
    s = scores_for(f, {"PLAN_REVIEW": 0.5, "RETENTION_DISCOUNT": 0.5}, uplift=0.2)
    cfg = NboConfig(caps={"promo_per_household": 5, "promo_per_account": 5}, conflicts=[], min_expected_value=-1e9)
    out = rank_batch(f, s, config=cfg, top_k=None).set_index("offer_id")
    assert out.loc["RETENTION_DISCOUNT", "uplift"] == pytest.approx(0.2)
    assert out.loc["PLAN_REVIEW", "uplift"] == 0 and out.loc["PLAN_REVIEW", "retention_value"] == 0
    assert not any("no randomized evidence" in r for r in out.loc["RETENTION_DISCOUNT", "reasons"])
    # A selected service-recovery offer without evidence says so in its reasons.
    g = one_account(account_lifecycle_stage="at_risk", account_network_tickets_180d=2)
    care = rank_batch(g, scores_for(g, {"PREMIUM_CARE": 0.5}, uplift=0.2), config=cfg, top_k=None).set_index("offer_id")
    assert care.loc["PREMIUM_CARE", "selected"] and care.loc["PREMIUM_CARE", "uplift"] == 0
    assert any("no randomized evidence" in r for r in care.loc["PREMIUM_CARE", "reasons"])
    # Evidence named in the catalog (no Python change) lets the model's effect count for that offer.
    cat = load_catalog()
    proven = Catalog(offers=[o.model_copy(update={"effect_evidence": ["EXP-RETENTION-1"]}) if o.offer_id == "PLAN_REVIEW"
                             else o for o in cat.offers])
    out2 = rank_batch(f, s, config=cfg, catalog=proven, top_k=None).set_index("offer_id")
    assert out2.loc["PLAN_REVIEW", "uplift"] == pytest.approx(0.2)


def test_one_promotional_offer_per_household_and_conflicts_named():
    f = pd.concat([one_account(), one_account()], ignore_index=True)
    f["account_id"] = ["A0000001", "A0000002"]
    f["household_id"] = "H0000001"
    s = scores_for(f, {"HOME_FIBER": 0.3, "MESH_WIFI": 0.3})
    out = rank_batch(f, s, top_k=3)
    promo = out[out.selected & out.promotional]
    assert len(promo) == 1 and promo.iloc[0]["offer_id"] == "HOME_FIBER"
    assert promo.iloc[0]["account_id"] == "A0000001"  # equal value: account id breaks the tie
    other = out[(out.account_id == "A0000002") & (out.offer_id == "HOME_FIBER")].iloc[0]
    assert other["rule_id"] == "HH_ONE_PROMO" and other["layer"] == "household"
    # Allow two promotions per household: the conflict table still keeps one fiber per address.
    cfg = NboConfig(caps={"promo_per_household": 2})
    out = rank_batch(f, s, config=cfg, top_k=3)
    other = out[(out.account_id == "A0000002") & (out.offer_id == "HOME_FIBER")].iloc[0]
    assert other["rule_id"] == "HH_CONFLICT"
    assert other["reason"] == "one home internet connection per address: the household already gets HOME_FIBER (account A0000001)"
    assert out[out.selected & out.promotional].groupby("household_id").size().max() <= 2


def test_top_k_and_output_shape_and_order():
    f = make_features(300, seed=5)
    out = rank_batch(f, make_scores(f, seed=5), top_k=2)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == 300 * len(OFFER_IDS)
    assert out.groupby("account_id")["selected"].sum().max() <= 2
    assert (out.loc[~out.selected, "rule_id"].notna()).all() and out.loc[out.selected, "rule_id"].isna().all()
    assert out["account_id"].is_monotonic_increasing
    top = out[out.selected]
    assert (top.groupby("account_id")["rank"].min() == 1).all()
    assert set(out["rule_id"].dropna()) >= {"SEL_TOP_K", "HH_ONE_PROMO", "ELIG_NETWORK"}
    # Every returned offer has a channel among its catalog channels and a message with its price.
    for row in top.itertuples():
        offer = CATALOG.get(row.offer_id)
        assert row.channel in offer.channels
        assert f"{abs(offer.monthly_price):.2f}" in row.message


def test_reasons_carry_need_signals_then_model_reason_codes():
    f = one_account(line_overage_months_6m=4, line_data_cap_util_3m=0.5, account_bill_change_3m=1.0)
    reasons = pd.DataFrame({"account_id": [f.account_id[0]] * 2, "offer_id": [None, "HOME_FIBER"],
                            "reason": ["account_tenure_months = 40 lowers churn risk", "fiber-only phrase"]})
    out = rank_batch(f, scores_for(f, {"DATA_UPSELL": 0.9}, reasons=reasons), top_k=1)
    top = out[out.selected].iloc[0]
    assert top["offer_id"] == "DATA_UPSELL"
    assert top["reasons"] == ["4 months with data overage in the last 6", "account_tenure_months = 40 lowers churn risk"]


def test_decisions_round_trip_json_and_parquet(tmp_path):
    f = make_features(60, seed=9)
    out = rank_batch(f, make_scores(f, seed=9), top_k=3, as_of="2025-06-30")
    decisions = decisions_from_frame(out)
    assert len(decisions) == 60
    d = next(x for x in decisions if x.offers)
    assert {o.offer_id for o in d.offers} | {s.offer_id for s in d.suppressed} == set(OFFER_IDS)
    assert d.as_of.isoformat() == "2025-06-30" and d.model_versions == {"telco-churn": "1", "telco-propensity": "3"}
    assert AccountDecision.model_validate_json(d.model_dump_json()) == d
    batch = DecisionBatch(decisions=decisions)
    assert DecisionBatch.model_validate_json(batch.model_dump_json()) == batch
    # The flat frame survives Parquet and gives the same decisions back.
    path = tmp_path / "ranking.parquet"
    out.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    assert decisions_from_frame(back) == decisions
    assert rank_accounts(f, make_scores(f, seed=9), top_k=3, as_of="2025-06-30") == decisions


def test_ranking_is_order_independent():
    f = make_features(400, seed=11)
    s = make_scores(f, seed=11, ties=True)
    a = rank_batch(f, s)
    perm = np.random.default_rng(0).permutation(len(f))
    s2 = Scores(s.accounts.sample(frac=1, random_state=1), s.offers.sample(frac=1, random_state=2),
                model_versions=s.model_versions)
    b = rank_batch(f.iloc[perm], s2)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("mutate", "table", "message"),
    [
        (lambda s: Scores(s.accounts.iloc[1:], s.offers), "scores.accounts", "no scores for accounts"),
        (lambda s: Scores(s.accounts.assign(churn_probability=1.5), s.offers), "scores.accounts", "outside"),
        (lambda s: Scores(s.accounts.drop(columns="clv"), s.offers), "scores.accounts", "missing columns"),
        (lambda s: Scores(s.accounts, s.offers.assign(propensity=np.nan)), "scores.offers", "NaN"),
        (lambda s: Scores(s.accounts, s.offers.assign(offer_id="GIFT")), "scores.offers", "unknown offer_id"),
        (lambda s: Scores(s.accounts, pd.concat([s.offers, s.offers.head(1)])), "scores.offers", "duplicate"),
        (lambda s: Scores(s.accounts, s.offers.iloc[0:0]), "scores.offers", "no propensity for"),
        (lambda s: Scores(pd.concat([s.accounts, s.accounts.head(1).assign(account_id="A9999999")]), s.offers),
         "scores.accounts", "not in the feature frame"),
    ],
)
def test_bad_scores_are_named(mutate, table, message):
    f = make_features(10, seed=3)
    with pytest.raises(DataValidationError, match=message) as err:
        rank_batch(f, mutate(make_scores(f)))
    assert err.value.table == table


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_top_k(k):
    f = make_features(3)
    with pytest.raises(ConfigError, match="top_k"):
        rank_batch(f, make_scores(f), top_k=k)


def test_features_are_not_mutated():
    f = make_features(50, seed=2)
    s = make_scores(f)
    before = (f.copy(), s.accounts.copy(), s.offers.copy())
    rank_batch(f, s)
    pd.testing.assert_frame_equal(f, before[0])
    pd.testing.assert_frame_equal(s.accounts, before[1])
    pd.testing.assert_frame_equal(s.offers, before[2])


def test_model_versions_are_json_on_every_row():
    f = make_features(5)
    out = rank_batch(f, make_scores(f))
    assert {json.loads(v)["telco-propensity"] for v in out["model_versions"]} == {"3"}
