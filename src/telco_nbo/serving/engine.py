"""The decision engine in a process of its own, beside the HTTP worker.

Why: a BentoML worker spends ~1.5-2 ms of CPU per request on HTTP (uvicorn, middlewares, JSON),
and a decision costs ~1.5-6 ms more (less per request when requests are batched). In one process
both share one GIL, so a worker never uses more than one core. Two workers would split the
connections, and with them the batches. Here the HTTP worker only parses, validates and answers,
and one engine process scores and ranks every request the micro-batcher collects: HTTP on one
core, decisions on the other, and the batches stay as large as the load makes them.

Protocol (a :func:`multiprocessing.Pipe`, pickled objects): the engine sends
``("ready", status)`` or ``("error", message)`` once its models are loaded; then for each batch it
receives ``[(kind, request, request_id), ...]`` and sends back ``[(http_status, json_bytes), ...]``
(see :meth:`telco_nbo.serving.app.NboApp.answer`). The engine exits when the pipe closes, so it
never outlives its HTTP worker.

The HTTP side (:meth:`EngineProcess.answer`) lives on the worker's event loop: the pipe is watched
with ``loop.add_reader``, one batch is in flight at a time, and the requests that arrive meanwhile
form the next batch, sent as soon as the answer comes back. No thread, so no GIL hand-offs in the
HTTP worker, whose CPU is the service's bottleneck.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import multiprocessing
import os
import time
from dataclasses import asdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("telco_nbo.serving")


class EngineStopped(RuntimeError):
    """The engine process is gone (crashed or killed)."""


def _engine_main(config_json: str, conn: Any, nice: int, make_host: Callable[[dict[str, Any]], Any]) -> None:
    """Entry point of the engine process: load, report, then answer batches until the pipe closes.

    SIGTERM and SIGINT are ignored: the engine's life is its pipe. A supervisor that signals the
    whole process group (circus stops a worker's children too; systemd signals the cgroup) would
    otherwise kill it under the requests the HTTP worker is still draining; the worker closes the
    pipe after its last answer, and the engine exits then (or when the worker dies).
    """
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    app = make_host(json.loads(config_json))
    try:
        app.load()
    except Exception as exc:  # noqa: BLE001 - reported to the HTTP worker, which answers 503
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    # The loaded models, policy and folder features live as long as the process: move them out of
    # the collector's generations, so a full collection during a request does not walk them.
    gc.collect()
    gc.freeze()
    conn.send(("ready", app.status()))
    try:
        while True:
            try:
                items = conn.recv()
            except (EOFError, OSError):
                return  # the HTTP worker closed the pipe (drained) or is gone
            try:
                out = app.answer(items)
            except Exception:  # noqa: BLE001 - NboApp.answer answers per request; this is the last net
                log.exception("a batch of %d requests failed", len(items))
                out = [(500, INTERNAL_ERROR)] * len(items)
            try:
                conn.send(out)
            except (OSError, ValueError):
                return  # nobody is left to read the answers
    finally:
        app.close()  # flushes and closes the prediction log


INTERNAL_ERROR = b'{"error":"internal error while answering (see the server log)","problems":[]}'
"""The body of a 500 the engine answers when a whole batch failed (never the exception's text)."""


class EngineProcess:
    """Start, call and stop the engine process.

    Args:
        config: The :class:`~telco_nbo.serving.app.ServeConfig` the engine loads.
        make_host: Module-level function (it is pickled by name into the spawned process) that
            turns the config, as a dict, into the object that answers there: it has ``load()``,
            ``status()`` and answers batches (:func:`telco_nbo.serving.app.engine_host`). Passed in,
            not imported, so this module does not depend on the app that uses it.
        nice: Added to the engine process's CPU niceness (the /explain engine runs at a lower
            priority than the /rank one).
    """

    def __init__(self, config: Any, make_host: Callable[[dict[str, Any]], Any], nice: int = 0):
        self._config_json = json.dumps(asdict(config))
        self._make_host = make_host
        self._nice = int(nice)
        self._conn: Any = None
        self._proc: Any = None
        self.status: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Any, int, asyncio.Future]] = []
        self._in_flight: list[tuple[Any, int, asyncio.Future]] | None = None
        self.max_items = 64
        self.max_weight = 512
        self.batches = 0
        self.items = 0
        self.started_at: float | None = None
        self._retiring = False

    def start(self, timeout: float = 600.0) -> dict[str, Any]:
        """Start the engine and wait until its models are loaded.

        Returns:
            The engine's status (model versions, folder size, load time).

        Raises:
            EngineStopped: The engine failed to load (its error message) or died.
        """
        # spawn, not fork: the HTTP worker has threads (fork would copy locks held by them).
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_engine_main, args=(self._config_json, child, self._nice, self._make_host), name="nbo-engine", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(timeout):
            self.stop()
            raise EngineStopped(f"the decision engine did not load within {timeout:.0f} s")
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            raise EngineStopped(f"the decision engine died while loading (exit code {self._proc.exitcode})") from None
        if kind != "ready":
            self.stop()
            raise EngineStopped(payload)
        self.status = payload
        self.started_at = time.monotonic()
        return payload

    async def answer(self, item: tuple[str, Any, str | None], weight: int = 1) -> tuple[int, bytes]:
        """Answer one request on the running event loop, batched with the requests waiting beside it.

        Args:
            item: ``(kind, request, request_id)``.
            weight: Accounts the request names (a batch stops growing at :attr:`max_weight`).

        Raises:
            EngineStopped: The engine is gone.
        """
        loop = asyncio.get_running_loop()
        if self._conn is None:
            raise EngineStopped("the decision engine is not running")
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("the engine is already driven from another event loop")
            self._loop = loop
            loop.add_reader(self._conn.fileno(), self._on_answer)
            # libuv (uvloop) makes a watched fd non-blocking; the pipe's framed messages are read
            # and written whole, so put it back (the loop only uses it for readiness).
            os.set_blocking(self._conn.fileno(), True)
        fut = loop.create_future()
        self._pending.append((item, weight, fut))
        if self._in_flight is None:
            self._send_next()
        return await fut

    def _send_next(self) -> None:
        batch, weight = [], 0
        while self._pending and len(batch) < self.max_items:
            w = self._pending[0][1]
            if batch and weight + w > self.max_weight:
                break
            batch.append(self._pending.pop(0))
            weight += w
        if not batch:
            return
        self._in_flight = batch
        try:
            self._conn.send([it for it, _, _ in batch])
        except (OSError, AttributeError, ValueError):
            self._fail(EngineStopped(f"the decision engine stopped (exit code {self._proc.exitcode})"))

    def _on_answer(self) -> None:
        batch, self._in_flight = self._in_flight, None
        try:
            results = self._conn.recv()
        except (EOFError, OSError):
            self._in_flight = batch
            self._fail(EngineStopped(f"the decision engine stopped (exit code {self._proc.exitcode})"))
            return
        if batch is None:  # pragma: no cover - an answer nobody asked for
            return
        self.batches += 1
        self.items += len(batch)
        for (_, _, fut), res in zip(batch, results, strict=True):
            if not fut.done():  # the client may have gone away meanwhile
                fut.set_result(res)
        if self._pending:
            self._send_next()
        elif self._retiring:
            self._close_pipe()

    def retire(self) -> None:
        """Stop taking requests; close the pipe (the engine exits) once the ones it holds are answered.

        Call on the event loop that drives the engine (``loop.call_soon_threadsafe``): a hot reload
        switches new requests to the new engine, and the old one finishes what it was given.
        """
        self._retiring = True
        if self._in_flight is None and not self._pending:
            self._close_pipe()

    def _close_pipe(self) -> None:
        if self._conn is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.remove_reader(self._conn.fileno())
            except (RuntimeError, ValueError, OSError):  # pragma: no cover - loop already gone
                pass
        self._conn.close()
        self._conn = None

    @property
    def retiring(self) -> bool:
        """Whether the engine was replaced (it finishes what it holds, then exits)."""
        return self._retiring

    @property
    def busy(self) -> int:
        """Requests sent to the engine or waiting for it."""
        return len(self._in_flight or []) + len(self._pending)

    @property
    def process_alive(self) -> bool:
        """Whether the engine process runs (whatever the state of the pipe)."""
        return self._proc is not None and self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The engine's exit code (None while it runs); -9 after a SIGKILL."""
        return self._proc.exitcode if self._proc is not None else None

    def _fail(self, exc: Exception) -> None:
        waiting = (self._in_flight or []) + self._pending
        self._in_flight, self._pending = None, []
        if self._loop is not None and self._conn is not None:
            self._loop.remove_reader(self._conn.fileno())
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for _, _, fut in waiting:
            if not fut.done():
                fut.set_exception(exc)

    @property
    def pid(self) -> int | None:
        """The engine's process id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Whether the engine process runs."""
        return self._conn is not None and self._proc is not None and self._proc.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the pipe (the engine exits) and reap the process."""
        if self._conn is not None:
            if self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.remove_reader(self._conn.fileno())
                except RuntimeError:  # pragma: no cover - called from another thread at shutdown
                    pass
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()  # it ignores SIGTERM (see _engine_main)
                self._proc.join(timeout)
