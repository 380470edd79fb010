"""Deciding under uncertainty: the effect's standard error, lower-bound decisions, value removed per rule."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from test_nbo_rank import scores_for
from test_nbo_rules import one_account

from telco_nbo.models.uplift import calibrated_effect_se, calibration_band, calibration_from_holdout
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import decisions_from_frame, rank_batch
from telco_nbo.nbo.scores import align_scores

CFG = NboConfig(caps={"promo_per_household": 5, "promo_per_account": 5}, conflicts=[], risk="neutral")


def with_se(scores, se):
    return type(scores)(scores.accounts.assign(retention_uplift_se=se), scores.offers, scores.reasons,
                        scores.model_versions)


def test_lcb_subtracts_the_effects_error_and_needs_the_bound_to_clear_the_margin():
    f = one_account(account_lifecycle_stage="at_risk")
    s = with_se(scores_for(f, {"RETENTION_DISCOUNT": 0.3}, uplift=0.06, clv=1000.0), 0.05)
    neutral = rank_batch(f, s, config=CFG, top_k=None).set_index("offer_id").loc["RETENTION_DISCOUNT"]
    ev = neutral["expected_value"]
    assert neutral["selected"] and neutral["decision_value"] == pytest.approx(ev)
    assert NboConfig().risk == "lcb"  # the default
    lcb = rank_batch(f, s, config=CFG.model_copy(update={"risk": "lcb", "lcb_z": 1.0}), top_k=None)
    row = lcb.set_index("offer_id").loc["RETENTION_DISCOUNT"]
    # EV = 0.3 x -10 x 12 + 0.06 x 1000 - cost = 24 - cost; the bound takes 1 x 0.05 x 1000 = 50 off.
    assert row["uplift_se"] == pytest.approx(0.05)
    assert row["decision_value"] == pytest.approx(ev - 50.0)
    assert not row["selected"] and row["rule_id"] == "VAL_BELOW_BOUND" and "lower confidence bound" in row["reason"]
    # Offers valued on acceptance alone carry no effect error: their bound is their value.
    up = lcb.set_index("offer_id").loc["DATA_UPSELL"]
    assert up["uplift_se"] == 0 and up["decision_value"] == pytest.approx(up["expected_value"])
    # Without a standard error (a model trained before the band existed) the bound is the estimate.
    no_se = rank_batch(f, scores_for(f, {"RETENTION_DISCOUNT": 0.3}, uplift=0.06, clv=1000.0),
                       config=CFG.model_copy(update={"risk": "lcb"}), top_k=None).set_index("offer_id")
    assert no_se.loc["RETENTION_DISCOUNT", "selected"]


def test_lcb_ranks_by_the_bound():
    f = one_account(account_lifecycle_stage="at_risk")
    # A retention offer worth more on average but resting on a noisy effect, and a sure upsell.
    s = with_se(scores_for(f, {"RETENTION_DISCOUNT": 0.0, "DATA_UPSELL": 0.5}, uplift=0.08, clv=1000.0), 0.06)
    top = lambda cfg: rank_batch(f, s, config=cfg, top_k=1).query("selected")["offer_id"].tolist()  # noqa: E731
    assert top(CFG) == ["RETENTION_DISCOUNT"]
    assert top(CFG.model_copy(update={"risk": "lcb"})) == ["DATA_UPSELL"]


def test_bad_standard_errors_are_named():
    f = one_account()
    s = with_se(scores_for(f), -0.1)
    with pytest.raises(Exception, match="retention_uplift_se"):
        align_scores(s, f["account_id"].to_numpy(), np.array(["RETENTION_DISCOUNT"]))


def test_value_removed_is_what_the_rule_held_back():
    f = one_account(account_lifecycle_stage="at_risk", account_open_service_issue=True)
    out = rank_batch(f, scores_for(f, 0.3), config=CFG, top_k=None).set_index("offer_id")
    row = out.loc["DATA_UPSELL"]
    assert row["rule_id"] == "SUIT_OPEN_SERVICE_ISSUE" and not row["selected"]
    # Its value had the rule not applied: acceptance x margin x months - cost (> 0 here).
    assert row["value_removed"] > 0 and np.isnan(row["expected_value"])
    assert out.loc[out["selected"], "value_removed"].isna().all()
    # Below the floor: the value is not positive, so nothing of value was removed.
    dogs = rank_batch(f.assign(account_open_service_issue=False), scores_for(f, 0.3, uplift=-0.2), config=CFG,
                      top_k=None).set_index("offer_id")
    assert dogs.loc["RETENTION_DISCOUNT", "rule_id"] == "VAL_BELOW_FLOOR"
    assert dogs.loc["RETENTION_DISCOUNT", "value_removed"] == 0
    # The typed decisions carry it too.
    (d,) = decisions_from_frame(out.reset_index())
    sup = {s.offer_id: s for s in d.suppressed}
    assert sup["DATA_UPSELL"].value_removed == pytest.approx(row["value_removed"])


def test_calibration_band_matches_statsmodels_wls():
    """The slope's variance is the weighted least-squares one (statsmodels, known variances)."""
    rng = np.random.default_rng(3)
    n = 40_000
    tau_pred = rng.normal(-0.03, 0.02, n)
    t = rng.integers(0, 2, n)
    p = np.clip(0.2 + t * (0.6 * tau_pred), 0.01, 0.99)
    y = (rng.random(n) < p).astype(float)
    var_ate, var_slope, mean_tau = calibration_band(tau_pred, t, y)
    assert mean_tau == pytest.approx(tau_pred.mean())
    p1, p0 = y[t == 1].mean(), y[t == 0].mean()
    base_ate = p1 * (1 - p1) / (t == 1).sum() + p0 * (1 - p0) / (t == 0).sum()
    assert var_ate >= base_ate - 1e-15
    # Rebuild the bins and fit with statsmodels: the slope's variance with known (not estimated) errors.
    edges = np.unique(np.quantile(tau_pred, np.linspace(0, 1, 11)))
    which = np.clip(np.searchsorted(edges, tau_pred, side="right") - 1, 0, len(edges) - 2)
    xs, obs, w = [], [], []
    for b in range(len(edges) - 1):
        m = which == b
        q1, q0 = y[m & (t == 1)].mean(), y[m & (t == 0)].mean()
        xs.append(tau_pred[m].mean()); obs.append(q1 - q0)
        w.append(1 / (q1 * (1 - q1) / (m & (t == 1)).sum() + q0 * (1 - q0) / (m & (t == 0)).sum()))
    fit = sm.WLS(np.array(obs), sm.add_constant(np.array(xs)), weights=np.array(w)).fit()
    known_var = fit.cov_params()[1, 1] / fit.scale  # scale 1: the bin variances are known
    # Widened by the fit's chi-square per degree of freedom when above 1 (statsmodels' own scale).
    assert var_slope == pytest.approx(known_var * max(1.0, fit.scale), rel=1e-9)
    se = calibrated_effect_se(np.array([mean_tau, mean_tau + 0.05]), (var_ate, var_slope, mean_tau))
    assert se[0] == pytest.approx(np.sqrt(var_ate)) and se[1] > se[0]
    assert np.isnan(calibrated_effect_se(np.array([0.1]), None)).all()
    # And the calibration it accompanies is sane on this data (slope in [0, 1]).
    a, b = calibration_from_holdout(tau_pred, t, y)
    assert 0 <= b <= 1


def test_band_covers_the_truth_at_its_stated_rate():
    """Over many simulated experiments, mean +- 1.96 se of the calibrated effect covers the true mean ~95 %."""
    rng = np.random.default_rng(11)
    hits = 0
    reps = 200
    for _ in range(reps):
        n = 6000
        tau_pred = rng.normal(-0.03, 0.02, n)
        true_tau = 0.5 * tau_pred  # the learner overstates by 2x
        t = rng.integers(0, 2, n)
        y = (rng.random(n) < np.clip(0.25 + t * true_tau, 0, 1)).astype(float)
        a, b = calibration_from_holdout(tau_pred, t, y)
        band = calibration_band(tau_pred, t, y)
        x = -0.05
        est = a + b * x
        se = calibrated_effect_se(np.array([x]), band)[0]
        hits += abs(est - 0.5 * x) <= 1.96 * se
    assert hits / reps >= 0.88, hits / reps


def test_band_widens_when_the_line_misses_the_bins():
    """A non-linear truth the calibration line cannot follow: the band grows with the misfit."""
    rng = np.random.default_rng(5)
    n = 200_000
    tau_pred = rng.uniform(-0.1, 0.1, n)
    true_tau = np.where(np.abs(tau_pred) > 0.05, -0.08, 0.0)  # a step, not a line
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < np.clip(0.3 + t * true_tau, 0, 1)).astype(float)
    var_ate, var_slope, _ = calibration_band(tau_pred, t, y)
    edges = np.unique(np.quantile(tau_pred, np.linspace(0, 1, 11)))
    which = np.clip(np.searchsorted(edges, tau_pred, side="right") - 1, 0, len(edges) - 2)
    xs = np.array([tau_pred[which == b].mean() for b in range(len(edges) - 1)])
    w = np.array([1 / (y[(which == b) & (t == 1)].var() / ((which == b) & (t == 1)).sum()
                       + y[(which == b) & (t == 0)].var() / ((which == b) & (t == 0)).sum()) for b in range(len(xs))])
    known = 1 / np.sum(w * (xs - np.average(xs, weights=w)) ** 2)
    assert var_slope > 3 * known


def with_offer_effect(scores, offer_id, uplift, se):
    """Scores where one offer carries its own (logged) effect on churn and its error."""
    off = scores.offers.copy()
    hit = off["offer_id"] == offer_id
    off["uplift"] = np.where(hit, uplift, np.nan)
    off["uplift_se"] = np.where(hit, se, np.nan)
    return type(scores)(scores.accounts, off, scores.reasons, scores.model_versions)


def test_a_per_offer_effect_counts_for_its_offer_only_and_its_error_enters_the_bound():
    f = one_account(account_lifecycle_stage="at_risk")
    base = with_se(scores_for(f, {"RETENTION_DISCOUNT": 0.3, "DATA_UPSELL": 0.2}, uplift=0.06, clv=1000.0), 0.0)
    s = with_offer_effect(base, "DATA_UPSELL", 0.02, 0.01)
    lcb = CFG.model_copy(update={"risk": "lcb", "lcb_z": 1.0, "lcb_per_offer": True})
    out = rank_batch(f, s, config=lcb, top_k=None).set_index("offer_id")
    plain = rank_batch(f, base, config=lcb, top_k=None).set_index("offer_id")
    up, up0 = out.loc["DATA_UPSELL"], plain.loc["DATA_UPSELL"]
    # Its own effect adds 0.02 x CLV to its value; the bound takes 1 x 0.01 x CLV off again.
    assert up["uplift"] == pytest.approx(0.02) and up0["uplift"] == 0
    assert up["expected_value"] == pytest.approx(up0["expected_value"] + 20.0)
    assert up["uplift_se"] == pytest.approx(0.01)
    assert up["decision_value"] == pytest.approx(up["expected_value"] - 10.0)
    # By default the per-offer effect counts at its (empirical-Bayes) estimate, without the bound.
    default = rank_batch(f, s, config=lcb.model_copy(update={"lcb_per_offer": False}), top_k=None)
    up_default = default.set_index("offer_id").loc["DATA_UPSELL"]
    assert up_default["uplift_se"] == 0 and up_default["decision_value"] == pytest.approx(up["expected_value"])
    assert NboConfig().lcb_per_offer is False
    # The retention offer keeps the experiment's account-level effect; nothing is lent either way.
    assert out.loc["RETENTION_DISCOUNT", "uplift"] == pytest.approx(0.06)
    # The per-offer error travels through the Scores frames and is checked like the others.
    bad = with_offer_effect(base, "DATA_UPSELL", 0.02, -1.0)
    with pytest.raises(Exception, match="uplift_se"):
        align_scores(bad, f["account_id"].to_numpy(), np.array(["RETENTION_DISCOUNT", "DATA_UPSELL"]))
