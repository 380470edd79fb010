"""Connecting to Dask: an existing scheduler, a local cluster, or no Dask at all."""

from __future__ import annotations

import contextlib
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
        # Worker processes, not threads: the feature code and XGBoost hold the GIL in places, and
        # a worker process's peak memory is then measurable on its own.
        with LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            memory_limit=memory_limit,
        ) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


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
