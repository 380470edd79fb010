"""Contractual customer lifetime value: the shifted-beta-geometric (sBG) model and per-account CLV.

The sBG model (Fader & Hardie 2007, "How to Project Customer Retention", *Journal of Interactive
Marketing* 21(1)) describes a cohort of contract customers who, at the end of every period, each
renew or leave:

- a customer with churn probability ``theta`` leaves at the end of each period with probability
  ``theta`` (so their lifetime is geometric, ``P(T = t | theta) = theta (1 - theta)^(t-1)``);
- ``theta`` varies across customers as ``Beta(alpha, beta)``.

Integrating ``theta`` out gives closed forms (``B`` is the beta function)::

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)          t = 1, 2, ...
    S(t)     = B(alpha, beta + t) / B(alpha, beta)                  t = 0, 1, ...
    r(t)     = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)

``r(t)`` rises with ``t``: not because anyone's loyalty grows, but because the customers most
likely to leave have already left (the "perils of ignoring heterogeneity"). The expected
discounted lifetime has a closed form in the Gaussian hypergeometric function (Fader & Hardie
2010, "Customer-Base Valuation in a Contractual Setting", Marketing Science 29(1))::

    DEL(d)      = sum_{t>=0} S(t) / (1+d)^t = 2F1(1, beta; alpha + beta; 1/(1+d))
    DERL(d | n) = sum_{k>=1} S(n+k)/S(n) / (1+d)^(k-1)
                = (beta + n)/(alpha + beta + n) * 2F1(1, beta + n + 1; alpha + beta + n + 1; 1/(1+d))

for a customer known to be active after ``n`` periods (``T > n``; Fader & Hardie's "n - 1
renewals" is this ``n``), counting the next period's payment undiscounted.

Two ways to value accounts are offered:

- :func:`account_clv` / :func:`clv_from_hazard`: from each account's own monthly churn hazard
  (e.g. from the churn model's 90-day probability) and monthly margin — the synthetic-world path.
- :class:`ContractCLV`: fit one sBG per contract type from tenure + churn flags (individual-level
  likelihood with censoring), then value each account from its segment's survival *conditional on
  its current tenure* — the IBM Telco path, which needs no hazard model.

All functions are pure and vectorized over accounts. Sign and timing convention throughout: the
margin of period ``t`` (t = 1..H) is earned only if the account is still active after ``t``
renewals, and is discounted by ``(1+d)^t`` — i.e. CLV counts *future* margin, not the current
period's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.base import BaseEstimator

from telco_nbo.errors import DataValidationError

__all__ = [
    "HOMOGENEOUS_KAPPA",
    "SBGFit",
    "sbg_pmf",
    "sbg_survival",
    "sbg_retention",
    "sbg_conditional_survival",
    "sbg_cohort_log_likelihood",
    "sbg_individual_log_likelihood",
    "fit_sbg_cohort",
    "fit_sbg_individual",
    "discounted_expected_lifetime",
    "discounted_expected_residual_lifetime",
    "monthly_hazard_from_p90",
    "survival_from_hazard",
    "clv_from_survival",
    "clv_from_hazard",
    "clv_constant_hazard_closed_form",
    "account_clv",
    "HazardClvRule",
    "SBGCohortModel",
    "ContractCLV",
]


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------


def _check_params(alpha: float, beta: float) -> None:
    if not (np.isfinite(alpha) and np.isfinite(beta) and alpha > 0 and beta > 0):
        raise ValueError(f"sBG parameters must be finite and > 0, got alpha={alpha}, beta={beta}")


def sbg_pmf(t: int | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Probability that a customer's lifetime is exactly ``t`` periods (churns at the end of ``t``).

    Args:
        t: Period(s), integers >= 1.
        alpha: Beta-distribution shape of the churn probability (> 0).
        beta: Beta-distribution shape (> 0).

    Returns:
        ``P(T = t)`` with the shape of ``t``.
    """
    _check_params(alpha, beta)
    t = np.asarray(t, dtype=float)
    if np.any(t < 1):
        raise ValueError("sbg_pmf is defined for t >= 1")
    return np.exp(special.betaln(alpha + 1.0, beta + t - 1.0) - special.betaln(alpha, beta))


def sbg_survival(t: int | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Probability that a customer is still active after ``t`` periods, ``S(t) = P(T > t)``.

    Args:
        t: Period(s), >= 0 (``S(0) = 1``).
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).

    Returns:
        ``S(t)`` with the shape of ``t``.
    """
    _check_params(alpha, beta)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError("sbg_survival is defined for t >= 0")
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def sbg_retention(t: int | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Retention rate of period ``t``: ``r(t) = S(t)/S(t-1) = (beta+t-1)/(alpha+beta+t-1)``.

    Args:
        t: Period(s), >= 1.
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).

    Returns:
        ``r(t)`` with the shape of ``t``.
    """
    _check_params(alpha, beta)
    t = np.asarray(t, dtype=float)
    if np.any(t < 1):
        raise ValueError("sbg_retention is defined for t >= 1")
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def sbg_conditional_survival(
    tenure: int | np.ndarray, horizon: int, alpha: float, beta: float
) -> np.ndarray:
    """Survival over the next ``horizon`` periods of customers already active after ``tenure`` periods.

    ``S(n + k) / S(n)`` for ``k = 1..horizon``: the product of the retention rates
    ``r(n+1) ... r(n+k)``. A customer who has renewed many times is, in expectation, one with a low
    churn probability, so this is higher than the unconditional ``S(k)``.

    Args:
        tenure: Completed periods ``n`` (>= 0), scalar or one per account.
        horizon: Number of future periods ``H`` (>= 1).
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).

    Returns:
        Array of shape ``(len(tenure), horizon)`` (``(horizon,)`` for a scalar tenure).
    """
    _check_params(alpha, beta)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    n = np.asarray(tenure, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n < 0):
        raise ValueError("tenure must be finite and >= 0")
    k = np.arange(1, horizon + 1, dtype=float)
    # A running product of retention rates rather than a difference of log-beta functions: exact
    # for integer periods, and stable when alpha + beta is huge (a near-homogeneous segment).
    return np.cumprod(sbg_retention(n[..., None] + k, alpha, beta), axis=-1)


def discounted_expected_lifetime(alpha: float, beta: float, discount_rate: float) -> float:
    """Discounted expected lifetime of a *new* customer, in periods (period 0 counted, undiscounted).

    ``DEL(d) = sum_{t>=0} S(t)/(1+d)^t = 2F1(1, beta; alpha+beta; 1/(1+d))`` (Fader & Hardie 2010).
    Multiply by the per-period margin to get the expected CLV of a customer at acquisition (the
    first payment included).

    Args:
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).
        discount_rate: Per-period discount rate ``d`` (> 0 so the series converges when
            ``alpha <= 1``).

    Returns:
        DEL in periods.
    """
    _check_params(alpha, beta)
    if not discount_rate > 0:
        raise ValueError(f"discount_rate must be > 0, got {discount_rate}")
    return float(special.hyp2f1(1.0, beta, alpha + beta, 1.0 / (1.0 + discount_rate)))


def discounted_expected_residual_lifetime(
    alpha: float, beta: float, discount_rate: float, renewals: int | np.ndarray
) -> np.ndarray:
    """Discounted expected residual lifetime (DERL) of a customer active after ``n`` periods.

    Fader & Hardie (2010), eq. 6. The customer is known to have ``T > n`` (``n`` renewals made —
    their "n - 1" — i.e. the tenure of an active account in the censored likelihood) and the
    sum runs over future periods, the first one undiscounted (payment at the start of a period)::

        DERL(d | n) = sum_{k>=1} S(n+k)/S(n) / (1+d)^(k-1)
                    = (beta+n)/(alpha+beta+n) * 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))

    The CLV functions here discount the first future margin by ``(1+d)``, so over an infinite
    horizon ``ContractCLV.predict == margin * DERL / (1 + d)``.

    Args:
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).
        discount_rate: Per-period discount rate (> 0).
        renewals: ``n`` >= 0, periods survived (tenure); scalar or array.

    Returns:
        DERL in periods, with the shape of ``renewals``.
    """
    _check_params(alpha, beta)
    if not discount_rate > 0:
        raise ValueError(f"discount_rate must be > 0, got {discount_rate}")
    n = np.asarray(renewals, dtype=float)
    if np.any(n < 0):
        raise ValueError("renewals must be >= 0")
    z = 1.0 / (1.0 + discount_rate)
    return (beta + n) / (alpha + beta + n) * special.hyp2f1(1.0, beta + n + 1.0, alpha + beta + n + 1.0, z)


# --------------------------------------------------------------------------------------------
# Likelihoods and fitting
# --------------------------------------------------------------------------------------------


def _validate_survivors(survivors: Sequence[float] | np.ndarray) -> np.ndarray:
    s = np.asarray(survivors, dtype=float)
    problems: list[str] = []
    if s.ndim != 1 or s.size < 2:
        problems.append(f"need at least 2 periods (cohort size + 1 follow-up), got shape {s.shape}")
    elif not np.all(np.isfinite(s)):
        problems.append("survivor counts contain NaN or inf")
    else:
        if s[0] <= 0:
            problems.append(f"cohort size (first value) must be > 0, got {s[0]}")
        if np.any(s < 0):
            problems.append("survivor counts must be >= 0")
        inc = np.flatnonzero(np.diff(s) > 0)
        if inc.size:
            problems.append(
                f"survivor counts must not increase; they do after period(s) {inc[:5].tolist()}"
            )
        if s.size >= 2 and s[0] == s[-1]:
            problems.append("nobody churned: the sBG likelihood has no maximum (beta -> infinity)")
    if problems:
        raise DataValidationError("survivors", problems)
    return s


def sbg_cohort_log_likelihood(alpha: float, beta: float, survivors: Sequence[float] | np.ndarray) -> float:
    """Log-likelihood of a cohort's survivor counts under sBG (Fader & Hardie 2007, eq. 6).

    ``LL = sum_{t=1..n} (S_{t-1} - S_t) ln P(T=t) + S_n ln S(n)``, where ``S_t`` are the observed
    counts (``survivors[0]`` is the cohort size): those lost in period ``t`` have lifetime ``t``,
    those still active after the last period are right-censored.

    Args:
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).
        survivors: Active customers at the start (index 0) and after each period.

    Returns:
        The log-likelihood.
    """
    s = _validate_survivors(survivors)
    n = s.size - 1
    t = np.arange(1, n + 1)
    lost = s[:-1] - s[1:]
    return float(np.sum(lost * np.log(sbg_pmf(t, alpha, beta))) + s[-1] * np.log(sbg_survival(n, alpha, beta)))


def _flags(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a bool / 0-1 column: (flags, positions of values that are neither)."""
    if values.dtype == bool:
        return values, np.array([], dtype=int)
    f = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return f == 1.0, np.flatnonzero(~np.isin(f, (0.0, 1.0)))


def _validate_durations(duration: np.ndarray | pd.Series, churned: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(duration, dtype=float)
    c = np.asarray(churned)
    problems: list[str] = []
    if d.ndim != 1 or c.ndim != 1 or d.shape != c.shape:
        raise DataValidationError(
            "durations", [f"duration and churned must be 1-D of equal length, got {d.shape} and {c.shape}"]
        )
    if d.size == 0:
        raise DataValidationError("durations", ["no rows"])
    cb, bad_rows = _flags(c)
    if bad_rows.size:
        problems.append(f"churned must be boolean or 0/1; bad rows {bad_rows[:5].tolist()}")
    if not np.all(np.isfinite(d)):
        problems.append(f"duration has NaN/inf at rows {np.flatnonzero(~np.isfinite(d))[:5].tolist()}")
    else:
        if np.any(d < 0):
            problems.append(f"duration must be >= 0; negative at rows {np.flatnonzero(d < 0)[:5].tolist()}")
        if np.any(d != np.round(d)):
            problems.append("duration must be whole periods (sBG is a discrete-time model)")
        early = cb & (d < 1)
        if early.any():
            problems.append(
                f"a churned customer needs duration >= 1 (lifetime counts the period they left in); "
                f"rows {np.flatnonzero(early)[:5].tolist()}"
            )
    if not problems and not cb.any():
        problems.append("no churned customers: the sBG likelihood has no maximum (beta -> infinity)")
    if problems:
        raise DataValidationError("durations", problems)
    return d, cb


def sbg_individual_log_likelihood(
    alpha: float, beta: float, duration: np.ndarray | pd.Series, churned: np.ndarray | pd.Series
) -> float:
    """Log-likelihood of individual lifetimes with right-censoring.

    A customer who churned with ``duration = t`` (left at the end of period ``t``) contributes
    ``ln P(T=t)``; one still active after ``t`` periods contributes ``ln S(t)``. Cohort data are the
    special case where everyone was observed for the same number of periods.

    Args:
        alpha: Beta shape (> 0).
        beta: Beta shape (> 0).
        duration: Completed periods per customer (whole numbers >= 0; >= 1 when churned).
        churned: True if the customer left at the end of ``duration``, False if still active.

    Returns:
        The log-likelihood.
    """
    d, c = _validate_durations(duration, churned)
    return _individual_ll(alpha, beta, *_aggregate(d, c))


def _aggregate(d: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # The likelihood depends only on counts per (duration, churned): aggregating makes a fit on a
    # million rows as cheap as one on a few hundred distinct tenures.
    td, nd = np.unique(d[c], return_counts=True)
    tc, nc = np.unique(d[~c], return_counts=True)
    return td, nd.astype(float), tc, nc.astype(float)


def _individual_ll(alpha: float, beta: float, td: np.ndarray, nd: np.ndarray, tc: np.ndarray, nc: np.ndarray) -> float:
    b0 = special.betaln(alpha, beta)
    ll = np.sum(nd * (special.betaln(alpha + 1.0, beta + td - 1.0) - b0))
    ll += np.sum(nc * (special.betaln(alpha, beta + tc) - b0))
    return float(ll)


HOMOGENEOUS_KAPPA = 1e5
"""``alpha + beta`` above which a fit is reported as the homogeneous (geometric) limit."""


@dataclass(frozen=True)
class SBGFit:
    """Result of a maximum-likelihood sBG fit.

    Attributes:
        alpha: MLE of alpha.
        beta: MLE of beta.
        log_likelihood: Log-likelihood at the MLE.
        n_customers: Customers in the data (cohort size, or rows).
        n_churned: Customers observed to churn.
        converged: Whether the optimizer ended at a stationary point (gradient ~ 0 in log-space).
        homogeneous: True when the data show no heterogeneity (retention does not rise with
            tenure): the likelihood is then maximized in the limit ``alpha, beta -> inf`` with
            ``alpha / (alpha + beta)`` fixed, i.e. a plain geometric lifetime with churn
            probability :attr:`mean_churn`. The reported ``alpha, beta`` are a point far out on
            that ridge (``alpha + beta > HOMOGENEOUS_KAPPA``); every curve computed from them is
            the geometric one to many digits, but the individual values carry no meaning.
    """

    alpha: float
    beta: float
    log_likelihood: float
    n_customers: int
    n_churned: int
    converged: bool
    homogeneous: bool = False

    @property
    def mean_churn(self) -> float:
        """Mean per-period churn probability across customers, ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)


def _negll_and_grad(x: np.ndarray, td: np.ndarray, nd: np.ndarray, tc: np.ndarray, nc: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood and its gradient in ``(log alpha, log beta)``.

    d/dx ln B(x, y) = psi(x) - psi(x + y) and d/dy ln B(x, y) = psi(y) - psi(x + y), so the
    gradient is exact and cheap: a fit takes milliseconds however many customers there are.
    """
    a, b = np.exp(x)
    ll = _individual_ll(a, b, td, nd, tc, nc)
    if not np.isfinite(ll):
        return np.inf, np.zeros(2)
    psi_ab, psi_a, psi_b = special.digamma(a + b), special.digamma(a), special.digamma(b)
    # churned at t: ln B(a+1, b+t-1) - ln B(a, b); censored at t: ln B(a, b+t) - ln B(a, b)
    da = np.sum(nd * (special.digamma(a + 1) - special.digamma(a + b + td) - psi_a + psi_ab))
    da += np.sum(nc * (psi_ab - special.digamma(a + b + tc)))
    db = np.sum(nd * (special.digamma(b + td - 1) - special.digamma(a + b + td) - psi_b + psi_ab))
    db += np.sum(nc * (special.digamma(b + tc) - special.digamma(a + b + tc) - psi_b + psi_ab))
    return -ll, -np.array([a * da, b * db])


# Log-parameter box: wide enough for any real segment; a fit that runs into the upper edge is the
# homogeneous (geometric) limit, which is handled exactly by _homogeneous_fit.
_LOG_BOUNDS = [(-12.0, 23.0), (-12.0, 23.0)]


def _maximize(
    agg: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], start: tuple[float, float]
) -> tuple[float, float, float, bool]:
    # Optimize on log-parameters: alpha, beta > 0 and the surface is far better conditioned (beta
    # can be in the hundreds for loyal segments). Two starts guard against a poor one.
    best = None
    for x0 in (np.log(np.asarray(start, dtype=float)), np.array([0.0, np.log(3.0)])):
        res = optimize.minimize(
            _negll_and_grad, x0, args=agg, jac=True, method="L-BFGS-B", bounds=_LOG_BOUNDS,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
        )
        if best is None or res.fun < best.fun:
            best = res
    a, b = np.exp(best.x)
    # L-BFGS-B may stop with "ABNORMAL_TERMINATION_IN_LNSRCH" at a perfectly good optimum (the
    # objective is flat to machine precision), so judge convergence by the gradient itself.
    grad = _negll_and_grad(best.x, *agg)[1]
    converged = bool(np.isfinite(best.fun) and np.all(np.abs(grad) < 1e-4 * max(1.0, abs(float(best.fun)))))
    return float(a), float(b), float(-best.fun), converged


def _homogeneous_fit(n_churned: float, exposure: float, n_customers: int) -> SBGFit:
    # The supremum is the geometric model: theta_hat = churners / periods at risk (each churner's
    # lifetime counts its final period, each censored customer its observed periods). Report it as
    # a point on the ridge with alpha + beta = 10 x HOMOGENEOUS_KAPPA, where the sBG curves equal
    # the geometric ones to ~1e-6, and the exact geometric log-likelihood.
    theta = n_churned / exposure
    kappa = 10 * HOMOGENEOUS_KAPPA
    ll = n_churned * np.log(theta) + (exposure - n_churned) * np.log1p(-theta)
    return SBGFit(theta * kappa, (1 - theta) * kappa, float(ll), n_customers, int(round(n_churned)),
                  True, True)


def fit_sbg_cohort(survivors: Sequence[float] | np.ndarray, start: tuple[float, float] = (1.0, 1.0)) -> SBGFit:
    """Fit sBG by maximum likelihood to one cohort's survivor counts.

    Args:
        survivors: Customers active at the start (index 0, the cohort size) and after each of the
            following periods. Percentages work if multiplied by the cohort size first (the
            likelihood is in counts, so the scale matters for standard errors, not for the MLE).
        start: Starting ``(alpha, beta)``.

    Returns:
        The fit.

    Raises:
        DataValidationError: If counts increase, are negative, or nobody churned.
    """
    s = _validate_survivors(survivors)
    n = s.size - 1
    t = np.arange(1, n + 1, dtype=float)
    lost = s[:-1] - s[1:]
    # A cohort is individual data in aggregate: `lost[t]` churned at t, `s[n]` censored at n.
    keep = lost > 0
    agg = (t[keep], lost[keep], np.array([float(n)]), np.array([s[-1]]))
    a, b, ll, ok = _maximize(agg, start)
    churned = float(lost.sum())
    if a + b > HOMOGENEOUS_KAPPA:
        exposure = float(np.sum(lost * t) + s[-1] * n)
        return _homogeneous_fit(churned, exposure, int(round(s[0])))
    return SBGFit(a, b, ll, int(round(s[0])), int(round(churned)), ok)


def fit_sbg_individual(
    duration: np.ndarray | pd.Series,
    churned: np.ndarray | pd.Series,
    start: tuple[float, float] = (1.0, 1.0),
) -> SBGFit:
    """Fit sBG by maximum likelihood to individual (duration, churned) data with censoring.

    Args:
        duration: Completed periods per customer (e.g. IBM Telco ``tenure`` in months).
        churned: True if the customer left at the end of ``duration``; False if still active
            (right-censored).
        start: Starting ``(alpha, beta)``.

    Returns:
        The fit.

    Raises:
        DataValidationError: On NaN / negative / fractional durations, a churner with duration 0,
            or no churners at all.
    """
    d, c = _validate_durations(duration, churned)
    a, b, ll, ok = _maximize(_aggregate(d, c), start)
    if a + b > HOMOGENEOUS_KAPPA:
        return _homogeneous_fit(float(c.sum()), float(d.sum()), int(d.size))
    return SBGFit(a, b, ll, int(d.size), int(c.sum()), ok)


# --------------------------------------------------------------------------------------------
# Per-account CLV from a hazard
# --------------------------------------------------------------------------------------------


def monthly_hazard_from_p90(p90: np.ndarray | pd.Series | float) -> np.ndarray:
    """Convert a 90-day churn probability into a constant monthly hazard.

    ``1 - p90 = (1 - h)^3``, so ``h = 1 - (1 - p90)^(1/3)``.

    Args:
        p90: Probability of churning within 90 days, in [0, 1].

    Returns:
        Monthly churn probability ``h`` with the shape of ``p90``.
    """
    p = np.asarray(p90, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p90 must be finite probabilities in [0, 1]")
    return 1.0 - np.power(1.0 - p, 1.0 / 3.0)


def survival_from_hazard(
    hazard: np.ndarray | pd.Series | float, horizon: int, heterogeneity: float | None = None
) -> np.ndarray:
    """Survival curves ``S(1..H)`` for accounts with a monthly churn hazard.

    Without heterogeneity the hazard is taken as known and constant: ``S(t) = (1-h)^t``. With
    ``heterogeneity = kappa`` the account's true hazard is treated as uncertain,
    ``theta ~ Beta(h * kappa, (1 - h) * kappa)`` (mean ``h``), which gives an sBG survival curve
    with ``alpha = h kappa``, ``beta = (1-h) kappa``: the same first-month churn, fatter tail (the
    longer an account stays, the more likely its hazard was low). Small ``kappa`` = much
    heterogeneity; ``kappa -> inf`` recovers the constant-hazard curve.

    Args:
        hazard: Monthly churn probability per account, in [0, 1].
        horizon: Months ``H`` >= 1.
        heterogeneity: ``kappa = alpha + beta`` (> 0), or None for a constant hazard.

    Returns:
        Array ``(n_accounts, H)`` (``(H,)`` for a scalar hazard) with ``S(t)`` for ``t = 1..H``.
    """
    h = np.asarray(hazard, dtype=float)
    if np.any(~np.isfinite(h)) or np.any((h < 0) | (h > 1)):
        raise ValueError("hazard must be finite probabilities in [0, 1]")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    t = np.arange(1, horizon + 1, dtype=float)
    hh = h[..., None]
    if heterogeneity is None:
        return np.power(1.0 - hh, t)
    if not heterogeneity > 0:
        raise ValueError(f"heterogeneity (kappa) must be > 0, got {heterogeneity}")
    # Clip away exact 0/1 where the beta distribution degenerates: there the curve is the
    # constant-hazard one anyway (h = 0 -> nobody leaves, h = 1 -> everybody leaves).
    a = np.clip(hh, 1e-12, 1 - 1e-12) * heterogeneity
    b = heterogeneity - a
    # S(t) = prod_{j<=t} r(j) with r(j) = (b + j - 1)/(a + b + j - 1): exact for integer t and
    # stable for large kappa, where differences of log-beta functions lose digits.
    s = np.cumprod((b + t - 1.0) / (a + b + t - 1.0), axis=-1)
    return np.where(hh <= 0, 1.0, np.where(hh >= 1, 0.0, s))


def clv_from_survival(
    survival: np.ndarray, margin: np.ndarray | pd.Series | float, discount_rate: float
) -> np.ndarray:
    """Expected discounted margin from survival curves: ``sum_t m * S(t) / (1+d)^t``.

    Args:
        survival: ``(n_accounts, H)`` (or ``(H,)``) survival probabilities for ``t = 1..H``.
        margin: Monthly margin per account (or one for all).
        discount_rate: Per-period discount rate ``d`` >= 0.

    Returns:
        CLV per account (shape ``(n_accounts,)``, or a 0-d array for a single curve).
    """
    s = np.asarray(survival, dtype=float)
    if not discount_rate >= 0:
        raise ValueError(f"discount_rate must be >= 0, got {discount_rate}")
    m = np.asarray(margin, dtype=float)
    if np.any(~np.isfinite(m)):
        raise ValueError("margin contains NaN or inf")
    disc = np.power(1.0 + discount_rate, -np.arange(1, s.shape[-1] + 1, dtype=float))
    # Row by row, not `s @ disc`: BLAS picks its kernel by the matrix's shape, so an account's CLV
    # would change in the last bits with the number of accounts scored beside it (and the API's
    # batched answers would differ from the same request alone).
    return m * (s * disc).sum(axis=-1)


def clv_from_hazard(
    hazard: np.ndarray | pd.Series | float,
    margin: np.ndarray | pd.Series | float,
    horizon: int = 36,
    discount_rate: float = 0.01,
    heterogeneity: float | None = None,
) -> np.ndarray:
    """CLV per account from a monthly hazard and monthly margin.

    ``CLV = sum_{t=1..H} m * S(t) / (1+d)^t`` with ``S`` from :func:`survival_from_hazard`.

    Args:
        hazard: Monthly churn probability per account.
        margin: Monthly margin per account (or a scalar).
        horizon: Months.
        discount_rate: Monthly discount rate (0.01 ~ 12.7 % a year).
        heterogeneity: Optional sBG concentration ``kappa`` (see :func:`survival_from_hazard`).

    Returns:
        CLV per account.
    """
    h = np.asarray(hazard, dtype=float)
    m = np.asarray(margin, dtype=float)
    if m.ndim and h.ndim and m.shape != h.shape:
        raise ValueError(f"margin shape {m.shape} does not match hazard shape {h.shape}")
    return clv_from_survival(survival_from_hazard(h, horizon, heterogeneity), m, discount_rate)


def clv_constant_hazard_closed_form(
    hazard: np.ndarray | float, margin: np.ndarray | float, horizon: int, discount_rate: float
) -> np.ndarray:
    """Closed form of :func:`clv_from_hazard` for a constant hazard (a finite geometric series).

    With ``q = (1-h)/(1+d)``: ``CLV = m q (1 - q^H) / (1 - q)`` (``m H`` when ``q = 1``).

    Args:
        hazard: Monthly churn probability.
        margin: Monthly margin.
        horizon: Months.
        discount_rate: Monthly discount rate.

    Returns:
        CLV per account.
    """
    h = np.asarray(hazard, dtype=float)
    m = np.asarray(margin, dtype=float)
    q = (1.0 - h) / (1.0 + discount_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.where(np.isclose(q, 1.0), float(horizon), q * (1.0 - q**horizon) / (1.0 - q))
    return m * geo


def account_clv(
    accounts: pd.DataFrame,
    *,
    p90_col: str = "churn_p90",
    margin_col: str = "monthly_margin",
    id_col: str = "account_id",
    horizon: int = 36,
    discount_rate: float = 0.01,
    heterogeneity: float | None = None,
) -> pd.DataFrame:
    """CLV per account from the churn model's 90-day probability and a monthly margin.

    Args:
        accounts: One row per account with ``id_col``, ``p90_col`` and ``margin_col``.
        p90_col: Column with P(churn within 90 days).
        margin_col: Column with the monthly margin.
        id_col: Account id column (must be unique).
        horizon: Months.
        discount_rate: Monthly discount rate.
        heterogeneity: Optional sBG concentration ``kappa``.

    Returns:
        A new frame ``[id_col, monthly_hazard, expected_lifetime_months, clv]``; the expected
        lifetime is the undiscounted expected number of surviving months within the horizon.

    Raises:
        DataValidationError: On missing columns, duplicate ids, or invalid values.
    """
    problems = [f"missing column '{c}'" for c in (id_col, p90_col, margin_col) if c not in accounts.columns]
    if problems:
        raise DataValidationError("accounts", problems)
    if accounts.empty:
        raise DataValidationError("accounts", ["no rows"])
    dup = accounts[id_col].duplicated()
    if dup.any():
        problems.append(f"duplicate {id_col}: {accounts.loc[dup, id_col].head(5).tolist()}")
    p = pd.to_numeric(accounts[p90_col], errors="coerce")
    bad = p.isna() | (p < 0) | (p > 1)
    if bad.any():
        problems.append(f"{p90_col} must be a probability in [0, 1]; bad for {accounts.loc[bad, id_col].head(5).tolist()}")
    m = pd.to_numeric(accounts[margin_col], errors="coerce")
    if m.isna().any():
        problems.append(f"{margin_col} must be numeric; bad for {accounts.loc[m.isna(), id_col].head(5).tolist()}")
    if problems:
        raise DataValidationError("accounts", problems)
    h = monthly_hazard_from_p90(p.to_numpy())
    s = survival_from_hazard(h, horizon, heterogeneity)
    return pd.DataFrame(
        {
            id_col: accounts[id_col].to_numpy(),
            "monthly_hazard": h,
            "expected_lifetime_months": s.sum(axis=1),
            "clv": clv_from_survival(s, m.to_numpy(dtype=float), discount_rate),
        }
    )


@dataclass(frozen=True)
class HazardClvRule:
    """The rule of the hazard CLV model: churn probability and monthly charges in, CLV out.

    The CLV model of the synthetic-world path is the churn classifier plus this rule (saved in
    the model's spec): ``monthly margin = margin_rate x monthly charges`` (missing charges earn
    nothing), the 90-day probability as a constant monthly hazard, the discounted survival sum
    over ``horizon`` months. A scorer that predicts the churn probability its own way (the
    service's compiled boosters) applies the rule through :meth:`clv` instead of restating it.

    Attributes:
        margin_rate: Share of the monthly charges kept as margin.
        horizon: Months valued.
        discount_rate: Monthly discount rate.
    """

    margin_rate: float
    horizon: int
    discount_rate: float

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> HazardClvRule:
        """Read the rule from a saved CLV model's spec (``margin_rate``, ``horizon``, ``discount_rate``)."""
        return cls(float(spec["margin_rate"]), int(spec["horizon"]), float(spec["discount_rate"]))

    def monthly_margin(self, monthly_charges: Any) -> np.ndarray:
        """``margin_rate x`` the charges per account (NaN charges -> 0)."""
        return self.margin_rate * np.nan_to_num(np.asarray(monthly_charges, dtype=float), nan=0.0)

    def clv(self, p90: Any, monthly_charges: Any) -> np.ndarray:
        """CLV per account from P(churn within 90 days) (clipped to [0, 1]) and the monthly charges."""
        hazard = monthly_hazard_from_p90(np.clip(np.asarray(p90, dtype=float), 0.0, 1.0))
        s = survival_from_hazard(hazard, self.horizon)
        return np.atleast_1d(clv_from_survival(s, self.monthly_margin(monthly_charges), self.discount_rate)).astype(float)


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


class SBGCohortModel(BaseEstimator):
    """Shifted-beta-geometric retention model, scikit-learn style.

    Example:
        >>> m = SBGCohortModel().fit([1000, 631, 468, 382, 326, 289, 262, 241])
        >>> round(m.alpha_, 3), round(m.beta_, 3)
        (0.704, 1.182)

    Args:
        start: Starting ``(alpha, beta)`` for the optimizer.

    Attributes:
        alpha_: MLE of alpha.
        beta_: MLE of beta.
        log_likelihood_: Log-likelihood at the MLE.
        fit_: The full :class:`SBGFit`.
    """

    def __init__(self, start: tuple[float, float] = (1.0, 1.0)):
        self.start = start

    def fit(self, survivors: Sequence[float] | np.ndarray) -> SBGCohortModel:
        """Fit to a cohort's survivor counts (``survivors[0]`` = cohort size).

        Args:
            survivors: Active customers at the start and after each period.

        Returns:
            self.
        """
        return self._set(fit_sbg_cohort(survivors, self.start))

    def fit_individual(self, duration: np.ndarray | pd.Series, churned: np.ndarray | pd.Series) -> SBGCohortModel:
        """Fit to individual (duration, churned) data with right-censoring.

        Args:
            duration: Completed periods per customer.
            churned: True if the customer left at the end of ``duration``.

        Returns:
            self.
        """
        return self._set(fit_sbg_individual(duration, churned, self.start))

    def _set(self, fit: SBGFit) -> SBGCohortModel:
        self.fit_ = fit
        self.alpha_ = fit.alpha
        self.beta_ = fit.beta
        self.log_likelihood_ = fit.log_likelihood
        return self

    def _check(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("SBGCohortModel is not fitted; call fit() or fit_individual() first")

    def pmf(self, t: int | np.ndarray) -> np.ndarray:
        """``P(T = t)``, t >= 1."""
        self._check()
        return sbg_pmf(t, self.alpha_, self.beta_)

    def survival(self, t: int | np.ndarray) -> np.ndarray:
        """``S(t)``, t >= 0."""
        self._check()
        return sbg_survival(t, self.alpha_, self.beta_)

    def retention(self, t: int | np.ndarray) -> np.ndarray:
        """``r(t)``, t >= 1."""
        self._check()
        return sbg_retention(t, self.alpha_, self.beta_)

    def conditional_survival(self, tenure: int | np.ndarray, horizon: int) -> np.ndarray:
        """``S(n+k)/S(n)`` for ``k = 1..horizon`` (see :func:`sbg_conditional_survival`)."""
        self._check()
        return sbg_conditional_survival(tenure, horizon, self.alpha_, self.beta_)

    def discounted_expected_lifetime(self, discount_rate: float) -> float:
        """DEL (see :func:`discounted_expected_lifetime`)."""
        self._check()
        return discounted_expected_lifetime(self.alpha_, self.beta_, discount_rate)

    def discounted_expected_residual_lifetime(self, discount_rate: float, renewals: int | np.ndarray) -> np.ndarray:
        """DERL (see :func:`discounted_expected_residual_lifetime`)."""
        self._check()
        return discounted_expected_residual_lifetime(self.alpha_, self.beta_, discount_rate, renewals)


class ContractCLV(BaseEstimator):
    """Contractual CLV by segment (e.g. contract type): one sBG per segment, tenure-conditional CLV.

    ``fit`` estimates ``(alpha, beta)`` per segment from each account's tenure and churn flag
    (churned at tenure ``t`` -> ``P(T=t)``; still active at tenure ``t`` -> ``S(t)``). ``predict``
    values each account from its segment's survival *given its current tenure*::

        CLV_i = m_i * sum_{k=1..H} S(n_i + k) / S(n_i) / (1+d)^k

    so a two-year customer of 60 months is worth more per euro of margin than a new one — the
    selection effect sBG captures and a constant churn rate misses.

    Args:
        segment_col: Segment column (e.g. ``"Contract"`` in IBM Telco, ``"account_contract_type"``
            in the feature frame).
        tenure_col: Tenure column in periods (months); fractional values are put on the period
            grid (floor for active accounts, ceil for churned ones).
        margin_col: Monthly margin column, used by ``predict``.
        horizon: Periods ahead to value.
        discount_rate: Per-period discount rate.
        min_churned: Minimum churners per segment for a fit (fewer -> error: the MLE is unstable).

    Attributes:
        segments_: Segment value -> fitted :class:`SBGCohortModel`.
        params_: Frame of ``segment, alpha, beta, mean_churn, homogeneous, n_customers, n_churned,
            log_likelihood`` (see :class:`SBGFit` for ``homogeneous``: on IBM Telco the one- and
            two-year segments show no rising retention and fit as plain geometric lifetimes).
    """

    def __init__(
        self,
        segment_col: str = "account_contract_type",
        tenure_col: str = "account_tenure_months",
        margin_col: str = "monthly_margin",
        horizon: int = 36,
        discount_rate: float = 0.01,
        min_churned: int = 5,
    ):
        self.segment_col = segment_col
        self.tenure_col = tenure_col
        self.margin_col = margin_col
        self.horizon = horizon
        self.discount_rate = discount_rate
        self.min_churned = min_churned

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> ContractCLV:
        """Fit one sBG per segment.

        Args:
            X: Frame with ``segment_col`` and ``tenure_col``.
            y: Churn flag per row (bool or 0/1): True = left at the end of its tenure.

        Returns:
            self.

        Raises:
            DataValidationError: On missing columns, length mismatch, bad tenures, or a segment
                with fewer than ``min_churned`` churners.
        """
        missing = [c for c in (self.segment_col, self.tenure_col) if c not in X.columns]
        if missing:
            raise DataValidationError("contract_clv", [f"missing column '{c}'" for c in missing])
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise DataValidationError("contract_clv", [f"y has {len(y_arr)} rows, X has {len(X)}"])
        if len(X) == 0:
            raise DataValidationError("contract_clv", ["no rows"])
        seg = X[self.segment_col]
        if seg.isna().any():
            raise DataValidationError("contract_clv", [f"{self.segment_col} has missing values"])
        tenure = pd.to_numeric(X[self.tenure_col], errors="coerce").to_numpy(dtype=float)
        churn_flag = _flags(y_arr)[0]
        # Fractional tenures (e.g. months = days / 30.44) are put on the sBG's period grid: an
        # active account has completed floor(t) periods (T > floor(t)); one that left during
        # period ceil(t) had lifetime ceil(t). Whole-number tenures are unchanged.
        with np.errstate(invalid="ignore"):
            tenure = np.where(churn_flag, np.ceil(tenure), np.floor(tenure))
        # Validate the whole column once, so errors name rows of the input rather than of a segment.
        dur, churned = _validate_durations(tenure, y_arr)
        models: dict[object, SBGCohortModel] = {}
        rows = []
        problems = []
        for value in pd.unique(seg):
            mask = (seg == value).to_numpy()
            n_churned = int(churned[mask].sum())
            if n_churned < self.min_churned:
                problems.append(f"segment {value!r} has {n_churned} churners (< min_churned={self.min_churned})")
                continue
            m = SBGCohortModel().fit_individual(dur[mask], churned[mask])
            models[value] = m
            rows.append(
                {"segment": value, "alpha": m.alpha_, "beta": m.beta_, "mean_churn": m.fit_.mean_churn,
                 "homogeneous": m.fit_.homogeneous, "n_customers": int(mask.sum()),
                 "n_churned": n_churned, "log_likelihood": m.log_likelihood_}
            )
        if problems:
            raise DataValidationError("contract_clv", problems)
        self.segments_ = models
        self.params_ = pd.DataFrame(rows).sort_values("segment", key=lambda s: s.astype(str)).reset_index(drop=True)
        return self

    def _check_predict_input(self, X: pd.DataFrame, need_margin: bool) -> tuple[pd.Series, np.ndarray]:
        if not hasattr(self, "segments_"):
            raise RuntimeError("ContractCLV is not fitted; call fit() first")
        cols = [self.segment_col, self.tenure_col] + ([self.margin_col] if need_margin else [])
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise DataValidationError("contract_clv", [f"missing column '{c}'" for c in missing])
        seg = X[self.segment_col]
        unknown = sorted({str(v) for v in pd.unique(seg) if v not in self.segments_})
        problems = []
        if unknown:
            problems.append(f"unknown {self.segment_col} value(s) not seen in fit: {unknown}")
        n = pd.to_numeric(X[self.tenure_col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(n) | (n < 0)
        n = np.floor(np.where(bad, 0.0, n))  # completed periods (see fit)
        if bad.any():
            problems.append(f"{self.tenure_col} must be >= 0; bad rows {np.flatnonzero(bad)[:5].tolist()}")
        if problems:
            raise DataValidationError("contract_clv", problems)
        return seg, n

    def _survival(self, seg: pd.Series, n: np.ndarray) -> np.ndarray:
        out = np.empty((len(seg), self.horizon))
        for value, model in self.segments_.items():
            mask = (seg == value).to_numpy()
            if mask.any():
                out[mask] = model.conditional_survival(n[mask], self.horizon)
        return out

    def conditional_survival(self, X: pd.DataFrame) -> np.ndarray:
        """Survival over the next ``horizon`` periods for each row, given its segment and tenure.

        Args:
            X: Frame with ``segment_col`` and ``tenure_col``.

        Returns:
            Array ``(len(X), horizon)``.
        """
        return self._survival(*self._check_predict_input(X, need_margin=False))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """CLV per row: discounted expected margin over the horizon given segment and tenure.

        Args:
            X: Frame with ``segment_col``, ``tenure_col`` and ``margin_col``.

        Returns:
            CLV per row.

        Raises:
            DataValidationError: On missing columns, unknown segments, bad tenures or margins.
        """
        seg, n = self._check_predict_input(X, need_margin=True)
        m = pd.to_numeric(X[self.margin_col], errors="coerce").to_numpy(dtype=float)
        if np.any(~np.isfinite(m)):
            raise DataValidationError("contract_clv", [f"{self.margin_col} has missing or non-numeric values"])
        return clv_from_survival(self._survival(seg, n), m, self.discount_rate)
