"""MLflow tracking, model logging, registry aliases and champion/challenger promotion.

One MLflow experiment per model kind (``telco-churn``, ``telco-propensity``, ``telco-uplift``,
``telco-clv``) and one registered model of the same name. Every training run records:

- parameters and metrics (holdout metrics under a ``holdout_`` prefix, which :func:`promote` reads),
- dataset lineage: the training and holdout frames through :func:`mlflow.log_input`, each with a
  digest of the *whole* frame (MLflow's own digest only looks at the first rows and drops category
  and bool columns, so two different holdouts could share it),
- the resolved configuration as a YAML artifact, any matplotlib figures,
- the model in XGBoost's own format (UBJ or JSON, never a pickle) with a signature and an input
  example,
- a reference sample (up to 50k training rows + target + score) that monitoring uses as its
  reference dataset, and the full holdout, so a later challenger can re-score the champion on its
  own holdout.

One lifecycle for every training run (in-process and Dask): :func:`training_run` opens the run and
yields a :class:`RunRecorder`; the trainer computes a :class:`RunRecord` (pure, :func:`run_record`)
and logs it with the model through the recorder, which also registers the version; the block
finishes the run, or marks it ``FAILED`` with the error (tag ``telco_nbo.error``) on an exception.
:func:`log_training_run` is that lifecycle for one XGBoost model in one call.

Registry: a new version gets the alias ``challenger``; while the model has no ``champion`` (its
first version) the new version also becomes ``champion``. :func:`promote` moves ``champion`` to the
challenger only if it beats the champion *on the same holdout*:

- if both runs logged the same holdout digest, the logged ``holdout_<metric>`` values are compared;
- otherwise both models are re-scored on the challenger's stored holdout (the champion must find all
  its features there) and the metric is recomputed with scikit-learn;
- if neither is possible the promotion is refused, with the reason.

The decision, both scores and the reason are written as tags on the challenger version.

MLflow keeps its tracking URI in process-global state. Every public function here takes the URI
explicitly and runs inside :func:`tracking_session`, which sets the URI and restores the previous
one on exit, so nothing leaks between calls, notebooks or tests. This also means these functions
are not safe to call from several threads of one process at once with different URIs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel

from telco_nbo.config import Settings, get_settings
from telco_nbo.errors import ConfigError, TelcoNboError
from telco_nbo.model_files import load_xgboost_model
from telco_nbo.quality_floor import FloorResult, check_floor
from telco_nbo.vocabulary import MODEL_KINDS, MODEL_NAME_PREFIX

# MLflow is imported inside the functions that talk to it: importing this module (the CLI, the
# service, the Dask workers) must not pay for MLflow's import.
if TYPE_CHECKING:  # heavy imports only for type checkers
    from matplotlib.figure import Figure
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from xgboost import XGBModel

CHAMPION = "champion"
CHALLENGER = "challenger"

TAG = "telco_nbo."
"""Prefix of every tag this module writes, so they never collide with MLflow's ``mlflow.*``."""
TAG_KIND = TAG + "model_kind"
TAG_TRAINING_DIGEST = TAG + "training_digest"
TAG_HOLDOUT_DIGEST = TAG + "holdout_digest"
TAG_REFERENCE_ARTIFACT = TAG + "reference_artifact"
TAG_HOLDOUT_ARTIFACT = TAG + "holdout_artifact"
TAG_FEATURES = TAG + "features"
TAG_PROMOTION = TAG + "promotion."
TAG_PROJECT_RUN = TAG + "project_run_id"
"""On a training run: the ``mlflow run`` project run that produced it."""
TAG_ERROR = TAG + "error"
"""On a failed training run: the exception that ended it (type and message)."""

REFERENCE_ARTIFACT = "reference/reference.parquet"
HOLDOUT_ARTIFACT = "holdout/holdout.parquet"
CONFIG_ARTIFACT = "config/resolved_config.yaml"
TARGET_COLUMN = "target"
"""Name of the label column in the reference and holdout artifacts."""
SCORE_COLUMN = "prediction"
"""Name of the model-score column in the reference and holdout artifacts (Evidently's default)."""
REFERENCE_MAX_ROWS = 50_000


def _rescoring_metrics() -> dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]]:
    # Imported lazily: scikit-learn is heavy and this module must stay cheap to import.
    from sklearn import metrics as skm

    def rmse(y: np.ndarray, s: np.ndarray) -> float:
        return float(np.sqrt(skm.mean_squared_error(y, s)))

    return {
        "roc_auc": (skm.roc_auc_score, True),
        "pr_auc": (skm.average_precision_score, True),
        "average_precision": (skm.average_precision_score, True),
        "log_loss": (lambda y, s: skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]), False),
        "brier": (skm.brier_score_loss, False),
        "rmse": (rmse, False),
        "mae": (skm.mean_absolute_error, False),
        "r2": (skm.r2_score, True),
    }


GREATER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "average_precision": True,
    "log_loss": False,
    "brier": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "qini": True,
    "auuc": True,
    "qini_auc": True,
    "uplift_at_30": True,
}
"""Direction of the metrics :func:`promote` knows; any other metric needs ``greater_is_better``."""


# --------------------------------------------------------------------------------------------------
# names and session
# --------------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return kind


def experiment_name(kind: str) -> str:
    """Return the MLflow experiment name of a model kind, e.g. ``telco-churn``."""
    return MODEL_NAME_PREFIX + _check_kind(kind)


def registered_model_name(kind_or_name: str) -> str:
    """Return the registered model name for a kind (``churn``) or a full name (``telco-churn``)."""
    if kind_or_name.startswith(MODEL_NAME_PREFIX):
        _check_kind(kind_or_name.removeprefix(MODEL_NAME_PREFIX))
        return kind_or_name
    return MODEL_NAME_PREFIX + _check_kind(kind_or_name)


@contextlib.contextmanager
def tracking_session(tracking_uri: str | None = None) -> Iterator[MlflowClient]:
    """Point MLflow at ``tracking_uri`` for the duration of a ``with`` block.

    The MLflow fluent API (``mlflow.start_run``, ``mlflow.xgboost.log_model``) reads a process-global
    tracking URI. This sets it (and the registry URI, to the same store), yields a client bound to
    it, and restores the previous globals and environment variables on exit, even on error.

    Args:
        tracking_uri: Any MLflow tracking URI; ``None`` means the default from
            :class:`~telco_nbo.config.Settings` (SQLite in the working directory).

    Yields:
        An :class:`mlflow.MlflowClient` for that store.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = tracking_uri or get_settings().resolved_tracking_uri()
    old_tracking = tracking_utils._tracking_uri
    old_registry = registry_utils._registry_uri
    old_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        # A run left open by an exception must not survive into the next session.
        while mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED")
        mlflow.set_tracking_uri(old_tracking)
        registry_utils._registry_uri = old_registry
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """Return the id of experiment ``name``, creating it (with ``artifact_location``) if new.

    A deleted experiment of that name is restored rather than failing, and a concurrent creation by
    another process is tolerated.
    """
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


# --------------------------------------------------------------------------------------------------
# helpers on frames and models
# --------------------------------------------------------------------------------------------------


def frame_digest(frame: pd.DataFrame, target: pd.Series | np.ndarray | None = None) -> str:
    """Return a 16-hex digest of a whole frame: values (row by row), column names, dtypes, target.

    Two frames get the same digest only if they hold the same rows in the same order, so "same
    holdout" can be checked across runs.
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    if target is not None:
        h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(target)), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def predict_scores(model: XGBModel, X: pd.DataFrame) -> np.ndarray:
    """Return the model's score per row: P(class 1) for a binary classifier, else ``predict``.

    Raises:
        ConfigError: For a multi-class classifier (one score per row is what every consumer here
            expects).
    """
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        if proba.ndim != 2 or proba.shape[1] != 2:
            raise ConfigError(f"expected a binary classifier, got {proba.shape[1]} classes")
        return proba[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def model_params(model: XGBModel, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The run parameters of an XGBoost model: its own scalar parameters, its class, then ``extra``."""
    params: dict[str, Any] = {}
    for key, value in model.get_params().items():
        # Callbacks and other objects are not parameters anyone compares across runs.
        if value is None or key == "callbacks":
            continue
        if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
            params[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            params[key] = ",".join(map(str, value))
    params["model_class"] = type(model).__name__
    params.update(extra or {})
    # MLflow caps a param value at 6000 characters.
    return {str(k): str(v)[:6000] for k, v in params.items()}


def _jsonable(config: Any) -> Any:
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    return json.loads(json.dumps(config, default=str))


def _check_xy(name: str, X: pd.DataFrame, y: Any) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        raise ConfigError(f"{name}: features must be a pandas DataFrame, got {type(X).__name__}")
    if X.empty:
        raise ConfigError(f"{name}: the feature frame is empty")
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != len(X):
        raise ConfigError(f"{name}: target has shape {y_arr.shape}, expected ({len(X)},)")
    clash = {TARGET_COLUMN, SCORE_COLUMN} & set(map(str, X.columns))
    if clash:
        raise ConfigError(f"{name}: feature columns {sorted(clash)} clash with reserved artifact columns")
    return y_arr


# --------------------------------------------------------------------------------------------------
# the training run: one lifecycle (open, log, register, finish or fail)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingRun:
    """What a training run recorded (:meth:`RunRecorder.log`, :func:`log_training_run`).

    Attributes:
        run_id: The MLflow run.
        experiment_id: Its experiment.
        experiment_name: ``telco-<kind>``.
        model_uri: URI of the logged model (``models:/<model_id>``).
        model_name: Registered model name, or ``None`` when not registered.
        model_version: The new registry version, or ``None``.
        aliases: Aliases the new version holds right after registration.
        training_digest: Digest of the training frame + target.
        holdout_digest: Digest of the holdout frame + target.
        reference_artifact: Artifact path of the monitoring reference sample.
    """

    run_id: str
    experiment_id: str
    experiment_name: str
    model_uri: str
    model_name: str | None
    model_version: int | None
    aliases: tuple[str, ...]
    training_digest: str
    holdout_digest: str
    reference_artifact: str = REFERENCE_ARTIFACT


@dataclass(frozen=True)
class RunRecord:
    """Everything a training run logs besides the model itself, computed before the run is touched.

    Built by :func:`run_record` (pure: no MLflow), logged by :meth:`RunRecorder.log`.

    Attributes:
        X_train: Training features (their lineage is logged as the ``training`` input).
        y_train: Training target.
        X_holdout: Holdout features (the ``holdout`` input).
        y_holdout: Holdout target.
        training_digest: :func:`frame_digest` of the training frame + target.
        holdout_digest: The same for the holdout.
        reference: Monitoring reference sample: training rows + ``target`` + ``prediction``.
        holdout: The full holdout + ``target`` + ``prediction`` (re-scored by :func:`promote`).
        params: Run parameters, as MLflow stores them (strings of at most 6,000 characters).
        metrics: Run metrics: the given ones, the holdout ones as ``holdout_<name>``, ``n_train``
            and ``n_holdout``; only finite values.
        config: The resolved configuration (JSON-like), saved as YAML; ``None``: none.
        figures: Matplotlib figures, saved as ``figures/<name>.png``.
        texts: Text artifacts (artifact path -> text), e.g. evaluation JSON.
        tags: Run tags (kind-independent ones: digests, artifacts, features, plus any given).
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    training_digest: str
    holdout_digest: str
    reference: pd.DataFrame
    holdout: pd.DataFrame
    params: dict[str, str]
    metrics: dict[str, float]
    config: Any = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def _finite_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    # MLflow refuses NaN in some stores and a missing figure is better left out than logged as NaN.
    return {str(k): float(v) for k, v in (metrics or {}).items() if v is not None and math.isfinite(float(v))}


def run_record(
    *,
    X_train: pd.DataFrame,
    y_train: pd.Series | np.ndarray,
    X_holdout: pd.DataFrame,
    y_holdout: pd.Series | np.ndarray,
    train_scores: np.ndarray,
    holdout_scores: np.ndarray,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    holdout_metrics: Mapping[str, float] | None = None,
    config: Mapping[str, Any] | BaseModel | None = None,
    figures: Mapping[str, Figure] | None = None,
    texts: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    extra_train: Mapping[str, np.ndarray] | None = None,
    extra_holdout: Mapping[str, np.ndarray] | None = None,
    reference_max_rows: int = REFERENCE_MAX_ROWS,
    reference_seed: int = 0,
) -> RunRecord:
    """Check the frames and compute what a training run logs (digests, samples, metrics): no I/O.

    Args:
        X_train: Training feature frame (exactly the model's input columns).
        y_train: Training target.
        X_holdout: Holdout feature frame (same columns, same order).
        y_holdout: Holdout target.
        train_scores: The model's score per training row (the reference sample's ``prediction``).
        holdout_scores: The model's score per holdout row.
        params: Run parameters (stringified and capped at MLflow's 6,000 characters).
        metrics: Metrics logged under their own names.
        holdout_metrics: Metrics on the holdout, logged as ``holdout_<name>``; :func:`promote`
            compares these.
        config: The resolved configuration (mapping or pydantic model).
        figures: Matplotlib figures.
        texts: Text artifacts (path -> text).
        tags: Extra run tags.
        extra_train: Further columns of the reference sample (e.g. the uplift treatment), placed
            after the features.
        extra_holdout: Further columns of the stored holdout.
        reference_max_rows: Cap on the monitoring reference sample.
        reference_seed: Seed of the reference sample's row draw.

    Returns:
        The :class:`RunRecord`.

    Raises:
        ConfigError: Non-frame input, mismatched target lengths, different train / holdout
            columns, reserved column names.
    """
    y_tr = _check_xy("training data", X_train, y_train)
    y_ho = _check_xy("holdout data", X_holdout, y_holdout)
    if list(X_train.columns) != list(X_holdout.columns):
        raise ConfigError("training and holdout frames must have the same columns in the same order")
    train_digest = frame_digest(X_train, y_tr)
    holdout_digest = frame_digest(X_holdout, y_ho)
    n_ref = min(reference_max_rows, len(X_train))
    rows = np.sort(np.random.default_rng(reference_seed).choice(len(X_train), n_ref, replace=False))
    reference = X_train.iloc[rows].reset_index(drop=True).assign(
        **{k: np.asarray(v)[rows] for k, v in (extra_train or {}).items()})
    reference[TARGET_COLUMN] = y_tr[rows]
    reference[SCORE_COLUMN] = np.asarray(train_scores)[rows]
    holdout = X_holdout.reset_index(drop=True).assign(**{k: np.asarray(v) for k, v in (extra_holdout or {}).items()})
    holdout[TARGET_COLUMN] = y_ho
    holdout[SCORE_COLUMN] = np.asarray(holdout_scores)
    all_metrics = {**_finite_metrics(metrics), **{f"holdout_{k}": v for k, v in _finite_metrics(holdout_metrics).items()},
                   "n_train": float(len(X_train)), "n_holdout": float(len(X_holdout))}
    run_tags = {
        TAG_TRAINING_DIGEST: train_digest,
        TAG_HOLDOUT_DIGEST: holdout_digest,
        TAG_REFERENCE_ARTIFACT: REFERENCE_ARTIFACT,
        TAG_HOLDOUT_ARTIFACT: HOLDOUT_ARTIFACT,
        TAG_FEATURES: ",".join(map(str, X_train.columns))[:5000],
        **(tags or {}),
    }
    return RunRecord(
        X_train=X_train, y_train=y_tr, X_holdout=X_holdout, y_holdout=y_ho,
        training_digest=train_digest, holdout_digest=holdout_digest, reference=reference, holdout=holdout,
        params={str(k): str(v)[:6000] for k, v in (params or {}).items()}, metrics=all_metrics,
        config=None if config is None else _jsonable(config), figures=dict(figures or {}), texts=dict(texts or {}),
        tags=run_tags,
    )


ModelLogger = Callable[[str | None], Any]
"""Logs the model into the active MLflow run: called with the registered name (or ``None``),
returns MLflow's ``ModelInfo``. :func:`xgboost_logger` makes one; multi-part models bring theirs
(:func:`telco_nbo.training.pyfunc.component_logger`)."""


def xgboost_logger(
    model: XGBModel,
    X_train: pd.DataFrame,
    train_scores: np.ndarray,
    *,
    model_format: Literal["ubj", "json"] = "ubj",
    extra_models: Mapping[str, XGBModel] | None = None,
) -> ModelLogger:
    """A :data:`ModelLogger` for one XGBoost sklearn model (its own format, never a pickle).

    The signature is inferred here, before any run exists; ``extra_models`` (e.g. the arms of a
    T-learner) are saved in XGBoost's JSON format under ``components/<name>.json``.
    """
    from mlflow.models import infer_signature

    sig_rows = min(len(X_train), 1000)
    signature = infer_signature(X_train.iloc[:sig_rows], np.asarray(train_scores)[:sig_rows])
    example = X_train.iloc[:5]

    def log(registered_name: str | None) -> Any:
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            for comp_name, comp in (extra_models or {}).items():
                comp_path = Path(tmp) / f"{comp_name}.json"
                comp.save_model(comp_path)
                mlflow.log_artifact(str(comp_path), artifact_path="components")
        # MLflow re-checks the input example through pyfunc, whose schema enforcement turns
        # category columns into strings that XGBoost rejects, and logs a long warning. We never
        # serve through pyfunc (it returns labels), so that check's warning is muted here.
        with quiet_logger("mlflow.models.model"):
            return mlflow.xgboost.log_model(
                model,
                name="model",
                signature=signature,
                input_example=example,
                model_format=model_format,
                registered_model_name=registered_name,
                await_registration_for=60,
                # Explicit requirements: inferring them runs the model in a subprocess (~7 s).
                pip_requirements=pip_requirements(),
            )

    return log


class RunRecorder:
    """The open training run of :func:`training_run`: logs into it and registers its model.

    Attributes:
        kind: Model kind (experiment ``telco-<kind>``, registered model of the same name).
        run_id: The run (e.g. the parent of tuning trials: ``tune(..., parent_run_id=run_id)``).
        tracking_uri: The store it lives in.
    """

    def __init__(self, kind: str, run_id: str, tracking_uri: str) -> None:
        self.kind = kind
        self.run_id = run_id
        self.tracking_uri = tracking_uri

    def log(self, record: RunRecord, log_model: ModelLogger, *, register: bool = True) -> TrainingRun:
        """Log the record and the model, then register a new version (``challenger``; first: ``champion``).

        Args:
            record: What :func:`run_record` computed.
            log_model: Logs the model in the active run (:func:`xgboost_logger`, or a multi-part
                model's own).
            register: Register the model as a new version of ``telco-<kind>``.

        Returns:
            The recorded :class:`TrainingRun`.
        """
        import mlflow

        exp_name = experiment_name(self.kind)
        name = registered_model_name(self.kind) if register else None
        with tracking_session(self.tracking_uri) as client:
            with mlflow.start_run(run_id=self.run_id) as run:
                mlflow.set_tags({TAG_KIND: self.kind, **record.tags})
                mlflow.log_params(record.params)
                mlflow.log_metrics(record.metrics)
                for context, X, y, digest in (("training", record.X_train, record.y_train, record.training_digest),
                                              ("holdout", record.X_holdout, record.y_holdout, record.holdout_digest)):
                    dataset = mlflow.data.from_pandas(X.assign(**{TARGET_COLUMN: y}), name=f"{exp_name}-{context}",
                                                      targets=TARGET_COLUMN, digest=digest)
                    mlflow.log_input(dataset, context=context)
                if record.config is not None:
                    mlflow.log_text(yaml.safe_dump(record.config, sort_keys=True), CONFIG_ARTIFACT)
                for fig_name, fig in record.figures.items():
                    mlflow.log_figure(fig, f"figures/{fig_name}.png")
                for path, text in record.texts.items():
                    mlflow.log_text(text, path)
                with tempfile.TemporaryDirectory() as tmp:
                    for artifact, frame in ((REFERENCE_ARTIFACT, record.reference), (HOLDOUT_ARTIFACT, record.holdout)):
                        local = Path(tmp) / Path(artifact).name
                        frame.to_parquet(local, index=False)
                        mlflow.log_artifact(str(local), artifact_path=str(Path(artifact).parent))
                info = log_model(name)
            version: int | None = None
            aliases: list[str] = []
            if name is not None:
                version = int(info.registered_model_version)
                aliases = register_new_version(client, name, version, self.kind, record.holdout_digest, run.info.run_id)
            return TrainingRun(
                run_id=run.info.run_id,
                experiment_id=run.info.experiment_id,
                experiment_name=exp_name,
                model_uri=info.model_uri,
                model_name=name,
                model_version=version,
                aliases=tuple(aliases),
                training_digest=record.training_digest,
                holdout_digest=record.holdout_digest,
            )

    def log_texts(self, texts: Mapping[str, str]) -> None:
        """Write text artifacts (artifact path -> text) into the run, whether or not it has finished."""
        with tracking_session(self.tracking_uri) as client:
            for path, text in texts.items():
                client.log_text(self.run_id, text, path)


def start_run(
    kind: str,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Create an (unfinished) run in the kind's experiment and return its id.

    Most callers want :func:`training_run`, which also finishes (or fails) the run. This is the
    step that opens it: tuning trials can nest under the id (``tune(..., parent_run_id=...)``)
    and :func:`log_training_run` can log into it (``run_id=...``).
    """
    from mlflow.tracking.context.registry import resolve_tags

    settings = settings or get_settings()
    uri = tracking_uri or settings.resolved_tracking_uri()
    with tracking_session(uri) as client:
        exp_id = ensure_experiment(client, experiment_name(kind), settings.resolved_artifact_root(uri))
        # resolve_tags adds what MLflow's own start_run records (user, source), so every training
        # run carries the same system tags whichever trainer opened it.
        run = client.create_run(exp_id, run_name=run_name,
                                tags=resolve_tags({TAG_KIND: kind, **_project_tags(client, settings), **(tags or {})}))
        return run.info.run_id


def _project_tags(client: MlflowClient, settings: Settings) -> dict[str, str]:
    """Tags linking a training run to the ``mlflow run`` project run that started it (if any).

    The project run may live in another store (``-P tracking_uri=...``): it is made the parent
    (``mlflow.parentRunId``, a link in MLflow's UI) only when this store holds it.
    """
    from mlflow.exceptions import MlflowException

    pid = settings.project_run_id
    if not pid:
        return {}
    tags = {TAG_PROJECT_RUN: pid}
    try:
        client.get_run(pid)
    except MlflowException:
        return tags
    return {**tags, "mlflow.parentRunId": pid}


@contextlib.contextmanager
def training_run(
    kind: str,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    settings: Settings | None = None,
) -> Iterator[RunRecorder]:
    """Open a training run in the kind's experiment; finish it on exit, or fail it on an exception.

    The one place training talks to MLflow: every trainer (in-process and Dask) opens its run
    here, logs and registers through the yielded :class:`RunRecorder`, and leaves the run's end to
    this block. On an exception the run is marked ``FAILED`` with the error in the tag
    ``telco_nbo.error`` and the exception propagates.

    Args:
        kind: ``churn``, ``propensity``, ``uplift`` or ``clv``.
        run_name: Name of the new run.
        tags: Extra tags of the new run.
        run_id: Use this existing run (e.g. from :func:`start_run`) instead of a new one.
        tracking_uri: MLflow tracking URI (default from settings).
        settings: Settings for the default URI and the artifact root of a new experiment.

    Yields:
        The :class:`RunRecorder` of the run.
    """
    settings = settings or get_settings()
    uri = tracking_uri or settings.resolved_tracking_uri()
    run_id = run_id or start_run(kind, run_name=run_name, tags=tags, tracking_uri=uri, settings=settings)
    try:
        yield RunRecorder(_check_kind(kind), run_id, uri)
    except BaseException as exc:
        _end_run(uri, run_id, exc)
        raise
    _end_run(uri, run_id, None)


def _end_run(tracking_uri: str, run_id: str, error: BaseException | None) -> None:
    """Finish a run still running, or mark it failed with the error (even if it had finished)."""
    try:
        with tracking_session(tracking_uri) as client:
            if error is not None:
                client.set_tag(run_id, TAG_ERROR, f"{type(error).__name__}: {error}"[:5000])
                client.set_terminated(run_id, status="FAILED")
            elif client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status="FINISHED")
    except Exception:  # noqa: BLE001 - a store failure while failing must not hide the original error
        if error is None:
            raise
        logging.getLogger(__name__).warning("could not mark run %s as failed", run_id, exc_info=True)


def log_training_run(
    kind: str,
    model: XGBModel,
    *,
    X_train: pd.DataFrame,
    y_train: pd.Series | np.ndarray,
    X_holdout: pd.DataFrame,
    y_holdout: pd.Series | np.ndarray,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    holdout_metrics: Mapping[str, float] | None = None,
    config: Mapping[str, Any] | BaseModel | None = None,
    figures: Mapping[str, Figure] | None = None,
    texts: Mapping[str, str] | None = None,
    extra_models: Mapping[str, XGBModel] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    run_id: str | None = None,
    register: bool = True,
    model_format: Literal["ubj", "json"] = "ubj",
    reference_max_rows: int = REFERENCE_MAX_ROWS,
    tracking_uri: str | None = None,
    settings: Settings | None = None,
) -> TrainingRun:
    """Log one fitted XGBoost model and everything needed to trust, compare and monitor it.

    A :func:`training_run` holding one :meth:`RunRecorder.log`; the data is checked and the
    record computed before any run exists, so bad input leaves no run behind.

    Args:
        kind: ``churn``, ``propensity``, ``uplift`` or ``clv``: picks experiment and registered name.
        model: A fitted XGBoost sklearn model (``XGBClassifier`` scores are P(class 1)).
        X_train: Training feature frame (exactly the model's input columns).
        y_train: Training target.
        X_holdout: Holdout feature frame.
        y_holdout: Holdout target.
        params: Extra parameters (the model's own parameters are logged automatically).
        metrics: Metrics logged under their own names (e.g. cross-validation results).
        holdout_metrics: Metrics on the holdout, logged as ``holdout_<name>``; :func:`promote`
            compares these.
        config: The resolved configuration (mapping or pydantic model), saved as YAML.
        figures: Matplotlib figures, saved as ``figures/<name>.png``.
        texts: Text artifacts (artifact path -> text).
        extra_models: Further fitted XGBoost models (e.g. the arms of a T-learner), saved in
            XGBoost's JSON format under ``components/<name>.json``.
        tags: Extra run tags.
        run_name: Name of a new run.
        run_id: Log into this existing run (e.g. from :func:`start_run`) instead of a new one.
        register: Register the model as a new version of ``telco-<kind>``.
        model_format: XGBoost's ``ubj`` (compact) or ``json`` (readable).
        reference_max_rows: Cap on the monitoring reference sample.
        tracking_uri: MLflow tracking URI (default from settings).
        settings: Settings for the default URI, the reference sample's seed and the artifact root
            of new experiments.

    Returns:
        The recorded :class:`TrainingRun`.

    Raises:
        ConfigError: Bad kind, non-frame input, mismatched target lengths, reserved column names.
    """
    settings = settings or get_settings()
    experiment_name(kind)
    record, logger = xgboost_record(model, X_train=X_train, y_train=y_train, X_holdout=X_holdout, y_holdout=y_holdout,
                                    params=params, metrics=metrics, holdout_metrics=holdout_metrics, config=config,
                                    figures=figures, texts=texts, tags=tags, extra_models=extra_models,
                                    model_format=model_format, reference_max_rows=reference_max_rows,
                                    reference_seed=settings.seed)
    with training_run(kind, run_name=run_name, run_id=run_id, tracking_uri=tracking_uri, settings=settings) as run:
        return run.log(record, logger, register=register)


def xgboost_record(
    model: XGBModel,
    *,
    X_train: pd.DataFrame,
    y_train: pd.Series | np.ndarray,
    X_holdout: pd.DataFrame,
    y_holdout: pd.Series | np.ndarray,
    params: Mapping[str, Any] | None = None,
    extra_models: Mapping[str, XGBModel] | None = None,
    model_format: Literal["ubj", "json"] = "ubj",
    reference_seed: int | None = None,
    **record: Any,
) -> tuple[RunRecord, ModelLogger]:
    """The :class:`RunRecord` and :data:`ModelLogger` of one XGBoost model (scores it, no I/O).

    ``params`` are logged over the model's own parameters; ``reference_seed`` (default the
    settings' seed) draws the reference sample; ``record`` takes the other :func:`run_record`
    arguments (metrics, holdout metrics, config, figures, texts, tags, reference sample size).

    Raises:
        ConfigError: As :func:`run_record`, and for a multi-class classifier.
    """
    _check_xy("training data", X_train, y_train)
    _check_xy("holdout data", X_holdout, y_holdout)
    train_scores = predict_scores(model, X_train)
    holdout_scores = predict_scores(model, X_holdout)
    rec = run_record(X_train=X_train, y_train=y_train, X_holdout=X_holdout, y_holdout=y_holdout,
                     train_scores=train_scores, holdout_scores=holdout_scores,
                     params=model_params(model, params),
                     reference_seed=get_settings().seed if reference_seed is None else reference_seed, **record)
    logger = xgboost_logger(model, X_train, train_scores, model_format=model_format, extra_models=extra_models)
    return rec, logger


def pip_requirements() -> list[str]:
    """The pinned requirements logged with every model (explicit: inferring them runs the model)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("xgboost", "numpy", "pandas", "scikit-learn", "pyarrow")]


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Mute a logger below ERROR (and MLflow's event stream under ``TELCO_NBO_QUIET=1``) in a block."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    # MLflow prints "Successfully registered model ..." / "Created version ..." through its own
    # event stream, past any logger level; the CLI (TELCO_NBO_QUIET, unset by --verbose) prints its
    # own line with the version. MLflow's reference-counted switch is used because model logging
    # re-enables the stream on its way out of its own muted sections.
    quiet = contextlib.nullcontext()
    if os.environ.get("TELCO_NBO_QUIET") == "1":
        from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

        quiet = MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False,
                                                        reroute_warnings=False)
    try:
        with quiet:
            yield
    finally:
        logger.setLevel(old)


def register_new_version(
    client: MlflowClient, name: str, version: int, kind: str, holdout_digest: str, run_id: str
) -> list[str]:
    """Tag a just-registered version, make it ``challenger``, and ``champion`` if it is the first.

    The first version becomes champion only if it clears the quality floor; the decision is
    written as ``telco_nbo.promotion.*`` tags either way.

    Returns:
        The aliases the version holds.
    """
    from mlflow.exceptions import MlflowException

    for key, value in {TAG_KIND: kind, TAG_HOLDOUT_DIGEST: holdout_digest, TAG + "run_id": run_id}.items():
        client.set_model_version_tag(name, str(version), key, value)
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    aliases = [CHALLENGER]
    try:
        client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        # No champion yet: the first version serves until a challenger beats it, if it clears the
        # quality floor (a model no better than a trivial one must not serve silently).
        floor = _floor(client, kind, run_id)
        ok = floor is None or floor.passed
        if ok:
            client.set_registered_model_alias(name, CHAMPION, str(version))
            aliases.append(CHAMPION)
        _tag_decision(
            client,
            PromotionDecision(
                model_name=name,
                metric="" if floor is None else floor.metric,
                greater_is_better=True,
                challenger_version=version,
                champion_version=None,
                challenger_score=None if floor is None else floor.value,
                champion_score=None,
                promoted=ok,
                basis="first_version" if ok else "below_quality_floor",
                reason=("first version of the model: champion by default" if ok else _floor_refusal(name, version, floor))
                + ("" if floor is None or not ok else f" (quality floor passed: {floor.detail})"),
                floor_detail=None if floor is None else floor.detail,
                decided_at=_now(),
            ),
        )
    return aliases


def _floor(client: MlflowClient, kind: str, run_id: str) -> Any:
    """The quality floor of the run's stored holdout (``None`` when the floor is switched off).

    Returns:
        A :class:`telco_nbo.quality_floor.FloorResult`; a holdout that cannot be read fails it.
    """
    if not get_settings().quality_floor:
        return None
    run = client.get_run(run_id)
    artifact = run.data.tags.get(TAG_HOLDOUT_ARTIFACT)
    try:
        if kind == "clv":
            return check_floor(kind, pd.DataFrame(), metrics=dict(run.data.metrics))
        if not artifact:
            raise ValueError("the run stored no holdout")
        with tempfile.TemporaryDirectory() as tmp:
            holdout = pd.read_parquet(client.download_artifacts(run_id, artifact, tmp))
        return check_floor(kind, holdout)
    except (ValueError, OSError) as exc:
        return FloorResult(kind, False, "", float("nan"), float("nan"), float("nan"), float("nan"), 0,
                           f"the quality floor could not be checked: {exc}")


def promotion_refusal(kind: str, version: int | str, tracking_uri: str | None = None) -> str | None:
    """The recorded reason a version was refused as champion (``None`` if it was not refused)."""
    name = registered_model_name(kind)
    with tracking_session(tracking_uri) as client:
        tags = client.get_model_version(name, str(version)).tags
    if tags.get(TAG_PROMOTION + "decision") != "refused":
        return None
    return tags.get(TAG_PROMOTION + "reason") or "refused"


def no_champion_reason(client: MlflowClient, name: str) -> str | None:
    """Why ``name`` has no champion when its latest version was refused by the gate (else ``None``)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    latest = max(versions, key=lambda v: int(v.version), default=None)
    if latest is None or latest.tags.get(TAG_PROMOTION + "decision") != "refused":
        return None
    return latest.tags.get(TAG_PROMOTION + "reason")


def _floor_refusal(name: str, version: int | str, floor: Any) -> str:
    kind = name.removeprefix("telco-")
    return (f"{name} v{version} is below the quality floor: {floor.detail}. It is not champion; train on more data, "
            f"or override with `telco-nbo promote {kind} --force --reason TEXT`")


# --------------------------------------------------------------------------------------------------
# promotion
# --------------------------------------------------------------------------------------------------


Basis = Literal[
    "first_version",
    "same_holdout_logged_metrics",
    "rescored_on_challenger_holdout",
    "already_champion",
    "not_comparable",
    "below_quality_floor",
    "forced",
]


class PromotionDecision(BaseModel):
    """The outcome of a champion/challenger comparison (also written as version tags).

    Attributes:
        model_name: Registered model name.
        metric: Metric compared (without the ``holdout_`` prefix).
        greater_is_better: Direction used.
        challenger_version: Version holding ``challenger``.
        champion_version: Version holding ``champion`` before the decision (``None`` if none).
        challenger_score: Challenger's score on the common holdout.
        champion_score: Champion's score on the same holdout.
        promoted: Whether ``champion`` now points at the challenger.
        basis: How the scores were obtained (or why no comparison was possible).
        reason: One sentence for a person.
        holdout_digest: Digest of the holdout both were scored on.
        floor_detail: The quality floor's figures for the challenger (``None`` when not checked).
        forced_reason: Why a person overrode the gate (``promote --force --reason``).
        decided_at: UTC timestamp, ISO 8601.
    """

    model_name: str
    metric: str
    greater_is_better: bool
    challenger_version: int
    champion_version: int | None
    challenger_score: float | None
    champion_score: float | None
    promoted: bool
    basis: Basis
    reason: str
    holdout_digest: str | None = None
    floor_detail: str | None = None
    forced_reason: str | None = None
    decided_at: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _tag_decision(client: MlflowClient, decision: PromotionDecision) -> None:
    values = {
        "decision": "promoted" if decision.promoted else "refused",
        "metric": decision.metric,
        "greater_is_better": str(decision.greater_is_better).lower(),
        "challenger_score": "" if decision.challenger_score is None else repr(decision.challenger_score),
        "champion_score": "" if decision.champion_score is None else repr(decision.champion_score),
        "champion_version": "" if decision.champion_version is None else str(decision.champion_version),
        "basis": decision.basis,
        "reason": decision.reason,
        "holdout_digest": decision.holdout_digest or "",
        "quality_floor": decision.floor_detail or "",
        "forced": "true" if decision.forced_reason else "false",
        "forced_reason": decision.forced_reason or "",
        "decided_at": decision.decided_at,
    }
    for key, value in values.items():
        client.set_model_version_tag(decision.model_name, str(decision.challenger_version), TAG_PROMOTION + key, value)


def _metric_key(metric: str) -> tuple[str, str]:
    bare = metric.removeprefix("holdout_")
    return bare, f"holdout_{bare}"


def _rescore(
    client: MlflowClient, name: str, challenger: ModelVersion, champion: ModelVersion, metric: str
) -> tuple[float, float, str] | str:
    """Score both versions on the challenger's stored holdout; return scores + digest or a reason."""
    fns = _rescoring_metrics()
    if metric not in fns:
        return f"metric {metric!r} cannot be recomputed from a holdout frame (known: {', '.join(sorted(fns))})"
    run = client.get_run(challenger.run_id)
    artifact = run.data.tags.get(TAG_HOLDOUT_ARTIFACT)
    if not artifact:
        return "the challenger's run stored no holdout to re-score on"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(challenger.run_id, artifact, tmp)
        except Exception as exc:  # noqa: BLE001 - any store failure means "cannot re-score"
            return f"the challenger's holdout artifact could not be read: {exc}"
        holdout = pd.read_parquet(path)
    y = holdout.pop(TARGET_COLUMN).to_numpy()
    holdout = holdout.drop(columns=[SCORE_COLUMN], errors="ignore")
    scores = []
    for mv in (challenger, champion):
        model = load_xgboost_model(f"models:/{name}/{mv.version}")
        features = list(model.get_booster().feature_names or [])
        missing = [f for f in features if f not in holdout.columns]
        if missing:
            return f"version {mv.version} needs features the challenger's holdout lacks: {missing[:5]}"
        fn, _ = fns[metric]
        scores.append(float(fn(y, predict_scores(model, holdout[features]))))
    return scores[0], scores[1], run.data.tags.get(TAG_HOLDOUT_DIGEST, "")


def promote(
    model_name: str,
    metric: str = "roc_auc",
    greater_is_better: bool | None = None,
    *,
    min_improvement: float = 0.0,
    tracking_uri: str | None = None,
    force: bool = False,
    reason: str | None = None,
) -> PromotionDecision:
    """Move ``champion`` to the ``challenger`` version if it clears the quality floor and beats the champion.

    The floor (:mod:`telco_nbo.quality_floor`) is absolute: a challenger no better than a trivial
    model is refused even with no champion to beat. ``force`` overrides the floor and the
    comparison; the reason a person gives is recorded with the figures it overrode.

    Args:
        model_name: ``telco-churn`` or just ``churn`` (any of the four kinds).
        metric: Metric name; the runs' ``holdout_<metric>`` is compared when both runs share a
            holdout digest, otherwise the metric is recomputed on the challenger's stored holdout
            (``roc_auc``, ``pr_auc``, ``log_loss``, ``brier``, ``rmse``, ``mae``, ``r2``).
        greater_is_better: Direction; ``None`` looks it up in :data:`GREATER_IS_BETTER`.
        min_improvement: How much better the challenger must be (strictly beats by more than this).
        tracking_uri: MLflow tracking URI (default from settings).
        force: Promote the challenger whatever the floor and the comparison say.
        reason: Why (required with ``force``); recorded as ``telco_nbo.promotion.forced_reason``.

    Returns:
        The decision; it is also written as ``telco_nbo.promotion.*`` tags on the challenger version.

    Raises:
        ConfigError: Unknown model, no challenger alias, unknown metric direction, or ``force``
            without a reason.
    """
    from mlflow.exceptions import MlflowException

    if force and not (reason or "").strip():
        raise ConfigError("--force needs --reason TEXT: the reason is recorded with the promotion")
    name = registered_model_name(model_name)
    bare, key = _metric_key(metric)
    if greater_is_better is None:
        if bare not in GREATER_IS_BETTER:
            raise ConfigError(f"direction of metric {bare!r} is unknown; pass greater_is_better")
        greater_is_better = GREATER_IS_BETTER[bare]
    with tracking_session(tracking_uri) as client:
        try:
            challenger = client.get_model_version_by_alias(name, CHALLENGER)
        except MlflowException as exc:
            raise ConfigError(f"model {name!r} has no '{CHALLENGER}' version to promote (train one first)") from exc
        try:
            champion: ModelVersion | None = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            champion = None

        def decide(**kw: Any) -> PromotionDecision:
            base = {
                "model_name": name,
                "metric": bare,
                "greater_is_better": greater_is_better,
                "challenger_version": int(challenger.version),
                "champion_version": None if champion is None else int(champion.version),
                "challenger_score": None,
                "champion_score": None,
                "decided_at": _now(),
            }
            return PromotionDecision(**{**base, **kw})

        floor = None
        if champion is None or champion.version != challenger.version:
            floor = _floor(client, name.removeprefix("telco-"), challenger.run_id)
        floor_kw = {"floor_detail": None if floor is None else floor.detail}
        if force:
            decision = decide(
                promoted=True, basis="forced", forced_reason=reason.strip(), **floor_kw,
                reason=f"forced by a person: {reason.strip()}"
                + ("" if floor is None else f" (quality floor {'passed' if floor.passed else 'NOT passed'}: {floor.detail})"),
            )
        elif floor is not None and not floor.passed:
            decision = decide(promoted=False, basis="below_quality_floor", challenger_score=floor.value, **floor_kw,
                              metric=floor.metric or bare,
                              reason=_floor_refusal(name, challenger.version, floor))
        elif champion is None:
            decision = decide(promoted=True, basis="first_version", **floor_kw,
                              reason="no champion yet: the challenger becomes champion"
                              + ("" if floor is None else f" (quality floor passed: {floor.detail})"))
        elif champion.version == challenger.version:
            decision = decide(
                promoted=False, basis="already_champion", reason=f"version {challenger.version} is already the champion"
            )
        else:
            ch_run = client.get_run(challenger.run_id)
            cp_run = client.get_run(champion.run_id)
            ch_digest = ch_run.data.tags.get(TAG_HOLDOUT_DIGEST)
            cp_digest = cp_run.data.tags.get(TAG_HOLDOUT_DIGEST)
            ch_logged = ch_run.data.metrics.get(key)
            cp_logged = cp_run.data.metrics.get(key)
            if ch_digest and ch_digest == cp_digest and ch_logged is not None and cp_logged is not None:
                scores: tuple[float, float, str] | str = (ch_logged, cp_logged, ch_digest)
                basis: Basis = "same_holdout_logged_metrics"
            else:
                scores = _rescore(client, name, challenger, champion, bare)
                basis = "rescored_on_challenger_holdout"
            if isinstance(scores, str):
                why = "holdout digests differ" if ch_digest != cp_digest else f"'{key}' was not logged on both runs"
                decision = decide(
                    promoted=False,
                    basis="not_comparable",
                    reason=f"cannot compare on the same holdout ({why}) and re-scoring failed: {scores}",
                )
            else:
                ch_score, cp_score, digest = scores
                delta = (ch_score - cp_score) if greater_is_better else (cp_score - ch_score)
                better = delta > min_improvement
                verb = "beats" if better else "does not beat"
                decision = decide(
                    promoted=better,
                    basis=basis,
                    **floor_kw,
                    challenger_score=ch_score,
                    champion_score=cp_score,
                    holdout_digest=digest or None,
                    reason=(
                        f"challenger v{challenger.version} {bare}={ch_score:.6g} {verb} champion "
                        f"v{champion.version} {bare}={cp_score:.6g} on holdout {digest or '?'}"
                        + (f" by more than {min_improvement:g}" if min_improvement else "")
                    ),
                )
        _tag_decision(client, decision)
        if decision.promoted:
            client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
        return decision


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registry version as plain values.

    Attributes:
        name: Registered model name.
        version: Version number.
        run_id: Run that logged it.
        source: Model artifact URI.
        aliases: Aliases it holds.
        tags: Its version tags.
        feature_names: The model's input columns, in order.
    """

    name: str
    version: int
    run_id: str
    source: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()


def load_model_version(
    model_name: str, alias: str = CHAMPION, tracking_uri: str | None = None
) -> tuple[XGBModel, ModelVersionInfo]:
    """Load ``models:/<name>@<alias>`` through the XGBoost flavor (not pyfunc, which gives labels).

    Returns:
        The XGBoost sklearn model and the version's details.

    Raises:
        ConfigError: The model or alias does not exist.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    name = registered_model_name(model_name)
    with tracking_session(tracking_uri) as client:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            raise ConfigError(f"model {name!r} has no version with alias '{alias}' in {mlflow.get_tracking_uri()}") from exc
        model = load_xgboost_model(f"models:/{name}@{alias}")
        return model, ModelVersionInfo(
            name=name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            aliases=tuple(mv.aliases),
            tags=dict(mv.tags),
            feature_names=tuple(model.get_booster().feature_names or ()),
        )


def load_champion(model_name: str, tracking_uri: str | None = None) -> tuple[XGBModel, ModelVersionInfo]:
    """Load the champion of ``telco-<kind>`` (see :func:`load_model_version`)."""
    return load_model_version(model_name, CHAMPION, tracking_uri)


def load_reference_frame(model_name: str, alias: str = CHAMPION, tracking_uri: str | None = None) -> pd.DataFrame:
    """Return the reference sample (features + ``target`` + ``prediction``) of an aliased version.

    This is the reference dataset for monitoring: the training rows the model learned from, with
    the scores it gave them.
    """
    from mlflow.exceptions import MlflowException

    name = registered_model_name(model_name)
    with tracking_session(tracking_uri) as client:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            raise ConfigError(f"model {name!r} has no version with alias '{alias}'") from exc
        artifact = client.get_run(mv.run_id).data.tags.get(TAG_REFERENCE_ARTIFACT)
        if not artifact:
            raise TelcoNboError(f"{name} v{mv.version}: its run recorded no reference sample")
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(client.download_artifacts(mv.run_id, artifact, tmp))


def model_versions(model_name: str, tracking_uri: str | None = None) -> list[ModelVersionInfo]:
    """List every version of a registered model, newest first (empty if it does not exist)."""
    name = registered_model_name(model_name)
    with tracking_session(tracking_uri) as client:
        found = client.search_model_versions(f"name = '{name}'")
        return sorted(
            (
                ModelVersionInfo(
                    name=name,
                    version=int(mv.version),
                    run_id=mv.run_id,
                    source=mv.source,
                    aliases=tuple(mv.aliases),
                    tags=dict(mv.tags),
                )
                for mv in found
            ),
            key=lambda m: -m.version,
        )


__all__: Sequence[str] = (
    "CHALLENGER",
    "CHAMPION",
    "GREATER_IS_BETTER",
    "ModelLogger",
    "ModelVersionInfo",
    "PromotionDecision",
    "RunRecord",
    "RunRecorder",
    "TrainingRun",
    "ensure_experiment",
    "experiment_name",
    "frame_digest",
    "load_champion",
    "load_model_version",
    "load_reference_frame",
    "log_training_run",
    "model_params",
    "model_versions",
    "pip_requirements",
    "predict_scores",
    "promote",
    "quiet_logger",
    "register_new_version",
    "registered_model_name",
    "run_record",
    "start_run",
    "tracking_session",
    "training_run",
    "xgboost_logger",
    "xgboost_record",
)
