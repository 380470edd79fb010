"""Partitioning a world by household, generating partitions on Dask workers, partitioned folders.

Why households: a household and everything under it (accounts, lines, usage, tickets, contacts)
is self-contained — no row refers to another household — and every household rule of the NBO
engine (one promotional contact per household, no conflicting offers) looks only inside one
household. So a partition that holds *whole* households is a complete sub-world: the same feature
function, labels, scoring and ranking run on it unchanged and give exactly the rows they give on
the whole world. The small reference tables (``offers``, ``experiments``) are copied into every
partition.

Two ways to get partitions:

* :func:`partition_world` splits an in-memory world by a stable hash of ``household_id``
  (``pandas.util.hash_array``, fixed key: the same id lands in the same partition on every
  machine and every run, unlike Python's salted ``hash``).
* :func:`generate_world_dask` generates partitions directly on the workers. **The Dask world of
  N households is the union of P per-partition worlds**, partition ``p`` being
  ``generate_world(n_p, seed=derive(seed, p))`` with ``n_p`` = N split as evenly as possible and
  ids re-labelled with the partition (``H0003-0000017``, ``A0003-0000021``, ...). It is
  deterministic for a given (seed, N, P) but differs from the in-process world of the same seed
  (which is one generator run); ids stay globally unique and hierarchy-consistent. Each
  partition runs its own experiments on its own households, so the union's experiments are
  randomized *within* partitions (a stratified design with P strata): still valid, and the
  truth tables hold every partition's true effects.

A *partitioned data folder* (written by :func:`write_partitioned_world`, i.e. ``telco-nbo data
generate --scheduler``) is a normal data folder — the eight tables at the top, readable by
:func:`telco_nbo.data.io.load_world` — plus ``partitions/part-NNNNN/``, one complete data folder
per partition, which Dask jobs read one partition per task so no process ever holds the whole
world.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.data.io import (
    PARQUET_OPTIONS,
    arrow_schema,
    dump_json,
    empty_table,
    load_meta,
    load_world,
    swap_into_place,
    write_world,
)
from telco_nbo.data.schema import TABLES
from telco_nbo.data.synthetic import SCENARIOS, generate_world, make_calendar
from telco_nbo.data.world import META_FILE, TRUTH_DIR, World
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.scale.cluster import n_workers, same_dtypes

if TYPE_CHECKING:
    from distributed import Client

PARTITIONS_DIR = "partitions"
"""Sub-folder of a partitioned data folder holding one complete data folder per partition."""

PARTITION_KEY = "scale"
"""``World.meta`` key describing how a world was partitioned."""

_ID_PREFIX = {"household_id": "H", "account_id": "A", "line_id": "L", "ticket_id": "T", "contact_id": "C"}
_HASH_KEY = "telco-nbo-hhpart"  # 16 bytes: pandas' hash key; changing it moves every household


# --------------------------------------------------------------------------------------------------
# partitioning an in-memory world


def household_partition(household_ids: np.ndarray | pd.Series | Sequence[str], n_partitions: int) -> np.ndarray:
    """Return the partition (``0 .. n_partitions - 1``) of each household id.

    A keyed 64-bit hash of the id modulo ``n_partitions``: stable across machines, processes,
    row orders and subsets.

    Args:
        household_ids: Household ids.
        n_partitions: Number of partitions (>= 1).

    Returns:
        ``int64`` array, one partition per id.

    Raises:
        ConfigError: ``n_partitions`` is not a positive integer.
    """
    _check_n_partitions(n_partitions)
    ids = np.asarray(household_ids, dtype=object)
    h = pd.util.hash_array(ids, hash_key=_HASH_KEY, categorize=True)
    return (h % np.uint64(n_partitions)).astype(np.int64)


def _check_n_partitions(n_partitions: int) -> None:
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, (int, np.integer)) or n_partitions < 1:
        raise ConfigError(f"n_partitions must be a positive integer, got {n_partitions!r}")


def _owner_codes(keys: pd.Series, owner_ids: pd.Index, owner_part: np.ndarray, table: str, col: str) -> np.ndarray:
    """Partition of each row through its owner id (orphans raise: they would be silently dropped)."""
    pos = owner_ids.get_indexer(keys.to_numpy(dtype=object))
    if (pos < 0).any():
        bad = keys[pos < 0].astype(str).unique()[:5]
        raise DataValidationError(table, [f"{col} not found in its parent table: {', '.join(bad)}"])
    return owner_part[pos]


def partition_world(world: World, n_partitions: int) -> list[World]:
    """Split a world into ``n_partitions`` sub-worlds of whole households.

    Args:
        world: A world (its ``households`` and ``accounts`` tables are required; other tables and
            the truth frames keyed by ``account_id`` / ``household_id`` are split when present).
        n_partitions: Number of partitions.

    Returns:
        One world per partition (possibly with zero households when there are fewer households
        than partitions), each with the same tables; ``offers`` and ``experiments`` are copied to
        every partition. Input frames are not modified.

    Raises:
        ConfigError: Bad ``n_partitions``.
        DataValidationError: A row refers to a household / account / line that does not exist.
    """
    _check_n_partitions(n_partitions)
    t = world.tables
    hh = t["households"]["household_id"]
    hh_part = household_partition(hh.to_numpy(dtype=object), n_partitions)
    hh_index = pd.Index(hh.to_numpy(dtype=object))
    acc = t["accounts"]
    acc_part = _owner_codes(acc["household_id"], hh_index, hh_part, "accounts", "household_id")
    acc_index = pd.Index(acc["account_id"].to_numpy(dtype=object))
    parts: dict[str, np.ndarray] = {"households": hh_part, "accounts": acc_part}
    if "lines" in t:
        parts["lines"] = _owner_codes(t["lines"]["account_id"], acc_index, acc_part, "lines", "account_id")
        if "usage_monthly" in t:
            line_index = pd.Index(t["lines"]["line_id"].to_numpy(dtype=object))
            parts["usage_monthly"] = _owner_codes(t["usage_monthly"]["line_id"], line_index, parts["lines"],
                                                  "usage_monthly", "line_id")
    for name in ("support_tickets", "contacts"):
        if name in t:
            parts[name] = _owner_codes(t[name]["account_id"], acc_index, acc_part, name, "account_id")
    truth_parts: dict[str, np.ndarray] = {}
    for name, frame in world.truth.items():
        if "account_id" in frame.columns:
            truth_parts[name] = _owner_codes(frame["account_id"], acc_index, acc_part, f"truth/{name}", "account_id")
        elif "household_id" in frame.columns:
            truth_parts[name] = _owner_codes(frame["household_id"], hh_index, hh_part, f"truth/{name}", "household_id")

    def split(frame: pd.DataFrame, codes: np.ndarray) -> list[pd.DataFrame]:
        # One stable sort, then slices: O(n log n) once instead of P boolean masks over n rows.
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(n_partitions + 1))
        return [frame.iloc[order[bounds[p]:bounds[p + 1]]].reset_index(drop=True) for p in range(n_partitions)]

    split_tables = {name: split(t[name], codes) for name, codes in parts.items()}
    split_truth = {name: split(world.truth[name], codes) for name, codes in truth_parts.items()}
    out = []
    for p in range(n_partitions):
        tables = {}
        for name, frame in t.items():
            tables[name] = split_tables[name][p] if name in split_tables else frame.copy()
        truth = {name: (split_truth[name][p] if name in split_truth else frame.copy()) for name, frame in world.truth.items()}
        meta = {**world.meta, PARTITION_KEY: {"partition": p, "n_partitions": n_partitions, "method": "hash"}}
        meta.pop("truth_summary", None)  # whole-world rates do not describe one partition
        out.append(World(tables=tables, truth=truth, meta=meta))
    return out


# --------------------------------------------------------------------------------------------------
# generating partitions


def partition_sizes(n_households: int, n_partitions: int) -> list[int]:
    """Split ``n_households`` into ``n_partitions`` sizes differing by at most one (larger first)."""
    _check_n_partitions(n_partitions)
    if isinstance(n_households, bool) or not isinstance(n_households, (int, np.integer)) or n_households < 1:
        raise ConfigError(f"n_households must be a positive integer, got {n_households!r}")
    if n_partitions > n_households:
        raise ConfigError(f"{n_partitions} partitions for {n_households} households: every partition needs one")
    base, extra = divmod(int(n_households), int(n_partitions))
    return [base + (p < extra) for p in range(n_partitions)]


def partition_seed(seed: int, partition: int) -> int:
    """The generator seed of one partition: a SeedSequence of ``(seed, partition)`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(partition)]).generate_state(1, np.uint32)[0])


def _relabel(values: pd.Series, tag: str, prefix: str) -> pd.Series:
    """``H0000017`` -> ``H0003-0000017``; done on the unique values (usage repeats each line ~20x)."""
    if values.empty:
        return values
    cat = pd.Categorical(values.to_numpy(dtype=object))
    cats = pd.Index(cat.categories.astype(str))
    new = (prefix + tag + "-" + cats.str[1:]).to_numpy(dtype=object)
    codes = cat.codes
    out = np.where(codes >= 0, new[np.maximum(codes, 0)], None)
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def relabel_ids(world: World, partition: int) -> World:
    """Return a copy of ``world`` with every id tagged by ``partition`` (unique across partitions).

    Every id column of every table and truth frame is re-labelled the same way, so references
    stay consistent; the id order inside the partition is unchanged.
    """
    tag = f"{int(partition):04d}"

    def fix(frame: pd.DataFrame) -> pd.DataFrame:
        cols = {c: _relabel(frame[c], tag, p) for c, p in _ID_PREFIX.items() if c in frame.columns}
        return frame.assign(**cols) if cols else frame.copy()

    return World(
        tables={k: fix(v) for k, v in world.tables.items()},
        truth={k: fix(v) for k, v in world.truth.items()},
        meta=dict(world.meta),
    )


def generate_partition(
    n_households: int,
    seed: int,
    partition: int,
    n_partitions: int,
    *,
    as_of: str | pd.Timestamp = "2025-12-31",
    scenario: str | None = None,
) -> World:
    """Generate partition ``partition`` of the Dask world (see the module docstring).

    A pure function of its arguments, so any worker can (re)compute any partition.

    Returns:
        A complete sub-world with partition-tagged ids; ``meta["scale"]`` records the partition.
    """

    sizes = partition_sizes(n_households, n_partitions)
    if not 0 <= partition < n_partitions:
        raise ConfigError(f"partition {partition} is outside 0..{n_partitions - 1}")
    pseed = partition_seed(seed, partition)
    world = relabel_ids(generate_world(sizes[partition], pseed, as_of=as_of, scenario=scenario), partition)
    world.meta[PARTITION_KEY] = {
        "partition": int(partition), "n_partitions": int(n_partitions), "method": "generated",
        "world_seed": int(seed), "world_households": int(n_households), "partition_seed": pseed,
    }
    return world


@dataclass(frozen=True)
class PartitionedWorld:
    """A world as P lazy (or persisted) partitions, each a complete sub-world of whole households.

    Attributes:
        parts: One :class:`dask.delayed.Delayed` or :class:`distributed.Future` per partition,
            each resolving to a :class:`~telco_nbo.data.world.World`.
        meta: Whole-world metadata (``as_of``, ``world_end``, ``seed``, ``n_households``, ...).
        sources: For a world opened from a partitioned folder, the folder of each partition (what
            ``parts`` load); lets a job read a partition *inside* its own task (see
            :func:`~telco_nbo.scale.rank.rank_world_to_parquet`). ``None`` otherwise.
    """

    parts: list[Any]
    meta: dict[str, Any] = field(default_factory=dict)
    sources: list[str] | None = None

    @property
    def n_partitions(self) -> int:
        """Number of partitions."""
        return len(self.parts)

    def table(self, name: str) -> Any:
        """One table of every partition as a :class:`dask.dataframe.DataFrame` (lazy)."""
        import dask.dataframe as dd
        from dask import delayed

        pick = delayed(lambda w, n: w.tables[n], pure=True)
        with same_dtypes():
            return dd.from_delayed([pick(p, name) for p in self.parts], meta=empty_table(name), verify_meta=False)


def generate_world_dask(
    n_households: int,
    seed: int,
    n_partitions: int,
    client: Client | None = None,
    *,
    as_of: str | pd.Timestamp = "2025-12-31",
    scenario: str | None = None,
    persist: bool = False,
) -> PartitionedWorld:
    """Generate a world of ``n_households`` as ``n_partitions`` partitions on Dask workers.

    Lazy by default: each partition is generated when a task needs it (features, ranking,
    writing) and freed after, so memory per worker is bounded by the partition size, not by N.
    The result is deterministic for (seed, n_households, n_partitions, as_of, scenario) and differs
    from ``generate_world(n_households, seed)`` (see the module docstring).

    Args:
        n_households: Households in the whole world.
        seed: World seed; partition ``p`` uses :func:`partition_seed` ``(seed, p)``.
        n_partitions: Partitions (each gets ``n_households / n_partitions`` households, +-1).
        client: The Dask client; needed only with ``persist``.
        as_of: Scoring date of the world.
        scenario: Drift scenario (as in :func:`~telco_nbo.data.synthetic.generate_world`).
        persist: Generate now and keep the partitions in worker memory (futures), for several
            passes over a world that fits in the cluster's memory.

    Returns:
        The :class:`PartitionedWorld`.

    Raises:
        ConfigError: Bad sizes, seed, scenario, or ``persist`` without a client.
    """
    from dask import delayed

    partition_sizes(n_households, n_partitions)  # validates both
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}")
    cal = make_calendar(as_of)
    gen = delayed(generate_partition, pure=True)
    parts = [
        gen(n_households, seed, p, n_partitions, as_of=as_of, scenario=scenario,
            dask_key_name=f"telco-world-{seed}-{n_households}-{n_partitions}-{p}")
        for p in range(n_partitions)
    ]
    if persist:
        if client is None:
            raise ConfigError("persist=True needs a Dask client")
        parts = client.compute(parts)
    meta = {
        "source": "synthetic",
        "generator": "telco_nbo.scale.generate_world_dask",
        "seed": int(seed),
        "n_households": int(n_households),
        "as_of": str(pd.Timestamp(np.datetime64(cal.as_of, "D")).date()),
        "world_start": str(pd.Timestamp(np.datetime64(cal.world_start, "D")).date()),
        "world_end": str(pd.Timestamp(np.datetime64(cal.world_end, "D")).date()),
        "scenario": scenario,
        PARTITION_KEY: {"n_partitions": int(n_partitions), "method": "generated"},
    }
    return PartitionedWorld(parts=list(parts), meta=meta)


def scatter_partitions(world: World, n_partitions: int, client: Client) -> PartitionedWorld:
    """Partition an in-memory world by household and scatter the partitions to the workers."""
    parts = partition_world(world, n_partitions)
    return PartitionedWorld(parts=client.scatter(parts), meta={**world.meta, PARTITION_KEY: {
        "n_partitions": int(n_partitions), "method": "hash"}})


# --------------------------------------------------------------------------------------------------
# partitioned data folders


def _write_part(world: World, folder: str) -> dict[str, int]:
    write_world(world, folder)
    return {name: int(len(frame)) for name, frame in world.tables.items()}


def _merge_experiments(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per experiment: the union's window spans every partition's window."""
    allx = pd.concat(frames, ignore_index=True)
    first = allx.drop_duplicates("experiment_id", keep="first").set_index("experiment_id")
    first["start_date"] = allx.groupby("experiment_id")["start_date"].min()
    first["end_date"] = allx.groupby("experiment_id")["end_date"].max()
    return first.reset_index()[list(frames[0].columns)]


def write_partitioned_world(
    world: PartitionedWorld,
    out_dir: str | os.PathLike[str],
    client: Client,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a partitioned world: each partition by a worker, then the union for ``load_world``.

    Workers write ``partitions/part-NNNNN/`` (each validated by
    :func:`~telco_nbo.data.io.write_world`); the client then streams every partition's Parquet
    row groups into the top-level table files one partition at a time (memory bounded by one
    partition), merges ``experiments`` (their windows span all partitions) and writes
    ``meta.json``. All or nothing: the folder appears only when complete.

    Args:
        world: The partitioned world (e.g. :func:`generate_world_dask`).
        out_dir: Data folder to create; must not exist or be empty unless ``overwrite``.
        client: Dask client. The workers must see ``out_dir``'s parent (same machine or a shared
            file system).
        overwrite: Replace an existing non-empty folder.

    Returns:
        The data folder.

    Raises:
        ConfigError: ``out_dir`` exists and is not empty (without ``overwrite``) or is a file.
        DataValidationError: A partition breaks the data contract (nothing is written).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another folder, or replace it with --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        pdir = tmp / PARTITIONS_DIR
        pdir.mkdir()
        folders = [str(pdir / f"part-{p:05d}") for p in range(world.n_partitions)]
        from dask import delayed

        write = delayed(_write_part, pure=False)
        counts = client.compute([write(part, f) for part, f in zip(world.parts, folders, strict=True)], sync=True)
        for name in TABLES:
            if name in ("offers", "experiments"):
                continue
            with pq.ParquetWriter(tmp / f"{name}.parquet", arrow_schema(name), **PARQUET_OPTIONS) as w:
                for f in folders:
                    w.write_table(pq.read_table(Path(f) / f"{name}.parquet").cast(arrow_schema(name)))
        shutil.copyfile(Path(folders[0]) / "offers.parquet", tmp / "offers.parquet")
        exps = _merge_experiments([pq.read_table(Path(f) / "experiments.parquet").to_pandas() for f in folders])
        pq.write_table(pa.Table.from_pandas(exps, schema=arrow_schema("experiments"), preserve_index=False)
                       .replace_schema_metadata(None), tmp / "experiments.parquet", **PARQUET_OPTIONS)
        truth_names = sorted(x.stem for x in (Path(folders[0]) / TRUTH_DIR).glob("*.parquet"))
        if truth_names:
            (tmp / TRUTH_DIR).mkdir()
            for name in truth_names:
                files = [Path(f) / TRUTH_DIR / f"{name}.parquet" for f in folders]
                # A small partition may have no row (and no column) of a truth frame, e.g. no
                # household in the timing cohort: the schema comes from one that has rows.
                schemas = [pq.read_schema(f) for f in files]
                full = [i for i, sc in enumerate(schemas) if len(sc.names)]
                first = schemas[full[0]] if full else schemas[0]
                with pq.ParquetWriter(tmp / TRUTH_DIR / f"{name}.parquet", first, **PARQUET_OPTIONS) as w:
                    for i in full:
                        table = pq.read_table(files[i])
                        if table.num_rows:
                            w.write_table(table.select(first.names).cast(first))
            summaries = [json.loads((Path(f) / TRUTH_DIR / "summary.json").read_text())
                         for f in folders if (Path(f) / TRUTH_DIR / "summary.json").exists()]
            (tmp / TRUTH_DIR / "summary.json").write_text(dump_json(
                {"note": "per-partition truth summaries (each partition is its own generator run)",
                 "partitions": summaries}, "truth summary"), encoding="utf-8")
        meta = {**world.meta, "row_counts": {n: int(sum(c[n] for c in counts)) for n in TABLES
                                             if n not in ("offers", "experiments")}}
        meta[PARTITION_KEY] = {**meta.get(PARTITION_KEY, {}), "n_partitions": world.n_partitions,
                               "folder": PARTITIONS_DIR}
        (tmp / META_FILE).write_text(dump_json(meta, "World.meta"), encoding="utf-8")
        os.chmod(tmp, 0o755)
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_partitioned_world(path: str | os.PathLike[str], client: Client, n_partitions: int | None = None) -> PartitionedWorld:
    """Open a data folder as partitions for Dask.

    A partitioned folder (``partitions/part-*``) gives one lazy ``load_world`` per partition,
    read by the workers (they must see the folder). Any other data folder is loaded here, split by
    household with :func:`partition_world` and scattered (``n_partitions`` defaults to 4 per
    worker).

    Raises:
        ConfigError: The folder does not exist.
    """

    folder = Path(path).absolute()
    if not folder.is_dir():
        raise ConfigError(f"data folder {folder} does not exist (or is not a folder)")
    meta = load_meta(folder)
    pdir = folder / PARTITIONS_DIR
    part_dirs = sorted(pdir.glob("part-*")) if pdir.is_dir() else []
    if part_dirs:
        from dask import delayed

        load = delayed(load_world, pure=True)
        return PartitionedWorld(parts=[load(str(d), dask_key_name=f"telco-load-{d}") for d in part_dirs], meta=meta,
                                sources=[str(d) for d in part_dirs])

    world = load_world(folder)
    return scatter_partitions(world, n_partitions or 4 * max(n_workers(client), 1), client)
