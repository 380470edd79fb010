"""Classification evaluation as a typed value, and the plots that render it.

:func:`evaluate_classifier` returns a :class:`ClassificationEvaluation` (pydantic, JSON round-trip)
with ROC AUC, PR AUC (average precision), log loss and Brier score from scikit-learn, the
calibration curve (``sklearn.calibration.calibration_curve`` plus the count per bin), and the
**lift / capture by decile** table marketing reads: decile 1 holds the 10 % highest scores; for
each decile its positive rate, its lift over the base rate, and the cumulative share of all
positives captured by targeting deciles 1..k.

Plots return :class:`matplotlib.figure.Figure` objects built without ``pyplot`` (no global state,
no GUI backend: they render with Agg when saved) so they can go straight to
``mlflow.log_figure`` or ``fig.savefig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from telco_nbo.errors import DataValidationError
from telco_nbo.models.uplift import perfect_qini_curve, qini_auc_score, qini_curve

__all__ = [
    "CalibrationBin",
    "LiftDecile",
    "ClassificationEvaluation",
    "evaluate_classifier",
    "lift_by_decile",
    "plot_calibration",
    "plot_lift",
    "plot_qini",
]


class CalibrationBin(BaseModel):
    """One non-empty bin of the calibration curve."""

    model_config = ConfigDict(frozen=True)

    mean_predicted: float
    fraction_positive: float
    count: int


class LiftDecile(BaseModel):
    """One row of the lift / capture table (decile 1 = highest scores)."""

    model_config = ConfigDict(frozen=True)

    decile: int
    n: int
    n_positive: int
    rate: float
    lift: float
    cumulative_rate: float
    cumulative_lift: float
    cumulative_capture: float
    score_min: float
    score_max: float


class ClassificationEvaluation(BaseModel):
    """Quality of a probabilistic binary classifier on one holdout.

    Attributes:
        n: Rows evaluated.
        n_positive: Positives among them.
        base_rate: ``n_positive / n``.
        roc_auc: Area under the ROC curve.
        pr_auc: Average precision (the step-wise area under the precision-recall curve).
        log_loss: Mean negative log-likelihood.
        brier: Mean squared error of the probabilities.
        calibration_strategy: ``"uniform"`` or ``"quantile"`` bins.
        calibration: Non-empty calibration bins in increasing predicted probability.
        deciles: Lift / capture table.
    """

    model_config = ConfigDict(frozen=True)

    n: int
    n_positive: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    calibration_strategy: str
    calibration: list[CalibrationBin]
    deciles: list[LiftDecile]

    def deciles_frame(self) -> pd.DataFrame:
        """The lift table as a frame indexed by decile."""
        return pd.DataFrame([d.model_dump() for d in self.deciles]).set_index("decile")

    def calibration_frame(self) -> pd.DataFrame:
        """The calibration bins as a frame."""
        return pd.DataFrame([c.model_dump() for c in self.calibration])

    def headline(self) -> dict[str, float]:
        """Scalar metrics, e.g. for ``mlflow.log_metrics`` (top-decile lift and capture included)."""
        top = self.deciles[0]
        return {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "log_loss": self.log_loss,
            "brier": self.brier,
            "base_rate": self.base_rate,
            "lift_top_decile": top.lift,
            "capture_top_decile": top.cumulative_capture,
            "capture_top_3_deciles": self.deciles[min(2, len(self.deciles) - 1)].cumulative_capture,
        }


def _check(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(y_score, dtype=float)
    problems: list[str] = []
    if y.ndim != 1 or p.ndim != 1:
        problems.append(f"y_true and y_score must be 1-D, got shapes {y.shape} and {p.shape}")
    elif len(y) != len(p):
        problems.append(f"lengths differ: y_true={len(y)}, y_score={len(p)}")
    elif len(y) == 0:
        problems.append("no rows")
    if problems:
        raise DataValidationError("evaluation", problems)
    if y.dtype == bool:
        y = y.astype(np.int8)
    else:
        yn = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(yn, (0.0, 1.0))
        if bad.any():
            problems.append(f"y_true must be 0/1 or bool; bad values at rows {np.flatnonzero(bad)[:5].tolist()}")
        y = np.where(bad, 0, yn).astype(np.int8)
    if not np.all(np.isfinite(p)):
        problems.append(f"y_score has NaN/inf at rows {np.flatnonzero(~np.isfinite(p))[:5].tolist()}")
    elif np.any((p < 0) | (p > 1)):
        problems.append("y_score must be probabilities in [0, 1] (log loss, Brier and calibration need them)")
    if not problems and len(np.unique(y)) < 2:
        problems.append(f"y_true has a single class ({int(y[0])}): AUC and calibration are undefined")
    if problems:
        raise DataValidationError("evaluation", problems)
    return y, p


def lift_by_decile(y_true: Any, y_score: Any, bins: int = 10) -> pd.DataFrame:
    """Lift and capture by score bin (bin 1 = highest scores).

    Rows are sorted by descending score (stable, so ties keep input order) and split into ``bins``
    groups of (nearly) equal size; the first groups take the extra rows.

    Args:
        y_true: Binary outcome.
        y_score: Score (any monotone score works; probabilities are not required here).
        bins: Number of bins (deciles by default), at most the number of rows.

    Returns:
        Frame indexed 1..bins with ``n, n_positive, rate, lift, cumulative_rate,
        cumulative_lift, cumulative_capture, score_min, score_max``.
    """
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    if not isinstance(bins, (int, np.integer)) or bins < 1 or bins > len(y):
        raise DataValidationError("evaluation", [f"bins must be an integer in [1, {len(y)}], got {bins}"])
    if y.sum() == 0:
        raise DataValidationError("evaluation", ["no positives: lift and capture are undefined"])
    order = np.argsort(-s, kind="stable")
    groups = np.array_split(order, bins)
    n = np.array([len(g) for g in groups], dtype=float)
    pos = np.array([y[g].sum() for g in groups])
    base = y.mean()
    cum_n, cum_pos = np.cumsum(n), np.cumsum(pos)
    return pd.DataFrame(
        {
            "n": n.astype(int),
            "n_positive": pos.astype(int),
            "rate": pos / n,
            "lift": pos / n / base,
            "cumulative_rate": cum_pos / cum_n,
            "cumulative_lift": cum_pos / cum_n / base,
            "cumulative_capture": cum_pos / y.sum(),
            "score_min": [float(s[g].min()) for g in groups],
            "score_max": [float(s[g].max()) for g in groups],
        },
        index=pd.RangeIndex(1, bins + 1, name="decile"),
    )


def evaluate_classifier(
    y_true: Any,
    y_score: Any,
    *,
    bins: int = 10,
    calibration_bins: int = 10,
    calibration_strategy: str = "uniform",
) -> ClassificationEvaluation:
    """Evaluate predicted probabilities against binary outcomes.

    Args:
        y_true: Binary outcome (0/1 or bool), both classes present.
        y_score: Predicted ``P(y = 1)`` per row, in [0, 1].
        bins: Bins of the lift table.
        calibration_bins: Bins of the calibration curve.
        calibration_strategy: ``"uniform"`` (equal width) or ``"quantile"`` (equal count).

    Returns:
        The evaluation.

    Raises:
        DataValidationError: On mismatched lengths, non-binary labels, a single class, or scores
            outside [0, 1].
    """
    if calibration_strategy not in ("uniform", "quantile"):
        raise DataValidationError("evaluation", [f"calibration_strategy must be 'uniform' or 'quantile', got {calibration_strategy!r}"])
    y, p = _check(y_true, y_score)
    frac_pos, mean_pred = calibration_curve(y, p, n_bins=calibration_bins, strategy=calibration_strategy)
    # calibration_curve does not return counts; recompute them with its own binning rule.
    if calibration_strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, calibration_bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, calibration_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=calibration_bins)
    counts = counts[counts != 0]
    if len(counts) != len(frac_pos):  # pragma: no cover - guards a change in sklearn's binning
        raise RuntimeError("calibration bin counts do not line up with sklearn's calibration_curve")
    dec = lift_by_decile(y, p, bins)
    return ClassificationEvaluation(
        n=int(len(y)),
        n_positive=int(y.sum()),
        base_rate=float(y.mean()),
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
        calibration_strategy=calibration_strategy,
        calibration=[
            CalibrationBin(mean_predicted=float(a), fraction_positive=float(b), count=int(c))
            for a, b, c in zip(mean_pred, frac_pos, counts, strict=True)
        ],
        deciles=[LiftDecile(decile=int(i), **row) for i, row in dec.to_dict("index").items()],
    )


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _as_mapping(evaluations: ClassificationEvaluation | Mapping[str, ClassificationEvaluation]) -> dict[str, ClassificationEvaluation]:
    if isinstance(evaluations, ClassificationEvaluation):
        return {"model": evaluations}
    if not evaluations:
        raise ValueError("nothing to plot: no evaluations given")
    return dict(evaluations)


def plot_calibration(
    evaluations: ClassificationEvaluation | Mapping[str, ClassificationEvaluation], title: str = "Calibration"
) -> Figure:
    """Reliability diagram: observed positive rate vs mean predicted probability per bin.

    Args:
        evaluations: One evaluation, or label -> evaluation to compare models on one chart.
        title: Figure title.

    Returns:
        The figure (marker size grows with the bin's count).
    """
    evs = _as_mapping(evaluations)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    hi = 0.0
    for label, ev in evs.items():
        cal = ev.calibration_frame()
        sizes = 15 + 85 * cal["count"] / cal["count"].max()
        line = ax.plot(cal.mean_predicted, cal.fraction_positive, linewidth=1.5,
                       label=f"{label} (Brier {ev.brier:.3f})")[0]
        ax.scatter(cal.mean_predicted, cal.fraction_positive, s=sizes, color=line.get_color(), zorder=3)
        hi = max(hi, cal.mean_predicted.max(), cal.fraction_positive.max())
    lim = min(1.0, hi * 1.08 + 0.02)
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_lift(evaluation: ClassificationEvaluation, title: str = "Lift and capture by decile") -> Figure:
    """Decile chart: bars of lift per decile, line of cumulative capture of positives.

    Args:
        evaluation: The evaluation to render.
        title: Figure title.

    Returns:
        The figure.
    """
    dec = evaluation.deciles_frame()
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.bar(dec.index, dec.lift, color="#4C72B0", alpha=0.85, label="lift (decile rate / base rate)")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    for x, v in zip(dec.index, dec.lift, strict=True):
        ax.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("decile (1 = highest score)")
    ax.set_ylabel("lift")
    ax.set_xticks(list(dec.index))
    ax2 = ax.twinx()
    ax2.plot(dec.index, 100 * dec.cumulative_capture, color="#DD8452", marker="o", label="cumulative capture %")
    ax2.plot(dec.index, 100 * dec.index / len(dec), color="#DD8452", linestyle=":", linewidth=1, label="random capture %")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("% of positives captured")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="center right", fontsize=8)
    ax.set_title(f"{title} (base rate {evaluation.base_rate:.1%}, AUC {evaluation.roc_auc:.3f})")
    fig.tight_layout()
    return fig


def plot_qini(
    y: Any,
    treatment: Any,
    scores: Any | Mapping[str, Any],
    *,
    true_uplift: Any | None = None,
    negative_outcome: bool = False,
    show_perfect: bool = False,
    title: str = "Qini curve",
) -> Figure:
    """Qini curves of one or more uplift scores, with the random line and the oracle if known.

    The x axis is the share of the population targeted (highest score first); the y axis the
    incremental positive outcomes (for churn, with ``negative_outcome=True``: customers retained
    by the offer) as in :func:`telco_nbo.models.uplift.qini_curve`.

    Args:
        y: Observed binary outcome.
        treatment: 1 = treated, 0 = control.
        scores: The model's ``tau`` on ``y`` (or label -> ``tau`` to compare models).
        true_uplift: True ``tau`` on ``y`` (synthetic world): draws the oracle ranking's curve.
        negative_outcome: ``y = 1`` is bad (churn): curves are of ``1 - y`` ranked by ``-tau``.
        show_perfect: Also draw the perfect curve of these outcomes (sklift's definition).
        title: Figure title.

    Returns:
        The figure.
    """

    series = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    if not series:
        raise ValueError("nothing to plot: no scores given")
    sign = -1.0 if negative_outcome else 1.0
    y_ = np.asarray(y, dtype=float)
    y_ = 1.0 - y_ if negative_outcome else y_
    t_ = np.asarray(treatment)
    n = len(y_)
    fig = Figure(figsize=(6.5, 5))
    ax = fig.add_subplot()
    end = None
    for label, s in series.items():
        s_ = sign * np.asarray(s, dtype=float)
        x, q = qini_curve(y_, s_, t_)
        ax.plot(x / n, q, linewidth=1.6, label=f"{label} (Qini {qini_auc_score(y_, s_, t_):.3f})")
        end = q[-1]
    if true_uplift is not None:
        tt = sign * np.asarray(true_uplift, dtype=float)
        x, q = qini_curve(y_, tt, t_)
        ax.plot(x / n, q, color="black", linewidth=1.2, label=f"oracle: true effect (Qini {qini_auc_score(y_, tt, t_):.3f})")
    if show_perfect:
        x, q = perfect_qini_curve(y_, t_)
        ax.plot(x / n, q, color="grey", linewidth=1, alpha=0.6, label="perfect (these outcomes)")
    ax.plot([0, 1], [0, end], color="grey", linestyle="--", linewidth=1, label="random targeting")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("share of population targeted (highest uplift first)")
    ax.set_ylabel("incremental " + ("customers retained" if negative_outcome else "positive outcomes"))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
