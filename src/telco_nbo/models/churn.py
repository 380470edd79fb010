"""Churn classifier builder, its Optuna search space, and the model-frame check every model shares.

The churn model is a plain :class:`xgboost.XGBClassifier` (sklearn API) so its parameters flow
into MLflow and Optuna untouched and it is saved in XGBoost's own format. The feature matrix
comes from :func:`telco_nbo.features.to_model_matrix` (fixed categories, float columns); any
other frame of numeric / bool / ``category`` columns works too (e.g. an IBM Telco frame).

Example:
    >>> from telco_nbo.features import to_model_matrix
    >>> model = make_churn_classifier(n_estimators=400, early_stopping_rounds=30)
    >>> model.fit(to_model_matrix(train), y_train, eval_set=[(to_model_matrix(valid), y_valid)],
    ...           verbose=False)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from telco_nbo.errors import DataValidationError

if TYPE_CHECKING:  # optuna is only needed by whoever tunes
    import optuna

__all__ = [
    "MAX_THREADS",
    "CHURN_DEFAULTS",
    "check_model_frame",
    "make_churn_classifier",
    "default_search_space",
]

MAX_THREADS = 2
"""Upper bound on XGBoost threads: the embedded setup shares a small machine."""

CHURN_DEFAULTS: dict[str, Any] = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "enable_categorical": True,
    # Categories with few levels (contract type, region) are one-hot split; larger ones partitioned.
    "max_cat_to_onehot": 4,
    "n_estimators": 400,
    "learning_rate": 0.05,
    "max_depth": 4,
    "min_child_weight": 2.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "reg_alpha": 0.0,
    "gamma": 0.0,
    # Both are logged each round; XGBoost early-stops (and Optuna prunes) on the LAST one:
    # log loss is smoother than AUC and also rewards calibration, which CLV and expected value use.
    "eval_metric": ["auc", "logloss"],
    "n_jobs": MAX_THREADS,
    "random_state": 42,
}
"""Defaults of :func:`make_churn_classifier` (sensible for 10^4-10^6 accounts, ~50 features)."""


def check_model_frame(X: Any, table: str = "features") -> pd.DataFrame:
    """Check that ``X`` is a frame XGBoost can take as is, and return it (not copied).

    Accepted column dtypes: numeric, bool and pandas ``category`` (XGBoost's native categorical
    support). Strings are refused rather than silently encoded: their encoding must be learned
    once and saved with the model (see :func:`telco_nbo.features.to_model_matrix`), or serving
    would encode them differently.

    Args:
        X: A pandas DataFrame (a 2-D numpy array is wrapped with columns ``f0, f1, ...``).
        table: Name used in error messages.

    Returns:
        The frame.

    Raises:
        DataValidationError: Not a 2-D table, no rows / columns, duplicate or non-string column
            names, or object / string columns.
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise DataValidationError(table, [f"expected a 2-D table, got an array of shape {X.shape}"])
        X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    if not isinstance(X, pd.DataFrame):
        raise DataValidationError(table, [f"expected a pandas DataFrame, got {type(X).__name__}"])
    problems: list[str] = []
    if X.shape[0] == 0:
        problems.append("no rows")
    if X.shape[1] == 0:
        problems.append("no feature columns")
    dup = X.columns[X.columns.duplicated()].tolist()
    if dup:
        problems.append(f"duplicate column name(s): {dup[:5]}")
    non_str = [c for c in X.columns if not isinstance(c, str)]
    if non_str:
        problems.append(f"column names must be strings, got {non_str[:5]}")
    if problems:  # the dtype check below needs unique column names
        raise DataValidationError(table, problems)
    bad = [
        f"{c} ({X[c].dtype})"
        for c in X.columns
        if not (
            pd.api.types.is_numeric_dtype(X[c].dtype)
            or pd.api.types.is_bool_dtype(X[c].dtype)
            or isinstance(X[c].dtype, pd.CategoricalDtype)
        )
    ]
    if bad:
        problems.append(
            "columns must be numeric, bool or category; convert these (e.g. with "
            f"telco_nbo.features.to_model_matrix or astype('category')): {', '.join(bad[:10])}"
        )
    if problems:
        raise DataValidationError(table, problems)
    return X


def make_churn_classifier(**params: Any) -> xgb.XGBClassifier:
    """Build the churn classifier: :data:`CHURN_DEFAULTS` overridden by ``params``.

    Early stopping: pass ``early_stopping_rounds=N`` here and an ``eval_set`` to ``fit``; the
    best iteration is then used by ``predict_proba`` (XGBoost >= 2 keeps it on the model).

    Args:
        **params: Any ``XGBClassifier`` parameter (e.g. from :func:`default_search_space`).
            ``n_jobs`` is capped at :data:`MAX_THREADS`.

    Returns:
        An unfitted classifier.
    """
    merged = {**CHURN_DEFAULTS, **params}
    n_jobs = merged.get("n_jobs")
    merged["n_jobs"] = MAX_THREADS if n_jobs is None or n_jobs < 1 else min(int(n_jobs), MAX_THREADS)
    return xgb.XGBClassifier(**merged)


def default_search_space(trial: optuna.Trial) -> dict[str, Any]:
    """Optuna search space for the churn (and propensity) classifiers.

    Ranges follow common practice for gradient boosting on tabular data of this size: shallow
    trees, learning rate on a log scale, row / column subsampling, and L1 / L2 / split-gain
    regularization on log scales (they act multiplicatively).

    Args:
        trial: The Optuna trial to sample from.

    Returns:
        Parameters to pass to :func:`make_churn_classifier`.
    """
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 800, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 30.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-4, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 5.0, log=True),
    }
