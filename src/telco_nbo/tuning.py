"""Hyperparameter tuning: Optuna TPE with pruning on XGBoost's eval metric, trials as MLflow runs.

Each trial builds a model from its parameters, fits it with the validation set as XGBoost's eval
set, and reports the eval metric after every boosting round to Optuna through a small
:class:`xgboost.callback.TrainingCallback` (optuna-integration is not a dependency). The pruner
(median by default) stops unpromising trials early. Every trial is logged as a *nested* MLflow run
(tag ``mlflow.parentRunId``) with its parameters, the metric and its state.

Studies live in a storage (SQLite in the working directory by default; any database URL by option)
under a stable name, and are loaded if they exist, so several processes - or several calls - add
trials to one study.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from telco_nbo.config import get_settings
from telco_nbo.errors import ConfigError
from telco_nbo.tracking import ensure_experiment

TRIAL_PROGRESS: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("telco_nbo_trial_progress", default=None)
"""Set by a caller that shows progress (the CLI's bar): called as ``(study_name, done, total)`` after
each finished trial of :func:`tune` in this context. ``None``: silent."""

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from xgboost import XGBModel

MAXIMIZED_METRICS = frozenset({"auc", "aucpr", "map", "ndcg", "pre", "interval-regression-accuracy"})
"""XGBoost eval metrics where larger is better; every other built-in metric is a loss."""

TAG_TRIAL = "telco_nbo.optuna."


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    """Return Optuna's direction for an XGBoost eval metric name (``auc`` -> maximize)."""
    base = metric.split("@")[0]
    return "maximize" if base in MAXIMIZED_METRICS else "minimize"


def _pruning_callback_class() -> type:
    # Built lazily so importing this module does not import xgboost.
    import optuna
    import xgboost as xgb

    class OptunaPruningCallback(xgb.callback.TrainingCallback):
        """Report the validation metric to an Optuna trial each round; prune when told to.

        Args:
            trial: The running trial.
            metric: XGBoost eval metric name, e.g. ``auc`` or ``logloss``.
            data_name: Name of the eval set in XGBoost's log (``validation_0`` for the sklearn API).
            interval: Report (and ask the pruner) every ``interval`` rounds. Each report is a write
                to the study's storage, which costs more than a round on small data.
        """

        def __init__(self, trial: optuna.Trial, metric: str, data_name: str = "validation_0", interval: int = 1):
            super().__init__()
            self.interval = max(1, int(interval))
            self.trial = trial
            self.metric = metric
            self.data_name = data_name
            self.last_value: float | None = None

        def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> bool:
            try:
                history = evals_log[self.data_name][self.metric]
            except KeyError as exc:
                raise ConfigError(
                    f"eval metric {self.metric!r} on {self.data_name!r} not found in XGBoost's log "
                    f"(has {({k: list(v) for k, v in evals_log.items()})})"
                ) from exc
            value = history[-1]
            value = float(value[0] if isinstance(value, tuple) else value)
            self.last_value = value
            if (epoch + 1) % self.interval:
                return False
            self.trial.report(value, step=epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {epoch} with {self.metric}={value:.6g}")
            return False

    return OptunaPruningCallback


def pruning_callback(trial: optuna.Trial, metric: str, data_name: str = "validation_0", interval: int = 1) -> Any:
    """Return an XGBoost callback that reports ``metric`` to ``trial`` and prunes (see module doc)."""
    return _pruning_callback_class()(trial, metric, data_name, interval)


@dataclass(frozen=True)
class TuningResult:
    """The outcome of :func:`tune` (the study's state after this call).

    Attributes:
        best_params: Parameters of the study's best trial (suggested values only).
        best_value: Its metric value.
        best_trial_number: Its number in the study.
        best_iteration: Its best boosting round (number of trees to keep), if known.
        study_name: Name of the study in the storage.
        metric: The XGBoost eval metric optimized.
        direction: ``maximize`` or ``minimize``.
        n_trials: Trials run by this call.
        n_complete: Complete trials in the whole study.
        n_pruned: Pruned trials in the whole study.
        n_failed: Failed trials in the whole study.
        parent_run_id: MLflow run the trials are nested under (``None`` if not tracked).
        elapsed_seconds: Wall time of this call.
    """

    best_params: dict[str, Any]
    best_value: float
    best_trial_number: int
    best_iteration: int | None
    study_name: str
    metric: str
    direction: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    parent_run_id: str | None
    elapsed_seconds: float


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a log or an error."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL sqlalchemy knows: show only the scheme
        return url.split(":", 1)[0] + ":..."


def open_study(study_name: str, storage: str, direction: Literal["maximize", "minimize"]) -> optuna.Study:
    """Create the study in ``storage``, or load it if it exists (several processes may share it).

    Raises:
        ConfigError: The storage cannot be opened (its URL named, password hidden), or the stored
            study optimizes the other direction.
    """
    import optuna

    try:
        study = optuna.create_study(study_name=study_name, storage=storage, direction=direction, load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy / optuna errors on a bad URL or unreachable database
        raise ConfigError(f"cannot open Optuna storage {redact_url(storage)}: {exc}") from exc
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {study_name!r} in {redact_url(storage)} is stored as {study.direction.name.lower()}, "
            f"but {direction} was asked for; use another study name"
        )
    return study


@dataclass(frozen=True)
class ChurnModelFactory:
    """A picklable ``make_model`` for :func:`tune`: the churn classifier with fixed overrides.

    Calling it with a trial's parameters returns
    ``make_churn_classifier(**{**trial_params, **fixed})`` (fixed parameters win). Picklable, so
    the same factory serves in-process tuning and trials in other processes
    (:func:`telco_nbo.scale.tune.tune_parallel`).

    Attributes:
        fixed: Parameters every trial uses as given (e.g. ``{"n_estimators": 200}``).
    """

    fixed: dict[str, Any]

    def __call__(self, params: dict[str, Any]) -> XGBModel:
        """Build the classifier of one trial."""
        # Lazy: models.churn imports xgboost, which importing this module must not.
        from telco_nbo.models.churn import make_churn_classifier

        return make_churn_classifier(**{**params, **self.fixed})


def _params_for_mlflow(params: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:6000] for k, v in params.items()}


def tune(
    make_model: Callable[[dict[str, Any]], XGBModel],
    search_space: Callable[[optuna.Trial], dict[str, Any]],
    X_train: pd.DataFrame,
    y_train: pd.Series | np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: pd.Series | np.ndarray,
    *,
    n_trials: int,
    study_name: str,
    metric: str = "auc",
    direction: Literal["maximize", "minimize"] | None = None,
    storage: str | None = None,
    seed: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    timeout: float | None = None,
    report_interval: int = 1,
    sample_weight: np.ndarray | None = None,
    tracking: bool = True,
    tracking_uri: str | None = None,
    experiment: str = "telco-tuning",
    parent_run_id: str | None = None,
) -> TuningResult:
    """Tune an XGBoost sklearn model with Optuna TPE and pruning; log trials as nested MLflow runs.

    Args:
        make_model: Builds an unfitted XGBoost sklearn model from a trial's parameters. Its
            ``eval_metric`` may be unset (it is set to ``metric``) or must include ``metric``.
        search_space: Suggests one trial's parameters, e.g.
            ``lambda t: {"max_depth": t.suggest_int("max_depth", 2, 8)}``.
        X_train: Training features.
        y_train: Training target.
        X_valid: Validation features (XGBoost's eval set; the metric is read on it).
        y_valid: Validation target.
        n_trials: Trials to run in this call (added to the study's existing trials).
        study_name: Stable study name; an existing study of that name is continued.
        metric: XGBoost eval metric, e.g. ``auc``, ``aucpr``, ``logloss``, ``rmse``.
        direction: ``maximize``/``minimize``; default from the metric.
        storage: Optuna storage URL; default SQLite in the working directory (settings). Use a
            server database URL to share the study between processes.
        seed: Seed of the TPE sampler (default from settings). It is offset by the number of trials
            already in the study, so a continued study does not repeat its first proposals.
        pruner: Optuna pruner; default ``MedianPruner(n_startup_trials=5, n_warmup_steps=10)``.
        timeout: Stop starting trials after this many seconds.
        report_interval: Report the metric to the pruner every this many boosting rounds.
        sample_weight: Training sample weights.
        tracking: Log trials to MLflow.
        tracking_uri: MLflow tracking URI (default from settings).
        experiment: Experiment for a parent run created here (when ``parent_run_id`` is None).
        parent_run_id: Nest trial runs under this run; if ``None`` a parent run is created and
            finished here, holding the best parameters and value.

    Returns:
        The :class:`TuningResult`.

    Raises:
        ConfigError: Bad inputs, a study stored with the other direction, or no trial completed.
    """
    import optuna

    settings = get_settings()
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1, got {n_trials}")
    for label, X, y in (("training", X_train, y_train), ("validation", X_valid, y_valid)):
        if not isinstance(X, pd.DataFrame) or X.empty:
            raise ConfigError(f"tuning: the {label} features must be a non-empty DataFrame")
        if len(np.asarray(y)) != len(X):
            raise ConfigError(f"tuning: the {label} target has {len(np.asarray(y))} rows, features {len(X)}")
    if list(X_train.columns) != list(X_valid.columns):
        raise ConfigError("tuning: training and validation frames must have the same columns in the same order")
    direction = direction or metric_direction(metric)
    storage = storage or settings.resolved_optuna_storage()
    seed = settings.seed if seed is None else seed
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=10)

    if os.environ.get("TELCO_NBO_QUIET") == "1":  # set by the CLI unless --verbose
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(study_name, storage, direction)
    # The sampler and pruner are not persisted by Optuna; attach ours to the loaded study.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    study.pruner = pruner

    client: MlflowClient | None = None
    created_parent = False
    if tracking:
        # The client API takes the URI explicitly: no process-global MLflow state is touched, so
        # trials from several processes or threads can log concurrently.
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri or settings.resolved_tracking_uri())
    started = time.perf_counter()
    try:
        if client is not None:
            if parent_run_id is None:
                exp_id = ensure_experiment(client, experiment, settings.resolved_artifact_root(
                    tracking_uri or settings.resolved_tracking_uri()))
                parent = client.create_run(exp_id, run_name=f"tune-{study_name}", tags={TAG_TRIAL + "study": study_name})
                parent_run_id = parent.info.run_id
                created_parent = True
            exp_id = client.get_run(parent_run_id).info.experiment_id

        callback_cls = _pruning_callback_class()

        def objective(trial: optuna.Trial) -> float:
            params = search_space(trial)
            run_id = None
            if client is not None:
                run = client.create_run(
                    exp_id,
                    run_name=f"trial-{trial.number}",
                    tags={
                        "mlflow.parentRunId": parent_run_id,
                        TAG_TRIAL + "study": study_name,
                        TAG_TRIAL + "trial_number": str(trial.number),
                    },
                )
                run_id = run.info.run_id
                client.log_batch(run_id, params=[_param(k, v) for k, v in _params_for_mlflow(params).items()])
            state, value, status = "FAIL", None, "FAILED"
            callback = callback_cls(trial, metric, interval=report_interval)
            try:
                model = make_model(dict(params))
                eval_metric = model.get_params().get("eval_metric")
                if eval_metric is None:
                    model.set_params(eval_metric=metric)
                elif metric not in ([eval_metric] if isinstance(eval_metric, str) else list(eval_metric)):
                    raise ConfigError(f"make_model set eval_metric={eval_metric!r}, which lacks {metric!r}")
                existing = list(model.get_params().get("callbacks") or [])
                model.set_params(callbacks=[*existing, callback])
                fit_kwargs: dict[str, Any] = {"eval_set": [(X_valid, y_valid)], "verbose": False}
                if sample_weight is not None:
                    fit_kwargs["sample_weight"] = sample_weight
                model.fit(X_train, y_train, **fit_kwargs)
                history = model.evals_result()["validation_0"][metric]
                best_it = getattr(model, "best_iteration", None)
                # With early stopping the kept model is the best round; otherwise the last one.
                value = float(history[best_it] if best_it is not None else history[-1])
                trial.set_user_attr("best_iteration", int(best_it) if best_it is not None else len(history) - 1)
                state, status = "COMPLETE", "FINISHED"
                return value
            except optuna.TrialPruned:
                state, status = "PRUNED", "FINISHED"
                value = callback.last_value
                raise
            finally:
                if client is not None and run_id is not None:
                    metrics = [] if value is None or not math.isfinite(value) else [_metric(metric, value)]
                    client.log_batch(
                        run_id,
                        metrics=metrics,
                        tags=[_tag(TAG_TRIAL + "state", state), _tag("pruned", str(state == "PRUNED").lower())],
                    )
                    client.set_terminated(run_id, status=status)

        before = len(study.trials)
        progress = TRIAL_PROGRESS.get()
        callbacks = [] if progress is None else [lambda st, tr: progress(study_name, len(st.trials) - before, n_trials)]
        # Errors other than pruning are bugs or bad search spaces: let them surface.
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(), callbacks=callbacks)
        trials = study.trials
        states = [t.state for t in trials]
        n_complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
        if n_complete == 0:
            raise ConfigError(f"study {study_name!r}: no trial completed (all pruned or failed)")
        best = study.best_trial
        result = TuningResult(
            best_params=dict(best.params),
            best_value=float(best.value),
            best_trial_number=best.number,
            best_iteration=best.user_attrs.get("best_iteration"),
            study_name=study_name,
            metric=metric,
            direction=direction,
            n_trials=len(trials) - before,
            n_complete=n_complete,
            n_pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
            n_failed=sum(s == optuna.trial.TrialState.FAIL for s in states),
            parent_run_id=parent_run_id,
            elapsed_seconds=time.perf_counter() - started,
        )
        if client is not None:
            client.log_batch(
                parent_run_id,
                metrics=[_metric(f"tuning_best_{metric}", result.best_value)],
                tags=[
                    _tag(TAG_TRIAL + "study", study_name),
                    _tag(TAG_TRIAL + "best_trial", str(result.best_trial_number)),
                    _tag(TAG_TRIAL + "n_pruned", str(result.n_pruned)),
                    _tag(TAG_TRIAL + "n_complete", str(result.n_complete)),
                    *(_tag(TAG_TRIAL + "best_params." + k, str(v)) for k, v in result.best_params.items()),
                ],
            )
            if created_parent:
                client.set_terminated(parent_run_id, status="FINISHED")
        return result
    except BaseException:
        if client is not None and created_parent and parent_run_id is not None:
            client.set_terminated(parent_run_id, status="FAILED")
        raise


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, value)


def _metric(key: str, value: float) -> Any:
    from mlflow.entities import Metric

    return Metric(key, float(value), int(time.time() * 1000), 0)


def _tag(key: str, value: str) -> Any:
    from mlflow.entities import RunTag

    return RunTag(key, value)


__all__ = ["MAXIMIZED_METRICS", "ChurnModelFactory", "TuningResult", "metric_direction", "open_study", "pruning_callback",
           "redact_url", "tune"]
