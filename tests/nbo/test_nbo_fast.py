"""The numpy fast path of the ranking: same answers as the batch path, for one account or many."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from nbo_support import make_features, make_scores

from telco_nbo.nbo import arbitration as arb
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import Policy, core_decisions, decisions_from_frame, rank_batch, rank_core
from telco_nbo.nbo.rules import as_columns
from telco_nbo.nbo.schemas import AccountDecision
from telco_nbo.nbo.scores import align_scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("top_k", [1, 3, None])
def test_scalar_household_step_equals_the_vectorized_one(seed, top_k, monkeypatch):
    # Small worlds with big households and ties, so every selection outcome occurs.
    f = make_features(40, seed, p_contacted=0.3)
    f["household_id"] = [f"H{i // 4:03d}" for i in range(len(f))]
    s = make_scores(f, seed=seed, ties=seed % 2 == 0)
    cfg = NboConfig(caps={"promo_per_household": 1 + seed % 3, "promo_per_account": 1 + seed % 2})
    policy = Policy.build(config=cfg)
    cols = as_columns(f)
    aligned = align_scores(s, cols["account_id"].astype(str), policy.offers.ids)
    monkeypatch.setattr(arb, "SMALL_SELECTION", 0)
    vec = rank_core(policy, cols, aligned, top_k).selection
    monkeypatch.setattr(arb, "SMALL_SELECTION", 10**9)
    small = rank_core(policy, cols, aligned, top_k).selection
    for name in ("status", "rank", "blocker_offer", "blocker_account"):
        np.testing.assert_array_equal(getattr(small, name), getattr(vec, name), err_msg=name)
    assert set(np.unique(vec.status)) >= {arb.KEPT, arb.HH_ONE_PROMO}


@pytest.mark.parametrize("n", [1, 7, 300])
def test_core_decisions_equal_the_frame_decisions(n):
    f = make_features(n, seed=n)
    s = make_scores(f, seed=n)
    policy = Policy.build()
    frame = rank_batch(f, s, top_k=3, as_of="2025-06-30", policy=policy)
    cols = as_columns(f)
    core = rank_core(policy, cols, align_scores(s, cols["account_id"].astype(str), policy.offers.ids), 3)
    fast = [AccountDecision.model_validate(d) for d in core_decisions(core, "2025-06-30")]
    assert fast == decisions_from_frame(frame)
    # And the dicts are JSON-ready as they are.
    import json

    json.dumps(core_decisions(core, "2025-06-30"))


def test_policy_is_reusable_and_not_changed_by_ranking():
    policy = Policy.build()
    f = make_features(50, seed=4)
    s = make_scores(f, seed=4)
    a = rank_batch(f, s, policy=policy)
    b = rank_batch(f, s, policy=policy)
    c = rank_batch(f, s)
    assert a.equals(b) and a.equals(c)


def test_scores_from_aligned_arrays_align_back_to_the_same_arrays():
    # The batch provider hands the numpy scorer's arrays to the ranking as a Scores value: that
    # round trip must lose nothing but the pairs left unscored (NaN propensity).
    from telco_nbo.scoring import scores_from_aligned

    policy = Policy.build()
    f = make_features(30, seed=2)
    ids = f["account_id"].astype(str).to_numpy()
    a = align_scores(make_scores(f, seed=2), ids, policy.offers.ids)
    prop = a.propensity.copy()
    prop[:, 1] = np.nan  # an offer the propensity model never saw
    reasons = {0: [(None, "tenure raises churn risk"), (None, "complaints raise churn risk")], 4: [(None, "x")]}
    a = dataclasses.replace(a, propensity=prop, reasons=reasons)
    s = scores_from_aligned(a, ids, policy.offers.ids)
    assert len(s.offers) == prop.size - len(ids) and policy.offers.ids[1] not in set(s.offers["offer_id"])
    back = align_scores(s, ids, policy.offers.ids)
    for name in ("churn", "clv", "retention_uplift", "propensity"):
        np.testing.assert_array_equal(getattr(back, name), getattr(a, name))
    assert back.reasons == reasons and back.model_versions == a.model_versions
