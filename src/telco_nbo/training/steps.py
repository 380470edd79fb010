"""Steps every model kind shares: the result, the household splits, the tuned classifier fit, figures.

Each kind (:mod:`~telco_nbo.training.churn`, :mod:`~telco_nbo.training.propensity`,
:mod:`~telco_nbo.training.uplift`, :mod:`~telco_nbo.training.clv`) is written as plain steps,
``prepare -> fit -> evaluate``, each returning a dataclass, and a thin ``train_<kind>`` that opens
the run with :func:`telco_nbo.tracking.training_run` and logs the result through it. No step
logs to MLflow itself; the one exception is tuning, whose Optuna trials are nested runs by design
(:func:`telco_nbo.tuning.tune`): the fit step takes the parent run's id for that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.tracking import frame_digest, model_params
from telco_nbo.training.config import TrainingConfig
from telco_nbo.training.data import household_split
from telco_nbo.tuning import ChurnModelFactory, tune

# The models (XGBoost, scikit-learn: ~6 s to import), SHAP and matplotlib are imported inside the
# steps that use them, so importing a trainer (the CLI, the Dask package) stays cheap.

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telco_nbo.data.world import World
    from telco_nbo.models.metrics import ClassificationEvaluation

LEARNER_KEYS = ("n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree", "min_child_weight",
                "reg_lambda")
"""The hyperparameters a multi-part model (uplift learners) takes from the configuration and logs per part."""


@dataclass
class TrainResult:
    """What one training call produced.

    Attributes:
        kind: Model kind.
        run_id: The MLflow run holding the model.
        model_name: Registered name (``None`` if not registered).
        model_version: New registry version.
        aliases: Aliases the version holds after registration.
        holdout_metrics: Metrics on the holdout (logged as ``holdout_<name>``).
        metrics: Other metrics (tuning, timings, comparisons).
        seconds: Wall time of the call.
        details: Kind-specific extras (e.g. per-offer AUC, per add-on runs).
    """

    kind: str
    run_id: str
    model_name: str | None
    model_version: int | None
    aliases: tuple[str, ...]
    holdout_metrics: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def load_world(data_dir: str | Path) -> World:
    """Load a data folder through the validating loader, with its truth tables (synthetic worlds)."""
    from telco_nbo.data.io import load_world as load

    # Truth (synthetic worlds) is loaded for evaluation only; features never read it.
    return load(Path(data_dir), with_truth=True)


@dataclass(frozen=True)
class Splits:
    """Household-level row masks: the holdout, the validation rows (early stopping, tuning), the rest.

    Attributes:
        holdout: Rows of the holdout households.
        valid: Rows of the validation households (never holdout ones).
    """

    holdout: np.ndarray
    valid: np.ndarray

    @property
    def train(self) -> np.ndarray:
        """Rows neither in the holdout nor in validation."""
        return ~self.holdout & ~self.valid

    def masks(self) -> dict[str, np.ndarray]:
        """The three masks by the names error messages use."""
        return {"training": self.train, "validation": self.valid, "holdout": self.holdout}


def split(household_ids: np.ndarray, cfg: TrainingConfig) -> Splits:
    """The household split of ``cfg`` (validation is drawn among the non-holdout households).

    Raises:
        ConfigError: A split is empty (too few households for the fractions).
    """
    holdout = household_split(household_ids, cfg.holdout_fraction, cfg.seed, "holdout")
    valid = household_split(household_ids, cfg.valid_fraction, cfg.seed, "valid") & ~holdout
    out = Splits(holdout, valid)
    for name, mask in (("holdout", holdout), ("validation", valid), ("training", out.train)):
        if mask.sum() == 0:
            raise ConfigError(f"the {name} split is empty: too few households for the split fractions")
    return out


def check_split_labels(y: np.ndarray, masks: Mapping[str, np.ndarray], what: str) -> None:
    """Refuse a split whose labels have a single class (``what`` names the data in the message).

    Raises:
        DataValidationError: One or more splits have a single class.
    """
    problems = [f"the {name} split of the {what} data has a single class" for name, m in masks.items()
                if len(np.unique(y[m])) < 2]
    if problems:
        raise DataValidationError(what, problems + ["use more data or other split fractions"])


@dataclass
class FittedClassifier:
    """The fit step's result for a classifier.

    Attributes:
        model: The final XGBoost classifier (fitted on train + validation).
        params: Its resolved parameters (logged in the resolved config).
        metrics: Tuning figures, the final fit's seconds and its number of trees.
    """

    model: Any
    params: dict[str, Any]
    metrics: dict[str, float]


def fit_classifier(
    kind: str,
    X_tr: pd.DataFrame,
    y_tr: np.ndarray,
    X_va: pd.DataFrame,
    y_va: np.ndarray,
    cfg: TrainingConfig,
    *,
    parent_run_id: str | None = None,
    tracking_uri: str | None = None,
) -> FittedClassifier:
    """Tune (if ``cfg.trials``) and fit the final XGBoost classifier on train + validation.

    Args:
        kind: Names the Optuna study (``telco-<kind>-<digest of the training data>``).
        X_tr: Training features.
        y_tr: Training target.
        X_va: Validation features (early stopping, tuning).
        y_va: Validation target.
        cfg: Configuration (trials, fixed parameters, seed, storage).
        parent_run_id: The training run the trials nest under; ``None``: trials are not logged.
        tracking_uri: Its store.

    Returns:
        The :class:`FittedClassifier`.
    """
    from telco_nbo.models.churn import default_search_space, make_churn_classifier

    fixed = {**cfg.params}
    metrics: dict[str, float] = {}
    base = {"random_state": cfg.seed, "early_stopping_rounds": cfg.early_stopping_rounds, "n_jobs": cfg.n_jobs}
    if cfg.trials > 0:
        study = cfg.study_name or f"telco-{kind}-{frame_digest(X_tr, y_tr)}"

        def space(trial: Any) -> dict[str, Any]:
            # Fixed parameters win: the sampler still proposes them, the model ignores them.
            return {k: v for k, v in default_search_space(trial).items() if k not in fixed}

        result = tune(
            ChurnModelFactory({**base, **fixed}),
            space, X_tr, y_tr, X_va, y_va,
            n_trials=cfg.trials, study_name=study, metric="logloss", storage=cfg.optuna_storage, seed=cfg.seed,
            tracking=parent_run_id is not None, tracking_uri=tracking_uri, parent_run_id=parent_run_id,
            # Reporting every round writes to the study's database each round; every 5 is plenty.
            report_interval=5,
        )
        params = {**result.best_params, **fixed}
        best_it = result.best_iteration
        metrics.update({"tuning_best_logloss": result.best_value, "tuning_trials": float(result.n_trials),
                        "tuning_pruned": float(result.n_pruned), "tuning_seconds": result.elapsed_seconds})
    else:
        params = fixed
        probe = make_churn_classifier(**{**base, **params}).fit(X_tr, y_tr, eval_set=[(X_va, y_va)], verbose=False)
        best_it = getattr(probe, "best_iteration", None)
    n_trees = int(best_it) + 1 if best_it is not None else int(make_churn_classifier(**params).get_params()["n_estimators"])
    final_params = {"n_jobs": cfg.n_jobs, **params, "n_estimators": n_trees, "random_state": cfg.seed}
    t0 = time.perf_counter()
    model = make_churn_classifier(**final_params).fit(pd.concat([X_tr, X_va]), np.concatenate([y_tr, y_va]), verbose=False)
    metrics["final_fit_seconds"] = time.perf_counter() - t0
    metrics["n_trees"] = float(n_trees)
    return FittedClassifier(model, final_params, metrics)


def classifier_figures(model: Any, X_ho: pd.DataFrame, evaluation: ClassificationEvaluation, cfg: TrainingConfig,
                       title: str) -> dict[str, Figure]:
    """Calibration, decile lift and SHAP figures of a classifier on its holdout."""
    from telco_nbo.explain import global_figures
    from telco_nbo.models.metrics import plot_calibration, plot_lift

    figures = {"calibration": plot_calibration(evaluation, title=f"{title}: calibration on the holdout"),
               "decile_lift": plot_lift(evaluation, title=f"{title}: lift and capture by decile (holdout)")}
    figures.update(global_figures(model, X_ho, max_rows=cfg.shap_rows, seed=cfg.seed))
    return figures


def resolved_config(cfg: TrainingConfig, data_dir: str | Path, as_of: pd.Timestamp, **extra: Any) -> dict[str, Any]:
    """The configuration as the run records it: ``cfg`` plus the data folder, the date and ``extra``."""
    out = cfg.model_dump(mode="json")
    out.update({"data": str(Path(data_dir).resolve()), "as_of": str(as_of.date())})
    out.update(extra)
    return json.loads(json.dumps(out, default=str))


def observed_until(world: World) -> Any:
    """The last day the world's data covers (labels cannot look past it)."""
    return world.meta.get("world_end")


def finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics that are numbers (``None`` and NaN dropped: not computable on this data)."""
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}


def component_params(params: Mapping[str, Any], boosters: Mapping[str, Any]) -> dict[str, Any]:
    """Run parameters of a multi-part model: ``params`` plus each part's hyperparameters as ``<part>.<key>``."""
    logged: dict[str, Any] = {str(k): str(v)[:6000] for k, v in params.items()}
    for comp, model in boosters.items():
        logged.update({f"{comp}.{k}": v for k, v in model_params(model).items() if k in LEARNER_KEYS or k == "model_class"})
    return logged


__all__ = [
    "LEARNER_KEYS",
    "FittedClassifier",
    "Splits",
    "TrainResult",
    "check_split_labels",
    "classifier_figures",
    "component_params",
    "finite",
    "fit_classifier",
    "load_world",
    "observed_until",
    "resolved_config",
    "split",
]
