"""The capacity step: a contact budget and channel capacities, solved exactly, with shadow prices."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from telco_nbo.nbo.capacity import CAP_BUDGET, CAP_CHANNEL, apply_capacity
from telco_nbo.nbo.config import CapacityConfig, NboConfig, load_nbo_config
from telco_nbo.errors import ConfigError

CHANS = ["call_center", "app", "email"]


def ranking(options: list[list[tuple[str, float]]]) -> pd.DataFrame:
    """A minimal long ranking: per account, its selected offers (channel, value) in rank order, plus one suppressed."""
    rows = []
    for a, opts in enumerate(options):
        for r, (chan, v) in enumerate(opts, start=1):
            rows.append({"account_id": f"A{a:03d}", "offer_id": f"O{r}", "selected": True, "rank": r,
                         "channel": chan, "expected_value": v, "layer": None, "rule_id": None, "reason": None,
                         "value_removed": np.nan, "reasons": ["why"]})
        rows.append({"account_id": f"A{a:03d}", "offer_id": "OX", "selected": False, "rank": None, "channel": None,
                     "expected_value": np.nan, "layer": "eligibility", "rule_id": "ELIG_X", "reason": "no",
                     "value_removed": 1.0, "reasons": None})
    f = pd.DataFrame(rows)
    f["rank"] = f["rank"].astype("Int64")
    return f


def random_options(rng: np.random.Generator, n: int) -> list[list[tuple[str, float]]]:
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        vals = np.sort(rng.gamma(2.0, 10.0, k))[::-1]  # a ranking lists its offers by value
        out.append([(str(rng.choice(CHANS)), float(v)) for v in vals])
    return out


def best_by_integer_program(options, cap: CapacityConfig) -> float:
    """The same problem as an explicit integer program (scipy milp), for comparison."""
    var = [(a, c, v) for a, opts in enumerate(options) for c, v in opts]
    n = len(var)
    rows, ub = [], []
    for a in range(len(options)):
        rows.append([1.0 if x[0] == a else 0.0 for x in var]); ub.append(1)
    for c, k in cap.per_channel.items():
        rows.append([1.0 if x[1] == c else 0.0 for x in var]); ub.append(k)
    if cap.max_contacts is not None:
        rows.append([1.0] * n); ub.append(cap.max_contacts)
    res = optimize.milp(-np.array([x[2] for x in var]), integrality=np.ones(n), bounds=optimize.Bounds(0, 1),
                        constraints=optimize.LinearConstraint(np.array(rows), -np.inf, np.array(ub, float)))
    return -float(res.fun)


@pytest.mark.parametrize("seed", range(12))
def test_matches_an_integer_program_and_respects_every_limit(seed):
    rng = np.random.default_rng(seed)
    options = random_options(rng, int(rng.integers(5, 40)))
    cap = CapacityConfig(max_contacts=int(rng.integers(1, 30)), per_channel={"call_center": int(rng.integers(0, 8)),
                                                                              "email": int(rng.integers(0, 12))})
    out, rep = apply_capacity(ranking(options), cap)
    contacts = out[out["selected"] & (out["rank"] == 1)]
    assert contacts["account_id"].is_unique
    assert len(contacts) <= cap.max_contacts
    for c, k in cap.per_channel.items():
        assert (contacts["channel"] == c).sum() <= k
    assert rep.value_after == pytest.approx(contacts["expected_value"].sum())
    assert rep.value_after == pytest.approx(best_by_integer_program(options, cap), rel=1e-9, abs=1e-6)
    # Every account keeps one rank-1 offer at most, ranks stay 1..k, and what was dropped says why.
    for _, g in out[out["selected"]].groupby("account_id"):
        assert sorted(g["rank"].tolist()) == list(range(1, len(g) + 1))
    dropped = out[out["layer"] == "capacity"]
    assert set(dropped["rule_id"]) <= {CAP_CHANNEL, CAP_BUDGET}
    assert dropped["reason"].str.contains("capacity|budget").all()
    assert dropped["channel"].isna().all() and (dropped["value_removed"] >= 0).all()
    # Rows the rules suppressed are untouched.
    assert (out["rule_id"] == "ELIG_X").sum() == len(options)


def test_brute_force_on_a_tiny_case_and_the_shadow_price():
    # Two accounts want the one call-center seat; the loser has an app alternative worth 3.
    options = [[("call_center", 10.0)], [("call_center", 8.0), ("app", 3.0)]]
    out, rep = apply_capacity(ranking(options), CapacityConfig(per_channel={"call_center": 1}))
    best = max(sum(v for v in pick if v) for pick in itertools.product([0, 10.0], [0, 8.0, 3.0])
               if sum(1 for v in pick if v in (10.0, 8.0)) <= 1)
    assert rep.value_after == pytest.approx(best) == 13.0
    contacts = out[out["selected"] & (out["rank"] == 1)].set_index("account_id")
    assert contacts.loc["A001", "offer_id"] == "O2" and contacts.loc["A001", "channel"] == "app"
    assert rep.moved == 1 and rep.binding == ["channel:call_center"]
    (lim,) = rep.limits
    # One more seat would let A001 take its call (8) instead of the app (3): worth 5.
    assert lim.shadow_price == pytest.approx(5.0) and lim.used == 1 and lim.wanted == 2
    dropped = out[(out["account_id"] == "A001") & (out["offer_id"] == "O1")].iloc[0]
    assert dropped["rule_id"] == CAP_CHANNEL and "call_center" in dropped["reason"]


def test_budget_keeps_the_most_valuable_contacts_and_reports_its_price():
    options = [[("app", float(v))] for v in (5, 9, 1, 7)]
    out, rep = apply_capacity(ranking(options), CapacityConfig(max_contacts=2))
    kept = set(out.loc[out["selected"], "account_id"])
    assert kept == {"A001", "A003"} and rep.binding == ["budget"]
    assert rep.limits[0].shadow_price == pytest.approx(5.0)  # the best contact left out
    assert set(out.loc[out["layer"] == "capacity", "rule_id"]) == {CAP_BUDGET}


def test_no_limit_is_a_no_op_and_room_is_not_binding():
    frame = ranking([[("app", 4.0)], [("email", 2.0)]])
    same, rep = apply_capacity(frame, CapacityConfig())
    assert same is frame and rep.method == "none" and rep.lines() == []
    _, rep = apply_capacity(frame, CapacityConfig(max_contacts=10, per_channel={"email": 5}))
    assert rep.binding == [] and rep.contacts_after == 2


def test_bad_capacities_are_refused_by_the_config(tmp_path):
    with pytest.raises(ValueError, match="capacities must be >= 0"):
        CapacityConfig(per_channel={"call_center": -1})
    with pytest.raises(ValueError):
        NboConfig.model_validate({"capacity": {"per_channel": {"pigeon": 3}}})
    with pytest.raises(ValueError):
        NboConfig.model_validate({"capacity": {"max_contacts": -2}})
    bad = tmp_path / "nbo.yaml"
    bad.write_text("capacity:\n  per_channel: {call_center: many}\n")
    with pytest.raises(ConfigError, match="per_channel"):
        load_nbo_config(bad)


@pytest.mark.parametrize("seed", range(6))
def test_the_decomposition_for_large_batches_is_exact(seed, monkeypatch):
    """Above EXACT_LP_OPTIONS the program is decomposed with a duality certificate: same optimum."""
    import telco_nbo.nbo.capacity as capacity

    rng = np.random.default_rng(100 + seed)
    options = random_options(rng, 600)
    cap = CapacityConfig(max_contacts=int(rng.integers(100, 500)),
                         per_channel={"call_center": int(rng.integers(20, 150)), "email": int(rng.integers(20, 200))})
    monkeypatch.setattr(capacity, "EXACT_LP_OPTIONS", 150)
    out, rep = apply_capacity(ranking(options), cap)
    assert rep.method in ("lp-decomposed", "lp")
    contacts = out[out["selected"] & (out["rank"] == 1)]
    assert len(contacts) <= cap.max_contacts
    for c, k in cap.per_channel.items():
        assert (contacts["channel"] == c).sum() <= k
    assert rep.value_after == pytest.approx(best_by_integer_program(options, cap), rel=1e-9, abs=1e-6)
    # Shadow prices need not be unique (a degenerate program); these must be optimal ones: the dual
    # objective at them, sum_a max(0, best net value) + sum of price x limit, equals the optimum.
    price = {lim.name: lim.shadow_price for lim in rep.limits}
    dual = sum(max(0.0, max(v - price.get(f"channel:{c}", 0.0) - price["budget"] for c, v in opts)) for opts in options)
    dual += sum(price[f"channel:{c}"] * k for c, k in cap.per_channel.items()) + price["budget"] * cap.max_contacts
    assert dual == pytest.approx(rep.value_after, rel=1e-7, abs=1e-5)
