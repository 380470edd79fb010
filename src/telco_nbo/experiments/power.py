"""Power and minimum-detectable-effect (MDE) planning, on :mod:`statsmodels.stats.power`.

* Proportions: Cohen's arcsine effect size ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))``
  (:func:`statsmodels.stats.proportion.proportion_effectsize`) with the normal-approximation power
  of :class:`~statsmodels.stats.power.NormalIndPower`. An MDE in ``h`` maps back to a rate by
  ``p1 = sin(asin(sqrt(p0)) + h/2)^2``.
* Means: Cohen's ``d = delta / sd`` with the two-sample t power of
  :class:`~statsmodels.stats.power.TTestIndPower`.

With several treatment arms each compared with control, pass ``comparisons`` to split alpha
(Bonferroni): the plan then holds for the family, as a careful reader of the readout will demand.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from telco_nbo.errors import ConfigError


class PowerPlan(BaseModel):
    """A sample size / MDE plan.

    Attributes:
        kind: ``binary`` or ``continuous``.
        baseline: Control rate (binary) or control mean (continuous, informational).
        sd: Standard deviation (continuous only).
        mde_abs: Absolute minimum detectable effect (treatment - control).
        mde_rel: ``mde_abs / baseline`` (None when the baseline is 0 or unknown).
        n_control: Units in control.
        n_treatment: Units in each treatment arm (``ratio * n_control``).
        ratio: ``n_treatment / n_control``.
        alpha: Family-wise two-sided level.
        alpha_per_comparison: ``alpha / comparisons``.
        power: Probability of detecting ``mde_abs``.
        comparisons: Number of treatment-vs-control comparisons.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["binary", "continuous"]
    baseline: float | None
    sd: float | None
    mde_abs: float
    mde_rel: float | None
    n_control: int
    n_treatment: int
    ratio: float
    alpha: float
    alpha_per_comparison: float
    power: float
    comparisons: int


def _check(alpha: float, power: float, ratio: float, comparisons: int) -> float:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ConfigError(f"power must be in (0, 1), got {power}")
    if ratio <= 0:
        raise ConfigError(f"ratio must be positive, got {ratio}")
    if comparisons < 1:
        raise ConfigError(f"comparisons must be >= 1, got {comparisons}")
    return alpha / comparisons


def _rel(mde: float, baseline: float | None) -> float | None:
    return mde / baseline if baseline else None


def sample_size_proportions(
    baseline: float, mde_abs: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, comparisons: int = 1
) -> PowerPlan:
    """Units needed to detect a change of ``mde_abs`` from a baseline rate.

    Args:
        baseline: Control rate in (0, 1).
        mde_abs: Absolute change to detect (may be negative, e.g. a churn drop); ``baseline + mde``
            must stay in (0, 1).
        alpha: Family-wise two-sided level.
        power: Desired power.
        ratio: Treatment units per control unit.
        comparisons: Treatment arms compared with control (Bonferroni split of alpha).

    Returns:
        The plan (sizes rounded up).
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    a = _check(alpha, power, ratio, comparisons)
    if not 0 < baseline < 1 or not 0 < baseline + mde_abs < 1 or mde_abs == 0:
        raise ConfigError(f"need 0 < baseline < 1, 0 < baseline + mde < 1 and mde != 0; got {baseline}, {mde_abs}")
    h = abs(proportion_effectsize(baseline + mde_abs, baseline))
    # statsmodels: nobs1 is the first sample (treatment here), ratio = nobs2 / nobs1 (control / treatment).
    n_t = float(NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=a, power=power, ratio=1 / ratio))
    n_c = math.ceil(n_t / ratio)
    return PowerPlan(kind="binary", baseline=baseline, sd=None, mde_abs=mde_abs, mde_rel=_rel(mde_abs, baseline),
                     n_control=n_c, n_treatment=math.ceil(n_c * ratio), ratio=ratio, alpha=alpha,
                     alpha_per_comparison=a, power=power, comparisons=comparisons)


def mde_proportions(
    baseline: float, n_control: int, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
    comparisons: int = 1, direction: Literal["increase", "decrease"] = "increase",
) -> PowerPlan:
    """Smallest change of a rate detectable with ``n_control`` control units.

    Args:
        baseline: Control rate in (0, 1).
        n_control: Control units.
        alpha: Family-wise two-sided level.
        power: Desired power.
        ratio: Treatment units per control unit.
        comparisons: Treatment arms compared with control.
        direction: Whether the effect to detect raises or lowers the rate (the arcsine scale is
            not symmetric).

    Returns:
        The plan with ``mde_abs`` solved.
    """
    from statsmodels.stats.power import NormalIndPower

    a = _check(alpha, power, ratio, comparisons)
    if not 0 < baseline < 1 or n_control < 2:
        raise ConfigError(f"need 0 < baseline < 1 and n_control >= 2; got {baseline}, {n_control}")
    n_t = n_control * ratio
    # statsmodels' ratio is nobs2/nobs1: take the control as sample 2.
    h = float(NormalIndPower().solve_power(effect_size=None, nobs1=n_t, alpha=a, power=power, ratio=1 / ratio))
    phi0 = math.asin(math.sqrt(baseline))
    phi1 = phi0 + h / 2 if direction == "increase" else phi0 - h / 2
    phi1 = min(max(phi1, 0.0), math.pi / 2)
    mde = math.sin(phi1) ** 2 - baseline
    return PowerPlan(kind="binary", baseline=baseline, sd=None, mde_abs=mde, mde_rel=_rel(mde, baseline),
                     n_control=n_control, n_treatment=math.ceil(n_t), ratio=ratio, alpha=alpha,
                     alpha_per_comparison=a, power=power, comparisons=comparisons)


def sample_size_means(
    sd: float, mde_abs: float, *, baseline: float | None = None, alpha: float = 0.05, power: float = 0.8,
    ratio: float = 1.0, comparisons: int = 1,
) -> PowerPlan:
    """Units needed to detect a difference of means ``mde_abs`` (two-sample t test).

    Args:
        sd: Outcome standard deviation (after CUPED, use ``sd * sqrt(1 - variance_reduction)``).
        mde_abs: Absolute difference to detect.
        baseline: Control mean, only to report the relative MDE.
        alpha: Family-wise two-sided level.
        power: Desired power.
        ratio: Treatment units per control unit.
        comparisons: Treatment arms compared with control.

    Returns:
        The plan.
    """
    from statsmodels.stats.power import TTestIndPower

    a = _check(alpha, power, ratio, comparisons)
    if sd <= 0 or mde_abs == 0:
        raise ConfigError(f"need sd > 0 and mde != 0; got {sd}, {mde_abs}")
    n_t = float(TTestIndPower().solve_power(effect_size=abs(mde_abs) / sd, nobs1=None, alpha=a, power=power, ratio=1 / ratio))
    n_c = math.ceil(n_t / ratio)
    return PowerPlan(kind="continuous", baseline=baseline, sd=sd, mde_abs=mde_abs, mde_rel=_rel(mde_abs, baseline),
                     n_control=n_c, n_treatment=math.ceil(n_c * ratio), ratio=ratio, alpha=alpha,
                     alpha_per_comparison=a, power=power, comparisons=comparisons)


def mde_means(
    sd: float, n_control: int, *, baseline: float | None = None, alpha: float = 0.05, power: float = 0.8,
    ratio: float = 1.0, comparisons: int = 1,
) -> PowerPlan:
    """Smallest difference of means detectable with ``n_control`` control units.

    Args:
        sd: Outcome standard deviation.
        n_control: Control units.
        baseline: Control mean, only to report the relative MDE.
        alpha: Family-wise two-sided level.
        power: Desired power.
        ratio: Treatment units per control unit.
        comparisons: Treatment arms compared with control.

    Returns:
        The plan with ``mde_abs`` solved.
    """
    from statsmodels.stats.power import TTestIndPower

    a = _check(alpha, power, ratio, comparisons)
    if sd <= 0 or n_control < 2:
        raise ConfigError(f"need sd > 0 and n_control >= 2; got {sd}, {n_control}")
    n_t = n_control * ratio
    d = float(TTestIndPower().solve_power(effect_size=None, nobs1=n_t, alpha=a, power=power, ratio=1 / ratio))
    mde = d * sd
    return PowerPlan(kind="continuous", baseline=baseline, sd=sd, mde_abs=mde, mde_rel=_rel(mde, baseline),
                     n_control=n_control, n_treatment=math.ceil(n_t), ratio=ratio, alpha=alpha,
                     alpha_per_comparison=a, power=power, comparisons=comparisons)
