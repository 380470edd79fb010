"""The churn model (``telco-churn``): prepare -> fit -> evaluate, then one training run.

The steps are plain functions returning dataclasses; :func:`train_churn` opens the run with
:func:`telco_nbo.tracking.training_run` and logs through it. The Dask trainer
(:func:`telco_nbo.scale.train.train_churn_dask`) prepares and fits its own way and shares
:func:`evaluate_holdout` and :func:`run_params`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.tracking import training_run, xgboost_record
from telco_nbo.training.config import TrainingConfig, load_config
from telco_nbo.training.data import LabelledFrame, prepare_churn
from telco_nbo.training.steps import (
    FittedClassifier,
    Splits,
    TrainResult,
    check_split_labels,
    classifier_figures,
    fit_classifier,
    load_world,
    observed_until,
    resolved_config,
    split,
)

# The models (XGBoost, scikit-learn: ~6 s to import) and the plots are imported inside the steps
# that use them, so importing a trainer (the CLI, the Dask package) stays cheap.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telco_nbo.data.world import World
    from telco_nbo.models.metrics import ClassificationEvaluation

EVALUATION_ARTIFACT = "evaluation/churn_holdout.json"


@dataclass(frozen=True)
class ChurnData:
    """The prepare step's result.

    Attributes:
        as_of: Feature date.
        frame: Account features and the churn label in the window after ``as_of``.
        splits: Household split of the rows.
    """

    as_of: pd.Timestamp
    frame: LabelledFrame
    splits: Splits


@dataclass
class ClassifierHoldout:
    """A classifier's evaluation on its holdout.

    Attributes:
        evaluation: Full evaluation (calibration bins, deciles), saved as JSON with the run.
        holdout_metrics: Its headline figures (logged as ``holdout_<name>``).
        p_holdout: The model's probability per holdout row.
        metrics: Further metrics (e.g. against a synthetic world's truth).
        figures: Figures to log.
    """

    evaluation: ClassificationEvaluation
    holdout_metrics: dict[str, float]
    p_holdout: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def prepare(world: World, cfg: TrainingConfig) -> ChurnData:
    """Account features and churn labels at ``cfg.as_of`` (default the world's), split by household.

    Raises:
        ConfigError: A split is empty.
        DataValidationError: A split has a single class.
    """
    as_of = world.as_of_date(cfg.as_of)
    frame = prepare_churn(world.tables, as_of, cfg.label_horizon_days, observed_until(world),
                          drop_constant=bool(world.meta.get("drop_constant_features")))
    splits = split(frame.household_ids, cfg)
    check_split_labels(frame.y, splits.masks(), "churn")
    return ChurnData(as_of, frame, splits)


def fit(data: ChurnData, cfg: TrainingConfig, *, parent_run_id: str | None = None,
        tracking_uri: str | None = None) -> FittedClassifier:
    """Tune (trials nested under ``parent_run_id``) and fit the classifier on train + validation."""
    X, y, s = data.frame.X, data.frame.y, data.splits
    return fit_classifier("churn", X[s.train], y[s.train], X[s.valid], y[s.valid], cfg,
                          parent_run_id=parent_run_id, tracking_uri=tracking_uri)


def evaluate_holdout(y_holdout: np.ndarray, p_holdout: np.ndarray) -> ClassifierHoldout:
    """The classifier evaluation both trainers log (in-process and Dask)."""
    from telco_nbo.models.metrics import evaluate_classifier

    evaluation = evaluate_classifier(y_holdout, p_holdout)
    return ClassifierHoldout(evaluation, evaluation.headline(), np.asarray(p_holdout))


def evaluate(world: World, data: ChurnData, fitted: FittedClassifier, cfg: TrainingConfig) -> ClassifierHoldout:
    """Holdout evaluation, truth metrics on a synthetic world, calibration / lift / SHAP figures."""
    X, ho = data.frame.X, data.splits.holdout
    out = evaluate_holdout(data.frame.y[ho], fitted.model.predict_proba(X[ho])[:, 1])
    out.metrics = truth_metrics(world, data.frame, ho, out.p_holdout)
    out.figures = classifier_figures(fitted.model, X[ho], out.evaluation, cfg, "Churn (90 days)")
    return out


def truth_metrics(world: World, frame: LabelledFrame, holdout: np.ndarray, p_ho: np.ndarray) -> dict[str, float]:
    """On a synthetic world: the model's holdout scores against the true 90-day churn probability."""
    truth = world.truth.get("accounts")
    if truth is None or frame.as_of != world.as_of_date():
        return {}
    true_p = pd.Series(frame.account_ids[holdout]).map(truth.set_index("account_id")["p_churn_90d"]).to_numpy(dtype=float)
    ok = np.isfinite(true_p)
    if ok.sum() < 10:
        return {}
    from sklearn.metrics import roc_auc_score

    out = {"truth_pearson_p_churn_90d": float(np.corrcoef(p_ho[ok], true_p[ok])[0, 1]),
           "truth_mean_abs_error_p_churn_90d": float(np.mean(np.abs(p_ho[ok] - true_p[ok])))}
    # AUC an oracle knowing the true probabilities would reach on these labels: the ceiling.
    y = np.asarray(frame.y[holdout])[ok]
    if len(np.unique(y)) == 2:
        out["truth_oracle_roc_auc"] = float(roc_auc_score(y, true_p[ok]))
    return out


def run_params(as_of: pd.Timestamp, label_horizon_days: int, **extra: Any) -> dict[str, Any]:
    """The run parameters every churn run records (both trainers), plus ``extra``."""
    return {"as_of": str(as_of.date()), "label_horizon_days": label_horizon_days, **extra}


def train_churn(data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None) -> TrainResult:
    """Train, evaluate, log and register the churn model (``telco-churn``).

    Args:
        data_dir: Data folder.
        cfg: Configuration (default: :func:`load_config` defaults).
        world: The loaded world (skips loading; ``data_dir`` is still recorded).

    Returns:
        The :class:`TrainResult`; ``details["model"]`` is the fitted classifier.
    """
    t_start = time.perf_counter()
    cfg = cfg or load_config("churn")
    world = world or load_world(data_dir)
    data = prepare(world, cfg)
    frame, s = data.frame, data.splits
    with training_run("churn", run_name=f"churn-{data.as_of.date()}", tracking_uri=cfg.tracking_uri) as run:
        fitted = fit(data, cfg, parent_run_id=run.run_id, tracking_uri=cfg.tracking_uri)
        result = evaluate(world, data, fitted, cfg)
        metrics = {**fitted.metrics, **result.metrics}
        train_rows = s.train | s.valid
        record, logger = xgboost_record(
            fitted.model, X_train=frame.X[train_rows], y_train=frame.y[train_rows],
            X_holdout=frame.X[s.holdout], y_holdout=frame.y[s.holdout],
            params=run_params(data.as_of, cfg.label_horizon_days,
                              n_holdout_households=int(len(set(frame.household_ids[s.holdout]))),
                              # Imported data: features only a default filled, left out rather than fed as data.
                              dropped_constant_features=",".join(frame.dropped_features)[:6000]),
            metrics=metrics, holdout_metrics=result.holdout_metrics,
            config=resolved_config(cfg, data_dir, data.as_of, model_params=fitted.params), figures=result.figures,
            texts={EVALUATION_ARTIFACT: result.evaluation.model_dump_json(indent=2)},
        )
        logged = run.log(record, logger, register=cfg.register_model)
    return TrainResult("churn", logged.run_id, logged.model_name, logged.model_version, logged.aliases,
                       result.holdout_metrics, metrics, time.perf_counter() - t_start,
                       {"model": fitted.model, "as_of": data.as_of})


__all__ = ["ChurnData", "ClassifierHoldout", "evaluate", "evaluate_holdout", "fit", "prepare", "run_params",
           "train_churn", "truth_metrics"]
