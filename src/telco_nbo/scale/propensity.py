"""Training the offer-propensity model with ``xgboost.dask``, registered like the in-process one.

The in-process trainer (:func:`telco_nbo.training.pipeline.train_propensity`) builds one row per
contact made up to ``as_of``, joined to the account's features on the latest snapshot date before
the contact; the snapshot dates come from the busiest contact days of the **whole** history
(:func:`telco_nbo.training.data.snapshot_dates`). On Dask:

1. a first pass counts the contact days of every partition; the client sums them and picks the
   snapshot dates exactly as in-process (same function, same counts);
2. each partition runs :func:`telco_nbo.training.data.prepare_offers` with those dates (the same
   function as in-process: a partition holds whole households, so every contact finds its
   account's features), plus the household split of in-process training;
3. ``xgboost.dask`` fits on the training households with early stopping on the validation ones
   (Optuna trials first, on a household sample, when asked); the holdout is evaluated on the
   client (ROC AUC overall and per offer) and the model is logged and registered as
   ``telco-propensity`` with the offers table artifact the scorers need.

The union of the partitions' rows equals the in-process rows (tested); without row subsampling
the trees are the same as in-process (tested), with it they differ by each worker's own sample
(see :mod:`telco_nbo.scale.train`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.data.world import World
from telco_nbo.errors import DataValidationError
from telco_nbo.scale.cluster import same_dtypes
from telco_nbo.scale.extmem import ShardSplits, shard_folder, sketch_sample, worker_peak_mb
from telco_nbo.scale.train import (
    SPLIT_COLUMN,
    DaskTrainResult,
    compact_dask,
    compact_rows,
    fit_on_splits,
    logged_sample,
    persist_splits,
    scale_tags,
    shard_parent,
    shard_splits,
    split_column,
)
from telco_nbo.tracking import training_run, xgboost_record
from telco_nbo.training import propensity as propensity_steps
from telco_nbo.training.data import prepare_offers, snapshot_dates
from telco_nbo.vocabulary import resolve_as_of

if TYPE_CHECKING:
    from distributed import Client

    from telco_nbo.scale.partition import PartitionedWorld

LABEL = "accepted"
"""Target column of the propensity frame on Dask."""

def _made(world: World, as_of: pd.Timestamp) -> pd.DataFrame:
    contacts = world.tables["contacts"]
    return contacts.loc[contacts["contacted"].astype(bool) & (pd.to_datetime(contacts["contacted_at"]) <= as_of)]


def contact_day_counts(world: World, as_of: Any) -> pd.Series:
    """Contacts made per day up to ``as_of`` in one partition (day -> count)."""
    days = pd.to_datetime(_made(world, pd.Timestamp(as_of))["contacted_at"]).dt.normalize()
    return days.value_counts()


def snapshot_dates_dask(world: PartitionedWorld, as_of: Any, client: Client) -> list[pd.Timestamp]:
    """The feature snapshot dates in-process training would pick for the whole world.

    Raises:
        DataValidationError: No contact was made on or before ``as_of``.
    """
    from dask import delayed  # optional dependency: only the Dask trainers load it

    counts = client.compute([delayed(contact_day_counts, pure=True)(p, as_of) for p in world.parts], sync=True)
    total = pd.concat(counts).groupby(level=0).sum() if counts else pd.Series(dtype=np.int64)
    if total.empty:
        raise DataValidationError("contacts", [f"no offer was made on or before {pd.Timestamp(as_of).date()}: "
                                               "no propensity data"])
    # snapshot_dates reads only the days and their counts: the repeated days are its input exactly.
    days = pd.Series(np.repeat(pd.DatetimeIndex(total.index).to_numpy(), total.to_numpy()))
    return snapshot_dates(days)


def offer_rows_partition(world: World, as_of: Any, dates: list[pd.Timestamp], holdout_fraction: float,
                         valid_fraction: float, seed: int) -> pd.DataFrame:
    """One partition's propensity rows: the model matrix, the target, the household and its split.

    Returns:
        ``prepare_offers(...).X`` plus ``accepted`` (int8), ``household_id``, ``contact_id`` and
        the split column (0 train, 1 validation, 2 holdout); no rows when the partition made no
        contact by ``as_of``.
    """
    as_of = pd.Timestamp(as_of)
    if len(world.tables["households"]) == 0 or _made(world, as_of).empty:
        return _meta()
    frame = prepare_offers(world.tables, as_of, dates, both_classes=False)
    hh = pd.Series(frame.household_ids, dtype=object)
    return frame.X.reset_index(drop=True).assign(**{
        LABEL: frame.y.astype(np.int8), "household_id": hh.to_numpy(dtype=object),
        "contact_id": frame.keys["contact_id"].to_numpy(dtype=object),
        SPLIT_COLUMN: split_column(hh, holdout_fraction, valid_fraction, seed)})


@functools.lru_cache(maxsize=1)
def _meta_frame() -> pd.DataFrame:
    # Columns and dtypes do not depend on the data (fixed categories; the offers table is the
    # same in every partition), so a 30-household world gives Dask its meta once per process.
    from telco_nbo.scale.features import meta_world

    w = meta_world()
    as_of = pd.Timestamp(w.meta["as_of"])
    return offer_rows_partition(w, as_of, snapshot_dates(_made(w, as_of)["contacted_at"]), 0.25, 0.2, 0).iloc[:0]


def _meta() -> pd.DataFrame:
    """Empty frame with the columns and dtypes of :func:`offer_rows_partition`."""
    return _meta_frame().copy()


def train_propensity_dask(
    world: PartitionedWorld,
    client: Client,
    *,
    as_of: Any = None,
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
) -> DaskTrainResult:
    """Train (and log / register) the offer-propensity model on a partitioned world with ``xgboost.dask``.

    Args:
        world: The partitioned world (whole households per partition).
        client: Dask client.
        as_of: Feature date (default: the world's).
        holdout_fraction: Households held out (same hash as in-process training).
        valid_fraction: Households of the rest used for early stopping / tuning.
        seed: Split, sampler and model seed.
        params: Fixed XGBoost parameters.
        early_stopping_rounds: Early stopping on the validation households (``None``: off).
        log: Log the run to MLflow (model, metrics, offers table artifact).
        register: Register the model as ``telco-propensity``.
        tracking_uri: MLflow tracking URI.
        data_dir: Recorded in the run's config.
        trials: Optuna trials on a household sample before the fit (0: none).
        optuna_storage: Optuna storage URL shared by the workers.
        study_name: Optuna study name.
        external_memory: Fit with XGBoost's external memory instead of holding the rows in worker
            memory (as :func:`~telco_nbo.scale.train.train_churn_dask`).
        shard_dir: Parent folder of the temporary shards (as ``train_churn_dask``).
        restart_workers: Restart the workers between the shards and the fit (as ``train_churn_dask``).

    Returns:
        The :class:`~telco_nbo.scale.train.DaskTrainResult` (holdout metrics include AUC per offer).

    Raises:
        DataValidationError: No contact by ``as_of``, or a split has a single class.
    """
    with same_dtypes(), contextlib.ExitStack() as stack:
        shards = stack.enter_context(shard_folder(shard_parent(world, shard_dir))) if external_memory else None
        return _train(world, client, as_of, holdout_fraction, valid_fraction, seed, params, early_stopping_rounds,
                      log, register, tracking_uri, data_dir, trials, optuna_storage, study_name, shards,
                      restart_workers)


def offer_rows_compact(world: World, as_of: Any, dates: list[pd.Timestamp], holdout_fraction: float,
                       valid_fraction: float, seed: int, cols: list[str]) -> pd.DataFrame:
    """:func:`offer_rows_partition` then the trainers' compaction, in one call (the external-memory task)."""
    return compact_rows(offer_rows_partition(world, as_of, dates, holdout_fraction, valid_fraction, seed),
                         cols, LABEL, seed)


def _train(world: PartitionedWorld, client: Client, as_of: Any, holdout_fraction: float, valid_fraction: float,
           seed: int, params: dict[str, Any] | None, early_stopping_rounds: int | None, log: bool, register: bool,
           tracking_uri: str | None, data_dir: str | None, trials: int, optuna_storage: str | None,
           study_name: str | None, shards: str | None, restart_workers: bool = False) -> DaskTrainResult:
    # Dask is an optional dependency: loaded only when a Dask trainer runs.
    import dask.dataframe as dd
    from dask import delayed

    as_of = resolve_as_of(as_of, world.meta.get("as_of"), "the world")
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    dates = snapshot_dates_dask(world, as_of, client)
    meta = _meta()
    fn = delayed(offer_rows_partition, pure=True)
    frame = dd.from_delayed([fn(p, as_of, dates, holdout_fraction, valid_fraction, seed) for p in world.parts],
                            meta=meta, verify_meta=False)
    cols = [c for c in meta.columns if c not in (LABEL, "household_id", "contact_id", SPLIT_COLUMN)]
    if shards is not None:
        build = functools.partial(offer_rows_compact, as_of=as_of, dates=dates, holdout_fraction=holdout_fraction,
                                  valid_fraction=valid_fraction, seed=seed, cols=cols)
        splits, memory = shard_splits(client, world, build, shards, cols, LABEL, restart_workers, secs,
                                      ("contacts", "contacts", "acceptances"))
    else:
        # Built once; only the compact train / valid / holdout pieces are persisted (see persist_splits).
        splits = persist_splits(client, compact_dask(frame, cols, LABEL, seed), cols, LABEL, "contacts",
                                 "contacts", "acceptances")
    n_rows = splits.n_rows
    secs["features"] = time.perf_counter() - t0 - secs.get("restart", 0.0)
    fit = fit_on_splits(client, splits, cols, LABEL, params=params, seed=seed, trials=trials,
                         optuna_storage=optuna_storage, study_name=study_name or f"telco-propensity-dask-{seed}",
                         early_stopping_rounds=early_stopping_rounds, secs=secs)
    model, base, X_ho, y_ho, p_ho = fit.model, fit.params, fit.X_holdout, fit.y_holdout, fit.p_holdout
    t0 = time.perf_counter()
    evaluation = propensity_steps.evaluate_holdout(y_ho, p_ho, X_ho["offer_id"].astype(str).to_numpy())
    metrics = evaluation.holdout_metrics
    secs["evaluate"] += time.perf_counter() - t0
    if shards is not None:
        memory["fit"] = worker_peak_mb(client)
    result = DaskTrainResult(model=model, holdout_metrics=metrics, n_rows=n_rows, seconds=secs,
                             worker_peak_mb=memory if shards is not None else {})
    if log:
        t0 = time.perf_counter()
        tr_pd, share = logged_sample(splits, LABEL, seed)
        offers = client.compute(delayed(lambda w: w.tables["offers"])(world.parts[0]), sync=True)
        record, logger = xgboost_record(
            model,
            X_train=tr_pd[cols].reset_index(drop=True), y_train=tr_pd[LABEL].to_numpy(np.int8),
            X_holdout=X_ho, y_holdout=y_ho,
            params=propensity_steps.run_params(as_of, len(dates), trained_on="dask"),
            metrics={"n_contacts": float(sum(n_rows.values())), "n_train_rows": float(n_rows["train"]),
                     "fit_seconds": secs["fit"], "features_seconds": secs["features"],
                     **{f"worker_peak_mb_{k}": float(max(v)) for k, v in result.worker_peak_mb.items()},
                     "n_trees": float(model.get_booster().num_boosted_rounds())},
            holdout_metrics=metrics,
            config={"kind": "propensity", "data_dir": data_dir, "as_of": str(as_of.date()), "seed": seed,
                    "holdout_fraction": holdout_fraction, "valid_fraction": valid_fraction, "model_params": base,
                    "snapshots": [str(d.date()) for d in dates], "scheduler": str(client.scheduler.address),
                    "n_partitions": world.n_partitions, "external_memory": shards is not None,
                    "sketch_sample": sketch_sample(splits) if isinstance(splits, ShardSplits) else None},
            # The offers the model knows, saved with it as in-process training does (the scorers read it).
            texts=propensity_steps.run_texts(offers, evaluation, with_evaluation=False),
            tags=scale_tags(splits, world, share),
        )
        with training_run("propensity", run_name=f"propensity-dask-{as_of.date()}", tracking_uri=tracking_uri) as run:
            logged = run.log(record, logger, register=register)
        secs["log"] = time.perf_counter() - t0
        result.run_id, result.model_name = logged.run_id, logged.model_name
        result.model_version, result.aliases = logged.model_version, logged.aliases
    del splits
    return result
