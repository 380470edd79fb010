"""Property tests of the ranking on thousands of generated accounts (hypothesis over the world's knobs).

Hypothesis draws the seed and the rates (issues, complaints, contacts, fiber, ended accounts, a random
rule subset, top-k); numpy draws the rows from the feature contract. Each example ranks 1-3k accounts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nbo_support import make_features, make_scores

from telco_nbo.nbo.arbitration import conflict_matrix
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import rank_batch
from telco_nbo.nbo.rules import OfferTable, default_rules, evaluate_rules

CATALOG = load_catalog()
OFFER_IDS = [o.offer_id for o in CATALOG.offers]
ALL_RULES = default_rules()
RULE_LAYERS = {"eligibility", "applicability", "suitability"}

worlds = st.fixed_dictionaries({
    "n": st.integers(1000, 2000),
    "seed": st.integers(0, 2**31 - 1),
    "p_issue": st.floats(0, 0.5),
    "p_complaint": st.floats(0, 0.3),
    "p_contacted": st.floats(0, 0.6),
    "p_fiber": st.floats(0, 1),
    "p_ended": st.sampled_from([0.0, 0.1]),
    "ties": st.booleans(),
})
# Examples are big (thousands of accounts), so no shrinking: a failure reports its knobs as drawn.
SETTINGS = settings(max_examples=5, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _world(w: dict) -> tuple[pd.DataFrame, object]:
    f = make_features(w["n"], w["seed"], p_issue=w["p_issue"], p_complaint=w["p_complaint"],
                      p_contacted=w["p_contacted"], p_fiber=w["p_fiber"], p_ended=w["p_ended"])
    return f, make_scores(f, seed=w["seed"] + 1, ties=w["ties"])


def _offered(out: pd.DataFrame) -> set[tuple[str, str]]:
    return set(map(tuple, out.loc[out.selected, ["account_id", "offer_id"]].to_numpy()))


def _passing(out: pd.DataFrame) -> set[tuple[str, str]]:
    """Pairs that passed every rule and the value floor (before the selection steps)."""
    ok = out.selected | out.layer.isin(["household", "selection"])
    return set(map(tuple, out.loc[ok, ["account_id", "offer_id"]].to_numpy()))


@SETTINGS
@given(w=worlds, top_k=st.sampled_from([1, 3, None]))
def test_invariants_of_a_ranking(w, top_k):
    f, s = _world(w)
    out = rank_batch(f, s, top_k=top_k)
    m = len(OFFER_IDS)

    # Suppressed and returned together are the catalog, once each, for every account.
    assert len(out) == len(f) * m
    per_account = out.groupby("account_id")["offer_id"].agg(lambda x: tuple(sorted(x)))
    assert set(per_account) == {tuple(sorted(OFFER_IDS))}
    assert out["selected"].eq(out["rule_id"].isna()).all()

    # Every returned offer passes every rule (re-evaluated independently of the ranking).
    ev = evaluate_rules(f, CATALOG)
    row = pd.Series(np.arange(len(f)), index=f["account_id"])
    col = pd.Series(np.arange(m), index=OFFER_IDS)
    top = out[out.selected]
    assert ev.passed[row[top.account_id].to_numpy(), col[top.offer_id].to_numpy()].all()
    assert (top["expected_value"] > 0).all()

    # No promotional offer to an account with an open service issue.
    issue = set(f.loc[f.account_open_service_issue, "account_id"])
    assert not (top.promotional & top.account_id.isin(issue)).any()

    # At most one promotional offer per household (and none if the household already had one).
    promo = top[top.promotional]
    assert not promo.household_id.duplicated().any()
    contacted = set(f.loc[f.household_promo_contacts_30d >= 1, "household_id"])
    assert not promo.household_id.isin(contacted).any()

    # No conflicting pair of offers within a household (across or within its accounts).
    cfg = NboConfig()
    conflict, _ = conflict_matrix(OfferTable.from_catalog(CATALOG),
                                  cfg.model_copy(update={"conflicts": cfg.household_conflicts(CATALOG)}))
    pairs = top[["household_id", "account_id", "offer_id"]].merge(
        top[["household_id", "account_id", "offer_id"]], on="household_id")
    pairs = pairs[(pairs.account_id_x != pairs.account_id_y) | (pairs.offer_id_x != pairs.offer_id_y)]
    assert not conflict[col[pairs.offer_id_x].to_numpy(), col[pairs.offer_id_y].to_numpy()].any()

    # Rankings: 1..k per account, sorted by expected value, ties broken by offer id, at most k.
    assert (top["rank"].to_numpy() == top.groupby("account_id").cumcount().to_numpy() + 1).all()
    if top_k is not None:
        assert top.groupby("account_id").size().max() <= top_k
    same = top.account_id.to_numpy()[1:] == top.account_id.to_numpy()[:-1]
    ev_now, ev_next = top.expected_value.to_numpy()[:-1], top.expected_value.to_numpy()[1:]
    id_now, id_next = top.offer_id.to_numpy()[:-1], top.offer_id.to_numpy()[1:]
    assert ((ev_now > ev_next) | ((ev_now == ev_next) & (id_now < id_next)))[same].all()

    # Deterministic: the same input gives the same frame.
    pd.testing.assert_frame_equal(out, rank_batch(f, s, top_k=top_k))


@SETTINGS
@given(w=worlds, drop=st.sets(st.sampled_from([r.rule_id for r in ALL_RULES]), min_size=1, max_size=6))
def test_adding_rules_never_adds_an_offer(w, drop):
    f, s = _world(w)
    subset = [r for r in ALL_RULES if r.rule_id not in drop]
    fewer = rank_batch(f, s, top_k=None, rules=subset)
    more = rank_batch(f, s, top_k=None, rules=ALL_RULES)
    # The set that passes the rules (and the value floor) only shrinks when rules are added...
    assert _passing(more) <= _passing(fewer)
    # ...and so does everything offered with the full rule set.
    assert _offered(more) <= _passing(fewer)
    # Without the household selection (no promo or conflict limit) the offers themselves shrink too.
    free = NboConfig(caps={"promo_per_household": 10**6, "promo_per_account": 10**6,
                           "per_channel": NboConfig().caps.per_channel}, conflicts=[])
    unlinked = CATALOG.model_copy(update={"conflicts": []})  # nor the catalog's conflicts
    rules_free = [r for r in ALL_RULES if r.rule_id not in ("SUIT_ACCOUNT_PROMO_CAP", "SUIT_HOUSEHOLD_PROMO_CAP")]
    subset_free = [r for r in rules_free if r.rule_id not in drop]
    assert _offered(rank_batch(f, s, unlinked, free, top_k=None, rules=rules_free)) <= _offered(
        rank_batch(f, s, unlinked, free, top_k=None, rules=subset_free))
