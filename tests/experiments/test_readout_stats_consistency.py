"""Issue 19, item 9: the readout's p-values agree with its intervals; chance to win is exact.

Checked against statsmodels (two proportions), a direct numerical double integral from scipy and
the exact finite sum for Beta posteriors with integer parameters (chance to win), and simulation
(relative p-value size, relative sequential interval coverage under peeking).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from scipy.special import betaln
from statsmodels.stats import proportion as smp

from telco_nbo.experiments import sequential as seqmod
from telco_nbo.experiments import stats
from telco_nbo.experiments.models import MetricSpec
from telco_nbo.experiments.comparison import compare


def test_issue_example_p_value_and_interval_agree():
    r = stats.two_proportions(5, 200, 100, 2000)
    assert float(r.ci_high) < 0  # the interval excludes 0 ...
    assert float(r.p_value) < 0.05  # ... and so does the test (pooled z gave 0.114)
    ref = smp.test_proportions_2indep(5, 200, 100, 2000, method="wald", correction=False)
    assert float(r.p_value) == pytest.approx(ref.pvalue, abs=1e-9)


def test_p_value_below_alpha_exactly_when_interval_excludes_zero():
    rng = np.random.default_rng(0)
    n_t, n_c = rng.integers(20, 3000, 5000), rng.integers(20, 3000, 5000)
    x_t, x_c = rng.binomial(n_t, rng.uniform(0.01, 0.6, 5000)), rng.binomial(n_c, rng.uniform(0.01, 0.6, 5000))
    r = stats.two_proportions(x_t, n_t, x_c, n_c)
    ok = np.isfinite(r.p_value)
    excludes = (r.ci_low > 0) | (r.ci_high < 0)
    assert np.array_equal((r.p_value < 0.05)[ok], excludes[ok])
    lift, lo, hi, p = stats.relative_lift_test(r)
    ok &= np.isfinite(p)
    assert np.array_equal((p < 0.05)[ok], ((lo > 0) | (hi < 0))[ok])


def _exact_prob_b_beats_a(a_b: int, b_b: int, a_a: int, b_a: int) -> float:
    """P(p_B > p_A) for Beta posteriors with integer parameters (the finite-sum closed form)."""
    i = np.arange(a_b)
    return float(np.sum(np.exp(betaln(a_a + i, b_a + b_b) - np.log(b_b + i) - betaln(1 + i, b_b) - betaln(a_a, b_a))))


@pytest.mark.slow
@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), [(130, 1000, 100, 1000), (5, 200, 100, 2000), (0, 40, 2, 40),
                                                         (4800, 100000, 4900, 100000)])
def test_chance_to_win_matches_closed_form_and_double_integral(x_t, n_t, x_c, n_c):
    prob, loss = stats.bayes_binary(x_t, n_t, x_c, n_c)
    exact = _exact_prob_b_beats_a(1 + x_t, 1 + n_t - x_t, 1 + x_c, 1 + n_c - x_c)
    assert prob == pytest.approx(exact, abs=1e-7)
    # Expected loss against scipy's double integral over both posteriors.
    ft, fc = sps.beta(1 + x_t, 1 + n_t - x_t), sps.beta(1 + x_c, 1 + n_c - x_c)
    lo_t, hi_t = ft.ppf(1e-10), ft.isf(1e-10)
    lo_c, hi_c = fc.ppf(1e-10), fc.isf(1e-10)
    ref = integrate.dblquad(lambda pc, pt: max(pc - pt, 0.0) * ft.pdf(pt) * fc.pdf(pc), lo_t, hi_t, lo_c, hi_c,
                            epsabs=1e-11)[0]
    assert loss == pytest.approx(ref, abs=1e-7 + 1e-4 * ref)
    # Deterministic, and the churn direction is the mirror image.
    assert stats.bayes_binary(x_t, n_t, x_c, n_c) == (prob, loss)
    p_low, _ = stats.bayes_binary(x_t, n_t, x_c, n_c, higher_is_better=False)
    assert p_low == pytest.approx(1 - prob, abs=1e-9)


def test_relative_p_value_has_nominal_size_in_a_a():
    rng = np.random.default_rng(7)
    sims, n = 4000, 3000
    x1, x2 = rng.binomial(n, 0.12, sims), rng.binomial(n, 0.12, sims)
    _, _, _, p = stats.relative_lift_test(stats.two_proportions(x1, n, x2, n))
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_readout_reports_relative_p_value_and_relative_sequential_interval():
    rng = np.random.default_rng(5)
    yt, yc = rng.random(4000) < 0.23, rng.random(3900) < 0.19
    spec = MetricSpec(name="m", kind="binary")
    c = compare(spec, yt, yc, arm="t", reference="c", alpha=0.05, seed=0, seq_tau2_factor=seqmod.mixture_k(0.05))
    assert c is not None and c.rel_p_value is not None and c.rel_seq_ci_low is not None
    lift, lo, hi, p = stats.relative_lift_test(stats.two_proportions(yt.sum(), 4000, yc.sum(), 3900))
    assert c.rel_p_value == pytest.approx(float(p))
    # Always-valid interval is wider than the fixed-sample one and contains it.
    assert c.rel_seq_ci_low < c.rel_ci_low < c.rel_lift < c.rel_ci_high < c.rel_seq_ci_high


def test_relative_sequential_interval_covers_under_daily_peeking():
    """Daily looks at a growing A/B test: the relative always-valid interval misses < alpha overall."""
    rng = np.random.default_rng(11)
    sims, looks, per_look, p_c, lift = 600, 20, 250, 0.2, 0.1
    p_t = p_c * (1 + lift)
    k = seqmod.mixture_k(0.05)
    planned = looks * per_look
    missed = 0
    for _ in range(sims):
        xt = np.cumsum(rng.binomial(per_look, p_t, looks))
        xc = np.cumsum(rng.binomial(per_look, p_c, looks))
        n = per_look * np.arange(1, looks + 1)
        r = stats.two_proportions(xt, n, xc, n)
        rel = np.asarray(r.mean_t) / np.asarray(r.mean_c) - 1
        var = stats.relative_variance(r)
        hw = seqmod.mixture_halfwidth(var, k * var * (n / planned), 0.05)
        # tau^2 fixed before the data: k times the variance at the planned size (var * n / planned).
        missed += bool(np.any(np.abs(rel - lift) > hw))
    assert missed / sims <= 0.05 + 0.02
