"""Connecting to Dask: an existing scheduler, a local cluster, or no Dask at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from telco_nbo.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
"""The ``--scheduler`` value that starts a :class:`distributed.LocalCluster` for the command."""

LOCAL_WORKERS = 2
"""Worker processes of the local cluster (one thread each: XGBoost and numpy get a core each)."""

CONNECT_TIMEOUT_S = 30
"""How long to wait for a remote scheduler before giving up with a clear error."""

LOCAL_WORKER_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.log-length": 120,
}
"""Dask settings of the worker processes ``--scheduler local`` starts (nothing else sees them).

Why: a Dask worker keeps its own history, which grows with the time the worker has been alive,
not with what it holds. The statistical profiler samples the running task's stack every 10 ms and
keeps one call tree per second in two deques of ``distributed.admin.low-level-log-length`` (1,000)
entries each, i.e. up to ~17 minutes of trees: measured on a ranking worker (5M-account world,
2026-11-22, one worker, ~27 s per partition on a loaded machine) +19-20k allocated Python
blocks, +~3,900 objects and ~+2.5 MB of resident memory per partition, the per-partition peak
rising from 520-600 MB to 610-657 MB over 36 partitions, flat only once the deques were full
(~1,000 s); with the profiler off, blocks and objects stayed flat. So the longer a run (more
partitions per worker, or a slower machine), the higher a worker's peak. The profile is only read by the dashboard (which the local cluster does not
start) or ``Client.profile``. The system monitor keeps 7,200 samples (1 hour at 500 ms) by
default; 120 (one minute) is enough for the scheduler's heartbeats and bounds it too.
"""

ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
ARROW_POOLS = ("system", "mimalloc", "jemalloc")
"""Arrow's names for its memory pools."""
LOCAL_ARROW_POOL = "system"
"""Arrow memory pool of the local cluster's workers (unless the caller's environment names one).

Why: a partition task reads Parquet and builds frames through Arrow, whose default pool here is
mimalloc. mimalloc keeps freed pages for reuse, and how much it keeps varies from one run to the
next: the same 5M-world partition (~23k accounts) ranked 6 times in one process (2026-11-22,
``/proc/self/clear_refs`` before each) peaked at 585-667 MB with mimalloc and 500-507 MB with the
system allocator, at the same speed (~13 s each). A worker's peak is the maximum over the
partitions it runs, so with mimalloc a worker that runs more partitions (a larger world) reached
a higher peak (ranking: 613 MB at 1M, 631 MB at 5M). glibc malloc returns freed memory at once
under Dask's ``MALLOC_TRIM_THRESHOLD_``, so each partition's peak is its own.

How: ``ARROW_DEFAULT_MEMORY_POOL`` in Dask's ``distributed.nanny.pre-spawn-environ``, which a
nanny puts in the environment a worker process starts with (restarts included), so Arrow reads
it before any import. Not later: Arrow's C++ default pool is fixed the first time it is asked
for, and a worker spawned from a script re-imports the script's imports (pandas, hence pyarrow)
before a nanny's ``env`` applies. Not ``pyarrow.set_memory_pool`` in a worker plugin either (the
mechanism until 2026-11-23): it changes the pool pyarrow's Python API hands out, but the Parquet
writer takes the C++ default, so writing shards and rankings still went through mimalloc (a
shard step peaked at 362-364 MB with the plugin, 331 with the variable; tested).
"""


@contextlib.contextmanager
def dask_client(
    scheduler: str | None,
    *,
    n_workers: int = LOCAL_WORKERS,
    memory_limit: str | None = "auto",
) -> Iterator[Client | None]:
    """Yield a Dask client for ``scheduler``, or ``None`` to stay in-process.

    Args:
        scheduler: ``None`` (no Dask: the caller runs everything in-process), ``"local"`` (a
            :class:`~distributed.LocalCluster` of ``n_workers`` worker *processes* with one thread
            each, on 127.0.0.1, no dashboard, closed on exit), or a scheduler address such as
            ``tcp://10.0.0.5:8786`` (the cluster is left running on exit; only the client closes).
            The local cluster's workers run with :data:`LOCAL_WORKER_CONFIG` (no statistical
            profiler, a short system-monitor history) and Arrow's system memory pool
            (:data:`LOCAL_ARROW_POOL`), so their memory does not grow with their lifetime or the
            number of partitions they run; a remote cluster's workers are left as their operator
            configured them (see docs/scaling_out.md for the settings to give them).
        n_workers: Workers of the local cluster.
        memory_limit: Per-worker memory limit of the local cluster (Dask syntax, e.g. ``"4GB"``);
            ``"auto"`` splits the machine's memory between the workers.

    Yields:
        The connected client, or ``None``.

    Raises:
        ConfigError: The scheduler cannot be reached, or the value is empty.
    """
    if scheduler is None:
        yield None
        return
    scheduler = scheduler.strip()
    if not scheduler:
        raise ConfigError("--scheduler is empty: give a scheduler address (tcp://host:8786) or 'local'")
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        if n_workers < 1:
            raise ConfigError(f"a local cluster needs at least 1 worker, got {n_workers}")
        pool = os.environ.get(ARROW_POOL_ENV, LOCAL_ARROW_POOL)  # the caller's choice wins
        if pool not in ARROW_POOLS:
            raise ConfigError(f"unknown Arrow memory pool {ARROW_POOL_ENV}={pool!r}: use one of {', '.join(ARROW_POOLS)}")
        import dask

        caller_pool = os.environ.get(ARROW_POOL_ENV)
        spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), ARROW_POOL_ENV: pool}
        try:
            # A nanny reads pre-spawn-environ once, when created: set it for the creation only.
            with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
                # Worker processes, not threads: the feature code and XGBoost hold the GIL in
                # places, and a worker process's peak memory is then measurable on its own.
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                    memory_limit=memory_limit,
                    config=local_worker_config(),
                )
            with cluster, Client(cluster) as client:
                yield client
        finally:
            # Dask sets pre-spawn variables in this process's environment before each spawn: put
            # the caller's own back once the workers are gone.
            if caller_pool is None:
                os.environ.pop(ARROW_POOL_ENV, None)
            else:
                os.environ[ARROW_POOL_ENV] = caller_pool
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def local_worker_config() -> dict:
    """The whole Dask config with :data:`LOCAL_WORKER_CONFIG` applied, for a local cluster's nannies.

    A nanny hands its ``config`` to every worker process it starts, restarts included; it merges
    it shallowly over the current config, so it gets a deep copy of the whole config (setting the
    keys with ``dask.config.set`` only while the cluster starts would let a restarted worker see
    the defaults again, and the caller's own config is left untouched).
    """
    import copy

    import dask
    import distributed  # noqa: F401  (adds distributed's defaults to the config)

    config = copy.deepcopy(dask.config.config)
    for key, value in LOCAL_WORKER_CONFIG.items():
        dask.config.set({key: value}, config=config)
    return config


def n_workers(client: Client) -> int:
    """Number of workers currently connected to ``client``'s scheduler."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


def same_dtypes() -> contextlib.AbstractContextManager:
    """Context for building Dask frames that keep pandas' own dtypes (object strings).

    Dask converts object columns to pyarrow strings by default. The platform's functions are
    written for, and tested on, the frames pandas gives them; keeping those dtypes is what makes a
    Dask partition identical to the in-process frame (train/serve parity). Applies to frames
    *built* inside the context.
    """
    import dask

    return dask.config.set({"dataframe.convert-string": False})
