"""Always-valid ("sequential") intervals for a difference of means, for teams that look every day.

A fixed-sample 95 % interval recomputed after every new batch of data and stopped the first time it
excludes zero has a false-positive rate far above 5 %. A *confidence sequence* is a sequence of
intervals that covers the true effect at **all** looks simultaneously with probability
``>= 1 - alpha``, so peeking, stopping early or extending the test is safe.

The boundary (two-sided normal mixture; Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist.): for an estimate
``d_n`` of the effect ``delta`` with (plug-in) variance ``V_n`` and a ``N(0, tau^2)`` mixing
distribution over the effect,

    L_n(delta) = sqrt(V_n / (V_n + tau^2)) * exp(tau^2 (d_n - delta)^2 / (2 V_n (V_n + tau^2)))

is the mixture likelihood ratio, a nonnegative martingale with mean 1 under ``delta``. Ville's
inequality gives ``P(exists n: L_n(delta) >= 1/alpha) <= alpha``; inverting ``L_n < 1/alpha``:

    d_n +- sqrt( V_n (V_n + tau^2) / tau^2 * (2 log(1/alpha) + log((V_n + tau^2) / V_n)) )

In Howard et al.'s sum scale (``S_t`` with intrinsic time ``v = t sigma^2``) this is their
``sqrt((v + rho) log((v + rho) / (rho alpha^2)))`` with ``rho = sigma^4 / tau^2``. The mixture
``tau^2`` must be fixed before the data are seen; we set ``tau^2 = k(alpha) V*`` where ``V*`` is the
estimate's variance at the planned sample size and ``k`` makes the interval narrowest there
(:func:`mixture_k`: k is about 8.2 at alpha = 0.05). The variance is estimated from the
data (plug-in), the usual practice in experimentation platforms; its coverage under continuous
peeking is checked by simulation in ``tests/experiments/test_experiments_sequential.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

ArrayLike = Any


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def mixture_k(alpha: float) -> float:
    """Return ``k = tau^2 / V*`` that makes the normal-mixture interval narrowest at variance ``V*``.

    The width at ``V*`` with ``tau^2 = k V*`` is proportional to
    ``sqrt((1+k)/k * (2 log(1/alpha) + log(1+k)))``, a function of ``k`` and ``alpha`` only.
    """
    _check_alpha(alpha)
    two_log = 2 * np.log(1 / alpha)

    def width2(logk: float) -> float:
        k = np.exp(logk)
        return (1 + k) / k * (two_log + np.log1p(k))

    res = optimize.minimize_scalar(width2, bounds=(-10, 10), method="bounded")
    return float(np.exp(res.x))


def mixture_halfwidth(var: ArrayLike, tau2: ArrayLike, alpha: float = 0.05) -> Any:
    """Half-width of the two-sided normal-mixture confidence sequence (see module docstring).

    Args:
        var: Variance ``V_n`` of the estimate at this look.
        tau2: Mixture variance, fixed before the experiment.
        alpha: Error rate over all looks together.

    Returns:
        The half-width (same shape as ``var``).
    """
    _check_alpha(alpha)
    v = np.asarray(var, float)
    tau2 = np.asarray(tau2, float)
    return np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))


def confidence_sequence(diff: ArrayLike, var: ArrayLike, tau2: ArrayLike, alpha: float = 0.05) -> tuple[Any, Any]:
    """Always-valid interval ``(low, high)`` of a difference at one or many looks.

    Args:
        diff: Estimate(s) of the effect at each look.
        var: Variance(s) of the estimate at each look.
        tau2: Mixture variance fixed before the experiment (see :func:`tau2_for_plan`).
        alpha: Error rate over all looks together.

    Returns:
        Lower and upper ends (same shape as ``diff``).
    """
    hw = mixture_halfwidth(var, tau2, alpha)
    d = np.asarray(diff, float)
    return d - hw, d + hw


def tau2_for_plan(var_at_plan: float, alpha: float = 0.05) -> float:
    """Mixture variance that makes the interval narrowest at the planned size.

    Args:
        var_at_plan: Expected variance of the estimate at the planned size, e.g.
            ``sd_t^2/n_t + sd_c^2/n_c``.
        alpha: Error rate.

    Returns:
        ``tau^2``.
    """
    return mixture_k(alpha) * var_at_plan
