"""Absolute quality floor of the promotion gate: a model must beat a trivial one before it serves.

The champion/challenger comparison (:func:`telco_nbo.tracking.promote`) only says that a new
version is better than the old one; both can be useless. This floor is checked on the version's own
holdout (the ``target`` / ``prediction`` [/ ``treatment``] frame every training run stores) and
compares it with the model a person would get for free:

- ``churn`` and ``propensity``: ROC AUC at least ``0.5 + AUC_MARGIN`` with the lower end of its
  95 % bootstrap interval above 0.5 (a base-rate model ranks at random: AUC 0.5), and log loss
  below the base-rate model's (predicting the holdout's rate for everyone);
- ``clv``: a CLV is judged against a naive CLV (the same value for everyone, which correlates with
  nothing). Where the truth is known (synthetic worlds log ``truth_clv_pearson``) its correlation
  with the true CLV must be at least ``CLV_MIN_CORRELATION``; elsewhere its churn hazard, from
  which the CLV is built, must rank churners above ``0.5 + AUC_MARGIN`` (logged holdout AUC).
  Ranking churners by ``-CLV`` is not the test: CLV also grows with the bill, and big-bill
  accounts churn no less (on a 3,000-household world a CLV correlating 0.96 with the truth ranks
  churners at AUC 0.54);
- ``uplift``: Qini coefficient (in the retention orientation) above 0, random targeting's value,
  reported with its 95 % bootstrap interval. A point estimate above 0 whose interval still reaches
  0 passes, with the detail saying it is not yet distinguishable from random: on this project's
  worlds the retention experiment's holdout is small (~1,600 enrolments at 20,000 households, a
  Qini interval of about +-0.013 around values of 0.001-0.01), so demanding the whole interval
  above 0 would refuse every uplift model short of a very large experiment, and ``rank`` needs one.
  A negative Qini (worse than random, the case that used to be promoted silently) is refused.

Intervals are percentile bootstraps from :func:`scipy.stats.bootstrap` (rows resampled in pairs,
fixed seed, so a decision is reproducible). Pure functions: the caller loads the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from telco_nbo.vocabulary import MODEL_KINDS

CLV_MIN_CORRELATION = 0.3
"""Least correlation with the true CLV (synthetic worlds) a CLV model needs; a naive one has 0."""
AUC_MARGIN = 0.02
"""How far above a base-rate model's AUC (0.5) the point estimate must be."""
N_RESAMPLES = 300
"""Bootstrap resamples of the interval (percentile method)."""
CONFIDENCE = 0.95
SEED = 20260


@dataclass(frozen=True)
class FloorResult:
    """Outcome of the quality floor on one model version's holdout.

    Attributes:
        kind: Model kind.
        passed: Whether the version may serve.
        metric: The metric checked (``roc_auc`` or ``qini``).
        value: Its point estimate on the holdout.
        low: Lower end of its 95 % bootstrap interval (``nan`` when it cannot be estimated).
        high: Upper end.
        baseline: The trivial model's value of ``metric`` (0.5 AUC, 0 Qini).
        n: Holdout rows.
        detail: One sentence for a person: what was checked, the figures, why it passed or not.
    """

    kind: str
    passed: bool
    metric: str
    value: float
    low: float
    high: float
    baseline: float
    n: int
    detail: str


def _interval(data: tuple[np.ndarray, ...], statistic, seed: int, n_resamples: int) -> tuple[float, float]:  # noqa: ANN001
    from scipy.stats import bootstrap

    res = bootstrap(data, statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                    confidence_level=CONFIDENCE, method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    # A resample with a single class has no AUC; counting it as random keeps the interval honest.
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else 0.5


def _qini(y: np.ndarray, s: np.ndarray, t: np.ndarray) -> float:
    # Lazy: tracking imports this module, and models.uplift loads XGBoost (~6 s) it does not need.
    from telco_nbo.models.uplift import qini_auc_score

    if t.sum() == 0 or t.sum() == len(t):
        return 0.0
    # Retention orientation: y = 1 is churn (bad), the score is the predicted drop in churn.
    value = qini_auc_score(1 - y, -s, t)
    return float(value) if np.isfinite(value) else 0.0


def check_clv_floor(metrics: dict[str, float]) -> FloorResult:
    """The CLV floor from its run's logged holdout metrics (see the module docstring).

    Args:
        metrics: The run's metrics (``holdout_truth_clv_pearson`` when the truth is known,
            ``holdout_roc_auc`` of the churn hazard otherwise).

    Returns:
        The result (``passed`` False when neither metric was logged).
    """
    nan = float("nan")
    corr = metrics.get("holdout_truth_clv_pearson")
    if corr is not None and np.isfinite(corr):
        passed = corr >= CLV_MIN_CORRELATION
        detail = (f"correlation with the true CLV {corr:.3f} is {'at least' if passed else 'below'} "
                  f"{CLV_MIN_CORRELATION:g} (a naive constant CLV correlates with nothing)")
        return FloorResult("clv", bool(passed), "truth_clv_pearson", float(corr), nan, nan, 0.0, 0, detail)
    auc = metrics.get("holdout_roc_auc")
    if auc is None or not np.isfinite(auc):
        return FloorResult("clv", False, "", nan, nan, nan, nan, 0,
                           "the run logged neither holdout_truth_clv_pearson nor the hazard's holdout_roc_auc")
    passed = auc >= 0.5 + AUC_MARGIN
    detail = (f"its churn hazard ranks churners at AUC {auc:.4f}, {'at least' if passed else 'below'} "
              f"0.5 + {AUC_MARGIN:g} (a naive CLV has no hazard: 0.5)")
    return FloorResult("clv", bool(passed), "roc_auc", float(auc), nan, nan, 0.5, 0, detail)


def check_floor(kind: str, holdout: pd.DataFrame, *, target: str = "target", score: str = "prediction",
                treatment: str = "treatment", seed: int = SEED, n_resamples: int = N_RESAMPLES,
                metrics: dict[str, float] | None = None) -> FloorResult:
    """Check one version's holdout against the floor of its kind.

    Args:
        kind: ``churn``, ``propensity``, ``uplift`` or ``clv``.
        holdout: The stored holdout frame (``target``, ``prediction`` and, for uplift, ``treatment``).
        target: Outcome column (1 = churned / accepted).
        score: The model's score column.
        treatment: Treatment column (uplift only).
        seed: Seed of the bootstrap.
        n_resamples: Bootstrap resamples.

    Returns:
        The result; ``passed`` is False also when the holdout is too small to tell.

    Raises:
        ValueError: Unknown kind or missing columns.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"no quality floor for kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    if kind == "clv":
        return check_clv_floor(metrics or {})
    need = [target, score] + ([treatment] if kind == "uplift" else [])
    missing = [c for c in need if c not in holdout.columns]
    if missing:
        raise ValueError(f"the holdout lacks {missing}")
    frame = holdout[need].dropna()
    y = frame[target].to_numpy(dtype=float)
    s = frame[score].to_numpy(dtype=float)
    n = len(frame)
    if kind == "uplift":
        t = frame[treatment].to_numpy(dtype=float)
        value = _qini(y, s, t)
        low, high = _interval((y, s, t), _qini, seed, n_resamples) if n >= 20 else (np.nan, np.nan)
        passed = bool(value > 0)
        head = f"Qini {value:.4g} (95 % interval [{low:.4g}, {high:.4g}], {n:,} holdout enrolments)"
        if not passed:
            detail = f"{head} is not above random targeting's 0: the model ranks no better than random"
        elif not low > 0:
            detail = (f"{head} is above random targeting's 0, but its interval reaches 0: not yet distinguishable "
                      f"from random targeting (more enrolments would tell)")
        else:
            detail = f"{head} is above random targeting's 0 with its whole interval"
        return FloorResult(kind, passed, "qini", value, low, high, 0.0, n, detail)
    from sklearn.metrics import log_loss

    value = _auc(y, s)
    low, high = _interval((y, s), _auc, seed, n_resamples) if n >= 20 else (np.nan, np.nan)
    rate = float(y.mean()) if n else float("nan")
    model_ll = float(log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1])) if n else float("nan")
    base_ll = float(log_loss(y, np.full(n, np.clip(rate, 1e-15, 1 - 1e-15)), labels=[0, 1])) if n else float("nan")
    problems = []
    if not value >= 0.5 + AUC_MARGIN:
        problems.append(f"AUC {value:.4f} is below 0.5 + {AUC_MARGIN:g} (a base-rate model ranks at 0.5)")
    if not low > 0.5:
        problems.append(f"the 95 % interval of the AUC [{low:.4f}, {high:.4f}] reaches 0.5")
    if not model_ll < base_ll:
        problems.append(f"log loss {model_ll:.4f} is not below the base-rate model's {base_ll:.4f}")
    head = (f"AUC {value:.4f} (95 % interval [{low:.4f}, {high:.4f}]), log loss {model_ll:.4f} vs "
            f"{base_ll:.4f} for the base rate {rate:.3f}, on {n:,} holdout rows")
    detail = head + ("" if not problems else ": " + "; ".join(problems))
    return FloorResult(kind, not problems, "roc_auc", value, low, high, 0.5, n, detail)


__all__ = ["AUC_MARGIN", "CLV_MIN_CORRELATION", "FloorResult", "check_clv_floor", "check_floor"]
