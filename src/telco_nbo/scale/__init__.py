"""Scale-out on Dask: the same feature, training, tuning and ranking code, past one machine.

* :func:`dask_client` - ``None`` (in-process), ``"local"`` (a 2-process LocalCluster) or a
  scheduler address.
* :mod:`~telco_nbo.scale.partition` - worlds split by household (each partition a complete
  sub-world), generated on workers, written as partitioned data folders.
* :func:`build_account_features_dask` - :func:`telco_nbo.features.build_account_features` per
  partition, as a ``dask.dataframe``.
* :func:`train_churn_dask` / :func:`train_propensity_dask` / :func:`fit_classifier_dask` -
  ``xgboost.dask`` training, saved as a
  plain ``XGBClassifier`` so it registers and serves like any other model.
* :func:`tune_parallel` - Optuna trials in several processes sharing one study storage.
* :func:`rank_batch_dask` - score + :func:`telco_nbo.nbo.rank.rank_batch` per partition;
  :class:`ChampionRanking` - the champions through the service's fast scorer, compiled once per worker.

Importing this package does not import Dask; each function imports what it uses.
"""

from __future__ import annotations

from telco_nbo.scale.cluster import LOCAL, dask_client, n_workers
from telco_nbo.scale.features import (
    LABEL_COLUMN,
    account_features_partition,
    build_account_features_dask,
    features_meta,
    model_matrix_dask,
)
from telco_nbo.scale.partition import (
    PartitionedWorld,
    generate_partition,
    generate_world_dask,
    household_partition,
    load_partitioned_world,
    partition_seed,
    partition_sizes,
    partition_world,
    relabel_ids,
    scatter_partitions,
    write_partitioned_world,
)
from telco_nbo.scale.propensity import snapshot_dates_dask, train_propensity_dask
from telco_nbo.scale.rank import (
    ChampionRanking,
    by_household,
    rank_batch_dask,
    rank_partition,
    rank_world_to_parquet,
    ranking_meta,
    subset_scores,
    write_ranking,
)
from telco_nbo.scale.train import (
    AUC_TOLERANCE,
    DaskTrainResult,
    fit_classifier_dask,
    split_column,
    to_sklearn_classifier,
    train_churn_dask,
)
from telco_nbo.scale.tune import ChurnModelFactory, ParallelTuningResult, shared_storage_url, tune_parallel

__all__ = [
    "AUC_TOLERANCE",
    "ChampionRanking",
    "ChurnModelFactory",
    "LABEL_COLUMN",
    "LOCAL",
    "DaskTrainResult",
    "ParallelTuningResult",
    "PartitionedWorld",
    "account_features_partition",
    "build_account_features_dask",
    "by_household",
    "dask_client",
    "features_meta",
    "fit_classifier_dask",
    "generate_partition",
    "generate_world_dask",
    "household_partition",
    "load_partitioned_world",
    "model_matrix_dask",
    "n_workers",
    "partition_seed",
    "partition_sizes",
    "partition_world",
    "rank_batch_dask",
    "rank_partition",
    "rank_world_to_parquet",
    "ranking_meta",
    "relabel_ids",
    "scatter_partitions",
    "shared_storage_url",
    "split_column",
    "subset_scores",
    "to_sklearn_classifier",
    "snapshot_dates_dask",
    "train_churn_dask",
    "train_propensity_dask",
    "tune_parallel",
    "write_partitioned_world",
    "write_ranking",
]
