"""The ``--scheduler`` paths of ``telco-nbo train`` and ``telco-nbo rank`` (called by those commands).

Kept here so the commands stay thin: they parse options, check inputs and hand over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from telco_nbo.cli._common import console, out
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.summary import RankingSummary
from telco_nbo.scale import (
    ChampionRanking,
    dask_client,
    load_partitioned_world,
    rank_world_to_parquet,
    train_churn_dask,
)
from telco_nbo.scale.propensity import train_propensity_dask
from telco_nbo.scoring import ChampionModels
from telco_nbo.vocabulary import resolve_as_of


def rank_on_dask(
    data: Path,
    out_file: Path,
    tracking_uri: str | None,
    catalog: Any,
    config: Any,
    top_k: int,
    as_of: str | None,
    scheduler: str,
    timing_rule: Any = None,
) -> None:
    """Score and rank every partition of ``data`` on the workers; write one Parquet file atomically.

    The four champions are loaded once here and shipped to the workers once; each worker
    compiles them once into the service's fast scorer (:class:`~telco_nbo.scale.ChampionRanking`)
    and reads, scores, ranks and writes its partitions, one task per partition
    (:func:`~telco_nbo.scale.rank.rank_world_to_parquet`: a worker's memory is one partition's),
    which are then streamed into ``out_file``.
    """

    ranking = ChampionRanking(ChampionModels.load(tracking_uri), catalog, config, timing_rule)
    with dask_client(scheduler) as client:
        world = load_partitioned_world(data, client)
        when_ts = resolve_as_of(as_of, world.meta.get("as_of"), str(data))
        console.print(f"ranking {world.n_partitions} partitions on {client.scheduler.address} ...", highlight=False)
        summary: dict[str, Any] = {}
        rank_world_to_parquet(world, ranking, out_file, client, top_k=top_k, as_of=when_ts, summary=summary)
    # Counted by the workers as they wrote: the client never reads the ranking back (at 5M
    # accounts the file has 60M rows).
    out.print(f"ranked {summary['accounts']:,} accounts on Dask: {summary['selected']:,} offers, "
              f"{summary['rows'] - summary['selected']:,} suppressed -> {out_file}")
    # The same human summary as the in-process rank, from the counts the workers kept.

    ids = [o.offer_id for o in (catalog if catalog is not None else load_catalog()).offers]
    short = RankingSummary(
        accounts=summary["accounts"], offers_made=summary["selected"],
        accounts_without_offer=summary["accounts"] - summary.get("with_offer", 0),
        offers_by_id=dict(summary["by_offer"]), never_chosen=[o for o in ids if o not in summary["by_offer"]],
        top_blocking_rules=list(summary.get("blocked", {}).items())[:3])
    for line in short.lines():
        out.print(line, highlight=False, soft_wrap=True)


ON_DASK = ("churn", "propensity")
"""Models ``train --scheduler`` trains with ``xgboost.dask``."""

NOT_ON_DASK = {
    "uplift": "it learns from the accounts enrolled in the randomized retention experiment, a sample that "
              "fits one machine",
    "clv": "its hazard model is a churn classifier fitted inside the CLV training; taking the Dask-trained "
           "churn model instead is not implemented yet",
}
"""Why the other models train in-process only (shown by ``train --scheduler``)."""


def train_on_dask(model: str, data: Path, configs: Mapping[str, Any], scheduler: str, promote_after: bool,
                  external_memory: bool = False, shard_dir: str | None = None) -> None:
    """Train ``churn`` or ``propensity`` with ``xgboost.dask`` from the training config; register it.

    With ``external_memory`` the rows go to Parquet shards (under ``shard_dir``, default the data
    folder) and the fit reads them from disk (:mod:`telco_nbo.scale.extmem`).

    Raises:
        ConfigError: ``model`` is not one of :data:`ON_DASK` (the message says why and what to
            run instead).
    """

    if model not in ON_DASK:
        kinds = [k for k in NOT_ON_DASK if model in (k, "all")]
        why = "; ".join(f"{k}: {NOT_ON_DASK[k]}" for k in kinds)
        raise ConfigError(
            f"--scheduler trains churn and propensity only (xgboost.dask). {why}. "
            + ("Run `train churn --scheduler ...` and `train propensity --scheduler ...`, then train uplift "
               "and clv without --scheduler." if model == "all" else f"Train {model} without --scheduler.")
        )
    cfg = configs[model]
    common = dict(holdout_fraction=cfg.holdout_fraction, valid_fraction=cfg.valid_fraction, seed=cfg.seed,
                  params=dict(cfg.params), early_stopping_rounds=cfg.early_stopping_rounds,
                  register=getattr(cfg, "register_model", True), tracking_uri=cfg.tracking_uri, data_dir=str(data),
                  trials=cfg.trials, optuna_storage=cfg.optuna_storage, study_name=cfg.study_name,
                  external_memory=external_memory, shard_dir=shard_dir,
                  # fresh workers for the fit, only on the cluster this command starts and owns
                  restart_workers=scheduler.strip() == "local")
    with dask_client(scheduler) as client:
        world = load_partitioned_world(data, client)
        console.print(f"training {model} on {world.n_partitions} partitions on {client.scheduler.address} ...",
                      highlight=False)
        if model == "churn":
            result = train_churn_dask(world, client, as_of=cfg.as_of, label_horizon_days=cfg.label_horizon_days,
                                      **common)
        else:
            result = train_propensity_dask(world, client, as_of=cfg.as_of, **common)
    h = ", ".join(f"{k}={v:.4g}" for k, v in list(result.holdout_metrics.items())[:6])
    version = f"v{result.model_version} ({', '.join(result.aliases)})" if result.model_version else "not registered"
    rows = ", ".join(f"{k} {v:,}" for k, v in result.n_rows.items())
    how = "xgboost collective, external memory" if external_memory else "xgboost.dask"
    out.print(f"[bold]{model}[/] ({how}): {version} run {result.run_id} - rows {rows} - holdout {h}",
              highlight=False, soft_wrap=True)
    if promote_after:
        from telco_nbo.training.pipeline import promote_all

        for d in promote_all((model,), tracking_uri=cfg.tracking_uri).values():
            verdict = "[green]promoted[/]" if d.promoted else "[yellow]kept the champion[/]"
            out.print(f"{d.model_name}: {verdict} - {d.reason}", highlight=False, soft_wrap=True)
