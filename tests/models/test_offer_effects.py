"""Per-offer effects on churn from logged randomized contacts: known answers, coverage, shrinkage."""

from __future__ import annotations

import numpy as np
import pytest

from telco_nbo.errors import DataValidationError
from telco_nbo.models.offer_effects import NO_CONTACT, OfferEffects, estimate_offer_effects, shrink_to_zero


def _logs(n: int, rho: dict[str, float], seed: int, control_share: float = 0.3, calib: float = 1.0):
    """Randomized logs: baseline risk varies by account; offer ``o`` multiplies it by ``1 + rho[o]``."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.02, 0.4, n)
    offers = list(rho)
    pick = rng.random(n)
    action = np.where(pick < control_share, NO_CONTACT,
                      np.array(offers, dtype=object)[rng.integers(0, len(offers), n)]).astype(object)
    mult = np.array([1.0 + rho.get(a, 0.0) for a in action])
    y = rng.random(n) < np.clip(calib * base * mult, 0, 1)
    return action, y, base, np.arange(n)


def test_equals_the_ratio_of_standardized_rates_when_the_model_is_saturated() -> None:
    """With one indicator per offer the Poisson MLE is (observed / expected) over the control's ratio."""
    action, y, base, groups = _logs(6000, {"A": -0.3, "B": 0.2}, seed=1)
    eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=10, min_control=10)
    ctrl = action == NO_CONTACT
    c = y[ctrl].sum() / base[ctrl].sum()
    assert eff.baseline_ratio == pytest.approx(c, rel=1e-6)
    for o in ("A", "B"):
        sel = action == o
        assert eff.effects[o].relative_effect == pytest.approx(y[sel].sum() / base[sel].sum() / c - 1, rel=1e-6)
        assert eff.effects[o].n_contacts == sel.sum() and eff.effects[o].n_churned == y[sel].sum()
        lo, hi = eff.effects[o].ci95
        assert lo < eff.effects[o].relative_effect < hi


def test_intervals_cover_the_true_effect_and_ignore_a_miscalibrated_baseline() -> None:
    """95 % intervals cover the true relative effect in about 95 % of repeated logs, even when the
    baseline model is off by a constant factor (absorbed by the control units)."""
    truth = {"A": -0.25, "B": 0.0, "C": 0.15}
    hits, total = 0, 0
    for seed in range(60):
        action, y, base, groups = _logs(4000, truth, seed=seed, calib=0.7)
        eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=50, min_control=50)
        for o, r in truth.items():
            lo, hi = eff.effects[o].ci95
            hits += lo <= r <= hi
            total += 1
    assert 0.90 <= hits / total <= 0.99


def _targeted_logs(n: int, seed: int):
    """A logging policy that offers A only to risky units, and a baseline miscalibrated by risk.

    Offer A (true effect -25 %) is available where the baseline says ``b > 0.2``; the logging
    policy picks uniformly among "no contact" and the available offers, except that B is picked
    twice as often as "no contact" (weights ``1 / propensity``). The true churn is
    ``b x (0.3 + 3.5 b)``: the baseline is too high for safe units, too low for risky ones.
    """
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.02, 0.4, n)
    has_a = b > 0.2
    u = rng.random(n)
    # Available: none (weight 1), B (weight 2), A (weight 1, where available).
    tot = np.where(has_a, 4.0, 3.0)
    p_none, p_b = 1 / tot, 2 / tot
    action = np.where(u < p_none, NO_CONTACT, np.where(u < p_none + p_b, "B", "A")).astype(object)
    prop = np.where(action == NO_CONTACT, p_none, np.where(action == "B", p_b, 1 / tot))
    mult = np.where(action == "A", 0.75, 1.0)
    y = rng.random(n) < np.clip(b * (0.3 + 3.5 * b) * mult, 0, 1)
    return action, y, b, np.arange(n), {"A": has_a}, 1 / prop


def test_each_offer_is_compared_with_the_units_it_was_available_to() -> None:
    """Stratified by availability and weighted by the logged propensities, the intervals cover the
    truth although the offer goes to risky units and the baseline is miscalibrated by risk; compared
    with every not-contacted unit instead, the same offer looks much less protective than it is."""
    hits, naive = 0, []
    for seed in range(40):
        action, y, b, g, avail, w = _targeted_logs(6000, seed)
        eff = estimate_offer_effects(action, y, b, g, horizon_days=90, available=avail, weights=w,
                                     min_contacts=50, min_control=50)
        lo, hi = eff.effects["A"].ci95
        hits += lo <= -0.25 <= hi
        lo, hi = eff.effects["B"].ci95
        hits += lo <= 0.0 <= hi
        naive.append(estimate_offer_effects(action, y, b, g, horizon_days=90, weights=w, min_contacts=50,
                                            min_control=50).effects["A"].relative_effect)
    assert 0.9 <= hits / 80 <= 1.0
    # Unstratified, A's contacts (risky units, under-predicted) meet safer controls (over-predicted).
    assert np.mean(naive) > -0.2  # truth -0.25; a bias of several standard errors of the mean


def test_null_offers_rarely_pass_the_evidence_test() -> None:
    """Eleven offers without any effect: Holm's test keeps the family-wise false alarms near 5 %."""
    offers = {f"O{k}": 0.0 for k in range(11)}
    alarms = 0
    for seed in range(20):
        action, y, base, groups = _logs(8000, offers, seed=100 + seed, control_share=0.15)
        eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=50, min_control=50)
        alarms += any(e.evidence for e in eff.effects.values())
        assert all(e.shrunk == 0 for e in eff.effects.values() if not e.evidence)
    assert alarms <= 3


def test_household_clusters_widen_the_interval() -> None:
    """Accounts of one household share a fate: clustered errors are wider than per-row ones."""
    rng = np.random.default_rng(3)
    n_hh = 1500
    hh = np.repeat(np.arange(n_hh), 3)
    base = np.repeat(rng.uniform(0.05, 0.3, n_hh), 3)
    action = np.repeat(np.where(rng.random(n_hh) < 0.4, NO_CONTACT, "A").astype(object), 3)
    y = np.repeat(rng.random(n_hh) < base[::3] * np.where(action[::3] == "A", 0.8, 1.0), 3)  # one fate per household
    clustered = estimate_offer_effects(action, y, base, hh, horizon_days=90, min_contacts=10, min_control=10)
    per_row = estimate_offer_effects(action, y, base, np.arange(len(y)), horizon_days=90, min_contacts=10, min_control=10)
    assert clustered.effects["A"].se > 1.5 * per_row.effects["A"].se


def test_too_few_contacts_or_controls_give_no_estimate() -> None:
    action, y, base, groups = _logs(3000, {"A": -0.2, "B": 0.0}, seed=4)
    action[(action == "B")] = "B"
    rare = np.flatnonzero(action == "B")[50:]
    action[rare] = "A"
    eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=100, min_control=100)
    assert set(eff.effects) == {"A"} and eff.too_few == {"B": 50}
    none = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=100, min_control=10**6)
    assert none.effects == {} and set(none.too_few) == {"A", "B"}
    u, se = none.uplift(np.array([0.1, 0.2]), ["A", "B"])
    assert np.isnan(u).all() and np.isnan(se).all()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(DataValidationError, match="lengths differ"):
        estimate_offer_effects(["A"], [1, 0], [0.1], [1], horizon_days=90)
    with pytest.raises(DataValidationError, match=r"in \[0, 1\]"):
        estimate_offer_effects(["A", ""], [1, 0], [0.1, 1.5], [1, 2], horizon_days=90)


def test_shrinkage_known_answers() -> None:
    # Estimates that spread no more than their noise: every offer counts as no effect.
    est, se, tau = shrink_to_zero(np.array([0.1, -0.1, 0.05]), np.full(3, 0.01))
    assert tau == 0 and (est == 0).all() and (se == 0).all()
    # Independent, equal variances v: tau^2 = mean(est^2) - v (the marginal likelihood's maximum),
    # posterior N(est w, w v) with w = tau^2 / (tau^2 + v).
    e, v = np.array([-0.6, 0.05, 0.4, 0.3]), 0.01
    est, se, tau = shrink_to_zero(e, np.full(4, v))
    tau2 = np.mean(e ** 2) - v
    w = tau2 / (tau2 + v)
    assert tau == pytest.approx(np.sqrt(tau2), rel=1e-4)
    np.testing.assert_allclose(est, e * w, rtol=1e-4)
    np.testing.assert_allclose(se, np.sqrt(w * v), rtol=1e-4)
    assert np.all(np.abs(est) < np.abs(e))


def test_a_shift_shared_through_the_controls_is_noise_not_effects() -> None:
    """All offers share the not-contacted units: their common noise must not read as real effects."""
    e = np.array([0.20, 0.23, 0.17, 0.21, 0.19])
    shared = 0.001 * np.eye(5) + 0.01 * np.ones((5, 5))  # mostly the controls' noise
    _, _, tau_shared = shrink_to_zero(e, shared)
    _, _, tau_indep = shrink_to_zero(e, np.diag(shared))
    assert tau_shared == 0 and tau_indep > 0.05


def test_the_estimator_shrinks_with_the_regressions_covariance() -> None:
    """Few controls, many contacts: the offers' estimates move together and are shrunk as such."""
    action, y, base, groups = _logs(30000, {"A": 0.0, "B": 0.0, "C": 0.0}, seed=8, control_share=0.02)
    eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, min_contacts=10, min_control=10)
    assert all(e.shrunk == 0 and e.shrunk_se == 0 for e in eff.effects.values())


def test_uplift_and_spec_round_trip() -> None:
    action, y, base, groups = _logs(20000, {"A": -0.5, "B": 0.3, "C": 0.0}, seed=5)
    eff = estimate_offer_effects(action, y, base, groups, horizon_days=90, policies=["explore"], min_contacts=10)
    assert eff.tau > 0  # these effects stand out from their noise
    assert eff.effects["A"].evidence and eff.effects["B"].evidence and eff.effects["A"].p_value < 1e-6
    # No evidence, no effect in decisions (the estimate is kept for the record).
    assert not eff.effects["C"].evidence and eff.effects["C"].shrunk == 0 and eff.effects["C"].shrunk_se == 0
    back = OfferEffects.from_spec(eff.to_spec())
    assert back == eff
    churn = np.array([0.0, 0.1, 0.5])
    u, se = back.uplift(churn, ["B", "Z", "A"])
    np.testing.assert_allclose(u[:, 0], -churn * eff.effects["B"].shrunk)
    np.testing.assert_allclose(u[:, 2], -churn * eff.effects["A"].shrunk)
    np.testing.assert_allclose(se[:, 2], churn * eff.effects["A"].shrunk_se)
    assert np.isnan(u[:, 1]).all()
    assert u[2, 2] > 0.1  # offer A removes a large share of a risky account's churn
    assert OfferEffects.from_spec(None) is None
