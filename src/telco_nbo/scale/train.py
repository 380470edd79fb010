"""Training the churn model with ``xgboost.dask`` and logging it like any other model.

The Dask model is trained on the Dask frame of :func:`telco_nbo.features.to_model_matrix` (the
same fixed categories as in-process, so ``enable_categorical`` sees the same encoding) with the
same parameters as :func:`telco_nbo.models.churn.make_churn_classifier`. Its booster is then loaded
into a plain :class:`xgboost.XGBClassifier`: the registry holds a normal XGBoost model, so
:func:`telco_nbo.tracking.load_champion`, the service and promotion treat it like any other.

Parity: with row subsampling off (``subsample=1``) distributed and in-process ``hist`` training
on the same rows build the same trees (tested: identical holdout predictions). With
``subsample < 1`` every worker draws its own subsample, so the model depends on which worker
holds which partition; the holdout ROC AUC then differs by sampling noise, which
:data:`AUC_TOLERANCE` bounds on large holdouts (benchmarks/RESULTS.md, 1M accounts).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.config import get_settings
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.features import to_model_matrix
from telco_nbo.scale.cluster import n_workers, same_dtypes
from telco_nbo.scale.extmem import (
    SKETCH_ROWS,
    SPLIT_COLUMN,
    ShardSplits,
    fit_classifier_extmem,
    read_holdout,
    sample_shards,
    shard_folder,
    shard_world,
    sketch_sample,
    worker_peak_mb,
)
from telco_nbo.scale.features import LABEL_COLUMN, account_features_partition, build_account_features_dask, model_matrix_dask
from telco_nbo.scale.tune import ChurnModelFactory, tune_parallel
from telco_nbo.tracking import training_run, xgboost_record
from telco_nbo.training import churn as churn_steps
from telco_nbo.training.data import household_share, household_split
from telco_nbo.vocabulary import resolve_as_of

# Dask, xgboost.dask and the churn model's module (XGBoost) are imported inside the functions that
# run on a cluster: importing the package must not load them.
if TYPE_CHECKING:
    import dask.dataframe as dd
    import xgboost as xgb
    from distributed import Client

    from telco_nbo.scale.partition import PartitionedWorld

AUC_TOLERANCE = 0.01
"""Largest holdout ROC AUC difference accepted between Dask and in-process training with row
subsampling (benchmarked at 1M accounts; without subsampling the tests require identical
predictions)."""

TAG_SCALE = "telco_nbo.scale."
LOGGED_TRAIN_ROWS = 200_000
"""Training rows sent to MLflow with the model (digest, signature, monitoring reference): a
household-hash sample when the training set is larger, so the client never gathers all of it."""


def _dask_params(params: dict[str, Any]) -> dict[str, Any]:
    from telco_nbo.models.churn import make_churn_classifier

    p = make_churn_classifier(**params).get_params()
    # Threads are the workers' own (one per worker thread); callbacks run on the workers.
    p.pop("n_jobs", None)
    p.pop("callbacks", None)
    return {k: v for k, v in p.items() if v is not None}


def to_sklearn_classifier(model: Any, params: dict[str, Any] | None = None) -> xgb.XGBClassifier:
    """Return a plain :class:`xgboost.XGBClassifier` holding ``model``'s booster.

    Saved and re-loaded through XGBoost's own UBJ format (with its scikit-learn metadata), so the
    result predicts, pickles and logs exactly like an in-process model.

    Args:
        model: A fitted :class:`xgboost.dask.DaskXGBClassifier` (or any XGBoost sklearn model).
        params: Parameters of the returned classifier (default: the churn defaults overridden by
            ``model``'s own parameters).
    """
    from telco_nbo.models.churn import make_churn_classifier

    if params is None:
        params = {k: v for k, v in model.get_params().items() if v is not None and k not in ("callbacks", "n_jobs")}
    clf = make_churn_classifier(**params)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.ubj"
        model.save_model(path)
        clf.load_model(path)
    return clf


def fit_classifier_dask(
    client: Client,
    X_train: dd.DataFrame,
    y_train: dd.Series,
    X_valid: dd.DataFrame | None = None,
    y_valid: dd.Series | None = None,
    **params: Any,
) -> xgb.XGBClassifier:
    """Fit the churn classifier with :class:`xgboost.dask.DaskXGBClassifier`.

    Args:
        client: Dask client (the data's partitions live on its workers).
        X_train: Model matrix (``to_model_matrix`` per partition: fixed-category ``category``
            columns, numerics float64 or float32 — XGBoost reads both as float32).
        y_train: 0/1 target, partitioned like ``X_train``.
        X_valid: Optional eval set (early stopping when ``early_stopping_rounds`` is given).
        y_valid: Its target.
        **params: Parameters of :func:`telco_nbo.models.churn.make_churn_classifier`.

    Returns:
        A plain fitted :class:`xgboost.XGBClassifier` (see :func:`to_sklearn_classifier`).
    """
    from xgboost import dask as dxgb

    p = _dask_params(params)
    model = dxgb.DaskXGBClassifier(**p)
    model.client = client
    kw: dict[str, Any] = {"verbose": False}
    if X_valid is not None and y_valid is not None:
        kw["eval_set"] = [(X_valid, y_valid)]
    elif p.get("early_stopping_rounds"):
        raise ConfigError("early_stopping_rounds needs a validation set (X_valid, y_valid)")
    model.fit(X_train, y_train, **kw)
    clf = to_sklearn_classifier(model, {**params})
    return clf


TUNING_ROWS = 200_000
"""Cap on the training + validation rows the Optuna trials of :func:`train_churn_dask` see."""


SAMPLE_KEYS = {"tuning": "_share_tuning", "logged": "_share_logged"}
"""Per-row sampling keys kept by the Dask trainers (:func:`~telco_nbo.training.data.household_share`
of the row's household with the salts ``tuning-sample`` / ``mlflow-sample``)."""


def compact_rows(part: pd.DataFrame, cols: list[str], label: str, seed: int) -> pd.DataFrame:
    """What the Dask trainers keep of a partition's rows: float32 features, label, split, sample keys.

    Why: ``xgboost.dask`` keeps every training row in worker memory until the model is fitted.
    XGBoost reads features as float32 whatever it is given (so float32 changes no split and no
    prediction), and the household id (a Python string per row) is only needed to draw the
    tuning and logging samples, which its hash values decide as well.
    """

    ids = part["household_id"].to_numpy(dtype=object)
    out = {c: part[c] if isinstance(part[c].dtype, pd.CategoricalDtype) else part[c].astype(np.float32) for c in cols}
    out[label] = part[label].astype(np.int8)
    out[SPLIT_COLUMN] = part[SPLIT_COLUMN].astype(np.int8)
    for what, col in SAMPLE_KEYS.items():
        out[col] = household_share(ids, seed, f"{'mlflow' if what == 'logged' else what}-sample")
    return pd.DataFrame(out, index=part.index)


def _as_float64(frame: pd.DataFrame) -> pd.DataFrame:
    """Back to the in-process model matrix dtypes (float64 numerics) for rows gathered on the client."""
    return frame.astype({c: np.float64 for c, t in frame.dtypes.items() if t == np.float32})


@dataclass
class DaskSplits:
    """The persisted pieces a Dask trainer reads (train / valid / holdout), and their sizes."""

    X: dict[str, dd.DataFrame]
    y: dict[str, dd.Series]
    keys: dict[str, dd.DataFrame]
    holdout: dd.DataFrame
    n_rows: dict[str, int]


def persist_splits(client: Client, rows: dd.DataFrame, cols: list[str], label: str, table: str, what: str,
                    positives: str) -> DaskSplits:
    """Persist exactly what training reads, in ONE call, from the compact rows; check the splits.

    ``rows`` is the lazy output of :func:`compact_rows` per partition (each partition one graph
    key, so it is built once). Persisting the train / valid features and labels themselves (not a
    whole frame from which ``xgboost.dask`` would then persist filtered copies) keeps one copy of
    each row in the cluster; the big frame is never persisted.

    Raises:
        DataValidationError: A split is empty or has one class (``table``, ``what`` and
            ``positives`` name them in the message, e.g. "accounts", "rows", "churners").
    """
    sel = {name: rows[rows[SPLIT_COLUMN] == code] for code, name in enumerate(("train", "valid", "holdout"))}
    keys = list(SAMPLE_KEYS.values())
    parts = {f"X_{n}": sel[n][cols] for n in ("train", "valid")}
    parts.update({f"y_{n}": sel[n][label] for n in ("train", "valid")})
    parts.update({f"k_{n}": sel[n][keys] for n in ("train", "valid")})
    parts["holdout"] = sel["holdout"][[*cols, label]]
    done = dict(zip(parts, client.persist(list(parts.values())), strict=True))
    counts = client.compute([done[f"y_{n}"].size for n in ("train", "valid")] + [done["holdout"][label].size]
                            + [done[f"y_{n}"].sum() for n in ("train", "valid")] + [done["holdout"][label].sum()],
                            sync=True)
    names = ("train", "valid", "holdout")
    n_rows = {name: int(counts[i]) for i, name in enumerate(names)}
    _check_splits(n_rows, {name: int(counts[3 + i]) for i, name in enumerate(names)}, table, what, positives)
    return DaskSplits(X={n: done[f"X_{n}"] for n in ("train", "valid")}, y={n: done[f"y_{n}"] for n in ("train", "valid")},
                   keys={n: done[f"k_{n}"] for n in ("train", "valid")}, holdout=done["holdout"], n_rows=n_rows)


def _check_splits(n_rows: dict[str, int], positives: dict[str, int], table: str, what: str, positive: str) -> None:
    """Refuse a split that is empty or has one class (``table`` / ``what`` / ``positive`` word the message)."""
    problems = [f"the {name} split has {n_rows[name]} {what} and {positives[name]} {positive}: it needs both classes"
                for name in ("train", "valid", "holdout")
                if n_rows[name] == 0 or positives[name] in (0, n_rows[name])]
    if problems:
        raise DataValidationError(table, problems + ["use more households or other split fractions"])


def _sample(splits: DaskSplits | ShardSplits, share: float, what: str, label: str) -> pd.DataFrame:
    """The train + valid rows whose household falls in ``share`` (key ``what``), gathered, float64.

    Columns: the features, ``label`` and :data:`SPLIT_COLUMN` (0 train, 1 valid).
    """
    import dask
    import dask.dataframe as dd

    key = SAMPLE_KEYS[what]
    if isinstance(splits, ShardSplits):
        from distributed import get_client

        return _as_float64(sample_shards(get_client(), splits, key, share))

    def pick(X: pd.DataFrame, y: pd.Series, k: pd.DataFrame, code: int) -> pd.DataFrame:
        keep = (k[key] < share).to_numpy()
        return X[keep].assign(**{label: y[keep].to_numpy(), SPLIT_COLUMN: np.int8(code)})

    frames = []
    for code, name in enumerate(("train", "valid")):
        X, y, k = splits.X[name], splits.y[name], splits.keys[name]
        meta = X._meta.assign(**{label: y._meta.to_numpy(), SPLIT_COLUMN: np.int8(code)})
        frames.append(dd.map_partitions(pick, X, y, k, code, meta=meta, align_dataframes=False))
    return _as_float64(pd.concat(dask.compute(*frames), ignore_index=True))


def _tune_on_sample(client: Client, splits: DaskSplits | ShardSplits, cols: list[str], n_rows: dict[str, int], trials: int,
                    seed: int, storage: str | None, study_name: str | None, *, fixed: dict[str, Any],
                    early_stopping_rounds: int | None, label: str | None = None) -> dict[str, Any]:
    """Run the trials on a household sample; return the best parameters (n_estimators = best round + 1).

    ``label``: the target column (default the churn label).
    """
    from telco_nbo.models.churn import default_search_space

    label = label or LABEL_COLUMN
    share = min(1.0, TUNING_ROWS / max(n_rows["train"] + n_rows["valid"], 1))
    sample = _sample(splits, share, "tuning", label)
    tr, va = sample[sample[SPLIT_COLUMN] == 0], sample[sample[SPLIT_COLUMN] == 1]
    procs = max(1, min(n_workers(client), trials))
    factory = ChurnModelFactory({"random_state": seed, **fixed,
                                 **({"early_stopping_rounds": early_stopping_rounds} if early_stopping_rounds else {})})
    result = tune_parallel(
        factory, default_search_space, tr[cols].reset_index(drop=True), tr[label].to_numpy(np.int8),
        va[cols].reset_index(drop=True), va[label].to_numpy(np.int8),
        n_trials=trials, n_processes=procs, client=client, seed=seed, metric="logloss",
        study_name=study_name or f"telco-churn-dask-{seed}-{len(sample)}",
        storage=storage or get_settings().resolved_optuna_storage(), report_interval=5,
    )
    best = {**result.best_params, **fixed}
    if result.best_iteration is not None and "n_estimators" not in fixed:
        best["n_estimators"] = int(result.best_iteration) + 1
    return best


def split_column(household_ids: pd.Series, holdout_fraction: float, valid_fraction: float, seed: int) -> np.ndarray:
    """``0`` train, ``1`` validation, ``2`` holdout per row: the in-process pipeline's split.

    Uses :func:`telco_nbo.training.data.household_split` with the same salts as the in-process
    trainer, so a household lands in the same split whichever path trains.
    """

    ids = household_ids.to_numpy(dtype=object)
    holdout = household_split(ids, holdout_fraction, seed, "holdout")
    valid = household_split(ids, valid_fraction, seed, "valid") & ~holdout
    return np.where(holdout, 2, np.where(valid, 1, 0)).astype(np.int8)


def _with_split(part: pd.DataFrame, holdout_fraction: float, valid_fraction: float, seed: int) -> pd.DataFrame:
    return part.assign(**{SPLIT_COLUMN: split_column(part["household_id"], holdout_fraction, valid_fraction, seed)})


@dataclass
class DaskTrainResult:
    """Outcome of :func:`train_churn_dask`.

    Attributes:
        model: The plain fitted XGBClassifier.
        holdout_metrics: Holdout evaluation headline (``roc_auc``, ``log_loss``, ...).
        n_rows: Rows per split (``train``, ``valid``, ``holdout``).
        run_id: MLflow run (``None`` when not logged).
        model_name: Registered name (``None`` when not registered).
        model_version: Registry version.
        aliases: Aliases the new version holds.
        seconds: Wall time per step (``features``, ``fit``, ``evaluate``, ``log``; ``restart``).
        worker_peak_mb: External-memory path: each worker's peak resident memory (MB) after
            writing the shards (``shards``) and after the fit (``fit``; of the fresh processes
            when the workers were restarted in between), also logged as run metrics.
    """

    model: Any
    holdout_metrics: dict[str, float]
    n_rows: dict[str, int]
    run_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    aliases: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    worker_peak_mb: dict[str, list[int]] = field(default_factory=dict)



@dataclass
class SplitFit:
    """What :func:`fit_on_splits` returns: the model, the parameters it was fitted with, the holdout."""

    model: Any
    params: dict[str, Any]
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    p_holdout: np.ndarray


def fit_on_splits(client: Client, splits: DaskSplits | ShardSplits, cols: list[str], label: str, *,
                   params: dict[str, Any] | None, seed: int, trials: int, optuna_storage: str | None,
                   study_name: str | None, early_stopping_rounds: int | None, secs: dict[str, float],
                   sketch_rows: int | None = SKETCH_ROWS) -> SplitFit:
    """Tune (optionally) on a sample, fit with ``xgboost.dask`` on train / valid, predict the holdout.

    The shared skeleton of the Dask trainers; ``secs`` gets ``tuning``, ``fit`` and ``evaluate``.
    """
    n_rows = splits.n_rows
    base = {**(params or {}), "random_state": seed}
    if trials > 0:
        t0 = time.perf_counter()
        base.update(_tune_on_sample(client, splits, cols, n_rows, trials, seed, optuna_storage, study_name,
                                    fixed=dict(params or {}), early_stopping_rounds=early_stopping_rounds, label=label))
        secs["tuning"] = time.perf_counter() - t0
    if early_stopping_rounds:
        base["early_stopping_rounds"] = early_stopping_rounds
    t0 = time.perf_counter()
    if isinstance(splits, ShardSplits):
        model = fit_classifier_extmem(client, splits, sketch_rows=sketch_rows, **base)
    else:
        model = fit_classifier_dask(client, splits.X["train"], splits.y["train"], splits.X["valid"],
                                    splits.y["valid"], **base)
    secs["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ho = _as_float64(read_holdout(splits) if isinstance(splits, ShardSplits) else splits.holdout.compute())
    X_ho, y_ho = ho[cols].reset_index(drop=True), ho[label].to_numpy(np.int8)
    p_ho = model.predict_proba(X_ho)[:, 1]
    secs["evaluate"] = time.perf_counter() - t0
    return SplitFit(model, base, X_ho, y_ho, p_ho)


def trained_on(splits: DaskSplits | ShardSplits) -> str:
    """The ``telco_nbo.scale.trained_on`` tag of a run: which distributed fit made the model."""
    return "xgboost.collective+external-memory" if isinstance(splits, ShardSplits) else "xgboost.dask"


def scale_tags(splits: DaskSplits | ShardSplits, world: PartitionedWorld, logged_share: float) -> dict[str, str]:
    """The ``telco_nbo.scale.*`` tags of a Dask training run: which fit, how many partitions, the logged share."""
    return {TAG_SCALE + "trained_on": trained_on(splits), TAG_SCALE + "n_partitions": str(world.n_partitions),
            TAG_SCALE + "logged_train_share": f"{logged_share:.6f}"}


def logged_sample(splits: DaskSplits | ShardSplits, label: str, seed: int) -> tuple[pd.DataFrame, float]:
    """The train + valid rows logged with the run (at most :data:`LOGGED_TRAIN_ROWS`) and their share."""
    n_rows = splits.n_rows
    share = min(1.0, LOGGED_TRAIN_ROWS / max(n_rows["train"] + n_rows["valid"], 1))
    return _sample(splits, share, "logged", label), share


def train_churn_dask(
    world: PartitionedWorld,
    client: Client,
    *,
    as_of: Any = None,
    label_horizon_days: int = 90,
    holdout_fraction: float = 0.25,
    valid_fraction: float = 0.2,
    seed: int = 42,
    params: dict[str, Any] | None = None,
    early_stopping_rounds: int | None = 30,
    log: bool = True,
    register: bool = True,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    trials: int = 0,
    optuna_storage: str | None = None,
    study_name: str | None = None,
    external_memory: bool = False,
    shard_dir: str | None = None,
    restart_workers: bool = False,
    sketch_rows: int | None = SKETCH_ROWS,
) -> DaskTrainResult:
    """Build features and labels per partition, train with ``xgboost.dask``, evaluate, log.

    The split is by household (:func:`split_column`); early stopping uses the validation
    households; the final model keeps the best round (no refit on train + validation: a second
    distributed pass would double the cost for a marginal gain at this scale). The holdout is
    gathered on the client to evaluate and log it (``holdout_fraction`` of the rows); the logged
    training rows are capped at :data:`LOGGED_TRAIN_ROWS`.

    Args:
        world: Partitioned world (generated on Dask or loaded from a data folder).
        client: Dask client.
        as_of: Feature date (default the world's ``as_of``).
        label_horizon_days: Churn label window.
        holdout_fraction: Households kept out for evaluation.
        valid_fraction: Households used for early stopping.
        seed: Split and model seed.
        params: Model parameters over the churn defaults.
        early_stopping_rounds: Early stopping patience (``None``: all trees).
        log: Log the run to MLflow (:func:`telco_nbo.tracking.training_run`, as in-process training).
        register: Register ``telco-churn`` (new version; aliases as for any training run).
        tracking_uri: MLflow tracking URI.
        data_dir: Data folder recorded with the run.
        trials: Optuna trials before the final fit (0: ``params`` as given). They run with
            :func:`~telco_nbo.scale.tune.tune_parallel`, one process per worker, sharing one study,
            on a household sample of at most :data:`TUNING_ROWS` training / validation rows
            gathered on the client; the best parameters then train on all rows.
        optuna_storage: Shared Optuna storage URL (default from settings).
        study_name: Study name (default ``telco-churn-dask-<seed>-<rows>``).
        external_memory: Keep no training row in worker memory: write the rows as Parquet shards
            and fit with XGBoost's external memory on the same collective as ``xgboost.dask``
            (:mod:`telco_nbo.scale.extmem`). Same parameters, same splits; a worker's peak then
            no longer holds its share of the data.
        shard_dir: Parent folder of the (temporary, removed at the end) shards with
            ``external_memory``; every worker and the client must see it. Default: inside the
            world's folder when it was opened from one (the workers read it already), else the
            system temporary folder (a local cluster).
        restart_workers: With ``external_memory``, restart the worker processes once the shards
            are written, so the fit starts from fresh processes rather than ones whose heap the
            feature step has grown (see :func:`shard_splits`). Only for a cluster this
            caller owns (``train --scheduler local`` sets it); ignored for a world scattered
            into worker memory.
        sketch_rows: With ``external_memory`` and more training rows than this, the bin edges
            are sketched from a household sample of about this many rows, so the sketch's memory
            stops growing with the data (:func:`~telco_nbo.scale.extmem.sketch_sample`).
            ``None``: every row.

    Returns:
        The :class:`DaskTrainResult`.

    Raises:
        DataValidationError: A split is empty or has a single class.
    """

    with same_dtypes():
        with contextlib.ExitStack() as stack:
            return _train_churn_dask(world, client, as_of, label_horizon_days, holdout_fraction, valid_fraction,
                                     seed, params, early_stopping_rounds, log, register, tracking_uri, data_dir,
                                     trials, optuna_storage, study_name,
                                     stack.enter_context(shard_folder(shard_parent(world, shard_dir)))
                                     if external_memory else None, restart_workers, sketch_rows)


def shard_splits(client: Client, world: PartitionedWorld, build: Any, folder: str, cols: list[str], label: str,
                 restart: bool, secs: dict[str, float], words: tuple[str, str, str]) -> tuple[ShardSplits, dict[str, list[int]]]:
    """The external-memory trainers' first step: write the shards, check the splits, then restart the workers.

    ``build`` turns one partition into its compact rows; ``words`` are the ``table``, ``what`` and
    ``positives`` of :func:`_check_splits`' message. Returns the shards and the workers' peak
    memory of the shard step (``{"shards": [...]}``); ``secs["restart"]`` is set when restarted.

    Why restart: a worker's resident memory after building hundreds of partitions' rows stays
    above what it started with (heap the allocator keeps, measured in benchmarks/RESULTS.md), and
    the fit would add its own on top. Workers hold nothing the fit needs (the shards are on
    disk), so fresh processes lose nothing. Skipped for a world whose partitions live in worker
    memory (scattered futures): a restart would drop them.
    """
    splits = shard_world(client, world.sources or world.parts, build, folder, cols, label, list(SAMPLE_KEYS.values()))
    _check_splits(splits.n_rows, splits.positives, *words)
    memory = {"shards": worker_peak_mb(client)}
    if restart and world.sources is not None:
        t0 = time.perf_counter()
        client.restart()
        secs["restart"] = time.perf_counter() - t0
    return splits, memory


def shard_parent(world: PartitionedWorld, shard_dir: str | None) -> str | None:
    """Where the external-memory shards go: ``shard_dir``, else the world's folder, else system temp."""
    if shard_dir is not None:
        return shard_dir
    if world.sources:
        return str(Path(world.sources[0]).parent)
    return None


def churn_rows_partition(world: Any, as_of: Any, label_horizon_days: int, observed_until: Any,
                         holdout_fraction: float, valid_fraction: float, seed: int, cols: list[str]) -> pd.DataFrame:
    """One partition's compact churn rows (:func:`compact_rows`): features, label, split, keys.

    The external-memory path's per-partition function: the same steps as the in-memory graph
    (:func:`~telco_nbo.scale.features.account_features_partition`, :func:`_with_split`,
    :func:`~telco_nbo.features.to_model_matrix`, :func:`compact_rows`), in one call.
    """

    feats = _with_split(account_features_partition(world, as_of, label_horizon_days, observed_until),
                        holdout_fraction, valid_fraction, seed)
    frame = to_model_matrix(feats).assign(**{LABEL_COLUMN: feats[LABEL_COLUMN].to_numpy(),
                                             SPLIT_COLUMN: feats[SPLIT_COLUMN].to_numpy(),
                                             "household_id": feats["household_id"].to_numpy(dtype=object)})
    return compact_rows(frame, cols, LABEL_COLUMN, seed)


def _train_churn_dask(world: PartitionedWorld, client: Client, as_of: Any, label_horizon_days: int,
                      holdout_fraction: float, valid_fraction: float, seed: int, params: dict[str, Any] | None,
                      early_stopping_rounds: int | None, log: bool, register: bool, tracking_uri: str | None,
                      data_dir: str | None, trials: int, optuna_storage: str | None,
                      study_name: str | None, shards: str | None, restart_workers: bool = False,
                      sketch_rows: int | None = SKETCH_ROWS) -> DaskTrainResult:

    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    as_of = resolve_as_of(as_of, world.meta.get("as_of"), "the world")
    feats = build_account_features_dask(world, as_of, label_horizon_days=label_horizon_days)
    meta = feats._meta.assign(**{SPLIT_COLUMN: np.int8(0)})
    feats = feats.map_partitions(_with_split, holdout_fraction, valid_fraction, seed, meta=meta)
    X_all = model_matrix_dask(feats)
    cols = list(X_all.columns)
    splits: DaskSplits | ShardSplits
    if shards is not None:
        build = functools.partial(churn_rows_partition, as_of=as_of, label_horizon_days=label_horizon_days,
                                  observed_until=world.meta.get("world_end"), holdout_fraction=holdout_fraction,
                                  valid_fraction=valid_fraction, seed=seed, cols=cols)
        splits, memory = shard_splits(client, world, build, shards, cols, LABEL_COLUMN, restart_workers, secs,
                                      ("accounts", "rows", "churners"))
    else:
        splits = persist_splits(client, compact_dask(X_all.assign(**{
            LABEL_COLUMN: feats[LABEL_COLUMN], SPLIT_COLUMN: feats[SPLIT_COLUMN],
            "household_id": feats["household_id"]}), cols, LABEL_COLUMN, seed), cols, LABEL_COLUMN, "accounts",
            "rows", "churners")
    n_rows = splits.n_rows
    secs["features"] = time.perf_counter() - t0 - secs.get("restart", 0.0)
    fit = fit_on_splits(client, splits, cols, LABEL_COLUMN, params=params, seed=seed, trials=trials,
                         optuna_storage=optuna_storage, study_name=study_name,
                         early_stopping_rounds=early_stopping_rounds, secs=secs, sketch_rows=sketch_rows)
    model, base, X_ho, y_ho = fit.model, fit.params, fit.X_holdout, fit.y_holdout
    t0 = time.perf_counter()
    metrics = churn_steps.evaluate_holdout(y_ho, fit.p_holdout).holdout_metrics
    secs["evaluate"] += time.perf_counter() - t0
    if shards is not None:
        memory["fit"] = worker_peak_mb(client)
    result = DaskTrainResult(model=model, holdout_metrics=metrics, n_rows=n_rows, seconds=secs,
                             worker_peak_mb=memory if shards is not None else {})
    if log:
        t0 = time.perf_counter()
        tr_pd, share = logged_sample(splits, LABEL_COLUMN, seed)
        record, logger = xgboost_record(
            model,
            X_train=tr_pd[cols].reset_index(drop=True), y_train=tr_pd[LABEL_COLUMN].to_numpy(np.int8),
            X_holdout=X_ho, y_holdout=y_ho,
            params=churn_steps.run_params(as_of, label_horizon_days, trained_on="dask"),
            metrics={"n_train_rows": float(n_rows["train"]), "n_valid_rows": float(n_rows["valid"]),
                     "fit_seconds": secs["fit"], "features_seconds": secs["features"],
                     **{f"worker_peak_mb_{k}": float(max(v)) for k, v in result.worker_peak_mb.items()},
                     "n_trees": float(model.get_booster().num_boosted_rounds())},
            holdout_metrics=metrics,
            config={"kind": "churn", "data_dir": data_dir, "as_of": str(as_of.date()),
                    "seed": seed, "holdout_fraction": holdout_fraction, "valid_fraction": valid_fraction,
                    "label_horizon_days": label_horizon_days, "model_params": base,
                    "scheduler": str(client.scheduler.address), "n_partitions": world.n_partitions,
                    "external_memory": isinstance(splits, ShardSplits),
                    # the bin edges' sample (key, share) when one was drawn; None: every training row
                    "sketch_sample": sketch_sample(splits, sketch_rows) if isinstance(splits, ShardSplits) else None},
            tags=scale_tags(splits, world, share),
        )
        with training_run("churn", run_name=f"churn-dask-{as_of.date()}", tracking_uri=tracking_uri) as run:
            logged = run.log(record, logger, register=register)
        secs["log"] = time.perf_counter() - t0
        result.run_id, result.model_name = logged.run_id, logged.model_name
        result.model_version, result.aliases = logged.model_version, logged.aliases
    del splits
    return result


def compact_dask(frame: dd.DataFrame, cols: list[str], label: str, seed: int) -> dd.DataFrame:
    """:func:`compact_rows` of every partition, each partition ONE graph key (computed once).

    Through ``to_delayed`` so the compaction is not fused into (and repeated by) each of the
    pieces :func:`persist_splits` persists from it.
    """
    import dask.dataframe as dd
    from dask import delayed


    fn = delayed(compact_rows, pure=True)
    meta = compact_rows(frame._meta.assign(household_id=pd.Series(dtype=object)), cols, label, seed)
    with same_dtypes():
        return dd.from_delayed([fn(p, cols, label, seed) for p in frame.to_delayed()], meta=meta, verify_meta=False)
