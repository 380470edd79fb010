"""One arm against a reference on one metric: the comparison every readout table is made of.

Kept apart from :mod:`telco_nbo.experiments.readout` so that both the overall readout and the
per-segment breakdown (:mod:`telco_nbo.experiments.segments`) can use it without importing each
other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from telco_nbo.experiments import sequential as seqmod
from telco_nbo.experiments import stats
from telco_nbo.experiments.models import Comparison, MetricSpec


def compare(
    spec: MetricSpec,
    y_t: np.ndarray,
    y_c: np.ndarray,
    *,
    arm: str,
    reference: str,
    alpha: float,
    seed: Sequence[int] | int,
    n_draws: int = 20_000,
    cuped: bool = False,
    seq_tau2_factor: float | None = None,
) -> Comparison | None:
    """Compare one arm with a reference arm on one metric.

    Args:
        spec: The metric.
        y_t: Outcomes of the arm (CUPED-adjusted if ``cuped``).
        y_c: Outcomes of the reference.
        arm: Arm name.
        reference: Reference arm name.
        alpha: Two-sided level.
        seed: Unused since the Beta-Binomial chance to win is computed by quadrature (kept for callers).
        n_draws: Unused, as ``seed``.
        cuped: Whether the inputs are CUPED-adjusted: binary metrics then use the Welch path
            (adjusted values are no longer 0/1) and the normal posterior.
        seq_tau2_factor: When set, add the always-valid interval with ``tau^2 = factor * V``, where
            ``V`` is this comparison's variance (the factor encodes the planned size; see
            :func:`run_readout`).

    Returns:
        The comparison, or ``None`` when there is no variance to test with (both arms constant).
    """
    y_t = np.asarray(y_t, float)
    y_c = np.asarray(y_c, float)
    n_t, n_c = len(y_t), len(y_c)
    if spec.kind == "binary" and not cuped:
        x_t, x_c = float(y_t.sum()), float(y_c.sum())
        r = stats.two_proportions(x_t, n_t, x_c, n_c, alpha)
        test = "two_proportion_z"
        prob, loss = stats.bayes_binary(
            int(x_t), n_t, int(x_c), n_c, higher_is_better=spec.higher_is_better, n_draws=n_draws, seed=seed
        )
    else:
        r = stats.welch(y_t.mean(), y_t.var(ddof=1), n_t, y_c.mean(), y_c.var(ddof=1), n_c, alpha)
        test = "welch_t"
        if float(r.se) > 0:
            prob, loss = stats.bayes_normal(r.diff, r.se, higher_is_better=spec.higher_is_better)
        else:
            prob, loss = np.nan, np.nan
    if not np.isfinite(float(r.p_value)):
        return None
    rel, rel_lo, rel_hi, rel_p = stats.relative_lift_test(r, alpha)
    note = None
    if not np.isfinite(float(rel)):
        note = f"relative lift undefined: the {reference} mean is 0"
    seq_lo = seq_hi = rel_seq_lo = rel_seq_hi = None
    if seq_tau2_factor is not None:
        var = float(r.se) ** 2
        if var > 0:
            hw = float(seqmod.mixture_halfwidth(var, seq_tau2_factor * var, alpha))
            seq_lo, seq_hi = float(r.diff) - hw, float(r.diff) + hw
        # The relative lift is asymptotically normal with its delta-method variance; the same
        # boundary (tau^2 the same multiple of its variance) gives its always-valid interval.
        rvar = float(stats.relative_variance(r))
        if np.isfinite(rvar) and rvar > 0 and np.isfinite(float(rel)):
            rhw = float(seqmod.mixture_halfwidth(rvar, seq_tau2_factor * rvar, alpha))
            rel_seq_lo, rel_seq_hi = float(rel) - rhw, float(rel) + rhw
    fin = lambda v: float(v) if np.isfinite(float(v)) else None  # noqa: E731
    return Comparison(
        arm=arm,
        reference=reference,
        n_treatment=n_t,
        n_reference=n_c,
        mean_treatment=float(r.mean_t),
        mean_reference=float(r.mean_c),
        abs_lift=float(r.diff),
        abs_ci_low=float(r.ci_low),
        abs_ci_high=float(r.ci_high),
        rel_lift=fin(rel),
        rel_ci_low=fin(rel_lo),
        rel_ci_high=fin(rel_hi),
        rel_p_value=fin(rel_p),
        test=test,
        statistic=float(r.statistic),
        df=None if r.df is None else float(r.df),
        p_value=float(r.p_value),
        significant=bool(float(r.p_value) < alpha),
        prob_beat_reference=float(prob),
        expected_loss=float(loss),
        seq_ci_low=seq_lo,
        seq_ci_high=seq_hi,
        rel_seq_ci_low=rel_seq_lo,
        rel_seq_ci_high=rel_seq_hi,
        cuped=cuped,
        note=note,
    )
