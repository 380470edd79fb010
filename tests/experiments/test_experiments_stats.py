"""The readout's statistics agree with scipy / statsmodels, and are valid by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats import proportion as smp

from telco_nbo.experiments import stats
from telco_nbo.experiments.models import MetricSpec
from telco_nbo.experiments.comparison import compare
from telco_nbo.experiments.readout import run_readout

CASES = [(120, 1000, 100, 1000), (45, 380, 61, 410), (5, 50, 1, 60), (900, 20000, 820, 19500)]


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), CASES)
def test_two_proportions_match_statsmodels(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    r = stats.two_proportions(x_t, n_t, x_c, n_c, alpha=0.05)
    # Unpooled Wald test, the same standard error as the interval (issue 19: they must agree).
    ref = smp.test_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", correction=False)
    assert float(r.statistic) == pytest.approx(ref.statistic, abs=1e-6)
    assert float(r.p_value) == pytest.approx(ref.pvalue, abs=1e-6)
    lo, hi = smp.confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=0.05)
    assert float(r.ci_low) == pytest.approx(lo, abs=1e-6)
    assert float(r.ci_high) == pytest.approx(hi, abs=1e-6)
    # The Wald statistic (unpooled) of test_proportions_2indep is diff / the interval's se.
    wald = smp.test_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", correction=False)
    assert float(r.diff / r.se) == pytest.approx(wald.statistic, abs=1e-6)
    assert float(r.diff) == pytest.approx(wald.diff, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 30.0, size=80 + 40 * seed)
    b = rng.normal(55.0, 10.0 + 20 * seed, size=130)
    r = stats.welch(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b), alpha=0.1)
    ref = sps.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert float(r.statistic) == pytest.approx(ref.statistic, abs=1e-6)
    assert float(r.p_value) == pytest.approx(ref.pvalue, abs=1e-6)
    assert float(r.df) == pytest.approx(ref.df, abs=1e-6)
    assert float(r.ci_low) == pytest.approx(ci.low, abs=1e-6)
    assert float(r.ci_high) == pytest.approx(ci.high, abs=1e-6)


def test_compare_real_path_matches_libraries() -> None:
    """The readout's own comparison (not just the vectorized core) reproduces the libraries."""
    rng = np.random.default_rng(5)
    yt, yc = rng.random(700) < 0.23, rng.random(650) < 0.19
    c = compare(MetricSpec(name="m", kind="binary"), yt, yc, arm="t", reference="c", alpha=0.05, seed=0)
    ref = smp.test_proportions_2indep(yt.sum(), 700, yc.sum(), 650, method="wald", correction=False)
    assert c is not None and c.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    assert c.statistic == pytest.approx(ref.statistic, abs=1e-6)
    at, ac = rng.lognormal(3, 1, 300), rng.lognormal(3.1, 1, 280)
    c = compare(MetricSpec(name="r", kind="continuous"), at, ac, arm="t", reference="c", alpha=0.05, seed=0)
    ref = sps.ttest_ind(at, ac, equal_var=False)
    assert c is not None and c.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    assert (c.abs_ci_low, c.abs_ci_high) == pytest.approx(tuple(ref.confidence_interval()), abs=1e-6)


def test_relative_lift_delta_method_against_simulation() -> None:
    # The delta-method se of m_t/m_c - 1 matches the spread of the ratio over resamples.
    rng = np.random.default_rng(3)
    n, mu_t, mu_c, sd = 2000, 52.0, 50.0, 20.0
    yt = rng.normal(mu_t, sd, (4000, n))
    yc = rng.normal(mu_c, sd, (4000, n))
    ratio = yt.mean(1) / yc.mean(1) - 1
    r = stats.welch(mu_t, sd**2, n, mu_c, sd**2, n)
    lift, lo, hi = stats.relative_lift(r, 0.05)
    se = (hi - lo) / (2 * sps.norm.ppf(0.975))
    assert float(lift) == pytest.approx(0.04)
    assert float(se) == pytest.approx(ratio.std(), rel=0.05)


def test_relative_lift_undefined_for_zero_control() -> None:
    r = stats.two_proportions(10, 100, 0, 100)
    lift, lo, hi = stats.relative_lift(r)
    assert np.isnan(lift) and np.isnan(lo) and np.isnan(hi)


def test_bayes_normal_closed_form_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    for d, se, hib in [(1.5, 1.0, True), (-0.3, 0.5, True), (0.2, 0.4, False)]:
        prob, loss = stats.bayes_normal(d, se, higher_is_better=hib)
        draws = rng.normal(d, se, 400_000) * (1 if hib else -1)
        assert float(prob) == pytest.approx(np.mean(draws > 0), abs=3e-3)
        assert float(loss) == pytest.approx(np.mean(np.maximum(-draws, 0)), abs=3e-3)


def test_bayes_binary_is_deterministic_and_directional() -> None:
    a = stats.bayes_binary(130, 1000, 100, 1000, seed=7)
    assert a == stats.bayes_binary(130, 1000, 100, 1000, seed=8) == stats.bayes_binary(130, 1000, 100, 1000)
    assert a[0] > 0.97 and a[1] < 1e-3
    # For churn (lower is better) the same numbers mean the treatment is worse.
    p, loss = stats.bayes_binary(130, 1000, 100, 1000, higher_is_better=False, seed=7)
    assert p < 0.03 and loss == pytest.approx(0.03, abs=0.01)


def test_srm_matches_scipy_and_flags_48_52() -> None:
    chi2, p = stats.srm_test({"a": 10_000, "b": 10_000}, {"a": 0.5, "b": 0.5})
    assert chi2 == 0 and p == 1
    chi2, p = stats.srm_test({"a": 9_600, "b": 10_400}, {"a": 1, "b": 1})
    ref = sps.chisquare([9_600, 10_400])
    assert chi2 == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert p < 0.001


def test_injected_48_52_split_is_flagged_by_the_readout() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    arm = np.where(rng.random(n) < 0.48, "control", "treatment")
    frame = pd.DataFrame({"unit_id": [f"H{i}" for i in range(n)], "arm": arm, "churned": rng.random(n) < 0.1})
    metrics = [MetricSpec(name="churned", kind="binary", higher_is_better=False)]
    r = run_readout(frame, experiment_id="E", arms=["control", "treatment"], control_arm="control", metrics=metrics)
    assert r.srm.flagged and not r.trustworthy and r.srm.p_value < 0.001
    assert "SAMPLE RATIO MISMATCH" in r.warnings[0]
    # The same data read against its true 48/52 design is fine.
    r2 = run_readout(frame, experiment_id="E", arms=["control", "treatment"], control_arm="control", metrics=metrics,
                     designed_split={"control": 0.48, "treatment": 0.52})
    assert not r2.srm.flagged and r2.trustworthy


def test_cuped_theta_and_variance_reduction() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    x = rng.normal(100, 20, n)
    g = rng.integers(0, 3, n)
    y = 5 + 0.8 * x + 10 * g + rng.normal(0, 12, n)
    theta, red = stats.cuped_theta(y, x, g)
    # Within-arm OLS slope; the arm effect (10 per arm) must not leak into theta.
    assert theta == pytest.approx(0.8, abs=0.01)
    rho2 = (0.8 * 20) ** 2 / ((0.8 * 20) ** 2 + 12**2)
    assert red == pytest.approx(rho2, abs=0.01)
    adj = stats.cuped_adjust(y, x, theta)
    assert adj.mean() == pytest.approx(y.mean())
    assert stats.cuped_theta(y, np.ones(n), g) == (0.0, 0.0)


def test_multipletests_passthrough() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert stats.adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert stats.adjust_pvalues(p, "fdr_bh") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2], abs=1e-6)
    assert stats.adjust_pvalues([], "holm") == []
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for m in (7, 40):  # each statsmodels Holm call runs gc.collect(): keep them few
        raw = rng.random(m) ** 3
        raw[: m // 3] = raw[m // 3]  # ties
        assert np.allclose(stats.holm(raw), multipletests(raw, method="holm")[1], atol=1e-12)


# --- validity by simulation (vectorized through the same functions the readout calls) ------------


def test_binary_intervals_cover_truth_93_to_97_percent() -> None:
    rng = np.random.default_rng(20240601)
    sims, n = 2000, 3000
    p_c, p_t = 0.12, 0.15
    x_c, x_t = rng.binomial(n, p_c, sims), rng.binomial(n, p_t, sims)
    r = stats.two_proportions(x_t, n, x_c, n, alpha=0.05)
    cover = np.mean((r.ci_low <= p_t - p_c) & (p_t - p_c <= r.ci_high))
    assert 0.93 <= cover <= 0.97, cover
    lift, lo, hi = stats.relative_lift(r, 0.05)
    rel_cover = np.mean((lo <= p_t / p_c - 1) & (p_t / p_c - 1 <= hi))
    assert 0.93 <= rel_cover <= 0.97, rel_cover


def test_continuous_intervals_cover_truth_93_to_97_percent() -> None:
    rng = np.random.default_rng(7)
    sims, n_t, n_c = 1000, 400, 500
    # Skewed revenue-like outcomes with unequal variances: Welch's home turf.
    yt = rng.gamma(2.0, 35.0, (sims, n_t)) + 3.0
    yc = rng.gamma(2.0, 30.0, (sims, n_c))
    true = 2.0 * 35.0 + 3.0 - 2.0 * 30.0
    r = stats.welch(yt.mean(1), yt.var(1, ddof=1), n_t, yc.mean(1), yc.var(1, ddof=1), n_c, alpha=0.05)
    cover = np.mean((r.ci_low <= true) & (true <= r.ci_high))
    assert 0.93 <= cover <= 0.97, cover


def test_aa_experiments_flag_4_to_6_percent() -> None:
    rng = np.random.default_rng(99)
    sims, n = 4000, 2000
    x1, x2 = rng.binomial(n, 0.1, sims), rng.binomial(n, 0.1, sims)
    rate_bin = np.mean(stats.two_proportions(x1, n, x2, n).p_value < 0.05)
    assert 0.04 <= rate_bin <= 0.06, rate_bin
    y1, y2 = rng.normal(50, 15, (sims, 300)), rng.normal(50, 15, (sims, 300))
    r = stats.welch(y1.mean(1), y1.var(1, ddof=1), 300, y2.mean(1), y2.var(1, ddof=1), 300)
    rate_cont = np.mean(r.p_value < 0.05)
    assert 0.04 <= rate_cont <= 0.06, rate_cont
    # An A/A interval covers 0 exactly when the test does not flag.
    assert np.array_equal((r.ci_low > 0) | (r.ci_high < 0), r.p_value < 0.05)


def test_full_readout_aa_false_positive_rate_is_nominal() -> None:
    """200 A/A readouts through run_readout itself (the whole code path, CUPED included).

    The >= 200-experiment calibration bands are checked on the vectorized core above; this checks
    that the full path adds nothing that breaks calibration.
    """
    rng = np.random.default_rng(1234)
    n, flagged, cuped_flagged, covered = 600, 0, 0, 0
    for _ in range(200):
        pre = rng.gamma(3.0, 20.0, n)
        frame = pd.DataFrame({
            "unit_id": np.arange(n).astype(str),
            "arm": rng.permutation(np.repeat(["control", "b"], n // 2)),
            "revenue": 12 * pre + rng.normal(0, 150, n),
            "pre_revenue": pre,
        })
        spec = MetricSpec(name="revenue", kind="continuous", covariate="pre_revenue")
        r = run_readout(frame, experiment_id="AA", arms=["control", "b"], control_arm="control", metrics=[spec])
        m = r.metric("revenue")
        flagged += m.comparisons[0].significant
        cuped_flagged += m.cuped.comparisons[0].significant
        covered += m.cuped.comparisons[0].abs_ci_low <= 0 <= m.cuped.comparisons[0].abs_ci_high
    # 200 runs: P(Binomial(200, .05) > 20) < 0.5 %. (3,000 runs of this same path give 5.0 % for
    # CUPED and 4.6 % raw; a run of 200 is noisy, hence the one-sided bound.)
    assert flagged <= 20 and cuped_flagged <= 20
    assert covered >= 180
