"""Optuna trials spread over several processes that share one study storage.

Each process runs :func:`telco_nbo.tuning.tune` against the same storage URL and study name;
Optuna's RDB storage hands out trial numbers and records results atomically, so the study ends
up with every trial of every process (distinct numbers) and TPE in each process sees the others'
finished trials. The processes are Dask workers (when a client is given: ``tune`` runs as one task
per process, the data scattered once) or a local ``spawn`` process pool.

Storage: any SQLAlchemy URL Optuna accepts. Production: a server database
(``postgresql+psycopg2://user:pass@host/optuna``), reachable from every worker. Locally: SQLite
on a disk every process sees; SQLite serializes writers with a file lock, so a
``?timeout=<seconds>`` is added (default :data:`SQLITE_TIMEOUT_S`) to make a busy writer wait
instead of failing with "database is locked".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError
from telco_nbo.tuning import ChurnModelFactory, TuningResult, metric_direction, open_study, redact_url, tune

if TYPE_CHECKING:
    import optuna
    from distributed import Client
    from xgboost import XGBModel

SQLITE_TIMEOUT_S = 60
"""Seconds a SQLite writer waits for the file lock (Optuna storage of parallel trials)."""

_SEED_STRIDE = 10_007  # per-process sampler seed offset: processes must not propose the same first points


def shared_storage_url(storage: str, timeout_s: float = SQLITE_TIMEOUT_S) -> str:
    """Return ``storage`` ready for several writer processes.

    SQLite URLs get ``timeout=<timeout_s>`` unless they set one; other URLs are returned as they are.
    In-memory SQLite is refused: separate processes cannot share it.

    Raises:
        ConfigError: An in-memory SQLite URL or an empty one.
    """
    if not storage:
        raise ConfigError("the Optuna storage URL is empty")
    parts = urlsplit(storage)
    if not parts.scheme.startswith("sqlite"):
        return storage
    if parts.path in ("", "/", "/:memory:") or ":memory:" in storage:
        raise ConfigError("an in-memory SQLite Optuna storage cannot be shared by processes; use a file or a database server")
    query = dict(parse_qsl(parts.query))
    if "timeout" in query:
        return storage
    # Appended as text: urlunsplit would drop the empty host of sqlite:///path.
    return f"{storage}{'&' if parts.query else '?'}{urlencode({'timeout': timeout_s})}"


@dataclass(frozen=True)
class ParallelTuningResult:
    """Outcome of :func:`tune_parallel`.

    Attributes:
        study_name: The shared study.
        storage: Its storage URL (password hidden).
        n_processes: Processes that ran trials.
        trials_per_process: Trials each process ran.
        n_trials: Trials in the study after the run.
        trial_numbers: Their numbers (distinct).
        best_params: Best trial's parameters.
        best_value: Its value.
        best_trial_number: Its number.
        best_iteration: Its best boosting round, if recorded.
        per_process: Each process's :class:`~telco_nbo.tuning.TuningResult`.
    """

    study_name: str
    storage: str
    n_processes: int
    trials_per_process: tuple[int, ...]
    n_trials: int
    trial_numbers: tuple[int, ...]
    best_params: dict[str, Any]
    best_value: float
    best_trial_number: int
    best_iteration: int | None
    per_process: tuple[TuningResult, ...]


def _run_tune(
    make_model: Callable[[dict[str, Any]], XGBModel],
    search_space: Callable[[optuna.Trial], dict[str, Any]],
    data: tuple[pd.DataFrame, Any, pd.DataFrame, Any],
    kwargs: dict[str, Any],
) -> TuningResult:
    # Each process is one trial at a time on one core: XGBoost must not oversubscribe it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    X_tr, y_tr, X_va, y_va = data
    return tune(make_model, search_space, X_tr, y_tr, X_va, y_va, **kwargs)


def tune_parallel(
    make_model: Callable[[dict[str, Any]], XGBModel],
    search_space: Callable[[optuna.Trial], dict[str, Any]],
    X_train: pd.DataFrame,
    y_train: pd.Series | np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: pd.Series | np.ndarray,
    *,
    n_trials: int,
    study_name: str,
    storage: str,
    n_processes: int = 2,
    client: Client | None = None,
    seed: int = 42,
    metric: str = "auc",
    tracking: bool = False,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
    **tune_kwargs: Any,
) -> ParallelTuningResult:
    """Run ``n_trials`` Optuna trials in ``n_processes`` processes sharing one study.

    Args:
        make_model: As in :func:`telco_nbo.tuning.tune`; must be picklable (a module-level
            function, or anything cloudpickle handles when a Dask client is used).
        search_space: As in ``tune``; same pickling rule.
        X_train: Training features (sent to each process once).
        y_train: Training target.
        X_valid: Validation features.
        y_valid: Validation target.
        n_trials: Trials in total, split as evenly as possible over the processes.
        study_name: Shared study name (continued if it exists).
        storage: Shared storage URL (see :func:`shared_storage_url`).
        n_processes: Processes to run trials in.
        client: Dask client: one task per process on the workers. ``None``: a local process pool.
        seed: Base sampler seed; process ``i`` uses ``seed + i * 10007``.
        metric: XGBoost eval metric optimized.
        tracking: Log trials as nested MLflow runs (under ``parent_run_id`` if given).
        tracking_uri: MLflow tracking URI (must be reachable from every process).
        parent_run_id: MLflow run to nest the trials under.
        **tune_kwargs: Further ``tune`` arguments (``pruner``, ``timeout``, ``report_interval``...).

    Returns:
        The :class:`ParallelTuningResult`, read back from the storage after all processes end.

    Raises:
        ConfigError: Bad counts or storage.
    """
    import optuna  # lazy: importing the package must not import Optuna

    if n_processes < 1:
        raise ConfigError(f"n_processes must be at least 1, got {n_processes}")
    if n_trials < n_processes:
        raise ConfigError(f"{n_trials} trials cannot keep {n_processes} processes busy; ask for at least one each")
    url = shared_storage_url(storage)
    direction = tune_kwargs.pop("direction", None) or metric_direction(metric)
    # Create the study up front: two processes creating it at once would race on the name.
    open_study(study_name, url, direction)
    base, extra = divmod(n_trials, n_processes)
    counts = tuple(base + (i < extra) for i in range(n_processes))
    common = {"study_name": study_name, "storage": url, "metric": metric, "direction": direction,
              "tracking": tracking, "tracking_uri": tracking_uri, "parent_run_id": parent_run_id, **tune_kwargs}
    jobs = [{**common, "n_trials": k, "seed": seed + i * _SEED_STRIDE} for i, k in enumerate(counts)]
    if client is not None:
        data = client.scatter((X_train, y_train, X_valid, y_valid), broadcast=True)
        futures = [client.submit(_run_tune, make_model, search_space, data, kw, pure=False) for kw in jobs]
        results = tuple(client.gather(futures))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=n_processes, mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_run_tune, make_model, search_space, (X_train, y_train, X_valid, y_valid), kw) for kw in jobs]
            results = tuple(f.result() for f in futs)
    study = optuna.load_study(study_name=study_name, storage=url)
    best = study.best_trial
    return ParallelTuningResult(
        study_name=study_name,
        storage=redact_url(url),
        n_processes=n_processes,
        trials_per_process=counts,
        n_trials=len(study.trials),
        trial_numbers=tuple(t.number for t in study.trials),
        best_params=dict(best.params),
        best_value=float(best.value),
        best_trial_number=best.number,
        best_iteration=best.user_attrs.get("best_iteration"),
        per_process=results,
    )


__all__ = ["SQLITE_TIMEOUT_S", "ChurnModelFactory", "ParallelTuningResult", "shared_storage_url", "tune_parallel"]
