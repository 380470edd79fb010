"""Always-valid intervals hold their level under continuous peeking; fixed intervals do not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from telco_nbo.experiments import sequential


def _paths(rng: np.random.Generator, sims: int, n: int, delta: float, sd: float = 1.0):
    """Running estimate and plug-in variance of a difference of means after every pair of units."""
    t = rng.normal(delta, sd, (sims, n))
    c = rng.normal(0.0, sd, (sims, n))
    k = np.arange(1, n + 1)
    mt, mc = t.cumsum(1) / k, c.cumsum(1) / k
    # Running sample variances (ddof=1) from running sums of squares.
    vt = (np.cumsum(t**2, 1) - k * mt**2) / np.maximum(k - 1, 1)
    vc = (np.cumsum(c**2, 1) - k * mc**2) / np.maximum(k - 1, 1)
    return mt - mc, vt / k + vc / k, k


def test_mixture_halfwidth_matches_the_stated_formula_and_ville_boundary() -> None:
    v, tau2, alpha = 0.04, 0.3, 0.05
    hw = sequential.mixture_halfwidth(v, tau2, alpha)
    assert hw == pytest.approx(np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v))))
    # At the boundary the mixture likelihood ratio equals exactly 1/alpha.
    lr = np.sqrt(v / (v + tau2)) * np.exp(tau2 * hw**2 / (2 * v * (v + tau2)))
    assert lr == pytest.approx(1 / alpha)
    # Howard et al.'s sum-scale form with rho = sigma^4 / tau^2 (t units, sigma^2 = t v).
    t, sigma2 = 50, 50 * v
    rho = sigma2**2 / tau2
    u = np.sqrt((t * sigma2 + rho) * np.log((t * sigma2 + rho) / (rho * alpha**2)))
    assert u / t == pytest.approx(hw)
    lo, hi = sequential.confidence_sequence(1.0, v, tau2, alpha)
    assert (lo, hi) == pytest.approx((1 - hw, 1 + hw))


def test_mixture_k_minimizes_width_at_the_planned_size() -> None:
    k = sequential.mixture_k(0.05)
    v = 0.01
    widths = {f: sequential.mixture_halfwidth(v, f * v, 0.05) for f in (k / 2, k, 2 * k)}
    assert widths[k] < widths[k / 2] and widths[k] < widths[2 * k]
    assert sequential.tau2_for_plan(v, 0.05) == pytest.approx(k * v)


def test_coverage_under_continuous_peeking() -> None:
    """Look after every unit pair from 20 to 1,500: the CS misses the truth in <= ~5 % of paths."""
    rng = np.random.default_rng(2021)
    sims, n, delta, burn = 1000, 1500, 0.3, 20
    diff, var, _ = _paths(rng, sims, n, delta)
    diff, var = diff[:, burn:], var[:, burn:]
    tau2 = sequential.tau2_for_plan(2.0 / n)  # planned at the final size, fixed in advance
    lo, hi = sequential.confidence_sequence(diff, var, tau2, 0.05)
    ever_missed = np.any((lo > delta) | (hi < delta), axis=1)
    rate = ever_missed.mean()
    # Time-uniform guarantee: <= 5 % (binomial sd of the rate ~0.7 pp at 1,000 paths).
    assert rate <= 0.065, rate
    # The fixed-sample 95 % interval, checked at every look, misses far more often.
    z = sps.norm.ppf(0.975)
    naive_missed = np.any(np.abs(diff - delta) > z * np.sqrt(var), axis=1).mean()
    assert naive_missed > 0.2, naive_missed
    # At the final look the CS is wider than the fixed interval, but not absurdly (< 2.6x).
    final_ratio = (hi[:, -1] - lo[:, -1]).mean() / (2 * z * np.sqrt(var[:, -1])).mean()
    assert 1.0 < final_ratio < 2.6


def test_aa_peeking_false_positive_rate() -> None:
    rng = np.random.default_rng(5)
    diff, var, _ = _paths(rng, 1000, 1000, 0.0)
    diff, var = diff[:, 20:], var[:, 20:]
    lo, hi = sequential.confidence_sequence(diff, var, sequential.tau2_for_plan(2.0 / 1000), 0.05)
    assert np.any((lo > 0) | (hi < 0), axis=1).mean() <= 0.065
