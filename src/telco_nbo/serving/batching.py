"""Micro-batching: requests that arrive while one batch is being computed are computed together.

The service's per-request cost is mostly fixed overhead (an XGBoost ``inplace_predict`` call costs
~0.45 ms whether it scores 1 row or 8; the rules are numpy operations on tiny arrays), so ranking
8 waiting requests in one call costs little more than ranking one. :class:`MicroBatcher` runs one
compute thread that takes whatever is queued when it becomes free: a lone request is computed at
once (no timer, no added wait), and under load the batch grows with the queue. This is the
"dynamic batching" of model servers, done here because BentoML's adaptive batching batches one
model's inputs with a latency timer, while a decision needs four models, the rules and the
household step on the same rows.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

log = logging.getLogger("telco_nbo.serving")

T = TypeVar("T")

_STOP = object()


class MicroBatcher(Generic[T]):
    """Compute queued items in batches on one background thread.

    Args:
        compute: Takes a list of items and returns, in the same order, one result or one
            exception instance per item (an exception is raised to that item's caller only).
        max_items: Most items taken into one batch.
        size: Weight of an item (e.g. accounts in a request); a batch stops growing once the
            summed weight reaches ``max_weight`` (a big item still runs, alone).
        max_weight: See ``size``.
        name: Thread name.
    """

    def __init__(self, compute: Callable[[list[T]], Sequence[Any]], *, max_items: int = 32,
                 size: Callable[[T], int] | None = None, max_weight: int = 512, name: str = "micro-batcher"):
        if max_items < 1 or max_weight < 1:
            raise ValueError("max_items and max_weight must be positive")
        self._compute = compute
        self._max_items = max_items
        self._size = size or (lambda _item: 1)
        self._max_weight = max_weight
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: tuple[T, Future] | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> Future:
        """Queue ``item``; the returned future gets its result (or its exception)."""
        if not self._started:
            with self._lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        fut: Future = Future()
        self._queue.put((item, fut))
        return fut

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the thread after the items already queued."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _take(self) -> list[tuple[T, Future]] | None:
        first = self._pending or self._queue.get()
        self._pending = None
        if first is _STOP:
            return None
        batch = [first]
        weight = self._size(first[0])
        while len(batch) < self._max_items and weight < self._max_weight:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                self._queue.put(_STOP)
                break
            w = self._size(nxt[0])
            if weight + w > self._max_weight:
                self._pending = nxt  # first of the next batch, keeps arrival order
                break
            batch.append(nxt)
            weight += w
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            items = [it for it, _ in batch]
            try:
                results = list(self._compute(items))
                if len(results) != len(items):
                    raise RuntimeError(f"batch compute returned {len(results)} results for {len(items)} items")
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                log.exception("a batch of %d items failed", len(items))
                results = [exc] * len(items)
            self.batches += 1
            self.items += len(items)
            for (_, fut), res in zip(batch, results, strict=True):
                if fut.set_running_or_notify_cancel():
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
