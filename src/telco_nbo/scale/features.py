"""Account features (and churn labels) on ``dask.dataframe``: the same function, per partition.

Each partition of a :class:`~telco_nbo.scale.partition.PartitionedWorld` holds whole households,
so :func:`telco_nbo.features.build_account_features` applied to it returns exactly the rows the
whole-world call returns for those accounts (the function only looks inside an account's own
household, lines, usage, tickets and contacts). The Dask frame is those per-partition results;
nothing about the feature logic is re-implemented here.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.data.synthetic import generate_world
from telco_nbo.data.world import World
from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix
from telco_nbo.scale.cluster import same_dtypes
from telco_nbo.vocabulary import resolve_as_of

if TYPE_CHECKING:
    import dask.dataframe as dd

    from telco_nbo.scale.partition import PartitionedWorld

LABEL_COLUMN = "churned"
"""Name of the churn label column added by :func:`build_account_features_dask` with labels."""


def account_features_partition(
    world: World,
    as_of: Any,
    label_horizon_days: int | None = None,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Features of one partition (optionally with the churn label), as the in-process call.

    Args:
        world: A partition (a complete sub-world).
        as_of: Feature date.
        label_horizon_days: Add :data:`LABEL_COLUMN` from
            :func:`telco_nbo.features.make_churn_labels` over this horizon; ``None``: no label.
        observed_until: Passed to ``make_churn_labels`` (refuses unobserved label windows).

    Returns:
        The account frame of :func:`telco_nbo.features.build_account_features` (sorted by
        ``account_id``), plus the label when asked; an empty frame of the same columns and
        dtypes for a partition without households.
    """

    if len(world.tables["households"]) == 0:
        return features_meta(label_horizon_days is not None)
    feats = build_account_features(world.tables, as_of)
    if label_horizon_days is None:
        return feats
    labels = make_churn_labels(world.tables, as_of, label_horizon_days, observed_until=observed_until)
    if not np.array_equal(feats["account_id"].to_numpy(), labels["account_id"].to_numpy()):
        raise RuntimeError("features and labels are not aligned")  # both sorted by account id: a bug
    return feats.assign(**{LABEL_COLUMN: labels["churned"].to_numpy()})


@functools.lru_cache(maxsize=1)
def meta_world() -> World:
    """A 30-household world (cached per process): real rows from which Dask's metadata is derived."""
    return generate_world(30, 0)


def meta_world_features() -> pd.DataFrame:
    """Features of :func:`meta_world`: real rows for deriving metadata."""
    w = meta_world()
    return build_account_features(w.tables, w.meta["as_of"])


@functools.lru_cache(maxsize=2)
def _meta(with_label: bool) -> pd.DataFrame:
    # The feature frame's columns and dtypes do not depend on the data (checked in the tests), so
    # a 30-household world computed once per process gives Dask its meta without touching a
    # real partition.
    feats = meta_world_features()
    if with_label:
        w = meta_world()
        feats = feats.assign(**{LABEL_COLUMN: make_churn_labels(w.tables, w.meta["as_of"], 90)["churned"].to_numpy()})
    return feats.iloc[:0]


def features_meta(with_label: bool = False) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of the account features (+ label)."""
    return _meta(bool(with_label)).copy()


def build_account_features_dask(
    world: PartitionedWorld,
    as_of: Any = None,
    *,
    label_horizon_days: int | None = None,
    observed_until: Any = None,
) -> dd.DataFrame:
    """Account features of every partition as a lazy :class:`dask.dataframe.DataFrame`.

    Args:
        world: The partitioned world.
        as_of: Feature date; default ``world.meta["as_of"]``.
        label_horizon_days: Also add the churn label over this horizon (see
            :func:`account_features_partition`).
        observed_until: Last observed date for the labels; default ``world.meta["world_end"]``
            when labels are asked for.

    Returns:
        One Dask partition per world partition, each sorted by ``account_id`` (the frame as a
        whole is ordered by partition, then account id). Columns and dtypes are those of
        :func:`telco_nbo.features.build_account_features`.

    Raises:
        ConfigError: No ``as_of`` given or recorded.
    """
    import dask.dataframe as dd
    from dask import delayed

    as_of = resolve_as_of(as_of, world.meta.get("as_of"), "the world")
    if label_horizon_days is not None and observed_until is None:
        observed_until = world.meta.get("world_end")

    fn = delayed(account_features_partition, pure=True)
    parts = [fn(p, as_of, label_horizon_days, observed_until) for p in world.parts]
    with same_dtypes():
        return dd.from_delayed(parts, meta=features_meta(label_horizon_days is not None), verify_meta=False)


def model_matrix_dask(features: dd.DataFrame) -> dd.DataFrame:
    """:func:`telco_nbo.features.to_model_matrix` per partition (fixed categories -> known dtypes)."""

    with same_dtypes():
        return features.map_partitions(to_model_matrix, meta=to_model_matrix(features._meta))
