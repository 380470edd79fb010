"""A Dask worker plugin that sets Arrow's default memory pool (see :data:`~telco_nbo.scale.cluster.LOCAL_ARROW_POOL`).

Its own module because it subclasses :class:`distributed.WorkerPlugin`: importing it imports
``distributed``, which :mod:`telco_nbo.scale.cluster` only does when a cluster is asked for.
"""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from telco_nbo.errors import ConfigError

ARROW_POOLS = ("system", "mimalloc", "jemalloc")


class ArrowPoolPlugin(WorkerPlugin):
    """Make ``backend`` Arrow's default memory pool in every worker, restarted ones included.

    :func:`~telco_nbo.scale.cluster.dask_client` registers it on the local cluster. On a cluster
    of your own, set ``ARROW_DEFAULT_MEMORY_POOL`` in the workers' environment, or register it:
    ``client.register_plugin(ArrowPoolPlugin("system"))``.

    Args:
        backend: One of :data:`ARROW_POOLS` (Arrow's names).

    Raises:
        ConfigError: ``backend`` is not one of them.
    """

    name = "telco-nbo-arrow-pool"
    idempotent = True

    def __init__(self, backend: str = "system") -> None:
        if backend not in ARROW_POOLS:
            raise ConfigError(f"unknown Arrow memory pool {backend!r}: use one of {', '.join(ARROW_POOLS)}")
        self.backend = backend

    def setup(self, worker: Any) -> None:
        """Switch the worker process's default pool (memory already allocated stays in its pool)."""
        import pyarrow as pa

        pa.set_memory_pool(getattr(pa, f"{self.backend}_memory_pool")())
