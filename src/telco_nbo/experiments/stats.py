"""The statistics of a readout, as vectorized pure functions of summary statistics.

Every function takes counts / means / variances (floats or numpy arrays that broadcast) rather than
frames, so the same code path that reads out one experiment also reads out 2,000 simulated ones in a
single call (the validity tests do exactly that).

Formulas (two-sided, level ``alpha``; ``t`` = treatment, ``c`` = control/reference):

* **Two proportions.** ``d = p_t - p_c`` with the unpooled (Wald) standard error
  ``se = sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)`` for **both** the test, ``z = d / se``, and the
  interval, ``d +- z_{1-a/2} se`` — identical to ``statsmodels.stats.proportion.
  test_proportions_2indep(method="wald", correction=False)`` and ``confint_proportions_2indep(
  method="wald")``. One standard error for both means the p-value is below ``alpha`` exactly when
  the interval excludes 0 (a pooled test with an unpooled interval can disagree: 5/200 vs 100/2000
  gives p 0.114 with an interval excluding 0). The pooled test's better size under H0 matters only
  for small counts; the A/A simulations in the tests check the size of this one.
* **Welch t.** ``se = sqrt(s_t^2/n_t + s_c^2/n_c)``, Welch-Satterthwaite
  ``df = se^4 / ((s_t^2/n_t)^2/(n_t-1) + (s_c^2/n_c)^2/(n_c-1))``; ``t = d/se``; interval
  ``d +- t_{df,1-a/2} se`` — identical to ``scipy.stats.ttest_ind(equal_var=False)`` and its
  ``confidence_interval``.
* **Relative lift (delta method).** ``r = m_t/m_c - 1``; ``Var(r) ~ Var(m_t)/m_c^2 +
  m_t^2 Var(m_c)/m_c^4`` (independent arms); interval ``r +- z_{1-a/2} sqrt(Var(r))`` and p-value
  ``2 (1 - Phi(|r| / sqrt(Var(r))))`` (:func:`relative_lift_test`).
* **Bayesian.** Binary: independent ``Beta(1 + x, 1 + n - x)`` posteriors; chance to win
  ``P(p_t > p_c) = int f_t(x) F_c(x) dx`` and expected loss ``E[max(p_c - p_t, 0)] = int f_t(x)
  (m_c (1 - F_c^+(x)) - x (1 - F_c(x))) dx`` (``F_c^+`` the CDF of ``Beta(a_c + 1, b_c)``, from
  ``y f_{a,b}(y) = m f_{a+1,b}(y)``), by adaptive quadrature (:func:`scipy.integrate.quad`) over
  the treatment posterior's mass: deterministic, no seed. Continuous: flat prior, ``D ~ N(d, se^2)``, closed form
  ``P(sD > 0) = Phi(s d / se)`` and ``E[max(-sD, 0)] = se phi(s d/se) - s d Phi(-s d/se)`` where
  ``s = +1`` if higher is better else ``-1``. Expected loss is what shipping the arm costs, in metric
  units, averaged over the posterior.
* **CUPED** (Deng et al. 2013). ``Y' = Y - theta (X - mean(X))`` with ``theta`` the pooled
  *within-arm* slope ``sum_a sum_i (x - x_a)(y - y_a) / sum_a sum_i (x - x_a)^2``; pooling within
  arms keeps the treatment effect out of ``theta``. Variance reduction ``1 - Var(Y')/Var(Y)``.
* **Always-valid interval**: see :mod:`telco_nbo.experiments.sequential`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

ArrayLike = Any  # float or numpy array; the functions broadcast


@dataclass(frozen=True)
class DiffResult:
    """Difference of two means with its test and interval (floats or arrays, same shape).

    Attributes:
        mean_t: Treatment mean.
        mean_c: Control mean.
        var_mean_t: Variance of the treatment mean.
        var_mean_c: Variance of the control mean.
        diff: ``mean_t - mean_c``.
        se: Standard error of ``diff`` used for the interval.
        ci_low: Interval lower end.
        ci_high: Interval upper end.
        statistic: z or t statistic of the test.
        p_value: Two-sided p-value (NaN when the test is undefined: no variance at all).
        df: Degrees of freedom (Welch), or None for z.
    """

    mean_t: Any
    mean_c: Any
    var_mean_t: Any
    var_mean_c: Any
    diff: Any
    se: Any
    ci_low: Any
    ci_high: Any
    statistic: Any
    p_value: Any
    df: Any = None


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def two_proportions(x_t: ArrayLike, n_t: ArrayLike, x_c: ArrayLike, n_c: ArrayLike, alpha: float = 0.05) -> DiffResult:
    """Two-proportion Wald z test and Wald interval of ``p_t - p_c`` (one unpooled standard error).

    Args:
        x_t: Successes in treatment.
        n_t: Units in treatment.
        x_c: Successes in control.
        n_c: Units in control.
        alpha: Two-sided level.

    Returns:
        The difference, test and interval. ``p_value`` is NaN where the standard error is 0 (every
        unit of each arm has the same outcome), the case the test cannot address.
    """
    _check_alpha(alpha)
    x_t, n_t, x_c, n_c = (np.asarray(v, dtype=float) for v in (x_t, n_t, x_c, n_c))
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    var_t, var_c = p_t * (1 - p_t) / n_t, p_c * (1 - p_c) / n_c
    se = np.sqrt(var_t + var_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.nan)
    p_value = 2 * stats.norm.sf(np.abs(z))
    q = stats.norm.ppf(1 - alpha / 2)
    return DiffResult(p_t, p_c, var_t, var_c, diff, se, diff - q * se, diff + q * se, z, p_value)


def welch(
    mean_t: ArrayLike,
    var_t: ArrayLike,
    n_t: ArrayLike,
    mean_c: ArrayLike,
    var_c: ArrayLike,
    n_c: ArrayLike,
    alpha: float = 0.05,
) -> DiffResult:
    """Welch's unequal-variance t test and interval of ``mean_t - mean_c``.

    Args:
        mean_t: Treatment mean.
        var_t: Treatment sample variance (ddof=1).
        n_t: Treatment units (>= 2).
        mean_c: Control mean.
        var_c: Control sample variance (ddof=1).
        n_c: Control units (>= 2).
        alpha: Two-sided level.

    Returns:
        The difference, test and interval; ``p_value`` NaN where both variances are 0.
    """
    _check_alpha(alpha)
    mean_t, var_t, n_t, mean_c, var_c, n_c = (np.asarray(v, dtype=float) for v in (mean_t, var_t, n_t, mean_c, var_c, n_c))
    vt, vc = var_t / n_t, var_c / n_c
    se = np.sqrt(vt + vc)
    diff = mean_t - mean_c
    ok = se > 0
    safe_se = np.where(ok, se, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(ok, (vt + vc) ** 2 / (vt**2 / (n_t - 1) + vc**2 / (n_c - 1)), np.nan)
        t = np.where(ok, diff / safe_se, np.nan)
    p_value = 2 * stats.t.sf(np.abs(t), df)
    q = stats.t.ppf(1 - alpha / 2, df)
    return DiffResult(mean_t, mean_c, vt, vc, diff, se, diff - q * se, diff + q * se, t, p_value, df)


def relative_lift(r: DiffResult, alpha: float = 0.05) -> tuple[Any, Any, Any]:
    """Relative lift ``mean_t/mean_c - 1`` with its delta-method interval.

    Args:
        r: A difference result (gives the means and the variances of the means).
        alpha: Two-sided level.

    Returns:
        ``(lift, ci_low, ci_high)``; NaN where the control mean is 0 (undefined).
    """
    _check_alpha(alpha)
    m_t, m_c = np.asarray(r.mean_t, float), np.asarray(r.mean_c, float)
    nz = m_c != 0
    safe = np.where(nz, m_c, 1.0)
    lift = np.where(nz, m_t / safe - 1, np.nan)
    var = r.var_mean_t / safe**2 + m_t**2 * r.var_mean_c / safe**4
    se = np.where(nz, np.sqrt(var), np.nan)
    q = stats.norm.ppf(1 - alpha / 2)
    return lift, lift - q * se, lift + q * se


def relative_lift_test(r: DiffResult, alpha: float = 0.05) -> tuple[Any, Any, Any, Any]:
    """Relative lift with its delta-method interval and the matching two-sided p-value.

    The p-value uses the same standard error as the interval, so it is below ``alpha`` exactly
    when the interval excludes 0.

    Args:
        r: A difference result.
        alpha: Two-sided level.

    Returns:
        ``(lift, ci_low, ci_high, p_value)``; NaN where the control mean is 0.
    """
    lift, lo, hi = relative_lift(r, alpha)
    q = stats.norm.ppf(1 - alpha / 2)
    se = (np.asarray(hi, float) - np.asarray(lo, float)) / (2 * q)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, np.asarray(lift, float) / np.where(se > 0, se, 1.0), np.nan)
    return lift, lo, hi, 2 * stats.norm.sf(np.abs(z))


def relative_variance(r: DiffResult) -> Any:
    """Delta-method variance of the relative lift ``mean_t/mean_c - 1`` (NaN where ``mean_c`` is 0)."""
    m_t, m_c = np.asarray(r.mean_t, float), np.asarray(r.mean_c, float)
    nz = m_c != 0
    safe = np.where(nz, m_c, 1.0)
    return np.where(nz, r.var_mean_t / safe**2 + m_t**2 * r.var_mean_c / safe**4, np.nan)


def bayes_binary(
    x_t: int, n_t: int, x_c: int, n_c: int, *, higher_is_better: bool = True, n_draws: int | None = None,
    seed: int | Sequence[int] | None = None,
) -> tuple[float, float]:
    """Chance to beat control and expected loss under independent Beta(1, 1) priors, by quadrature.

    Args:
        x_t: Successes in treatment.
        n_t: Units in treatment.
        x_c: Successes in control.
        n_c: Units in control.
        higher_is_better: Direction of a win (False for churn).
        n_draws: Ignored (kept for callers of the former Monte Carlo version); the result is exact
            to quadrature precision and needs no seed.
        seed: Ignored, as ``n_draws``.

    Returns:
        ``(P(treatment better), E[max(loss, 0)])`` with loss in proportion units.
    """
    del n_draws, seed
    from scipy import integrate

    a_t, b_t = 1.0 + x_t, 1.0 + n_t - x_t
    a_c, b_c = 1.0 + x_c, 1.0 + n_c - x_c
    post_t, post_c, post_c1 = stats.beta(a_t, b_t), stats.beta(a_c, b_c), stats.beta(a_c + 1.0, b_c)
    m_c = a_c / (a_c + b_c)
    # Integrate over where the treatment posterior has its mass (quad over [0, 1] can miss a
    # posterior 0.001 wide); the tails beyond 1e-12 change nothing at the precision reported.
    lo, hi = post_t.ppf(1e-12), post_t.isf(1e-12)
    opts = {"epsabs": 1e-10, "epsrel": 1e-9, "limit": 200, "points": [post_t.mean()]}
    p_t_wins = integrate.quad(lambda x: post_t.pdf(x) * post_c.cdf(x), lo, hi, **opts)[0]
    if higher_is_better:
        # E[max(p_c - p_t, 0)]: E over p_t of E[max(p_c - x, 0)] = m_c (1 - F_c+(x)) - x (1 - F_c(x)).
        loss = integrate.quad(lambda x: post_t.pdf(x) * (m_c * post_c1.sf(x) - x * post_c.sf(x)), lo, hi, **opts)[0]
        prob = p_t_wins
    else:
        # E[max(p_t - p_c, 0)]: E[max(x - p_c, 0)] = x F_c(x) - m_c F_c+(x).
        loss = integrate.quad(lambda x: post_t.pdf(x) * (x * post_c.cdf(x) - m_c * post_c1.cdf(x)), lo, hi, **opts)[0]
        prob = 1.0 - p_t_wins
    return float(min(max(prob, 0.0), 1.0)), float(max(loss, 0.0))


def bayes_normal(diff: ArrayLike, se: ArrayLike, *, higher_is_better: bool = True) -> tuple[Any, Any]:
    """Chance to beat control and expected loss with a normal posterior ``N(diff, se^2)``.

    Args:
        diff: Observed difference (treatment - control).
        se: Its standard error (> 0).
        higher_is_better: Direction of a win.

    Returns:
        ``(P(treatment better), E[max(-gain, 0)])`` in metric units.
    """
    s = 1.0 if higher_is_better else -1.0
    mu = s * np.asarray(diff, float)
    se = np.asarray(se, float)
    zz = mu / se
    prob = stats.norm.cdf(zz)
    loss = se * stats.norm.pdf(zz) - mu * stats.norm.cdf(-zz)
    return prob, loss


def srm_test(observed: dict[str, int], expected_share: dict[str, float]) -> tuple[float, float]:
    """Chi-square goodness of fit of units per arm against the designed split.

    Args:
        observed: Arm -> units.
        expected_share: Arm -> designed share (normalized here).

    Returns:
        ``(chi2, p_value)`` from :func:`scipy.stats.chisquare`.
    """
    arms = list(observed)
    f_obs = np.array([observed[a] for a in arms], dtype=float)
    share = np.array([expected_share[a] for a in arms], dtype=float)
    f_exp = share / share.sum() * f_obs.sum()
    res = stats.chisquare(f_obs, f_exp)
    return float(res.statistic), float(res.pvalue)


def cuped_theta(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Pooled within-group CUPED slope and the variance reduction it buys.

    Args:
        y: Outcome per unit.
        x: Pre-period covariate per unit.
        groups: Arm per unit.

    Returns:
        ``(theta, variance_reduction)``; ``(0, 0)`` when the covariate is constant within arms.
    """
    y = np.asarray(y, float)
    x = np.asarray(x, float)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    counts = np.bincount(codes)
    xc = x - (np.bincount(codes, weights=x) / counts)[codes]
    yc = y - (np.bincount(codes, weights=y) / counts)[codes]
    sxx, sxy, syy = float(xc @ xc), float(xc @ yc), float(yc @ yc)
    if sxx <= 0 or syy <= 0:
        return 0.0, 0.0
    theta = sxy / sxx
    # Within-arm residual variance over raw within-arm variance = 1 - rho^2.
    reduction = 1.0 - float(((yc - theta * xc) ** 2).sum()) / syy
    return theta, max(0.0, reduction)


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float) -> np.ndarray:
    """Return ``y - theta (x - mean(x))`` (the mean of ``y`` is kept, the noise explained by ``x`` removed)."""
    x = np.asarray(x, float)
    return np.asarray(y, float) - theta * (x - x.mean())


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: ``max_{j<=i} min(1, (m - j + 1) p_(j))`` in sorted order.

    Identical to ``multipletests(p, method="holm")[1]`` (tested), which we do not call because in
    statsmodels 0.15 its Holm branch runs ``gc.collect()`` on every call: ~0.25 s each in a process
    holding pandas / matplotlib / MLflow, and a segment breakdown calls it once per family.
    """
    p = np.asarray(p_values, float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(m, 0, -1)))
    out = np.empty(m)
    out[order] = adj
    return out


def adjust_pvalues(p_values: list[float], method: str) -> list[float]:
    """Multiple-testing adjustment of one family.

    Args:
        p_values: Raw p-values of one family.
        method: ``holm`` (:func:`holm`) or ``fdr_bh``
            (:func:`statsmodels.stats.multitest.multipletests`).

    Returns:
        Adjusted p-values, same order.
    """
    if not p_values:
        return []
    if method == "holm":
        return [float(v) for v in holm(np.asarray(p_values, float))]
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(np.asarray(p_values, float), method=method)[1]]
