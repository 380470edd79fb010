"""Model quality once labels land: ROC AUC and calibration, overall and per segment.

Evidently's ``GroupBy`` returns the global value for every group with classification metrics, so
per-segment values are computed on per-segment datasets: one small Evidently report per segment
(its ROC AUC kept beside scikit-learn's as a cross-check) and scikit-learn for the rest.
Calibration: Brier score (scikit-learn) and expected calibration error over equal-width bins.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.metrics import brier_score_loss, roc_auc_score

from telco_nbo.errors import DataValidationError
from telco_nbo.monitoring.config import MonitoringConfig
from telco_nbo.monitoring.result import CheckResult, SegmentQuality

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

OVERALL = "__overall__"


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width probability bins.

    ECE = sum over bins of (rows in bin / rows) * |observed rate - mean predicted probability|.
    Bins follow scikit-learn's ``calibration_curve(strategy="uniform")`` edges, so the two agree.

    Args:
        y_true: 0/1 labels.
        y_prob: Predicted probabilities in [0, 1].
        n_bins: Number of bins.

    Returns:
        The ECE in [0, 1].
    """
    y_true = np.asarray(y_true, dtype=float)
    y_prob = np.asarray(y_prob, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Same binning rule as sklearn.calibration.calibration_curve (right edge of the last bin closed).
    idx = np.searchsorted(edges[1:-1], y_prob)
    counts = np.bincount(idx, minlength=n_bins)
    sum_true = np.bincount(idx, weights=y_true, minlength=n_bins)
    sum_prob = np.bincount(idx, weights=y_prob, minlength=n_bins)
    nz = counts > 0
    gaps = np.abs(sum_true[nz] / counts[nz] - sum_prob[nz] / counts[nz])
    return float(np.sum(counts[nz] / len(y_true) * gaps))


def ece_noise(y_prob: np.ndarray, n_bins: int = 10) -> float:
    """Expected ECE of a *perfectly calibrated* model with these predictions (sampling noise alone).

    In a bin of ``n_b`` rows the observed rate of a calibrated model deviates from the mean
    probability by about ``sqrt(2/pi) * sqrt(sum p(1-p)) / n_b`` (mean absolute value of a normal),
    so a 400-row segment shows an ECE of ~0.03 with nothing wrong. The ECE check compares with
    ``max_ece + ece_noise`` so small segments do not raise false alarms.

    Args:
        y_prob: Predicted probabilities.
        n_bins: Number of bins (same as the ECE).

    Returns:
        The noise level of the ECE.
    """
    y_prob = np.asarray(y_prob, dtype=float)
    if len(y_prob) == 0:
        return 0.0
    idx = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], y_prob)
    var = np.bincount(idx, weights=y_prob * (1 - y_prob), minlength=n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    nz = counts > 0
    per_bin = np.sqrt(2 / np.pi) * np.sqrt(var[nz]) / counts[nz]
    return float(np.sum(counts[nz] / len(y_prob) * per_bin))


def validate_labeled(frame: pd.DataFrame, target: str, score: str, segments: list[str]) -> None:
    """Check the columns the quality checks need.

    Raises:
        DataValidationError: Missing columns, a target that is not 0/1, scores outside [0, 1].
    """
    problems = []
    missing = [c for c in [target, score, *segments] if c not in frame.columns]
    if missing:
        raise DataValidationError("labeled window", [f"missing columns: {missing}"])
    y = frame[target]
    if y.isna().any():
        problems.append(f"target '{target}' has {int(y.isna().sum())} null labels")
    elif not set(pd.unique(y)) <= {0, 1, True, False}:
        problems.append(f"target '{target}' must be 0/1, got values {sorted(map(str, pd.unique(y)))[:5]}")
    p = frame[score]
    if not ptypes.is_numeric_dtype(p) or ptypes.is_bool_dtype(p):
        problems.append(f"score '{score}' must be numeric, got dtype {p.dtype}")
    elif p.isna().any() or (p < 0).any() or (p > 1).any():
        problems.append(f"score '{score}' must be a probability in [0, 1] with no nulls")
    if problems:
        raise DataValidationError("labeled window", problems)


def _evidently_auc(y: np.ndarray, p: np.ndarray) -> tuple[float, Snapshot]:
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import RocAuc

    frame = pd.DataFrame({"target": y.astype(int), "prediction": p.astype(float)})
    definition = DataDefinition(
        classification=[BinaryClassification(target="target", prediction_probas="prediction", pos_label=1)]
    )
    metric = RocAuc()
    snap = Report([metric]).run(Dataset.from_pandas(frame, data_definition=definition), None)
    return float(snap.metric_results[metric.get_metric_id()].value), snap


def _one(y: np.ndarray, p: np.ndarray, seg_col: str, seg: str, n_bins: int, min_rows: int, with_evidently: bool) -> SegmentQuality:
    n, pos = len(y), int(y.sum())
    two_classes = 0 < pos < n
    tested = two_classes and n >= min_rows
    auc = float(roc_auc_score(y, p)) if two_classes else None
    auc_ev = _evidently_auc(y, p)[0] if (two_classes and with_evidently) else None
    return SegmentQuality(
        segment_column=seg_col,
        segment=seg,
        n=n,
        positives=pos,
        roc_auc=auc,
        roc_auc_evidently=auc_ev,
        brier=float(brier_score_loss(y, p)) if n else None,
        ece=expected_calibration_error(y, p, n_bins) if n else None,
        ece_noise=ece_noise(p, n_bins),
        tested=tested,
    )


def quality_by_segment(frame: pd.DataFrame, config: MonitoringConfig, *, with_evidently: bool = True) -> list[SegmentQuality]:
    """ROC AUC, Brier and ECE overall and for every value of every segment column.

    Args:
        frame: Labeled window with the target, the score and the segment columns.
        config: Thresholds (target, score, segments, bins, minimum rows).
        with_evidently: Also compute each ROC AUC with an Evidently report on that segment's rows.

    Returns:
        One entry for the whole window (segment ``__overall__``) and one per segment value.
    """
    q = config.quality
    validate_labeled(frame, q.target, q.score, q.segments)
    y = frame[q.target].astype(int).to_numpy()
    p = frame[q.score].astype(float).to_numpy()
    with_evidently = with_evidently and q.evidently_per_segment
    out = [_one(y, p, OVERALL, OVERALL, q.calibration_bins, q.min_segment_rows, with_evidently)]
    for col in q.segments:
        keys = frame[col].astype(str).where(frame[col].notna(), "<null>").to_numpy()
        for seg in sorted(set(keys)):
            m = keys == seg
            out.append(_one(y[m], p[m], col, seg, q.calibration_bins, q.min_segment_rows, with_evidently))
    return out


def overall_quality_report(frame: pd.DataFrame, config: MonitoringConfig, *, timestamp: datetime | None = None,
                           name: str = "quality") -> Snapshot:
    """An Evidently report of the overall classification quality (for the HTML and the workspace).

    ``timestamp`` and ``name`` label the run in Evidently's UI (the window's time, not the wall clock).
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import LogLoss, RocAuc
    from evidently.tests import gte

    q = config.quality
    data = pd.DataFrame({"target": frame[q.target].astype(int), "prediction": frame[q.score].astype(float)})
    definition = DataDefinition(
        classification=[BinaryClassification(target="target", prediction_probas="prediction", pos_label=1)]
    )
    report = Report([RocAuc(tests=[gte(q.min_roc_auc)]), LogLoss()], metadata={"kind": "quality"})
    return report.run(Dataset.from_pandas(data, data_definition=definition), None, name=name, timestamp=timestamp)


def quality_checks(quality: list[SegmentQuality], config: MonitoringConfig) -> list[CheckResult]:
    """ROC AUC, Brier and ECE checks for the overall window and every tested segment."""
    q = config.quality
    checks = []
    for s in quality:
        if not s.tested:
            continue
        where = "overall" if s.segment_column == OVERALL else f"{s.segment_column}={s.segment}"
        for metric, value, thr, op in (
            ("roc_auc", s.roc_auc, q.min_roc_auc, ">="),
            ("brier", s.brier, q.max_brier, "<="),
            # The ECE line moves up by the ECE a calibrated model would show at this size.
            ("ece", s.ece, q.max_ece + s.ece_noise, "<="),
        ):
            ok = value is not None and (value >= thr if op == ">=" else value <= thr)
            checks.append(
                CheckResult(
                    category="quality",
                    name=f"{metric}:{where}",
                    subject=where,
                    metric=metric,
                    value=value,
                    threshold=thr,
                    op=op,  # type: ignore[arg-type]
                    passed=ok,
                    detail=f"{metric} on {where} ({s.n} rows, {s.positives} positives) = "
                    + ("n/a" if value is None else f"{value:.4f}"),
                )
            )
    return checks
