"""Batch next-best-offer ranking on Dask: score and :func:`~telco_nbo.nbo.rank.rank_batch` per partition.

A household never spans two partitions (see :mod:`telco_nbo.scale.partition`), so the household
step of the ranking (one promotional offer per household, no conflicting offers) sees every
account of each household it decides for: per-partition ranking returns exactly the rows the
in-process call returns, only in partition order (tested). A feature frame partitioned any other
way must go through :func:`by_household` first.

Scores come either from a :class:`~telco_nbo.nbo.scores.Scores` value (broadcast to the workers
once, each partition takes its accounts' rows) or from a
:class:`~telco_nbo.nbo.scores.ScoreProvider` (e.g. the champion models), which then scores each
partition on its worker: at scale this is the path to use, as no score table ever sits on the
client. ``telco-nbo rank --scheduler`` uses :class:`ChampionRanking`: the champion models
shipped once, compiled once per worker process into the service's numpy scorer
(:class:`~telco_nbo.scoring.FastScorer`), and each partition ranked with
:func:`~telco_nbo.nbo.rank.rank_core` (the same rows as the in-process ``rank``; tested).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from telco_nbo.data.io import load_world
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.catalog import Catalog, load_catalog
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import Policy, core_frame, rank_batch, rank_core
from telco_nbo.nbo.rules import as_columns, validate_features
from telco_nbo.nbo.scores import ScoreProvider, Scores
from telco_nbo.scale.cluster import same_dtypes
from telco_nbo.scale.features import meta_world_features, account_features_partition
from telco_nbo.scale.partition import household_partition
from telco_nbo.scoring import ChampionModels, FastScorer
from telco_nbo.vocabulary import resolve_as_of

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client


def subset_scores(scores: Scores, account_ids: np.ndarray) -> Scores:
    """The rows of ``scores`` that belong to ``account_ids`` (reasons and versions kept)."""
    ids = pd.Index(np.asarray(account_ids, dtype=object))

    def pick(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        return frame[ids.get_indexer(frame["account_id"].to_numpy(dtype=object)) >= 0].reset_index(drop=True)

    return Scores(accounts=pick(scores.accounts), offers=pick(scores.offers), reasons=pick(scores.reasons),
                  model_versions=dict(scores.model_versions))


REASON_K = 3
"""Churn reason codes per account with an offer (as :class:`~telco_nbo.scoring.ChampionScoreProvider`)."""

_FAST_CACHE: dict[str, Any] = {}
"""Per-process cache of compiled champion scorers (token -> (policy, FastScorer)); one entry per ranking."""


class ChampionRanking:
    """Rank partitions with the champion models through the service's numpy fast path.

    Holds the loaded :class:`~telco_nbo.scoring.ChampionModels` and the policy inputs;
    on a worker it compiles the :class:`~telco_nbo.nbo.rank.Policy` and the
    :class:`~telco_nbo.scoring.FastScorer` **once per process** (cached under a token, so
    a copy deserialized again, e.g. after spilling, does not recompile) and ranks each partition
    with :func:`~telco_nbo.nbo.rank.rank_core` / :func:`~telco_nbo.nbo.rank.core_frame`, the same
    functions :func:`~telco_nbo.nbo.rank.rank_batch` runs. The scores equal those of
    :class:`~telco_nbo.scoring.ChampionScoreProvider` (the in-process ``telco-nbo rank``, an adapter
    over the same scorer; tested).

    Args:
        models: The four champions (load with ``ChampionModels.load(tracking_uri)``).
        catalog: Offer catalog (built-in if ``None``).
        config: NBO policy config (defaults if ``None``).
        timing_rule: Optional timing rule of a readout.
        reasons: Attach the top-3 SHAP reasons of the churn score to returned offers, as the
            in-process ranking does (``False`` saves their cost when nobody reads them).
    """

    def __init__(self, models: ChampionModels, catalog: Catalog | None = None, config: NboConfig | None = None,
                 timing_rule: Any = None, *, reasons: bool = True) -> None:
        self.models = models
        self.catalog = catalog
        self.config = config
        self.timing_rule = timing_rule
        self.reasons = reasons
        self.token = uuid.uuid4().hex

    @property
    def model_versions(self) -> dict[str, str]:
        """Registered name -> version of the champions used."""
        return dict(self.models.versions)

    def compiled(self) -> tuple[Policy, FastScorer]:
        """``(Policy, FastScorer)``, built on first use in this process."""
        hit = _FAST_CACHE.get(self.token)
        if hit is None:
            policy = Policy.build(self.catalog, self.config, timing_rule=self.timing_rule)
            # One thread per booster call: a Dask worker is one process per core.
            hit = (policy, FastScorer(self.models, policy, nthread=1))
            _FAST_CACHE.clear()  # a worker serves one ranking at a time; do not pile up models
            _FAST_CACHE[self.token] = hit
        return hit

    def rank(self, features: pd.DataFrame, top_k: int | None, as_of: Any) -> pd.DataFrame:
        """Score and rank one partition: the rows :func:`~telco_nbo.nbo.rank.rank_batch` returns."""
        policy, scorer = self.compiled()
        validate_features(features)
        columns = as_columns(features)
        # Rank first, then explain: the churn SHAP reasons end up only on returned offers, and
        # TreeSHAP is the costliest step of a partition (more than the four models' predictions),
        # so it runs only for the accounts that get an offer (~3 in 4). SHAP values are per row,
        # so these are the reasons `score(reasons=True)` would have attached.
        core = rank_core(policy, columns, scorer.score(columns, reasons=False), top_k)
        if self.reasons:
            rows = np.flatnonzero(core.selected.any(axis=1))
            if len(rows):
                sub = {k: np.asarray(v)[rows] for k, v in columns.items()}
                texts = scorer.churn_reasons(sub, REASON_K, direction="raises")
                reasons = {int(i): [(None, r.sentence) for r in rs] for i, rs in zip(rows.tolist(), texts, strict=True)}
                core = dataclasses.replace(core, aligned=dataclasses.replace(core.aligned, reasons=reasons))
        return core_frame(core, as_of)


def rank_partition(
    features: pd.DataFrame,
    scores: Scores | ScoreProvider | ChampionRanking,
    catalog: Catalog | None,
    config: NboConfig | None,
    top_k: int | None,
    as_of: Any,
) -> pd.DataFrame:
    """Score (if given a provider) and rank one partition of account features."""

    if len(features) == 0:
        return ranking_meta(catalog, config, top_k)
    if isinstance(scores, ChampionRanking):
        return scores.rank(features, top_k, as_of)
    catalog = catalog or load_catalog()
    if isinstance(scores, Scores):
        part_scores = subset_scores(scores, features["account_id"].to_numpy(dtype=object))
    else:
        part_scores = scores.score(features, catalog)
    return rank_batch(features, part_scores, catalog, config, top_k, as_of=as_of)


@functools.lru_cache(maxsize=8)
def _ranking_meta(catalog: Any, config: Any, top_k: int | None) -> pd.DataFrame:
    # Output columns are fixed (OUTPUT_COLUMNS); their dtypes are read from a real, tiny ranking
    # so they follow the engine whatever it changes.

    feats = meta_world_features()
    cat = catalog or load_catalog()
    ids = feats["account_id"].to_numpy(dtype=object)
    offer_ids = [o.offer_id for o in cat.offers]
    n, m = len(ids), len(offer_ids)
    scores = Scores(
        accounts=pd.DataFrame({"account_id": ids, "churn_probability": np.full(n, 0.1), "clv": np.full(n, 500.0),
                               "retention_uplift": np.full(n, 0.02)}),
        offers=pd.DataFrame({"account_id": np.repeat(ids, m), "offer_id": np.tile(offer_ids, n),
                             "propensity": np.full(n * m, 0.2)}),
    )
    return rank_batch(feats, scores, cat, config, top_k, as_of=pd.Timestamp("2025-12-31")).iloc[:0]


def ranking_meta(catalog: Catalog | None = None, config: NboConfig | None = None, top_k: int | None = 3) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of :func:`~telco_nbo.nbo.rank.rank_batch`'s output."""
    try:
        return _ranking_meta(catalog, config, top_k).copy()
    except TypeError:  # an unhashable catalog / config: compute without the cache
        return _ranking_meta.__wrapped__(catalog, config, top_k).copy()


def _refuse_capacity(config: NboConfig | None) -> None:
    """Campaign limits bind across the whole batch; partitions are ranked apart, so they cannot apply them."""
    if config is not None and config.capacity.limited:
        raise ConfigError("the NBO config sets a campaign capacity (capacity.max_contacts / per_channel), which "
                          "binds across every account at once; Dask ranks partitions apart and cannot apply it: "
                          "rank in process (no --scheduler), or drop the capacity from the config")


def rank_batch_dask(
    features: dd.DataFrame,
    scores: Scores | ScoreProvider | ChampionRanking,
    catalog: Catalog | None = None,
    config: NboConfig | None = None,
    top_k: int | None = 3,
    *,
    as_of: Any = None,
) -> dd.DataFrame:
    """Rank every account of a Dask feature frame, one partition per task.

    Args:
        features: Account features partitioned by household (e.g.
            :func:`~telco_nbo.scale.features.build_account_features_dask`, or :func:`by_household`).
        scores: A :class:`Scores` value for (at least) these accounts, a score provider, or a
            :class:`ChampionRanking` (the fast champion path; its own catalog and config win).
        catalog: Offer catalog (built-in if ``None``).
        config: NBO policy config (defaults if ``None``).
        top_k: Offers per account at most.
        as_of: Date recorded on every row.

    Returns:
        Lazy frame with the columns of :func:`~telco_nbo.nbo.rank.rank_batch`, each partition
        sorted as ``rank_batch`` sorts it.
    """
    from dask import delayed  # Dask is optional and heavy: imported on the Dask path only

    as_of = pd.Timestamp(as_of) if as_of is not None else None
    if isinstance(scores, ChampionRanking):
        catalog, config = scores.catalog, scores.config
    _refuse_capacity(config)
    # Scores (or a provider holding loaded models) go to the workers once, as one graph key,
    # not embedded in every partition's task.
    score_arg = delayed(scores, pure=True, traverse=False)

    with same_dtypes():
        return features.map_partitions(rank_partition, score_arg, catalog, config, top_k, as_of,
                                   meta=ranking_meta(catalog, config, top_k), enforce_metadata=False,
                                   align_dataframes=False)


def by_household(features: dd.DataFrame, n_partitions: int | None = None) -> dd.DataFrame:
    """Repartition a Dask feature frame so that every household sits in one partition.

    Uses the same household hash as :func:`~telco_nbo.scale.partition.household_partition`
    (a Dask shuffle); needed before :func:`rank_batch_dask` when the frame was partitioned
    another way (e.g. read from Parquet files split by row count).
    """

    n = n_partitions or features.npartitions

    with same_dtypes():
        return _by_household(features, n, household_partition)


def _by_household(features: dd.DataFrame, n: int, household_partition: Any) -> dd.DataFrame:
    meta = features._meta.assign(_hh_part=np.int64(0))
    keyed = features.map_partitions(lambda f: f.assign(_hh_part=household_partition(f["household_id"].to_numpy(dtype=object), n)),
                                    meta=meta)
    out = keyed.shuffle(on="_hh_part", npartitions=n)
    return out.drop(columns="_hh_part").map_partitions(
        lambda f: f.sort_values("account_id", kind="stable").reset_index(drop=True), meta=features._meta)


def _write_part(frame: pd.DataFrame, folder: str, index: int | str) -> dict[str, Any]:
    path = Path(folder) / f"part-{index:05d}.parquet" if isinstance(index, int) else Path(folder) / f"part-{index}.parquet"
    frame.to_parquet(path, index=False)
    # The summary is counted here, on the worker: the client never reads the ranking back.
    sel = frame["selected"].astype(bool) if len(frame) else pd.Series(dtype=bool)
    chosen = frame.loc[sel, "offer_id"] if len(frame) else pd.Series(dtype=object)
    blocked = (frame.loc[~sel, "rule_id"].dropna().astype(str).value_counts().to_dict()
               if len(frame) and "rule_id" in frame.columns else {})
    return {"rows": int(len(frame)), "accounts": int(frame["account_id"].nunique()) if len(frame) else 0,
            "with_offer": int(frame.loc[sel, "account_id"].nunique()) if len(frame) else 0,
            "selected": int(len(chosen)), "by_offer": chosen.astype(str).value_counts().to_dict(),
            "blocked": {str(k): int(v) for k, v in blocked.items()}}


RANK_CHUNK_ACCOUNTS = 5_000
"""Accounts :func:`rank_world_to_parquet` scores, ranks and writes at a time within a partition."""


def _rank_and_write_part(part: Any, scores: Scores | ScoreProvider | ChampionRanking, catalog: Catalog | None,
                         config: NboConfig | None, top_k: int | None, as_of: Any, folder: str,
                         index: int, chunk_accounts: int = RANK_CHUNK_ACCOUNTS) -> dict[str, Any]:
    """One partition end to end in ONE task: read it, build its features, then score, rank and write
    it in chunks of whole households of about ``chunk_accounts`` accounts (one file per chunk).

    ``part`` is a partition folder (read here) or an already loaded :class:`World`. Each step's
    input is dropped before the next step runs. Chunks hold whole households (the household
    hash), so they rank exactly as the whole partition would, as partitions do for the world.
    """

    world = load_world(part) if isinstance(part, str) else part
    features = account_features_partition(world, as_of)
    del world  # a scattered partition stays in worker memory; a folder's tables are freed here
    n_chunks = max(1, -(-len(features) // max(int(chunk_accounts), 1)))
    chunk_of = household_partition(features["household_id"].to_numpy(dtype=object), n_chunks)
    total: dict[str, Any] = {"rows": 0, "accounts": 0, "with_offer": 0, "selected": 0, "by_offer": {}, "blocked": {}}
    for c in range(n_chunks):
        rows = np.flatnonzero(chunk_of == c)
        if len(rows) == 0 and (c > 0 or len(features) > 0):
            continue  # an empty partition still writes one (empty) file: the output keeps its columns
        ranked = rank_partition(features.iloc[rows].reset_index(drop=True), scores, catalog, config, top_k, as_of)
        st = _write_part(ranked, folder, f"{index:05d}-{c:04d}")
        del ranked
        for k in ("rows", "accounts", "with_offer", "selected"):
            total[k] += st[k]
        for name in ("by_offer", "blocked"):
            for k, v in st[name].items():
                total[name][k] = total[name].get(k, 0) + v
    return total


def rank_world_to_parquet(
    world: Any,
    scores: Scores | ScoreProvider | ChampionRanking,
    out_file: str | os.PathLike[str],
    client: Client,
    *,
    catalog: Catalog | None = None,
    config: NboConfig | None = None,
    top_k: int | None = 3,
    as_of: Any = None,
    timings: dict[str, float] | None = None,
    summary: dict[str, Any] | None = None,
    chunk_accounts: int | None = None,
) -> int:
    """Rank every partition of a partitioned world and write ONE Parquet file (``rank --scheduler``).

    The rows are those of ``write_ranking(rank_batch_dask(build_account_features_dask(world),
    ...))`` (the same functions, per partition; tested), but each partition is **one task**
    (read, features, score + rank, write) instead of a chain of four, and within it the accounts
    are scored, ranked and written ``chunk_accounts`` at a time (whole households).

    Why: a worker with one thread is given up to two root tasks at a time by Dask's root-task
    queuing (``distributed.scheduler.worker-saturation`` 1.1 -> ceil(1.1 x 1 thread) = 2), and
    with the four-task chain it ran them in lockstep: read A, read B, features A, features B,
    rank A, rank B, write A, write B (task stream of one worker on 6 partitions of the 5M world,
    2026-11-22), so it held two partitions' data at its peak: 1,028 MB against 732-853 MB for
    one partition at a time. Which partitions met, and when, varied, so the peak over a run rose
    with the number of partitions a worker processed (1.04-1.12 GB at 1M accounts, 1.18-1.20 GB
    at 5M). As one task a queued partition holds nothing until it runs: the peak is one
    partition's, whatever the number of partitions. (With the chain, allocator retention was not
    the cause: ``malloc_trim(0)`` after each partition freed < 10 MB, and the same partition run
    16 times in a row peaked at 732-853 MB with no upward trend. Arrow's pool is what was left
    with the code below: see the end.) One task per partition alone still left the 5M peak above
    the 1M one (907 / 915 MB after 20 minutes against 861 / 895 MB for the whole 1M run): the
    score / rank / write step of a whole partition (~23k accounts -> 275k audit rows, their
    Arrow copy while writing) is the task's peak, ~300 MB above the features (one partition
    profiled by phase). Chunks of ``chunk_accounts`` bound that step by a fixed number of
    accounts, so the peak is the partition's read + features step. What was left of the growth
    (~1.5 MB per partition processed) was not this code: in one process, 40 partitions in a row
    left the heap, Python's allocated blocks and gc objects flat (glibc ``uordblks`` 81-83 MB,
    blocks within +0.1%), but a Dask worker gained ~20k blocks per partition from its own
    statistical profiler's history (one call tree per second, 2 x 1,000 kept); workers of
    ``dask_client("local")`` run without it (:data:`~telco_nbo.scale.cluster.LOCAL_WORKER_CONFIG`).
    The last 3% (5M above 1M) was the spread of one partition's peak, the maximum of which grows
    with the partitions a worker runs: Arrow's default pool (mimalloc) keeps a varying amount of
    freed memory (the same partition: 585-667 MB); on the system allocator 500-507 MB, which the
    local cluster's workers now use (:data:`~telco_nbo.scale.cluster.LOCAL_ARROW_POOL`).

    Args:
        world: A :class:`~telco_nbo.scale.partition.PartitionedWorld`; opened from a partitioned
            folder (``sources`` set) each task reads its own partition folder.
        scores: A :class:`Scores` value, a score provider, or a :class:`ChampionRanking` (its own
            catalog and config win).
        out_file: The ``.parquet`` file to write (atomically).
        client: Dask client.
        catalog: Offer catalog (built-in if ``None``).
        config: NBO policy config (defaults if ``None``).
        top_k: Offers per account at most.
        as_of: Feature date and the date recorded on every row (default the world's ``as_of``).
        timings: As :func:`write_ranking`.
        summary: As :func:`write_ranking`.
        chunk_accounts: Accounts scored, ranked and written at a time within a partition
            (default :data:`RANK_CHUNK_ACCOUNTS`).

    Returns:
        Rows written.

    Raises:
        ConfigError: ``out_file`` is not a ``.parquet`` path, no ``as_of`` is given or recorded, or
            the config sets a campaign capacity (it binds across partitions).
    """
    from dask import delayed  # Dask is optional and heavy: imported on the Dask path only

    as_of = resolve_as_of(as_of, world.meta.get("as_of"), "the world")
    if isinstance(scores, ChampionRanking):
        catalog, config = scores.catalog, scores.config
    _refuse_capacity(config)
    score_arg = delayed(scores, pure=True, traverse=False)  # shipped once, one graph key
    sources = world.sources if world.sources is not None else world.parts
    task = delayed(_rank_and_write_part, pure=False)
    chunk_accounts = chunk_accounts or RANK_CHUNK_ACCOUNTS

    def tasks(folder: str) -> list[Any]:
        return [task(src, score_arg, catalog, config, top_k, as_of, folder, i, chunk_accounts)
                for i, src in enumerate(sources)]

    return _write_parts_to_one_file(tasks, out_file, client, timings, summary)


def write_ranking(ranked: dd.DataFrame, out_file: str | os.PathLike[str], client: Client, *,
                  timings: dict[str, float] | None = None, summary: dict[str, Any] | None = None) -> int:
    """Write a Dask ranking to ONE Parquet file, atomically, streaming partition by partition.

    Workers write one Parquet file per partition into a temporary folder beside ``out_file``
    (they must see that folder); the client then appends them to a single file one partition at
    a time (memory bounded by one partition) and renames it into place. For a whole partitioned
    world, :func:`rank_world_to_parquet` does the same with less memory per worker.

    Args:
        ranked: The ranking (e.g. :func:`rank_batch_dask`).
        out_file: The ``.parquet`` file to write.
        client: Dask client.
        timings: Filled with the seconds of ``workers`` (score, rank, write partitions) and
            ``concat`` (the client's pass) when given.
        summary: Filled with ``rows``, ``accounts``, ``selected`` and ``by_offer`` (selected
            rows per offer), counted by the workers, when given.

    Returns:
        Rows written.

    Raises:
        ConfigError: ``out_file`` is not a ``.parquet`` path.
    """
    from dask import delayed  # Dask is optional and heavy: imported on the Dask path only

    write = delayed(_write_part, pure=False)

    def tasks(folder: str) -> list[Any]:
        return [write(p, folder, i) for i, p in enumerate(ranked.to_delayed())]

    return _write_parts_to_one_file(tasks, out_file, client, timings, summary)


def _write_parts_to_one_file(make_tasks: Any, out_file: str | os.PathLike[str], client: Client,
                             timings: dict[str, float] | None, summary: dict[str, Any] | None) -> int:
    """Run ``make_tasks(folder)`` (each writes ``part-NNNNN.parquet`` there, returns its counts), then concat."""
    out = Path(out_file).absolute()
    if out.suffix != ".parquet":
        raise ConfigError(f"the ranking output must be a .parquet file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".parts", dir=out.parent))
    tmp_file = out.with_name(f".{out.name}.tmp")
    try:
        t0 = time.perf_counter()
        stats = client.compute(make_tasks(str(tmp)), sync=True)
        t1 = time.perf_counter()
        files = sorted(tmp.glob("part-*.parquet"))
        schema = None
        writer = None
        total = 0
        try:
            for f in files:
                table = pq.read_table(f)
                if table.num_rows == 0:
                    continue
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp_file, schema, compression="zstd")
                writer.write_table(table.cast(schema))
                total += table.num_rows
            if writer is None:  # nothing ranked: still a valid (empty) file
                pq.read_table(files[0]).to_pandas().to_parquet(tmp_file, index=False)
        finally:
            if writer is not None:
                writer.close()
        tmp_file.replace(out)
        if timings is not None:
            timings.update(workers=t1 - t0, concat=time.perf_counter() - t1)
        if summary is not None:
            by_offer: dict[str, int] = {}
            blocked: dict[str, int] = {}
            for st in stats:
                for k, v in st["by_offer"].items():
                    by_offer[k] = by_offer.get(k, 0) + int(v)
                for k, v in st.get("blocked", {}).items():
                    blocked[k] = blocked.get(k, 0) + int(v)
            summary.update(rows=total, accounts=sum(st["accounts"] for st in stats),
                           with_offer=sum(st.get("with_offer", 0) for st in stats),
                           selected=sum(st["selected"] for st in stats),
                           by_offer=dict(sorted(by_offer.items(), key=lambda kv: -kv[1])),
                           blocked=dict(sorted(blocked.items(), key=lambda kv: -kv[1])))
        return total
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_file.unlink(missing_ok=True)
