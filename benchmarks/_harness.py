"""Small helpers shared by the benchmark scripts: run a step in a fresh process, time it, and read
its peak memory (max RSS) from the kernel, so one step's memory never hides in another's."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def run_measured(code: str, *, env: dict[str, str] | None = None, timeout: float = 3600) -> dict:
    """Run ``code`` in a fresh Python process and measure it.

    ``code`` must leave a dict named ``result`` (its own timings); the harness appends the
    child's own peak RSS (``ru_maxrss`` of the child itself, so steps never mask each other)
    and the wall time of the whole process.

    Args:
        code: Python source to execute with ``python -c``; it defines ``result``.
        env: Extra environment variables.
        timeout: Seconds before the child is killed.

    Returns:
        The child's JSON result plus ``wall_s`` and ``peak_rss_mb``.
    """
    epilogue = (
        "\nimport json as _j, resource as _r\n"
        "result['peak_rss_mb'] = round(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024, 1)\n"
        "print(_j.dumps(result))\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code + epilogue],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    return result


def machine_line() -> str:
    """One line describing this machine and the date, for RESULTS.md."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return (
        f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"{mem_gb:.0f} GB RAM · Python {platform.python_version()} · "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def write_section(results_md: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body``."""
    text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    head = f"## {title}\n"
    start = text.find(head)
    if start >= 0:
        end = text.find("\n## ", start + len(head))
        text = text[:start] + head + body.rstrip() + "\n" + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + head + body.rstrip() + "\n"
    results_md.write_text(text)
