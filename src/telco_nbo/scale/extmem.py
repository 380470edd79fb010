"""Training on Dask with XGBoost's external memory: worker memory that does not hold the data.

``xgboost.dask`` (:func:`~telco_nbo.scale.train.fit_classifier_dask`) keeps every training row in
worker memory until the model is fitted: float32 features persisted in the cluster, plus the
quantized matrix it builds from them, so a worker's peak grows with the rows it holds (measured
at ~0.5 kB per account per worker, see benchmarks/RESULTS.md). ``xgboost.dask`` 3.2 has no
external-memory mode, so this module runs the same distributed XGBoost training (its collective
communicator, the tracker ``xgboost.dask`` starts, the same parameters) with each worker's rows
on disk:

1. **Shards.** One task per partition reads it, builds the rows (the same per-partition functions
   as the in-memory path), and writes them as Parquet files, one per split (train / valid /
   holdout), into a folder every worker can read. Nothing is persisted in worker memory.
2. **Fit.** The shard files are dealt out to the workers (balanced by rows). Each worker builds an
   :class:`xgboost.ExtMemQuantileDMatrix` from a :class:`xgboost.DataIter` over its files (one
   file in memory at a time; the quantized pages go to a cache on the worker's local disk) inside
   ``xgboost.dask.CommunicatorContext``, so the quantile sketches and every histogram are
   all-reduced across workers exactly as ``xgboost.dask`` does. All workers end with the same
   booster.

   The bin edges (the quantile cuts) are sketched from about :data:`SKETCH_ROWS` training rows:
   XGBoost's sketch of a column grows with the rows it sees (~40 MB more per worker at 1.5M rows
   than at 300k, measured), so beyond that a fixed sample of households is sketched, in the
   collective as well, and the training matrix takes its cuts (``ref=``). LightGBM bins from a
   200,000-row sample by default for the same reason.

What is left per worker is XGBoost's own per-row state for the rows it trains on (gradient
pairs, the prediction cache, the row partition: ~30 bytes per row, measured) on top of a fixed
cost; the data itself (~180 bytes per row as float32, ~45 as bins) no longer stays resident.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError

# Dask, XGBoost and the data loader are imported inside the worker functions: they run on workers,
# and importing this module must not start XGBoost in the client.

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from distributed import Client

SPLITS = ("train", "valid", "holdout")

SKETCH_ROWS = 500_000
"""Training rows (all workers together) the bin edges are sketched from; more rows are sampled down.

Why this many: a uniform sample of m rows places a quantile within a rank error of at most
0.5 / sqrt(m), 0.0007 at 500,000, the order of the sketch's own error (1 / (8 * max_bin), 0.0005
at the default 256 bins). Sketching more rows moves the edges less than the sketch itself errs,
while its memory keeps growing with the rows each worker holds.
"""

SPLIT_COLUMN = "_split"  # as telco_nbo.scale.train.SPLIT_COLUMN (imported there from here would be circular)


@dataclass
class ShardSplits:
    """Train / valid / holdout rows written as Parquet shards (what :func:`fit_classifier_extmem` reads).

    Attributes:
        folder: Folder of the shards (readable by every worker and by the client).
        files: Split name -> ``[(path, rows), ...]`` (empty shards are not written).
        n_rows: Rows per split.
        positives: Positive labels per split.
        cols: Feature columns, in model order.
        label: Label column.
        keys: Per-row sample key columns kept in train / valid shards (not features).
    """

    folder: str
    files: dict[str, list[tuple[str, int]]]
    n_rows: dict[str, int]
    positives: dict[str, int]
    cols: list[str]
    label: str
    keys: list[str] = field(default_factory=list)


def write_shards(rows: pd.DataFrame, folder: str, index: int, cols: list[str], label: str,
                 keys: list[str]) -> dict[str, tuple[str | None, int, int]]:
    """Write one partition's compact rows as up to three shards; return ``{split: (path, rows, positives)}``.

    ``rows`` holds ``cols``, ``label``, :data:`SPLIT_COLUMN` and ``keys``. The holdout shard keeps
    only the features and the label (it is evaluated, never sampled).
    """
    out: dict[str, tuple[str | None, int, int]] = {}
    code = rows[SPLIT_COLUMN].to_numpy()
    for c, name in enumerate(SPLITS):
        sel = rows.loc[code == c, [*cols, label, *(keys if name != "holdout" else [])]]
        if len(sel) == 0:
            out[name] = (None, 0, 0)
            continue
        path = str(Path(folder) / f"{name}-{index:05d}.parquet")
        sel.reset_index(drop=True).to_parquet(path, index=False)
        out[name] = (path, len(sel), int(sel[label].sum()))
    return out


def _build_and_write(build: Callable[[Any], pd.DataFrame], part: Any, folder: str, index: int, cols: list[str],
                     label: str, keys: list[str]) -> dict[str, tuple[str | None, int, int]]:
    """ONE task per partition: ``build`` its compact rows (reading the partition if a folder), write shards.

    One task rather than a chain (read -> features -> compact -> write): with a chain, Dask's
    root-task queuing lets a one-thread worker start two partitions and run them in lockstep,
    holding both (measured for ranking, see :func:`~telco_nbo.scale.rank.rank_world_to_parquet`).
    """
    from telco_nbo.data.io import load_world

    world = load_world(part) if isinstance(part, str) else part
    rows = build(world)
    del world
    return write_shards(rows, folder, index, cols, label, keys)


def shard_world(client: Client, sources: list[Any], build: Callable[[Any], pd.DataFrame], folder: str,
                cols: list[str], label: str, keys: list[str]) -> ShardSplits:
    """Build every partition's rows on the workers and write them as shards in ``folder``.

    Args:
        client: Dask client.
        sources: One item per partition: a partition folder (read inside the task) or a
            delayed / future :class:`~telco_nbo.data.world.World`.
        build: ``World -> compact rows`` (picklable; e.g. a :func:`functools.partial`).
        folder: Shard folder (must be readable and writable by every worker and the client).
        cols: Feature columns.
        label: Label column.
        keys: Sample key columns to keep in the train / valid shards.
    """
    from dask import delayed

    task = delayed(_build_and_write, pure=False)
    stats = client.compute([task(build, src, folder, i, cols, label, keys) for i, src in enumerate(sources)],
                           sync=True)
    unseen = [st[s][0] for st in stats for s in SPLITS if st[s][0] is not None and not Path(st[s][0]).exists()]
    if unseen:
        raise ConfigError(f"the workers wrote {len(unseen)} training shard(s) (e.g. {unseen[0]}) that this client "
                          f"cannot see: give a shard folder on a file system shared by the client and every "
                          f"worker (--shard-dir)")
    files: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    n_rows = dict.fromkeys(SPLITS, 0)
    positives = dict.fromkeys(SPLITS, 0)
    for st in stats:
        for s in SPLITS:
            path, n, pos = st[s]
            if path is not None:
                files[s].append((path, n))
            n_rows[s] += n
            positives[s] += pos
    return ShardSplits(folder=folder, files=files, n_rows=n_rows, positives=positives, cols=list(cols),
                       label=label, keys=list(keys))


@contextlib.contextmanager
def shard_folder(parent: str | os.PathLike[str] | None) -> Iterator[str]:
    """A fresh shard folder under ``parent`` (system temp if ``None``), removed on exit whatever happens."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix=".telco-nbo-shards-", dir=None if parent is None else str(parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_sampled(path: str, key: str, share: float, drop: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame[(frame[key] < share).to_numpy()].drop(columns=drop).reset_index(drop=True)


def sample_shards(client: Client, splits: ShardSplits, key: str, share: float) -> pd.DataFrame:
    """Train + valid rows whose sample ``key`` is below ``share``, gathered on the client.

    Columns: the features, the label and :data:`SPLIT_COLUMN` (0 train, 1 valid); read and
    filtered on the workers, so only the sample travels.
    """
    from dask import delayed

    read = delayed(_read_sampled, pure=True)
    frames, codes = [], []
    for code, name in enumerate(("train", "valid")):
        for path, _ in splits.files[name]:
            frames.append(read(path, key, share, splits.keys))
            codes.append(code)
    got = client.compute(frames, sync=True)
    parts = [f.assign(**{SPLIT_COLUMN: np.int8(c)}) for f, c in zip(got, codes, strict=True) if len(f)]
    if not parts:
        return pd.read_parquet(splits.files["train"][0][0]).iloc[:0].drop(columns=splits.keys).assign(
            **{SPLIT_COLUMN: np.int8(0)})
    return pd.concat(parts, ignore_index=True)


def read_holdout(splits: ShardSplits) -> pd.DataFrame:
    """The holdout rows (features + label), read by the client one shard at a time, in partition order."""
    frames = [pd.read_parquet(p) for p, _ in splits.files["holdout"]]
    return pd.concat(frames, ignore_index=True)


def deal(files: list[tuple[str, int]], n: int) -> list[list[str]]:
    """Deal ``(path, rows)`` shards to ``n`` workers, largest first to the least loaded (balanced rows)."""
    bins: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for path, rows in sorted(files, key=lambda f: (-f[1], f[0])):
        k = min(range(n), key=lambda i: (load[i], i))
        bins[k].append(path)
        load[k] += rows
    return [sorted(b) for b in bins]


def _own_peak_mb() -> int:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def worker_peak_mb(client: Client) -> list[int]:
    """Each worker process's peak resident memory over its life so far (MB, ascending)."""
    return sorted(client.run(_own_peak_mb).values())


def _start_tracker(n_workers: int, dask_scheduler: Any = None) -> dict[str, Any]:
    """Start XGBoost's Rabit tracker in the scheduler process (as ``xgboost.dask`` does); its worker args."""
    from distributed.comm import get_address_host
    from xgboost.tracker import RabitTracker

    host = get_address_host(dask_scheduler.address) if dask_scheduler is not None else "127.0.0.1"
    tracker = RabitTracker(n_workers=n_workers, host_ip=host, sortby="task")
    tracker.start()
    # wait_for returns once every worker has finished; a daemon thread so a failed fit cannot
    # keep the scheduler from closing.
    threading.Thread(target=tracker.wait_for, daemon=True).start()
    return tracker.worker_args()


def sketch_subset(frame: pd.DataFrame, key: str, share: float, categorical: list[str]) -> pd.DataFrame:
    """The rows of one shard the bin edges are sketched from: those with ``key`` below ``share``.

    Plus, per categorical column, the first row holding the shard's highest category code:
    XGBoost's categorical cuts run up to the highest code it has seen, so a sample missing the
    highest code would leave training rows with a category the cuts do not have. Those few rows
    (at most one per categorical column per shard) are all the sample adds.
    """
    keep = (frame[key] < share).to_numpy()
    for c in categorical:
        codes = frame[c].cat.codes.to_numpy()
        if len(codes) and codes.max() >= 0:
            keep[int(np.argmax(codes))] = True  # argmax: the first row with the highest code
    return frame[keep]


def _shard_iter(files: list[str], cache_prefix: str, drop: list[str], label: str,
                sample: tuple[str, float] | None = None) -> Any:
    import xgboost as xgb

    class ShardIter(xgb.DataIter):
        """One shard file in memory at a time (with ``sample``: only its sketch sample, see :func:`sketch_subset`)."""

        def __init__(self) -> None:
            self._i = 0
            self._fed = False
            super().__init__(cache_prefix=cache_prefix)

        def next(self, input_data: Callable[..., None]) -> bool:
            while self._i < len(files):
                frame = pd.read_parquet(files[self._i])
                self._i += 1
                if sample is not None:
                    cats = [c for c, t in frame.dtypes.items() if isinstance(t, pd.CategoricalDtype)]
                    frame = sketch_subset(frame, *sample, cats)
                    if len(frame) == 0:
                        continue
                self._feed(frame, input_data)
                return True
            if not self._fed and files:
                # A sample that missed every row of this worker: every worker of the collective
                # must build its matrix, and XGBoost needs a batch to build it from.
                self._feed(pd.read_parquet(files[0]).iloc[:1], input_data)
                return True
            return False

        def _feed(self, frame: pd.DataFrame, input_data: Callable[..., None]) -> None:
            self._fed = True
            y = frame[label].to_numpy(np.float32)
            input_data(data=frame.drop(columns=[label, *drop]), label=y)

        def reset(self) -> None:
            self._i = 0

    return ShardIter()


def _train_on_worker(train_files: list[str], valid_files: list[str], coll_args: dict[str, Any],
                     params: dict[str, Any], num_boost_round: int, early_stopping_rounds: int | None,
                     label: str, drop: list[str], max_bin: int, sketch: tuple[str, float] | None = None) -> bytes:
    """One worker's part of the distributed fit; returns the booster (UBJ bytes), the same on every worker.

    ``sketch``: ``(key column, share)`` to sketch the bin edges from that sample of the training
    rows (:func:`sketch_subset`); ``None`` sketches every training row.
    """
    import xgboost as xgb
    from distributed import get_worker
    from xgboost import dask as dxgb

    worker = get_worker()
    nthread = max(int(worker.state.nthreads), 1)
    cache = tempfile.mkdtemp(prefix="xgb-extmem-", dir=worker.local_directory)
    try:
        with dxgb.CommunicatorContext(**coll_args), xgb.config_context(nthread=nthread):
            dsketch = None
            if sketch is not None:
                # Cuts from the sample, merged across workers by the collective as a full sketch
                # would be; the training matrix then quantizes with them and sketches nothing.
                dsketch = xgb.ExtMemQuantileDMatrix(
                    _shard_iter(train_files, os.path.join(cache, "sketch"), drop, label, sketch),
                    max_bin=max_bin, enable_categorical=True, nthread=nthread)
            dtrain = xgb.ExtMemQuantileDMatrix(_shard_iter(train_files, os.path.join(cache, "train"), drop, label),
                                               ref=dsketch, max_bin=max_bin, enable_categorical=True,
                                               nthread=nthread)
            dsketch = None  # frees its cache pages; dtrain holds its own copy of the cuts
            evals = []
            dvalid = None
            if valid_files:
                dvalid = xgb.ExtMemQuantileDMatrix(_shard_iter(valid_files, os.path.join(cache, "valid"), drop, label),
                                                   ref=dtrain, max_bin=max_bin, enable_categorical=True,
                                                   nthread=nthread)
                evals = [(dvalid, "validation_0")]
            booster = xgb.train({**params, "nthread": nthread}, dtrain, num_boost_round=num_boost_round,
                                evals=evals, early_stopping_rounds=early_stopping_rounds, verbose_eval=False)
            raw = bytes(booster.save_raw("ubj"))
            # The matrices remove their own cache pages when freed: free them before the folder goes.
            del booster, evals, dtrain
            dvalid = None
            gc.collect()
        return raw
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def gather_pinned(client: Client, futures: list[Any], workers: list[str], poll_s: float = 5.0) -> list[Any]:
    """Gather tasks pinned to ``workers``, failing if one of those workers leaves the cluster.

    Why: the fit's tasks may only run on their own worker (each holds its share of the shards in
    the collective). If that worker dies, or is closed (seen 2026-11-22: restarting 10 workers on
    2 cores, Dask closed every nanny after the restart), its task can never run, and a plain
    ``gather`` would wait for ever on a cluster with no worker able to take it.

    Raises:
        RuntimeError: A worker left; names it and cancels the remaining tasks.
    """
    from distributed import wait

    while True:
        try:
            wait(futures, timeout=poll_s)
            return client.gather(futures)
        except TimeoutError:  # still running: check the workers they are pinned to
            pass
        alive = set(client.scheduler_info(n_workers=-1)["workers"])
        lost = [w for w in workers if w not in alive]
        if lost:
            client.cancel([f for f in futures if not f.done()])
            raise RuntimeError(
                f"{len(lost)} of the {len(workers)} workers of the external-memory fit left the cluster "
                f"({', '.join(lost)}): the fit cannot finish without them (each holds its share of the "
                f"training shards). Check the workers' logs (memory limit, killed process) and run again.")


def sketch_sample(splits: ShardSplits, sketch_rows: int | None = SKETCH_ROWS) -> tuple[str, float] | None:
    """``(key column, share)`` of the training rows to sketch the bin edges from, or ``None`` for all rows.

    Raises:
        ConfigError: ``sketch_rows`` below 1.
    """
    if sketch_rows is None or not splits.keys:
        return None
    if sketch_rows < 1:
        raise ConfigError(f"sketch_rows must be at least 1 (or None for every row), got {sketch_rows}")
    share = sketch_rows / max(splits.n_rows["train"], 1)
    return None if share >= 1.0 else (splits.keys[0], share)


def fit_classifier_extmem(client: Client, splits: ShardSplits, *, sketch_rows: int | None = SKETCH_ROWS,
                          **params: Any) -> Any:
    """Fit the churn-style classifier on the train shards, early-stopping on the valid shards.

    Args:
        client: Dask client (its workers read the shard files).
        splits: The shards (:func:`shard_world`).
        sketch_rows: With more training rows than this, the bin edges are sketched from a
            sample of about this many (households whose first sample key in ``splits.keys`` is
            below ``sketch_rows / training rows``; the same rows whatever the cluster layout).
            ``None``, or shards without sample keys, sketch every row.
        **params: Parameters of :func:`telco_nbo.models.churn.make_churn_classifier` (including
            ``early_stopping_rounds``); the same native parameters the scikit-learn wrapper (and so
            ``xgboost.dask``) would pass.

    Returns:
        A plain fitted :class:`xgboost.XGBClassifier` (the booster loaded into the wrapper, its
        best iteration kept), which logs and serves like any other.

    Raises:
        ConfigError: Early stopping without validation shards.
    """
    from telco_nbo.models.churn import make_churn_classifier
    from telco_nbo.scale.cluster import n_workers

    clf = make_churn_classifier(**params)
    native = {k: v for k, v in clf.get_xgb_params().items() if v is not None and k != "n_jobs"}
    max_bin = int(native.get("max_bin") or 256)
    early = clf.early_stopping_rounds
    if early and not splits.files["valid"]:
        raise ConfigError("early_stopping_rounds needs validation rows")
    # Every worker of the collective needs training rows and, when there is one, a validation
    # shard: use at most as many workers as there are shards of each.
    n = max(1, min(n_workers(client), len(splits.files["train"]),
                   len(splits.files["valid"]) if splits.files["valid"] else 10**9))
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])[:n]
    train_bins = deal(splits.files["train"], n)
    valid_bins = deal(splits.files["valid"], n) if splits.files["valid"] else [[] for _ in range(n)]
    sketch = sketch_sample(splits, sketch_rows)
    coll_args = client.run_on_scheduler(_start_tracker, n)
    futures = [client.submit(_train_on_worker, train_bins[k], valid_bins[k], coll_args, native,
                             clf.get_num_boosting_rounds(), early, splits.label, splits.keys, max_bin, sketch,
                             workers=[w], allow_other_workers=False, pure=False, retries=0)
               for k, w in enumerate(workers)]
    raws = gather_pinned(client, futures, workers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.ubj"
        path.write_bytes(raws[0])
        out = make_churn_classifier(**params)
        out.load_model(path)
    return out
