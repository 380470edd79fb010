"""Uplift (heterogeneous treatment effect) models and their evaluation.

**Sign convention.** Every learner here estimates, per row,

    tau(x) = P(y = 1 | x, T = 1) - P(y = 1 | x, T = 0)

on the outcome it was trained on. For retention offers the outcome is *churn*, so a **negative**
``tau`` means the offer *reduces* churn (a "persuadable"), a positive ``tau`` means the contact
pushes the customer out (a "sleeping dog"), and ``tau ~ 0`` is a "sure thing" or a "lost cause".
Rankings and value calculations use the **retention uplift** ``-tau`` (higher = more churn
prevented), see :meth:`TLearner.retention_uplift` and :func:`retention_uplift`.

Learners (scikit-learn conventions, XGBoost base models):

- :class:`TLearner`: one classifier per arm, ``tau = mu1(x) - mu0(x)``.
- :class:`XLearner`: Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating heterogeneous
  treatment effects using machine learning", PNAS 116(10). Outcome classifiers per arm, then
  regressors on the imputed effects ``D1 = y - mu0(x)`` (treated) and ``D0 = mu1(x) - y``
  (control), blended by the propensity: ``tau = e(x) tau0(x) + (1 - e(x)) tau1(x)``.

Metrics (hand-written, tested against scikit-uplift's ``sklift.metrics`` to 1e-9; same
definitions so numbers are comparable with the literature that uses it):

- :func:`qini_curve`, :func:`uplift_curve` and their "perfect" counterparts;
- :func:`qini_auc_score` (normalized Qini coefficient), :func:`qini_area` (raw area between the
  Qini curve and the random line), :func:`uplift_auc_score` (normalized AUUC);
- :func:`uplift_by_decile` (rates and uplift per arm per score decile);
- :func:`evaluate_uplift`: all of the above as one serializable :class:`UpliftEvaluation`,
  including, when the true effects are known (synthetic world), the **oracle** Qini of ranking
  by the true ``tau`` and the model's Qini as a share of it.

All metric functions take the *desirable* outcome orientation: a higher score should mean a
higher ``P(y=1|T=1) - P(y=1|T=0)``. For churn pass ``negative_outcome=True`` to
:func:`evaluate_uplift` (it evaluates retention: ``y -> 1 - y`` and ``score -> -score``), or do
the flip yourself for the low-level functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import BaseModel, ConfigDict
from sklearn.base import BaseEstimator

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.models.churn import check_model_frame

__all__ = [
    "TLearner",
    "XLearner",
    "retention_uplift",
    "qini_curve",
    "perfect_qini_curve",
    "uplift_curve",
    "perfect_uplift_curve",
    "qini_auc_score",
    "qini_area",
    "uplift_auc_score",
    "uplift_by_decile",
    "UpliftDecile",
    "UpliftEvaluation",
    "evaluate_uplift",
]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _binary(values: Any, name: str, table: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataValidationError(table, [f"{name} must be 1-D, got shape {arr.shape}"])
    if arr.dtype == bool:
        return arr.astype(np.int8)
    num = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(num, (0.0, 1.0))
    if bad.any():
        raise DataValidationError(
            table, [f"{name} must be binary (0/1 or bool); bad values at rows {np.flatnonzero(bad)[:5].tolist()}"]
        )
    return num.astype(np.int8)


def _scores(values: Any, name: str, table: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise DataValidationError(table, [f"{name} must be 1-D, got shape {arr.shape}"])
    if not np.all(np.isfinite(arr)):
        raise DataValidationError(table, [f"{name} has NaN/inf at rows {np.flatnonzero(~np.isfinite(arr))[:5].tolist()}"])
    return arr


def _check_metric_inputs(y: Any, score: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_, t_ = _binary(y, "y", "uplift_metrics"), _binary(treatment, "treatment", "uplift_metrics")
    s_ = _scores(score, "score", "uplift_metrics")
    if not (len(y_) == len(s_) == len(t_)):
        raise DataValidationError("uplift_metrics", [f"lengths differ: y={len(y_)}, score={len(s_)}, treatment={len(t_)}"])
    if len(y_) == 0:
        raise DataValidationError("uplift_metrics", ["no rows"])
    problems = []
    if t_.sum() == 0:
        problems.append("no treated rows")
    if t_.sum() == len(t_):
        problems.append("no control rows")
    if problems:
        raise DataValidationError("uplift_metrics", problems)
    return y_, s_, t_


# --------------------------------------------------------------------------------------------
# Curves and areas
# --------------------------------------------------------------------------------------------


def _cumulative(y: np.ndarray, score: np.ndarray, t: np.ndarray):
    # Descending score; ties broken as sklift does (reverse of a stable ascending sort), and only
    # the last position of each tied block is a point, so the tie order never changes a value.
    order = np.argsort(score, kind="mergesort")[::-1]
    y, s, t = y[order].astype(float), score[order], t[order].astype(float)
    idx = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    n_t = np.cumsum(t)[idx]
    y_t = np.cumsum(y * t)[idx]
    y_c = np.cumsum(y * (1 - t))[idx]
    n = (idx + 1).astype(float)
    return n, n_t, n - n_t, y_t, y_c


def _start_at_origin(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size == 0 or v[0] != 0 or x[0] != 0:
        return np.r_[0.0, x], np.r_[0.0, v]
    return x, v


def qini_curve(y: Any, score: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve (Radcliffe 2007): incremental responders when targeting the top ``k`` rows.

    ``Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)`` over the ``k`` highest-scored rows (0 where there
    are no control rows yet), at each distinct score threshold, starting at ``(0, 0)``.

    Args:
        y: Binary outcome (1 = the desirable response, e.g. *retained*).
        score: Predicted uplift (higher = target first).
        treatment: 1 = treated, 0 = control.

    Returns:
        ``(k, Q(k))`` arrays; ``k`` counts rows, ``Q`` counts responders.
    """
    y, s, t = _check_metric_inputs(y, score, treatment)
    n, n_t, n_c, y_t, y_c = _cumulative(y, s, t)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    return _start_at_origin(n, y_t - y_c * ratio)


def uplift_curve(y: Any, score: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: ``(Y_T(k)/N_T(k) - Y_C(k)/N_C(k)) * k`` over the ``k`` highest-scored rows.

    Args:
        y: Binary outcome (1 = desirable).
        score: Predicted uplift.
        treatment: 1 = treated, 0 = control.

    Returns:
        ``(k, U(k))`` arrays starting at ``(0, 0)``.
    """
    y, s, t = _check_metric_inputs(y, score, treatment)
    n, n_t, n_c, y_t, y_c = _cumulative(y, s, t)
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t != 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c != 0)
    return _start_at_origin(n, (rate_t - rate_c) * n)


def perfect_qini_curve(y: Any, treatment: Any, negative_effect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The best achievable Qini curve on these outcomes.

    Args:
        y: Binary outcome.
        treatment: 1 = treated, 0 = control.
        negative_effect: If True (sklift's default), the ideal ranking puts treated responders
            first and control responders last, so the curve rises above and then falls back to
            the total (negative effects exist). If False, the zero-downside optimum: one
            incremental responder per targeted row up to the total, then flat (needs a positive
            total).

    Returns:
        ``(k, Q(k))`` arrays.
    """
    y_, t_ = _binary(y, "y", "uplift_metrics"), _binary(treatment, "treatment", "uplift_metrics")
    if negative_effect:
        return qini_curve(y_, (y_ * t_ - y_ * (1 - t_)).astype(float), t_)
    _check_metric_inputs(y_, np.zeros(len(y_)), t_)
    total = y_[t_ == 1].sum() - (t_ == 1).sum() * y_[t_ == 0].sum() / (t_ == 0).sum()
    if total <= 0:
        # The zero-downside optimum targets `total` persuadables first, one incremental responder
        # per row (slope 1); with no positive total there is nothing to target and the curve, as
        # sklift builds it, would run backwards (sklift raises an opaque sklearn error there).
        raise DataValidationError(
            "uplift_metrics",
            [f"negative_effect=False needs a positive overall incremental response, got {total:.3g}"],
        )
    return np.array([0.0, total, float(len(y_))]), np.array([0.0, total, total])


def perfect_uplift_curve(y: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """The best achievable uplift curve on these outcomes (sklift's construction).

    Args:
        y: Binary outcome.
        treatment: 1 = treated, 0 = control.

    Returns:
        ``(k, U(k))`` arrays.
    """
    y_, t_ = _binary(y, "y", "uplift_metrics"), _binary(treatment, "treatment", "uplift_metrics")
    control_responders = np.sum((y_ == 1) & (t_ == 0))
    treated_nonresponders = np.sum((y_ == 0) & (t_ == 1))
    summand = y_ if control_responders > treated_nonresponders else t_
    return uplift_curve(y_, (2 * (y_ == t_) + summand).astype(float), t_)


def _trapezoid(x: np.ndarray, v: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2.0))


def qini_area(y: Any, score: Any, treatment: Any) -> float:
    """Raw area between the Qini curve and the random-targeting line, in rows x responders.

    Args:
        y: Binary outcome (1 = desirable).
        score: Predicted uplift.
        treatment: 1 = treated, 0 = control.

    Returns:
        The area (positive = better than random).
    """
    x, q = qini_curve(y, score, treatment)
    return _trapezoid(x, q) - _trapezoid(np.array([0.0, x[-1]]), np.array([0.0, q[-1]]))


def qini_auc_score(y: Any, score: Any, treatment: Any, negative_effect: bool = True) -> float:
    """Normalized Qini coefficient: (model area - random area) / (perfect area - random area).

    Same definition as ``sklift.metrics.qini_auc_score``: 1 = the perfect ranking of these
    outcomes, 0 = random, negative = worse than random.

    Args:
        y: Binary outcome (1 = desirable).
        score: Predicted uplift.
        treatment: 1 = treated, 0 = control.
        negative_effect: See :func:`perfect_qini_curve`.

    Returns:
        The coefficient.
    """
    y_, s_, t_ = _check_metric_inputs(y, score, treatment)
    xa, va = qini_curve(y_, s_, t_)
    xp, vp = perfect_qini_curve(y_, t_, negative_effect)
    base = _trapezoid(np.array([0.0, xp[-1]]), np.array([0.0, vp[-1]]))
    return (_trapezoid(xa, va) - base) / (_trapezoid(xp, vp) - base)


def uplift_auc_score(y: Any, score: Any, treatment: Any) -> float:
    """Normalized area under the uplift curve (AUUC), as ``sklift.metrics.uplift_auc_score``.

    Args:
        y: Binary outcome (1 = desirable).
        score: Predicted uplift.
        treatment: 1 = treated, 0 = control.

    Returns:
        (model area - random area) / (perfect area - random area).
    """
    y_, s_, t_ = _check_metric_inputs(y, score, treatment)
    xa, va = uplift_curve(y_, s_, t_)
    xp, vp = perfect_uplift_curve(y_, t_)
    base = _trapezoid(np.array([0.0, xp[-1]]), np.array([0.0, vp[-1]]))
    return (_trapezoid(xa, va) - base) / (_trapezoid(xp, vp) - base)


def uplift_by_decile(
    y: Any, score: Any, treatment: Any, bins: int = 10, true_uplift: Any | None = None
) -> pd.DataFrame:
    """Observed uplift per score bin (bin 1 = highest scores), both arms in each bin.

    Rows are sorted by descending score and split into ``bins`` consecutive groups of (nearly)
    equal size (``numpy.array_split``, as ``sklift.metrics.uplift_by_percentile`` with
    ``strategy="overall"``, so the first bins get the extra rows).

    Args:
        y: Binary outcome (1 = desirable).
        score: Predicted uplift.
        treatment: 1 = treated, 0 = control.
        bins: Number of bins (< number of rows).
        true_uplift: Optional true per-row effect (synthetic data): its mean per bin is added.

    Returns:
        Frame indexed 1..bins with ``n_treatment, n_control, rate_treatment, rate_control,
        uplift, std_uplift, mean_score`` (and ``mean_true_uplift``). A rate is NaN when its arm
        is empty in that bin.
    """
    y_, s_, t_ = _check_metric_inputs(y, score, treatment)
    if not isinstance(bins, (int, np.integer)) or bins < 1 or bins >= len(y_):
        raise DataValidationError("uplift_metrics", [f"bins must be an integer in [1, {len(y_) - 1}], got {bins}"])
    order = np.argsort(s_, kind="mergesort")[::-1]
    groups = np.array_split(np.arange(len(y_)), bins)
    true = None if true_uplift is None else _scores(true_uplift, "true_uplift", "uplift_metrics")
    if true is not None and len(true) != len(y_):
        raise DataValidationError("uplift_metrics", [f"true_uplift has {len(true)} rows, y has {len(y_)}"])
    rows = []
    for g in groups:
        idx = order[g]
        yt, yc = y_[idx][t_[idx] == 1], y_[idx][t_[idx] == 0]
        rt = yt.mean() if yt.size else np.nan
        rc = yc.mean() if yc.size else np.nan
        var = (rt * (1 - rt) / yt.size if yt.size else np.nan) + (rc * (1 - rc) / yc.size if yc.size else np.nan)
        row = {
            "n_treatment": int(yt.size), "n_control": int(yc.size), "rate_treatment": float(rt),
            "rate_control": float(rc), "uplift": float(rt - rc), "std_uplift": float(np.sqrt(var)),
            "mean_score": float(s_[idx].mean()),
        }
        if true is not None:
            row["mean_true_uplift"] = float(true[idx].mean())
        rows.append(row)
    out = pd.DataFrame(rows, index=pd.RangeIndex(1, bins + 1, name="decile"))
    return out


# --------------------------------------------------------------------------------------------
# Evaluation result
# --------------------------------------------------------------------------------------------


class UpliftDecile(BaseModel):
    """One row of the uplift-by-decile table (decile 1 = highest predicted uplift)."""

    model_config = ConfigDict(frozen=True)

    decile: int
    n_treatment: int
    n_control: int
    rate_treatment: float | None
    rate_control: float | None
    uplift: float | None
    std_uplift: float | None
    mean_score: float
    mean_true_uplift: float | None = None


class UpliftEvaluation(BaseModel):
    """Uplift model quality on a holdout (serializable: ``model_dump_json`` / ``model_validate_json``).

    All values are in the *desirable* orientation (for churn: retention, i.e. the scores were
    ``-tau`` and the outcome ``retained``), so higher is better everywhere.

    Attributes:
        outcome: What ``y = 1`` meant in the evaluation (e.g. ``"retained"``).
        n_treatment: Treated rows.
        n_control: Control rows.
        observed_ate: Treated rate - control rate of the desirable outcome over the whole holdout.
        qini_coefficient: Normalized Qini (sklift ``qini_auc_score``, negative effects allowed).
        qini_area: Raw area between the Qini curve and the random line.
        auuc: Normalized area under the uplift curve (sklift ``uplift_auc_score``).
        uplift_top_decile: Observed uplift among the top 10 % by score.
        oracle_qini_coefficient: Qini coefficient of the ranking by the true effect, if known.
        qini_share_of_oracle: ``qini_area / oracle qini_area`` (how much of the achievable ranking
            quality the model captures), if the true effect is known.
        tau_rmse: RMSE of predicted vs true effect (PEHE), if known.
        tau_spearman: Spearman rank correlation of predicted vs true effect, if known.
        true_gain_share_of_oracle: :func:`true_gain_share` of the model's ranking, if the true
            effect is known: the noise-free comparison with the oracle (realized-outcome Qini on
            a small holdout is dominated by outcome noise, so its share can be any number).
        deciles: The uplift-by-decile table.
    """

    model_config = ConfigDict(frozen=True)

    outcome: str
    n_treatment: int
    n_control: int
    observed_ate: float
    qini_coefficient: float
    qini_area: float
    auuc: float
    uplift_top_decile: float | None
    oracle_qini_coefficient: float | None = None
    oracle_qini_area: float | None = None
    qini_share_of_oracle: float | None = None
    tau_rmse: float | None = None
    tau_spearman: float | None = None
    true_gain_share_of_oracle: float | None = None
    deciles: list[UpliftDecile]

    def deciles_frame(self) -> pd.DataFrame:
        """The decile table as a frame indexed by decile."""
        return pd.DataFrame([d.model_dump() for d in self.deciles]).set_index("decile")


def _none_if_nan(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def evaluate_uplift(
    y: Any,
    treatment: Any,
    score: Any,
    *,
    true_uplift: Any | None = None,
    negative_outcome: bool = False,
    bins: int = 10,
    outcome_name: str | None = None,
) -> UpliftEvaluation:
    """Evaluate predicted uplift on a randomized holdout.

    Args:
        y: Observed binary outcome.
        treatment: 1 = treated (contacted), 0 = control (holdout).
        score: The model's ``tau`` on ``y`` (e.g. ``learner.predict(X)``).
        true_uplift: True per-row ``tau`` on ``y`` (synthetic world), for the oracle comparison.
        negative_outcome: True when ``y = 1`` is bad (churn): the evaluation then flips to the
            desirable orientation (``y -> 1 - y``, ``score -> -score``, ``true -> -true``) so that
            ranking by *retention uplift* is what is scored.
        bins: Bins of the decile table.
        outcome_name: Label stored in the result (default ``"retained"`` / ``"y"``).

    Returns:
        The evaluation.
    """
    y_, s_, t_ = _check_metric_inputs(y, score, treatment)
    true = None if true_uplift is None else _scores(true_uplift, "true_uplift", "uplift_metrics")
    if true is not None and len(true) != len(y_):
        raise DataValidationError("uplift_metrics", [f"true_uplift has {len(true)} rows, y has {len(y_)}"])
    if negative_outcome:
        y_, s_ = 1 - y_, -s_
        true = None if true is None else -true
    name = outcome_name or ("retained" if negative_outcome else "y")
    dec = uplift_by_decile(y_, s_, t_, bins=bins, true_uplift=true)
    area = qini_area(y_, s_, t_)
    extra: dict[str, float | None] = {}
    if true is not None:
        oracle_area = qini_area(y_, true, t_)
        extra = {
            "oracle_qini_coefficient": qini_auc_score(y_, true, t_),
            "oracle_qini_area": oracle_area,
            "qini_share_of_oracle": _none_if_nan(area / oracle_area) if oracle_area != 0 else None,
            "tau_rmse": float(np.sqrt(np.mean((s_ - true) ** 2))),
            "tau_spearman": _none_if_nan(pd.Series(s_).corr(pd.Series(true), method="spearman")),
            "true_gain_share_of_oracle": _none_if_nan(true_gain_share(s_, true)),
        }
    deciles = [
        UpliftDecile(decile=int(i), **{k: (_none_if_nan(v) if isinstance(v, float) else v) for k, v in row.items()})
        for i, row in dec.to_dict("index").items()
    ]
    # Top decile by rows, independent of ``bins`` so the number means the same in every report.
    top_idx = np.argsort(s_, kind="mergesort")[::-1][: max(1, len(y_) // 10)]
    yt, yc = y_[top_idx][t_[top_idx] == 1], y_[top_idx][t_[top_idx] == 0]
    return UpliftEvaluation(
        outcome=name,
        n_treatment=int(t_.sum()),
        n_control=int((1 - t_).sum()),
        observed_ate=float(y_[t_ == 1].mean() - y_[t_ == 0].mean()),
        qini_coefficient=qini_auc_score(y_, s_, t_),
        qini_area=area,
        auuc=uplift_auc_score(y_, s_, t_),
        uplift_top_decile=_none_if_nan(yt.mean() - yc.mean()) if yt.size and yc.size else None,
        deciles=deciles,
        **extra,
    )


def true_gain_curve(score: Any, true_uplift: Any) -> np.ndarray:
    """Expected incremental outcome of treating the top-k rows by ``score``, for k = 0..n.

    With the true per-row effect known (a synthetic world), treating the top k rows by a ranking
    yields ``sum of true effects of those rows`` in expectation: the Qini curve with the outcome
    noise taken out. Ties in ``score`` are broken by row order (stable sort).

    Args:
        score: Ranking score, higher = treat first.
        true_uplift: True effect per row, in the desirable orientation.

    Returns:
        ``(n + 1,)`` cumulative expected gain, starting at 0.
    """
    s = np.asarray(score, dtype=float)
    t = np.asarray(true_uplift, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    return np.concatenate([[0.0], np.cumsum(t[order])])


def true_gain_share(score: Any, true_uplift: Any) -> float:
    """How much of the oracle's ranking value a ranking captures, measured on true effects.

    ``(A(score) - A(random)) / (A(oracle) - A(random))`` where ``A`` is the area under
    :func:`true_gain_curve` and the random ranking's curve is the straight line to the total
    effect. 1 = the oracle's ranking, 0 = no better than random, negative = worse than random.

    Args:
        score: Ranking score, higher = treat first.
        true_uplift: True effect per row, in the desirable orientation.

    Returns:
        The share (NaN when the oracle is no better than random, i.e. all effects equal).
    """
    t = np.asarray(true_uplift, dtype=float)
    n = t.size
    random_area = t.sum() * n / 2.0
    # Trapezoid areas of the cumulative curves (k from 0 to n).
    def area(curve: np.ndarray) -> float:
        return float((curve[1:] + curve[:-1]).sum() / 2.0)

    oracle = area(true_gain_curve(t, t)) - random_area
    if oracle <= 0:
        return float("nan")
    return (area(true_gain_curve(score, t)) - random_area) / oracle


def retention_uplift(tau: Any) -> np.ndarray:
    """Churn-prevention score from a churn ``tau``: ``-tau`` (higher = more churn prevented).

    Args:
        tau: ``P(churn | offer) - P(churn | no offer)`` per row.

    Returns:
        ``-tau``.
    """
    return -np.asarray(tau, dtype=float)


# --------------------------------------------------------------------------------------------
# Learners
def apply_calibration(tau: Any, calibration: tuple[float, float] | None) -> np.ndarray:
    """``intercept + slope x tau`` (``tau`` unchanged without a calibration)."""
    tau = np.asarray(tau, dtype=float)
    if calibration is None:
        return tau
    a, b = calibration
    return float(a) + float(b) * tau


def _effect_bins(tau_pred: np.ndarray, t: np.ndarray, y: np.ndarray,
                 n_bins: int) -> tuple[list[float], list[float], list[float]]:
    """Quantile bins of the predicted effect: mean prediction, observed effect, inverse-variance weight.

    Bins with fewer than 5 rows in an arm are left out (no observed effect to speak of).
    """
    edges = np.unique(np.quantile(tau_pred, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, tau_pred, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, obs, w = [], [], []
    for b in range(max(len(edges) - 1, 1)):
        m = which == b
        m1, m0 = m & (t == 1), m & (t == 0)
        if m1.sum() < 5 or m0.sum() < 5:
            continue
        p1, p0 = y[m1].mean(), y[m0].mean()
        xs.append(tau_pred[m].mean())
        obs.append(p1 - p0)
        w.append(1.0 / max(p1 * (1 - p1) / m1.sum() + p0 * (1 - p0) / m0.sum(), 1e-6))
    return xs, obs, w


def calibration_from_holdout(tau_pred: Any, treatment: Any, y: Any, *, n_bins: int = 10) -> tuple[float, float]:
    """Linear calibration of predicted effects on rows the learner never saw: ``(intercept, slope)``.

    Rows are binned by predicted ``tau`` (quantiles); in each bin the observed effect is the
    treated minus control outcome rate, and a weighted least-squares line (weights = 1 / the
    observed effect's variance) maps predicted to observed effect. The slope is clipped to
    ``[0, 1]`` -- a calibration may shrink estimates towards their mean, never stretch them -- and
    the intercept then chosen so the calibrated mean equals the observed average effect.

    Args:
        tau_pred: Out-of-fold predicted effects.
        treatment: 0/1 per row.
        y: Outcome per row.
        n_bins: Quantile bins.

    Returns:
        ``(intercept, slope)`` for :func:`apply_calibration`.
    """
    tau_pred = np.asarray(tau_pred, float)
    t = np.asarray(treatment, int)
    y = np.asarray(y, float)
    xs, obs, w = _effect_bins(tau_pred, t, y, n_bins)
    ate = y[t == 1].mean() - y[t == 0].mean() if (t == 1).any() and (t == 0).any() else 0.0
    if len(xs) < 2:
        return float(ate), 0.0  # no spread to calibrate on: the average effect for everyone
    xs, obs, w = np.asarray(xs), np.asarray(obs), np.asarray(w)
    xm, om = np.average(xs, weights=w), np.average(obs, weights=w)
    var_x = np.average((xs - xm) ** 2, weights=w)
    slope = float(np.average((xs - xm) * (obs - om), weights=w) / var_x) if var_x > 0 else 0.0
    slope = float(np.clip(slope, 0.0, 1.0))
    return float(ate - slope * tau_pred.mean()), slope


def calibration_band(tau_pred: Any, treatment: Any, y: Any, *, n_bins: int = 10) -> tuple[float, float, float]:
    """Sampling variance of the calibrated effect, as a function of the raw prediction.

    The calibrated effect is ``ate + slope x (tau - mean(tau))`` (:func:`calibration_from_holdout`
    chooses the intercept that way), so its variance at a raw prediction ``tau`` is, with the two
    estimates nearly uncorrelated (the slope is fitted on centred bins)::

        var(tau) = var(ate) + (tau - mean(tau))^2 x var(slope)

    ``var(ate)`` is the difference-in-means variance of the held-out rows; ``var(slope)`` the
    weighted least-squares variance of the binned fit, ``1 / sum w_b (x_b - x_w)^2`` with the
    same inverse-variance bin weights, both widened by the fit's chi-square per degree of freedom
    when the line misses the bins by more than their noise (``var(ate)`` by the matching share of
    the weighted mean's variance, ``(scale - 1) / sum w_b``). It is the uncertainty of the *expected* effect among
    accounts with that prediction -- what a decision on that account can know -- not of one
    account's own response.

    Args:
        tau_pred: Out-of-fold predicted effects.
        treatment: 0/1 per row.
        y: Outcome per row.
        n_bins: Quantile bins (as the calibration).

    Returns:
        ``(var_ate, var_slope, mean_tau)`` for :func:`calibrated_effect_se`; ``var_slope`` is 0
        when there is no spread to fit a slope on (the calibration is then the average effect).
    """
    tau_pred = np.asarray(tau_pred, float)
    t = np.asarray(treatment, int)
    y = np.asarray(y, float)
    n1, n0 = int((t == 1).sum()), int((t == 0).sum())
    p1 = y[t == 1].mean() if n1 else 0.0
    p0 = y[t == 0].mean() if n0 else 0.0
    var_ate = (p1 * (1 - p1) / n1 if n1 else 0.25) + (p0 * (1 - p0) / n0 if n0 else 0.25)
    xs, obs, w = _effect_bins(tau_pred, t, y, n_bins)
    var_slope = 0.0
    if len(xs) >= 2:
        xs_a, w_a, obs_a = np.asarray(xs), np.asarray(w), np.asarray(obs)
        xm = np.average(xs_a, weights=w_a)
        sxx = float(np.sum(w_a * (xs_a - xm) ** 2))
        var_slope = 1.0 / sxx if sxx > 0 else 0.0
        if len(xs) > 2 and sxx > 0:
            # A straight line that does not fit the bins within their noise (chi-square per degree
            # of freedom above 1) is less certain than the bins' noise alone says: widen by it, as
            # weighted least squares with an estimated scale does. Without this the band covered
            # 0.78 of decile means on an 80k world (benchmarks/bench_uplift_learners.py).
            om = np.average(obs_a, weights=w_a)
            slope = float(np.sum(w_a * (xs_a - xm) * (obs_a - om)) / sxx)
            chi2 = float(np.sum(w_a * (obs_a - om - slope * (xs_a - xm)) ** 2))
            scale = max(1.0, chi2 / (len(xs) - 2))
            var_slope *= scale
            var_ate += (scale - 1.0) / float(np.sum(w_a))
    return float(var_ate), float(var_slope), float(tau_pred.mean()) if len(tau_pred) else 0.0


def calibrated_effect_se(tau_raw: Any, band: tuple[float, float, float] | None) -> np.ndarray:
    """Standard error of the calibrated effect at each raw prediction (NaN without a band).

    Args:
        tau_raw: Raw (uncalibrated) predicted effects.
        band: ``(var_ate, var_slope, mean_tau)`` from :func:`calibration_band`.
    """
    tau_raw = np.asarray(tau_raw, float)
    if band is None:
        return np.full(tau_raw.shape, np.nan)
    var_ate, var_slope, mean_tau = band
    return np.sqrt(var_ate + (tau_raw - mean_tau) ** 2 * var_slope)


def cross_fit_calibration(make_learner: Any, X: Any, treatment: Any, y: Any, *, groups: Any = None,
                          folds: int = 2, seed: int = 0) -> tuple[tuple[float, float] | None, np.ndarray]:
    """Cross-fitted calibration: each fold's effects predicted by a learner fitted on the others.

    Args:
        make_learner: A no-argument callable returning an unfitted learner (same hyperparameters).
        X: Features.
        treatment: 0/1 per row.
        y: Outcome per row.
        groups: Rows of one group (household) stay in one fold.
        folds: Number of folds.
        seed: Fold assignment seed.

    Returns:
        ``((intercept, slope), out_of_fold_tau)``; the calibration is ``None`` when a fold is too
        small to fit (an arm without both outcomes): the raw effects are then used, as before.
    """
    X = check_model_frame(X, "uplift_training")
    t = np.asarray(treatment, int)
    yy = np.asarray(y, float)
    keys = np.asarray(groups if groups is not None else np.arange(len(t)))
    uniq, inv = np.unique(keys, return_inverse=True)
    fold_of_group = np.random.default_rng(seed).integers(0, folds, len(uniq))
    fold = fold_of_group[inv]
    oof = np.full(len(t), np.nan)
    for f in range(folds):
        test = fold == f
        if not test.any() or test.all():
            continue
        learner = make_learner()
        try:
            learner.fit(X[~test], t[~test], yy[~test])
        except DataValidationError:
            return None, oof
        oof[test] = learner.predict(X[test])
    ok = ~np.isnan(oof)
    return calibration_from_holdout(oof[ok], t[ok], yy[ok]), oof


# --------------------------------------------------------------------------------------------


def _check_fit_inputs(X: Any, treatment: Any, y: Any, min_per_arm: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    X = check_model_frame(X, "uplift_training")
    t_ = _binary(treatment, "treatment", "uplift_training")
    y_ = _binary(y, "y", "uplift_training")
    problems = []
    if not (len(X) == len(t_) == len(y_)):
        raise DataValidationError("uplift_training", [f"lengths differ: X={len(X)}, treatment={len(t_)}, y={len(y_)}"])
    for arm, name in ((1, "treated"), (0, "control")):
        m = t_ == arm
        if m.sum() < min_per_arm:
            problems.append(f"{name} arm has {int(m.sum())} rows (< {min_per_arm})")
        elif len(np.unique(y_[m])) < 2:
            problems.append(f"{name} arm has only one outcome class ({int(y_[m][0])}): cannot fit its outcome model")
    if problems:
        raise DataValidationError("uplift_training", problems)
    return X, t_, y_


class _XGBUpliftBase(BaseEstimator):
    """Shared hyperparameters and plumbing of the XGBoost meta-learners."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 5.0,
        reg_lambda: float = 1.0,
        n_jobs: int = 2,
        random_state: int = 0,
        min_per_arm: int = 20,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.min_per_arm = min_per_arm

    def _xgb_params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "n_jobs": min(int(self.n_jobs), 2),
            "random_state": self.random_state,
            "tree_method": "hist",
            "enable_categorical": True,
        }

    def _classifier(self) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **self._xgb_params())

    def _check_predict(self, X: Any) -> pd.DataFrame:
        if not hasattr(self, "feature_names_in_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        X = check_model_frame(X, "uplift_scoring")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise DataValidationError("uplift_scoring", [f"missing feature column(s): {', '.join(missing)}"])
        return X[list(self.feature_names_in_)]

    def predict_outcomes(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted outcome probabilities without and with treatment.

        Args:
            X: Feature frame with the training columns.

        Returns:
            ``(P(y=1 | x, T=0), P(y=1 | x, T=1))``.
        """
        X = self._check_predict(X)
        return self.model_control_.predict_proba(X)[:, 1], self.model_treated_.predict_proba(X)[:, 1]

    def retention_uplift(self, X: Any) -> np.ndarray:
        """``-tau``: for a churn outcome, the churn probability the offer removes (rank by this).

        Args:
            X: Feature frame.

        Returns:
            ``-predict(X)``.
        """
        return -self.predict(X)

    def predict_calibrated(self, X: Any) -> np.ndarray:
        """``tau`` shrunk by the held-out calibration (:func:`cross_fit_calibration`), if any.

        The raw ``predict`` ranks (Qini, AUUC); this one is what a decision should multiply by a
        customer's value: picking the largest of noisy estimates overstates them (the winner's
        curse), and the calibration learned on rows the learner never saw undoes that on average.
        """
        return apply_calibration(self.predict(X), getattr(self, "calibration_", None))

    def effect_models(self) -> tuple[Any, Any]:
        """The two fitted models whose predictions :meth:`effect_from_parts` turns into ``tau``.

        A compiled scorer (the service's numpy path) predicts with these models itself, one
        transformed prediction per row each (a probability for a classifier), and hands the
        predictions back: the formula that combines them stays here, written once.

        Raises:
            ConfigError: The learner is not fitted, or its effect needs more than these models.
        """
        raise NotImplementedError  # each learner names its own parts

    def effect_from_parts(self, parts: Sequence[Any], *, calibrated: bool = True) -> np.ndarray:
        """``tau`` per row from the predictions of :meth:`effect_models`, in that order.

        Args:
            parts: One prediction array per effect model.
            calibrated: Apply the held-out calibration, as :meth:`predict_calibrated` does.

        Returns:
            ``tau`` per row (calibrated when asked and the learner carries a calibration).
        """
        raise NotImplementedError  # each learner combines its own parts

    def effect_se_from_parts(self, parts: Sequence[Any]) -> np.ndarray:
        """Standard error of the calibrated effect per row (NaN when the learner carries no band).

        Args:
            parts: One prediction array per effect model, as for :meth:`effect_from_parts`.
        """
        return calibrated_effect_se(self.effect_from_parts(parts, calibrated=False),
                                    getattr(self, "calibration_band_", None))

    def _calibrated(self, tau: Any, calibrated: bool) -> np.ndarray:
        return apply_calibration(tau, getattr(self, "calibration_", None)) if calibrated else np.asarray(tau, dtype=float)

    def _require_fitted(self, *attributes: str) -> None:
        missing = [a for a in attributes if getattr(self, a, None) is None]
        if missing:
            raise ConfigError(f"{type(self).__name__} is not fitted (no {', '.join(missing)})")


def _t_effect(mu0: Any, mu1: Any) -> Any:
    """T-learner effect: ``mu1 - mu0`` (kept in the inputs' dtype, as ``predict`` always did)."""
    return mu1 - mu0


def _x_effect(e: Any, tau0: Any, tau1: Any) -> Any:
    """X-learner effect: ``e tau0 + (1 - e) tau1``."""
    return e * tau0 + (1.0 - e) * tau1


class TLearner(_XGBUpliftBase):
    """Two-model uplift learner: one XGBoost classifier per arm.

    ``tau(x) = mu1(x) - mu0(x)`` with ``mu_a(x) = P(y=1 | x, T=a)``. For churn, negative ``tau``
    = the offer reduces churn; use :meth:`retention_uplift` (``-tau``) to rank.

    Args:
        n_estimators: Trees per outcome model.
        max_depth: Tree depth.
        learning_rate: Shrinkage.
        subsample: Row subsampling.
        colsample_bytree: Column subsampling.
        min_child_weight: Minimum hessian per leaf (regularizes small arms).
        reg_lambda: L2 on leaf weights.
        n_jobs: Threads (capped at 2: the machine is shared).
        random_state: Seed.
        min_per_arm: Minimum rows per arm to fit.

    Attributes:
        model_control_: Outcome classifier fitted on control rows.
        model_treated_: Outcome classifier fitted on treated rows.
        feature_names_in_: Training columns (prediction reorders to these).
        treated_share_: Share of treated rows in training.
    """

    def fit(self, X: Any, treatment: Any, y: Any) -> TLearner:
        """Fit the two outcome models.

        Args:
            X: Feature frame (numeric / bool / category columns).
            treatment: 1 = treated, 0 = control, per row.
            y: Binary outcome per row.

        Returns:
            self.
        """
        X, t_, y_ = _check_fit_inputs(X, treatment, y, self.min_per_arm)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.treated_share_ = float(t_.mean())
        self.model_control_ = self._classifier().fit(X[t_ == 0], y_[t_ == 0])
        self.model_treated_ = self._classifier().fit(X[t_ == 1], y_[t_ == 1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Estimated ``tau = P(y=1|x,T=1) - P(y=1|x,T=0)`` per row (negative = offer lowers churn).

        Args:
            X: Feature frame with the training columns.

        Returns:
            ``tau`` per row.
        """
        mu0, mu1 = self.predict_outcomes(X)
        return _t_effect(mu0, mu1)

    def effect_models(self) -> tuple[Any, Any]:
        """``(model_control_, model_treated_)``: their probabilities are ``mu0`` and ``mu1``."""
        self._require_fitted("model_control_", "model_treated_")
        return self.model_control_, self.model_treated_

    def effect_from_parts(self, parts: Sequence[Any], *, calibrated: bool = True) -> np.ndarray:
        """``tau = mu1 - mu0`` from ``(mu0, mu1)``, then the calibration (see the base class)."""
        mu0, mu1 = parts
        return self._calibrated(_t_effect(mu0, mu1), calibrated)


class XLearner(_XGBUpliftBase):
    """X-learner (Künzel et al. 2019) on XGBoost.

    1. Outcome classifiers ``mu0`` (control rows) and ``mu1`` (treated rows).
    2. Imputed effects: ``D1 = y - mu0(x)`` on treated rows, ``D0 = mu1(x) - y`` on control rows
       (each arm's model is applied only to the *other* arm, so no row is scored by a model that
       saw it); regressors ``tau1`` on ``(X_treated, D1)`` and ``tau0`` on ``(X_control, D0)``.
    3. ``tau(x) = e(x) tau0(x) + (1 - e(x)) tau1(x)``: with few treated rows ``e`` is small and
       the estimate leans on ``tau1``, the one learned from the larger control arm's model.

    ``tau`` is on the outcome's scale: for churn, negative = the offer reduces churn.

    Args:
        propensity: How to get ``e(x) = P(T=1|x)``: ``None`` = the treated share of the training
            data (a randomized experiment's known share), a float in (0, 1) = that share,
            ``"model"`` = an XGBoost classifier of ``T`` on ``X`` (clipped to [0.01, 0.99]; for
            non-randomized data).
        effect_params: Overrides for the stage-2 ``XGBRegressor`` (e.g. shallower trees); by
            default it shares the outcome models' hyperparameters.
        (other hyperparameters as in :class:`TLearner`)

    Attributes:
        model_control_, model_treated_: Stage-1 outcome classifiers.
        effect_control_, effect_treated_: Stage-2 regressors ``tau0`` and ``tau1``.
        propensity_model_: The fitted propensity classifier (only with ``propensity="model"``).
        propensity_: The constant propensity used (None with a propensity model).
        feature_names_in_: Training columns.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 5.0,
        reg_lambda: float = 1.0,
        n_jobs: int = 2,
        random_state: int = 0,
        min_per_arm: int = 20,
        propensity: float | str | None = None,
        effect_params: dict[str, Any] | None = None,
    ):
        super().__init__(
            n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, subsample=subsample,
            colsample_bytree=colsample_bytree, min_child_weight=min_child_weight, reg_lambda=reg_lambda,
            n_jobs=n_jobs, random_state=random_state, min_per_arm=min_per_arm,
        )
        self.propensity = propensity
        self.effect_params = effect_params

    def _regressor(self) -> xgb.XGBRegressor:
        params = {**self._xgb_params(), **(self.effect_params or {})}
        params["n_jobs"] = min(int(params.get("n_jobs", 2)), 2)
        return xgb.XGBRegressor(objective="reg:squarederror", **params)

    def fit(self, X: Any, treatment: Any, y: Any) -> XLearner:
        """Fit outcome models, imputed-effect models and (optionally) the propensity model.

        Args:
            X: Feature frame (numeric / bool / category columns).
            treatment: 1 = treated, 0 = control, per row.
            y: Binary outcome per row.

        Returns:
            self.
        """
        p = self.propensity
        if not (p is None or p == "model" or (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1)):
            raise DataValidationError("uplift_training", [f"propensity must be None, 'model' or a float in (0, 1); got {p!r}"])
        X, t_, y_ = _check_fit_inputs(X, treatment, y, self.min_per_arm)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.treated_share_ = float(t_.mean())
        Xc, Xt = X[t_ == 0], X[t_ == 1]
        yc, yt = y_[t_ == 0].astype(float), y_[t_ == 1].astype(float)
        self.model_control_ = self._classifier().fit(Xc, yc)
        self.model_treated_ = self._classifier().fit(Xt, yt)
        d_treated = yt - self.model_control_.predict_proba(Xt)[:, 1]
        d_control = self.model_treated_.predict_proba(Xc)[:, 1] - yc
        self.effect_treated_ = self._regressor().fit(Xt, d_treated)
        self.effect_control_ = self._regressor().fit(Xc, d_control)
        if p == "model":
            self.propensity_model_ = self._classifier().fit(X, t_)
            self.propensity_ = None
        else:
            self.propensity_model_ = None
            self.propensity_ = float(self.treated_share_ if p is None else p)
        return self

    def predict_propensity(self, X: Any) -> np.ndarray:
        """``e(x)`` per row (constant unless ``propensity="model"``)."""
        X = self._check_predict(X)
        if self.propensity_model_ is None:
            return np.full(len(X), self.propensity_)
        return np.clip(self.propensity_model_.predict_proba(X)[:, 1], 0.01, 0.99)

    def predict_effects(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The two stage-2 estimates ``(tau0(x), tau1(x))`` before blending."""
        X = self._check_predict(X)
        return self.effect_control_.predict(X).astype(float), self.effect_treated_.predict(X).astype(float)

    def predict(self, X: Any) -> np.ndarray:
        """Estimated ``tau`` per row (negative = the offer lowers the outcome, e.g. churn).

        Args:
            X: Feature frame with the training columns.

        Returns:
            ``e(x) tau0(x) + (1 - e(x)) tau1(x)``.
        """
        tau0, tau1 = self.predict_effects(X)
        e = self.predict_propensity(X)
        return _x_effect(e, tau0, tau1)

    def effect_models(self) -> tuple[Any, Any]:
        """``(effect_control_, effect_treated_)``: the stage-1 outcome models are not needed to predict.

        Raises:
            ConfigError: The learner uses a propensity model (``e(x)`` varies per row; use ``predict``).
        """
        self._require_fitted("effect_control_", "effect_treated_")
        if getattr(self, "propensity_model_", None) is not None or getattr(self, "propensity_", None) is None:
            raise ConfigError("an X-learner with a propensity model has no constant blend: score it with predict()")
        return self.effect_control_, self.effect_treated_

    def effect_from_parts(self, parts: Sequence[Any], *, calibrated: bool = True) -> np.ndarray:
        """``tau = e tau0 + (1 - e) tau1`` from ``(tau0, tau1)`` with the constant ``e``, then the calibration."""
        tau0, tau1 = parts
        self.effect_models()  # the same checks: a constant propensity
        return self._calibrated(_x_effect(float(self.propensity_), tau0, tau1), calibrated)
