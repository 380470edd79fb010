"""A light closed-loop HTTP/1.1 load generator (asyncio streams, keep-alive, bodies encoded beforehand).

Why not httpx: the client shares this 2-core machine with the server under test, and a full HTTP
client library spends ~1 ms of CPU per request in Python, which the server then cannot use.
Here the client costs a few tens of microseconds per request: it writes a request encoded once,
reads the status line and headers up to the blank line and the body by ``Content-Length``, and
nothing else. It only speaks to servers that answer with ``Content-Length`` (uvicorn, which both
BentoML and ``mlflow models serve`` run on, does for these JSON answers).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np


def _request(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
            break
    if length is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    body = await reader.readexactly(length)
    return status, body


async def _run(host: str, port: int, path: str, bodies: list[bytes], concurrency: int, seconds: float,
               warmup: int, headers: dict[str, str] | None) -> dict:
    requests = [_request(host, port, path, b, headers) for b in bodies]
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    conns = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    for reader, writer in conns:  # warm each connection and the server
        for r in requests[:warmup]:
            writer.write(r)
            await _read_response(reader)
    stop_at = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        reader, writer = conns[k]
        i = k
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            writer.write(requests[i % len(requests)])
            status, _ = await _read_response(reader)
            lat[k].append(time.perf_counter() - t)
            if status != 200:
                errors[k] += 1
            i += concurrency

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - t0
    for _, writer in conns:
        writer.close()
    all_lat = np.array([x for per in lat for x in per]) * 1000
    return {"requests": int(len(all_lat)), "errors": int(sum(errors)), "req_per_s": len(all_lat) / wall,
            "p50_ms": float(np.percentile(all_lat, 50)), "p99_ms": float(np.percentile(all_lat, 99)),
            "mean_ms": float(all_lat.mean())}


def closed_loop(url: str, bodies: list[bytes], concurrency: int, seconds: float, *, warmup: int = 3,
                headers: dict[str, str] | None = None) -> dict:
    """Run ``concurrency`` keep-alive connections, each sending its next request as soon as the last answered.

    Args:
        url: ``http://host:port/path``.
        bodies: JSON request bodies, cycled through.
        concurrency: Connections (requests in flight).
        seconds: How long to measure (after ``warmup`` requests per connection).
        warmup: Requests per connection before the clock starts.
        headers: Extra request headers.

    Returns:
        requests, errors (non-200 answers), req_per_s, p50_ms, p99_ms, mean_ms.
    """
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return asyncio.run(_run(u.hostname or "127.0.0.1", int(u.port or 80), u.path or "/", bodies, concurrency,
                            seconds, warmup, headers))
