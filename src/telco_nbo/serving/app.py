"""The scoring service's logic, independent of the HTTP framework.

:class:`NboApp` is built from :class:`ServeConfig`; :meth:`NboApp.load` loads the champion models,
compiles the policy and the fast scorer, and (when the service was started on a data folder)
precomputes the features of every active account at the folder's ``as_of``. Until ``load`` has
finished :attr:`NboApp.ready` is False (``/readyz`` answers 503). Every public method takes an
already validated request (pydantic, see :mod:`telco_nbo.serving.schemas`) and returns a
JSON-ready dict, or raises :class:`ServingError` with the HTTP status and the problems named.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from telco_nbo.config import get_settings
from telco_nbo.data.io import load_world
from telco_nbo.errors import ConfigError, TelcoNboError
from telco_nbo.features import build_account_features
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.config import load_nbo_config
from telco_nbo.nbo.rank import Policy, core_decisions, rank_core
from telco_nbo.nbo.rules import as_columns
from telco_nbo.serving.batching import MicroBatcher
from telco_nbo.serving.engine import EngineProcess, EngineStopped
from telco_nbo.serving.predlog import PredictionLog, decision_records, encode_json
from telco_nbo.serving.schemas import OPTIONAL_KINDS, REQUIRED_KINDS
from telco_nbo.tracking import CHAMPION, registered_model_name, tracking_session
from telco_nbo.vocabulary import MODEL_KINDS

log = logging.getLogger("telco_nbo.serving")

ENV_CONFIG = "TELCO_NBO_SERVE_CONFIG"
"""Environment variable carrying the service's :class:`ServeConfig` as JSON (set by ``telco-nbo serve``)."""


class ServingError(Exception):
    """A request the service refuses: HTTP status, message and the problems named."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems or [])

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.message, "problems": self.problems}


@dataclass(frozen=True)
class ServeConfig:
    """What the service is started with.

    Attributes:
        tracking_uri: MLflow tracking URI of the registry holding the champions.
        data_dir: Data folder whose accounts can be ranked by id (None: features in the payload only).
        api_key_env: Name of the environment variable holding the API key (None: no auth).
        prediction_log: JSONL prediction log path (None: ``Settings.resolved_prediction_log()``).
        catalog_path: Offer catalog YAML (None: built-in).
        config_path: NBO policy YAML (None: defaults).
        model_dir: Folder of exported models (a built Bento) used instead of the registry.
        engine: Where decisions are computed: ``"thread"`` (in this process, on the
            micro-batching thread) or ``"process"`` (in an engine process beside the HTTP worker,
            see :mod:`telco_nbo.serving.engine`; what ``telco-nbo serve`` uses).
        engine_restart: Restart a dead engine process (with backoff: 0.5 s doubling to 30 s).
        liveness_grace: Seconds a dead engine may stay down (being restarted) before liveness
            (``/livez``) fails, so that an orchestrator replaces a server that cannot recover.
        max_body_bytes: Largest request body (413 beyond, see :mod:`telco_nbo.serving.guard`).
        reload_every: Seconds between polls of the registry; a changed ``@champion`` is loaded
            and switched to (:meth:`NboApp.reload`). None: only ``POST /admin/reload``.
        explain_engine: With ``engine="process"``, answer /explain in an engine process of its
            own, at a lower CPU priority, so that a long explanation never holds up /rank.
        explain_max_cost: Most explanations one /explain may ask for (accounts x models
            explained: the churn model plus each offer in ``offer_ids``); 422 beyond.
    """

    tracking_uri: str | None = None
    data_dir: str | None = None
    api_key_env: str | None = None
    prediction_log: str | None = None
    catalog_path: str | None = None
    config_path: str | None = None
    model_dir: str | None = None
    engine: str = "thread"
    engine_restart: bool = True
    liveness_grace: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    reload_every: float | None = None
    explain_engine: bool = True
    explain_max_cost: int = 5000

    def __post_init__(self) -> None:
        if self.engine not in ("thread", "process"):
            raise ConfigError(f"engine must be 'thread' or 'process', got {self.engine!r}")

    @classmethod
    def from_env(cls) -> ServeConfig:
        """Read the config from :data:`ENV_CONFIG` (JSON), falling back to ``TELCO_NBO_*`` settings."""
        import json

        raw = os.environ.get(ENV_CONFIG)
        if raw:
            try:
                return cls(**json.loads(raw))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{ENV_CONFIG} is not a valid service config: {exc}") from exc
        # No explicit config (e.g. inside a built Bento): TELCO_NBO_* variables; a Bento sets
        # TELCO_NBO_MODEL_DIR to the champions it carries.
        return cls(tracking_uri=os.environ.get("TELCO_NBO_TRACKING_URI"), data_dir=os.environ.get("TELCO_NBO_DATA"),
                   api_key_env=os.environ.get("TELCO_NBO_API_KEY_ENV"), prediction_log=os.environ.get("TELCO_NBO_PREDICTION_LOG"),
                   model_dir=os.environ.get("TELCO_NBO_MODEL_DIR"),
                   engine=os.environ.get("TELCO_NBO_SERVE_ENGINE", "process"))


@dataclass
class _Loaded:
    policy: Any
    scorer: Any
    models: Any
    versions: dict[str, str]
    log: Any
    as_of: Any = None
    index: dict[str, int] = field(default_factory=dict)
    household_rows: dict[str, np.ndarray] = field(default_factory=dict)
    folder_columns: dict[str, np.ndarray] = field(default_factory=dict)
    unscored_offers: list[str] = field(default_factory=list)
    reason_phrases: Any = None


@dataclass
class _Prepared:
    """One /rank request, checked and ready to rank.

    Attributes:
        index: Position in the batch.
        rows: Folder rows to rank (requests by id; the requested accounts' whole households).
        accounts: Payload accounts to rank (requests with features).
        keep: Which of the ranked rows to answer (None: all).
        request_id: For the prediction log.
        log: Whether to log the decisions.
        cols: Columns given directly (the warm-up), instead of rows / accounts.
    """

    index: int
    rows: np.ndarray | None
    accounts: list | None
    keep: list[int] | None
    request_id: str | None
    log: bool = True
    cols: dict[str, np.ndarray] | None = None

    @property
    def size(self) -> int:
        if self.cols is not None:
            return len(next(iter(self.cols.values())))
        return len(self.rows) if self.rows is not None else len(self.accounts)


_KINDS = ("rank", "score", "explain")

EXPLAIN_NICE = 10
"""CPU niceness of the /explain engine: on a busy machine the /rank engine's turn comes first."""

_EXCERPT = 160
"""Characters of an exception's text an answer may carry (never the whole input)."""


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """``text`` cut to ``limit`` characters (errors must not echo a client's megabytes back)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_refusal(exc: BaseException) -> ServingError:
    """The answer to a request whose scoring raised ``exc`` (anything but a :class:`ServingError`).

    Numbers the models cannot take (an integer past 64 bits, an infinity XGBoost refuses) are the
    request's fault: 422 with a short message. Anything else is ours: 500, logged with its
    traceback, and its text never sent to the client.
    """
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, TelcoNboError):
        return ServingError(422, excerpt(str(exc)), [excerpt(p) for p in (getattr(exc, "problems", []) or [])[:10]])
    input_error = isinstance(exc, (OverflowError, ValueError, TypeError, FloatingPointError))
    if not input_error:
        try:
            from xgboost.core import XGBoostError

            input_error = isinstance(exc, XGBoostError)
        except ImportError:  # pragma: no cover - xgboost is a dependency
            pass
    if input_error:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        # XGBoost prefixes its messages with a source location: keep the sentence after it.
        first = first.rsplit(": ", 1)[-1] if first.startswith("[") else first
        log.info("request refused (422): %s: %s", type(exc).__name__, excerpt(first, 120))
        return ServingError(422, "the input cannot be scored: " + excerpt(f"{type(exc).__name__}: {first}", 120))
    log.error("internal error while answering a request", exc_info=exc)
    return ServingError(500, "internal error while answering (see the server log)")


def _encode(body: dict[str, Any]) -> bytes:
    return encode_json(body)


def _request_size(item: tuple[str, Any, str | None]) -> int:
    """Accounts a request names (the micro-batcher's weight)."""
    req = item[1]
    if getattr(req, "account_ids", None) is not None:
        return len(req.account_ids)
    if getattr(req, "accounts", None) is not None:
        return len(req.accounts)
    return 1


def _payload_columns(accounts: list) -> dict[str, np.ndarray]:
    """Feature columns of payload accounts (already validated by the request schema).

    Optional fields no account gives are left out (rules and signals skip or default them); an
    optional number some accounts leave out is NaN, as in the feature builder's own rows (e.g. no
    contract end for a month-to-month account). Requests are checked beforehand (``_select``) so
    that optional yes/no and count fields are given by all of a request's accounts or none.
    """

    # One array per field kind rather than one per field: a request has a few accounts, so the
    # numpy calls, not the values, are the cost. Columns are the (strided) columns of these arrays.
    groups = _required_by_kind()
    cols: dict[str, np.ndarray] = {}
    rows = [a.__dict__ for a in accounts]
    for kind, names in groups.items():
        values = [[r[n] for n in names] for r in rows]
        # None -> NaN is numpy's own float conversion (nullable numbers).
        arr = np.array(values, dtype=_KIND_DTYPES.get(kind, object)).reshape(len(rows), len(names))
        for j, name in enumerate(names):
            cols[name] = arr[:, j]
    for name, kind in OPTIONAL_KINDS.items():
        vals = [r[name] for r in rows]
        given = [v is not None for v in vals]
        if not any(given):
            continue
        if kind != "float_nan" and not all(given):
            # Given for some accounts only: what absence means for the rules fills the others; a
            # field the rules and models do not read (EXTRA_COLUMNS) is left out.
            if name not in _ABSENT_MEANS:
                continue
            vals = [_ABSENT_MEANS[name] if v is None else v for v in vals]
        cols[name] = np.array(vals, dtype=_KIND_DTYPES[kind] if kind != "float_nan" else float)
    return cols


_ABSENT_MEANS: dict[str, Any] = {"account_is_active": True}
"""Value of an optional rule column for an account that leaves it out (the rules' own default)."""


_KIND_DTYPES: dict[str, Any] = {"float_nan": float, "bool": bool, "count": np.int64}


@functools.cache
def _required_by_kind() -> dict[str, list[str]]:
    """Required request fields grouped by kind (float, bool, count, category, id)."""

    return {kind: [n for n, k in REQUIRED_KINDS.items() if k == kind] for kind in dict.fromkeys(REQUIRED_KINDS.values())}


class NboApp:
    """Load once, then answer /rank, /score and /explain."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._loaded: _Loaded | None = None
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        self._batcher: Any = None
        self._batcher_lock = threading.Lock()
        self._engine: Any = None
        self._heavy: Any = None  # the /explain engine (explain_engine)
        self.explain_engine_restarts = 0
        self._swap_lock = threading.Lock()
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.engine_restarts = 0
        self.engine_down_since: float | None = None
        self.engine_error: str | None = None
        self._reload_lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self.reloads = 0
        self._api_key = None
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ConfigError(f"API key variable {config.api_key_env} is not set (or empty)")
            self._api_key = key.encode()

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the models are loaded (here, or in the engine process, which must still run)."""
        if self._engine is not None:
            return self._engine.alive
        return self._loaded is not None

    @property
    def alive(self) -> bool:
        """Liveness: False once the engine process is dead and will not be back in time.

        A dead engine that the supervisor is restarting keeps the server alive for
        :attr:`ServeConfig.liveness_grace` seconds (readiness is False meanwhile); without
        restarts, or past the grace, an orchestrator should replace the server.
        """
        eng = self._engine
        if eng is None or eng.alive:
            return True
        if not self.config.engine_restart or self._supervisor is None or not self._supervisor.is_alive():
            return False
        down = self.engine_down_since
        return down is None or time.monotonic() - down <= self.config.liveness_grace

    def load_in_background(self) -> threading.Thread:
        """Start :meth:`load` in a daemon thread (the server answers /healthz meanwhile)."""
        t = threading.Thread(target=self._load_logged, name="nbo-load", daemon=True)
        t.start()
        return t

    def _load_logged(self) -> None:
        try:
            self.load()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and every scoring route
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the champion models failed")

    def load(self) -> None:
        """Load champions, compile the policy and fast scorer, precompute the folder's features.

        Raises:
            ConfigError: No champion for a model, a bad catalog or config, an unreadable folder.
        """
        t0 = time.perf_counter()
        if self.config.engine == "process":
            engine = EngineProcess(self.config, engine_host)
            try:
                engine.start()
            except EngineStopped as exc:
                raise ConfigError(str(exc)) from None
            self._engine = engine
            self.load_seconds = time.perf_counter() - t0
            log.info("NBO decision engine ready in %.1f s: %s", self.load_seconds, engine.status.get("model_versions"))
            if self.config.engine_restart and self._supervisor is None:
                self._supervisor = threading.Thread(target=self._supervise, name="nbo-engine-supervisor", daemon=True)
                self._supervisor.start()
            if self.config.explain_engine:
                # Ready without it: /explain goes to the main engine until this one has loaded.
                threading.Thread(target=self._start_heavy, name="nbo-explain-engine", daemon=True).start()
            self._start_poller()
            return
        self._loaded = self._build_loaded()
        self.load_seconds = time.perf_counter() - t0
        log.info("NBO service ready in %.1f s: %s", self.load_seconds, self._loaded.versions)
        self._start_poller()

    def _build_loaded(self, prediction_log: Any = None) -> _Loaded:
        cfg = self.config
        policy = Policy.build(load_catalog(cfg.catalog_path), load_nbo_config(cfg.config_path))
        # XGBoost and the models load only where decisions are made (the engine), not in the HTTP worker.
        from telco_nbo.scoring import ChampionModels, FastScorer

        models = ChampionModels.load_dir(cfg.model_dir) if cfg.model_dir else ChampionModels.load(cfg.tracking_uri)
        scorer = FastScorer(models, policy, nthread=1)
        if prediction_log is None:
            path = Path(cfg.prediction_log) if cfg.prediction_log else get_settings().resolved_prediction_log()
            prediction_log = PredictionLog(path)
        loaded = _Loaded(policy, scorer, models, dict(models.versions), prediction_log,
                         unscored_offers=scorer.unknown_offers())
        if cfg.data_dir:
            self._load_folder(loaded, Path(cfg.data_dir))
        # Warm up every path once so the first request does not pay for lazy initialisation.
        if loaded.folder_columns:
            one = {k: v[:1] for k, v in loaded.folder_columns.items()}
            self._rank_group(loaded, [_Prepared(0, None, None, None, None, log=False, cols=one)], 3, False, [None], [])
        return loaded

    # ---- hot reload -------------------------------------------------------------------------------

    @property
    def model_versions(self) -> dict[str, str] | None:
        """Versions of the models answering now."""
        if self._engine is not None:
            return dict((self._engine.status or {}).get("model_versions") or {}) or None
        return dict(self._loaded.versions) if self._loaded is not None else None

    def registry_versions(self) -> dict[str, str]:
        """Versions the service would load now: the registry's ``@champion`` (or the model folder's).

        Raises:
            ConfigError: A model has no champion, or the folder no ``versions.json``.
        """
        if self.config.model_dir:
            try:
                raw = json.loads((Path(self.config.model_dir) / "versions.json").read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.config.model_dir} holds no versions.json: {exc}") from exc
            return {str(k): str(v) for k, v in sorted(raw.items())}
        from mlflow.exceptions import MlflowException

        out: dict[str, str] = {}
        with tracking_session(self.config.tracking_uri) as client:
            for kind in MODEL_KINDS:
                name = registered_model_name(kind)
                try:
                    out[name] = str(client.get_model_version_by_alias(name, CHAMPION).version)
                except MlflowException as exc:
                    raise ConfigError(f"model {name!r} has no version with alias '{CHAMPION}'") from exc
        return dict(sorted(out.items()))

    def reload(self, force: bool = False) -> dict[str, Any]:
        """Load the current champions beside the models answering now, then switch to them atomically.

        Requests keep being answered meanwhile by the old models; a request is answered wholly by
        the old or wholly by the new ones (its ``model_versions`` say which). With the engine
        process, a new engine loads; new requests go to it once it is ready, and the old engine
        answers what it holds, then exits. If loading fails, the old models keep answering.

        Args:
            force: Reload even if the champions' versions are unchanged.

        Returns:
            ``reloaded`` (whether anything changed), ``model_versions``, ``previous``, ``seconds``.

        Raises:
            ServingError: Not loaded yet (503) or the new champions failed to load (500).
        """
        with self._reload_lock:
            previous = self.model_versions
            if previous is None:
                raise ServingError(503, "service not ready: nothing to reload yet")
            t0 = time.perf_counter()
            try:
                latest = self.registry_versions()
            except (ConfigError, OSError) as exc:
                raise ServingError(500, "cannot read the champions: " + excerpt(str(exc))) from None
            if latest == previous and not force:
                return {"reloaded": False, "model_versions": previous, "previous": previous, "seconds": 0.0}
            if self._engine is not None:
                new = EngineProcess(self.config, engine_host)
                try:
                    new.start()
                except EngineStopped as exc:
                    log.error("reload failed, still answering with %s: %s", previous, excerpt(str(exc), 300))
                    raise ServingError(500, "the new champions failed to load; still answering with the "
                                            "previous ones: " + excerpt(str(exc))) from None
                if self._closing.is_set():
                    new.stop()
                    raise ServingError(503, "shutting down")
                self._swap_engine(new)
                if self._heavy is not None:
                    # Until the new /explain engine is ready, /explain goes to the new main engine
                    # (never to models older than /rank's).
                    old_heavy, self._heavy = self._heavy, None
                    self._retire(old_heavy)
                    threading.Thread(target=self._start_heavy, args=(False,), name="nbo-explain-engine",
                                     daemon=True).start()
            else:
                try:
                    loaded = self._build_loaded(self._loaded.log if self._loaded is not None else None)
                except Exception as exc:  # noqa: BLE001 - the old models keep answering
                    log.error("reload failed, still answering with %s: %s", previous, excerpt(str(exc), 300))
                    raise ServingError(500, "the new champions failed to load; still answering with the "
                                            "previous ones: " + excerpt(str(exc))) from None
                self._loaded = loaded  # one reference: a batch uses the old or the new, whole
            self.reloads += 1
            versions = self.model_versions
            seconds = time.perf_counter() - t0
            log.info("reloaded the champions in %.1f s: %s -> %s", seconds, previous, versions)
            return {"reloaded": True, "model_versions": versions, "previous": previous, "seconds": round(seconds, 3)}

    def _start_poller(self) -> None:
        every = self.config.reload_every
        if every and self._poller is None:
            self._poller = threading.Thread(target=self._poll, args=(float(every),), name="nbo-reload-poll", daemon=True)
            self._poller.start()

    def _poll(self, every: float) -> None:
        """Reload whenever the registry's champions change (``--reload-every``)."""
        while not self._closing.wait(every):
            try:
                self.reload()
            except ServingError as exc:
                log.warning("registry poll: %s", exc.message)
            except Exception as exc:  # noqa: BLE001 - a poll must never end the poller
                log.warning("registry poll failed: %s", excerpt(f"{type(exc).__name__}: {exc}", 300))

    def _load_folder(self, loaded: _Loaded, folder: Path) -> None:
        if not folder.is_dir():
            raise ConfigError(f"data folder {folder} does not exist")
        world = load_world(folder)
        as_of = world.as_of_date()
        feats = build_account_features(world.tables, as_of)
        loaded.as_of = as_of.date()
        loaded.folder_columns = as_columns(feats)
        ids = feats["account_id"].astype(str).tolist()
        loaded.index = {a: i for i, a in enumerate(ids)}
        hh = feats["household_id"].astype(str).to_numpy()
        order = np.argsort(hh, kind="stable")
        starts = np.r_[0, np.flatnonzero(hh[order][1:] != hh[order][:-1]) + 1]
        loaded.household_rows = {str(hh[order[a]]): order[a:b] for a, b in zip(starts, np.r_[starts[1:], len(hh)], strict=True)}

    # ---- the engine's supervisor (engine="process") ------------------------------------------------

    RESTART_BACKOFF = (0.5, 30.0)
    """First and longest wait before restarting a dead engine (doubling in between)."""

    def _supervise(self, role: str = "main") -> None:
        """Watch an engine process; restart it when it dies, with backoff, until :meth:`close`.

        Runs in its own thread (one per engine): a restart loads the models (seconds), which must
        not hold up the event loop that answers /livez, /readyz and the refusals meanwhile.
        """
        attr = "_engine" if role == "main" else "_heavy"
        what = "decision engine" if role == "main" else "/explain engine"
        first, longest = self.RESTART_BACKOFF
        backoff = first
        down_since: float | None = None
        while not self._closing.wait(0.1):
            eng = getattr(self, attr)
            if eng is None or eng.process_alive or eng.retiring or getattr(self, attr) is not eng:
                if eng is not None and eng.started_at and time.monotonic() - eng.started_at > 60:
                    backoff = first  # it has run a while: the next death starts the backoff afresh
                continue
            if down_since is None:
                down_since = time.monotonic()
                if role == "main":
                    self.engine_down_since = down_since
            log.error("the %s (pid %s) died with exit code %s; restarting it in %.1f s",
                      what, eng.pid, eng.exitcode, backoff)
            if self._closing.wait(backoff):
                return
            backoff = min(backoff * 2, longest)
            new = EngineProcess(self.config, engine_host, nice=0 if role == "main" else EXPLAIN_NICE)
            try:
                new.start()
            except EngineStopped as exc:
                if role == "main":
                    self.engine_error = excerpt(str(exc))
                log.error("restarting the %s failed: %s", what, excerpt(str(exc), 300))
                self._swap_engine(new, role)  # dead too: the next round retries after a longer wait
                continue
            if self._closing.is_set():
                new.stop()
                return
            self._swap_engine(new, role)
            log.info("the %s is back (pid %s) after %.1f s down", what, new.pid, time.monotonic() - down_since)
            down_since = None
            if role == "main":
                self.engine_restarts += 1
                self.engine_error = None
                self.engine_down_since = None
            else:
                self.explain_engine_restarts += 1

    def _start_heavy(self, supervise: bool = True) -> None:
        """Start the /explain engine (see :attr:`ServeConfig.explain_engine`) and, once, its supervisor."""
        new = EngineProcess(self.config, engine_host, nice=EXPLAIN_NICE)
        try:
            new.start()
        except EngineStopped as exc:
            log.error("the /explain engine did not start (the main engine answers /explain): %s", excerpt(str(exc), 300))
            return
        if self._closing.is_set():
            new.stop()
            return
        self._swap_engine(new, role="heavy")
        if supervise and self.config.engine_restart:
            threading.Thread(target=self._supervise, args=("heavy",), name="nbo-explain-supervisor", daemon=True).start()

    def _swap_engine(self, new: Any, role: str = "main") -> None:
        """Send new requests to ``new``; the old engine answers what it holds, then exits."""
        attr = "_engine" if role == "main" else "_heavy"
        with self._swap_lock:
            old = getattr(self, attr)
            setattr(self, attr, new)
        if old is not None:
            self._retire(old)

    def _retire(self, old: Any) -> None:
        loop = old._loop
        try:
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(old.retire)
            else:
                old.retire()
        except RuntimeError:  # the loop closed meanwhile: nothing drives the old pipe any more
            old.retire()
        threading.Thread(target=self._reap, args=(old,), name="nbo-engine-reaper", daemon=True).start()

    def _reap(self, old: Any, timeout: float = 60.0) -> None:
        # The old engine exits when its pipe closes (once idle); wait for it, then make sure.
        proc = old._proc
        if proc is None:
            return
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()  # the engine ignores SIGTERM
            proc.join(5)

    @property
    def has_api_key(self) -> bool:
        """Whether callers must send the API key."""
        return self._api_key is not None

    def status(self, detail: bool = True) -> dict[str, Any]:
        """Readiness details (and how many batches the micro-batcher formed).

        Args:
            detail: Include process ids and error texts (for an authenticated caller only).
        """
        d = self._loaded
        out = {"ready": self.ready, "error": self.load_error, "load_seconds": self.load_seconds,
               "model_versions": d.versions if d else None, "accounts_in_folder": len(d.index) if d else 0,
               "as_of": d.as_of.isoformat() if d and d.as_of else None, "engine": self.config.engine}
        if self._engine is not None and self._engine.status:
            out.update({k: self._engine.status[k] for k in ("model_versions", "accounts_in_folder", "as_of")})
            out["engine_pid"] = self._engine.pid
        if self.config.engine == "process":
            out["engine_alive"] = bool(self._engine is not None and self._engine.alive)
            out["engine_restarts"] = self.engine_restarts
            out["engine_error"] = self.engine_error
        out["reloads"] = self.reloads
        if self.config.engine == "process" and self.config.explain_engine:
            out["explain_engine_alive"] = bool(self._heavy is not None and self._heavy.alive)
            out["explain_engine_restarts"] = self.explain_engine_restarts
            if self._heavy is not None:
                out["explain_engine_pid"] = self._heavy.pid
        if not detail:
            out.pop("engine_pid", None)
            out.pop("explain_engine_pid", None)
            for k in ("error", "engine_error"):
                if out.get(k):
                    out[k] = "see the server log"
        counter = self._engine if self._engine is not None else self._batcher
        out["batches"] = counter.batches if counter is not None else 0
        out["requests_batched"] = counter.items if counter is not None else 0
        return out

    # ---- auth -----------------------------------------------------------------------------------

    def check_api_key(self, headers: Mapping[str, str]) -> None:
        """Refuse the request (401) unless it carries the API key.

        The key is read from ``X-API-Key`` or ``Authorization: Bearer <key>`` and compared in
        constant time.
        """
        if self._api_key is None:
            return
        given = headers.get("x-api-key")
        if given is None:
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
        if not given:
            raise ServingError(401, "missing API key: send it in the X-API-Key header")
        if not hmac.compare_digest(given.encode(), self._api_key):
            raise ServingError(401, "wrong API key")

    # ---- request handling -----------------------------------------------------------------------

    def _require(self) -> _Loaded:
        if self._loaded is None:
            why = f" (loading failed: {self.load_error})" if self.load_error else " (models are loading)"
            raise ServingError(503, "service not ready" + why)
        return self._loaded

    def _columns(self, loaded: _Loaded, req: Any) -> dict[str, np.ndarray]:
        """Feature columns of the accounts a request names (ids looked up, or the payload)."""
        rows, accounts = self._select(loaded, req)
        if rows is not None:
            return {k: v[rows] for k, v in loaded.folder_columns.items()}
        return _payload_columns(accounts)

    def _select(self, loaded: _Loaded, req: Any) -> tuple[np.ndarray | None, list | None]:
        """Check which accounts a request names: their folder rows (by id) or its payload accounts.

        Raises:
            ServingError: Unknown (404) or duplicate ids, no data folder, duplicate payload ids
                (409: two accounts of one request claim one id).
        """
        if req.account_id is not None or req.account_ids is not None:
            ids = [req.account_id] if req.account_id is not None else list(req.account_ids)
            if not loaded.index:
                raise ServingError(400, "this service was started without a data folder: send the account's "
                                        "features ('account' / 'accounts') instead of an id")
            unknown = [a for a in ids if a not in loaded.index]
            if unknown:
                raise ServingError(404, f"unknown account_id: {unknown[:10]}",
                                   [f"account {a} is not an active account of the data folder" for a in unknown[:10]])
            if len(set(ids)) != len(ids):
                dup = sorted({a for a in ids if ids.count(a) > 1})
                raise ServingError(400, f"duplicate account_id in account_ids: {dup[:10]}")
            return np.fromiter((loaded.index[a] for a in ids), dtype=np.int64, count=len(ids)), None
        accounts = [req.account] if req.account is not None else list(req.accounts)
        ids = [a.account_id for a in accounts]
        if len(set(ids)) != len(ids):
            dup = sorted({a for a in ids if ids.count(a) > 1})
            raise ServingError(409, f"duplicate account_id in accounts: {dup[:10]}",
                               ["two accounts of one request have the same account_id"])
        return None, accounts

    def _check_offers(self, loaded: _Loaded, offer_ids: list[str] | None) -> list[int]:
        ids = loaded.policy.offers.ids.tolist()
        if offer_ids is None:
            return list(range(len(ids)))
        unknown = [o for o in offer_ids if o not in ids]
        if unknown:
            raise ServingError(400, f"unknown offer_id: {unknown[:10]}", [f"offer_ids: {o!r} is not in the catalog "
                                                                          f"(known: {', '.join(ids)})" for o in unknown[:10]])
        return [ids.index(o) for o in offer_ids]

    def rank(self, req: Any, request_id: str | None = None) -> dict[str, Any]:
        """Answer ``/rank``: a decision per account, logged to the prediction log.

        Accounts named by id are ranked together with the other active accounts of their
        households (from the data folder), so the household rules (one promotional offer per
        household, no conflicting offers) hold across the household, not only within the request;
        only the requested accounts are returned and logged. Accounts sent as features are ranked
        as a batch: the household rules hold within it.

        Raises:
            ServingError: The request is refused (status and problems named).
        """
        out = self.rank_many([(req, request_id)])[0]
        if isinstance(out, ServingError):
            raise out
        return out

    def submit(self, kind: str, req: Any, request_id: str | None = None) -> Future:
        """Queue a ``rank`` / ``score`` / ``explain`` request; the future holds ``(http_status, json_bytes)``.

        Requests are answered by the micro-batcher (:mod:`telco_nbo.serving.batching`): /rank
        requests waiting together are ranked in one call, in this process. With the engine
        process, use :meth:`answer_async` (one driver per engine pipe).
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        if self._engine is not None:
            raise RuntimeError("with the engine process, answer requests with answer_async")
        if not self.ready:
            fut: Future = Future()
            try:
                self._require()
            except ServingError as exc:
                fut.set_result((exc.status, _encode(exc.body())))
            return fut
        if self._batcher is None:
            with self._batcher_lock:
                if self._batcher is None:
                    self._batcher = MicroBatcher(self.answer, max_items=64, size=_request_size,
                                                 max_weight=512, name="nbo-batcher")
        return self._batcher.submit((kind, req, request_id))

    async def answer_async(self, kind: str, req: Any, request_id: str | None = None) -> tuple[int, bytes]:
        """Answer one request from an event loop: ``(http_status, json_bytes)`` (what the service routes await).

        With the engine process, the request goes down the engine's pipe in the next batch; in
        thread mode, through the micro-batcher (:meth:`submit`).
        """
        import asyncio

        if kind == "explain":
            try:
                self._check_explain_cost(req)
            except ServingError as exc:
                return exc.status, _encode(exc.body())
        if self._engine is None:
            return await asyncio.wrap_future(self.submit(kind, req, request_id))
        if kind not in _KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        if not self.ready:
            if self._engine is not None:  # it ran, then died: being restarted
                return self._engine_stopped()
            try:
                self._require()
            except ServingError as exc:
                return exc.status, _encode(exc.body())
        eng = self._engine
        if kind == "explain" and self._heavy is not None and self._heavy.alive:
            eng = self._heavy  # its own queue and process: a long explanation never holds up /rank
        try:
            return await eng.answer((kind, req, request_id), _request_size((kind, req, request_id)))
        except EngineStopped:
            return self._engine_stopped()

    def _check_explain_cost(self, req: Any) -> None:
        """Refuse (422) an /explain that asks for more explanations than one request may."""
        n = _request_size(("explain", req, None))
        cost = n * (1 + len(getattr(req, "offer_ids", None) or []))
        cap = self.config.explain_max_cost
        if cost > cap:
            raise ServingError(422, f"/explain asks for {cost} explanations (accounts x models); at most {cap} "
                                    "per request: split it")

    def _engine_stopped(self) -> tuple[int, bytes]:
        # The supervisor restarts the engine (and logs it, once); until then /readyz says 503.
        why = "the decision engine stopped" + ("; it is being restarted" if self.config.engine_restart else "")
        return 503, _encode(ServingError(503, f"service not ready ({why})").body())

    def answer(self, items: list[tuple[str, Any, str | None]]) -> list[tuple[int, bytes]]:
        """Answer requests: ``(kind, request, request_id)`` -> ``(http_status, json_bytes)``, in order.

        The /rank requests among them are ranked together (:meth:`rank_many`).
        """
        out: list[tuple[int, bytes] | None] = [None] * len(items)
        ranks = [k for k, it in enumerate(items) if it[0] == "rank"]
        if ranks:
            for k, res in zip(ranks, self.rank_many([(items[k][1], items[k][2]) for k in ranks]), strict=True):
                out[k] = (res.status, _encode(res.body())) if isinstance(res, ServingError) else (200, _encode(res))
        for k, (kind, req, _) in enumerate(items):
            if kind == "rank":
                continue
            try:
                out[k] = (200, _encode(self.score(req) if kind == "score" else self.explain(req)))
            except Exception as exc:  # noqa: BLE001 - one request's error is that request's answer
                err = as_refusal(exc)
                out[k] = (err.status, _encode(err.body()))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the supervisor, the micro-batcher and the engine process."""
        self._closing.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(10)
        if self._batcher is not None:
            self._batcher.close()
        if self._engine is not None:
            self._engine.stop()
        if self._heavy is not None:
            self._heavy.stop()
        if self._loaded is not None:
            self._loaded.log.close()

    def rank_many(self, items: list[tuple[Any, str | None]]) -> list[dict[str, Any] | ServingError]:
        """Answer several ``/rank`` requests with one scoring and ranking call where possible.

        Each request decides exactly as it would alone: its households are keyed apart from the
        other requests' in the household step (``rank_core(groups=...)``), and every other step
        works row by row. Requests that cannot share a call (another ``top_k``, other optional
        columns) form their own group; a request that fails is answered with its own error, and
        if a shared call fails its requests are re-run one by one so that each gets its own answer.

        Returns:
            Per request, in order: the response dict, or the :class:`ServingError` refusing it.
        """
        try:
            loaded = self._require()
        except ServingError as exc:
            return [exc] * len(items)

        optional_other = [c for c, k in OPTIONAL_KINDS.items() if k != "float_nan"]
        results: list[dict[str, Any] | ServingError | None] = [None] * len(items)
        groups: dict[tuple, list[_Prepared]] = {}
        for k, (req, request_id) in enumerate(items):
            try:
                prep = self._prepare(loaded, k, req, request_id)
            except Exception as exc:  # noqa: BLE001 - this request's error is this request's answer
                results[k] = as_refusal(exc)
                continue
            mr = bool(getattr(req, "model_reasons", False))
            # Requests share a call when their columns line up: the source (folder rows or payload
            # kinds fixes the dtypes) and the optional yes/no and count fields given; optional
            # numbers are NaN where absent, so they do not split groups.
            if prep.rows is not None:
                key = (req.top_k, mr, True, frozenset())
            else:
                first = prep.accounts[0]
                key = (req.top_k, mr, False, frozenset(c for c in optional_other if getattr(first, c) is not None))
            groups.setdefault(key, []).append(prep)
        records: list[dict] = []
        owners: list[int] = []  # which request each record answers
        for (top_k, mr, _, _), members in groups.items():
            if len(members) > 1:
                try:
                    self._rank_group(loaded, members, top_k, mr, results, records, owners)
                    continue
                except Exception:  # noqa: BLE001 - someone's input breaks the shared call
                    for p in members:  # answer each request on its own (drop any half-written answers)
                        results[p.index] = None
            for p in members:
                try:
                    self._rank_group(loaded, [p], top_k, mr, results, records, owners)
                except Exception as exc:  # noqa: BLE001 - this request's error is this request's answer
                    results[p.index] = as_refusal(exc)
        if records:
            try:
                loaded.log.append(records)
            except OSError as exc:
                # No decision leaves without its audit line: the requests that made these records
                # are refused (503, retry later); the engine keeps running and the log reopens.
                log.error("the prediction log %s cannot be written: %s", loaded.log.path, excerpt(str(exc), 200))
                refused = ServingError(503, "the prediction log cannot be written; decisions are not served until it can")
                for k in set(owners):
                    results[k] = refused
        return results  # type: ignore[return-value]

    def _prepare(self, loaded: _Loaded, index: int, req: Any, request_id: str | None) -> _Prepared:
        """Check a /rank request and work out what to rank: ids widen to their whole households."""
        rows, accounts = self._select(loaded, req)
        keep = None
        if rows is not None and loaded.household_rows:
            hh = loaded.folder_columns["household_id"][rows]
            wide = np.unique(np.concatenate([loaded.household_rows[str(h)] for h in set(hh.tolist())]))
            if len(wide) > len(rows):
                pos = {int(r): i for i, r in enumerate(wide.tolist())}
                keep = [pos[int(r)] for r in rows.tolist()]
                rows = wide
        return _Prepared(index, rows, accounts, keep, request_id)

    def _rank_group(self, loaded: _Loaded, members: list[_Prepared], top_k: int, model_reasons: bool,
                    results: list, records: list[dict], owners: list[int] | None = None) -> None:
        """Rank the members' rows in one call; put each member's answer in ``results``, its log lines in ``records``."""

        sizes = [p.size for p in members]
        offsets = np.r_[0, np.cumsum(sizes)]
        if members[0].cols is not None:
            cols = members[0].cols
        elif members[0].rows is not None:
            rows = members[0].rows if len(members) == 1 else np.concatenate([p.rows for p in members])
            cols = {k: v[rows] for k, v in loaded.folder_columns.items()}
        else:
            cols = _payload_columns([a for p in members for a in p.accounts])
        group_keys = None
        if len(members) > 1:
            hh = np.asarray(cols["household_id"]).astype(str).tolist()
            owner = np.repeat(np.arange(len(members)), sizes).tolist()
            group_keys = np.array([f"{o}\x1f{h}" for o, h in zip(owner, hh, strict=True)], dtype=object)
        try:
            aligned = loaded.scorer.score(cols, reasons=model_reasons)
            core = rank_core(loaded.policy, cols, aligned, top_k, groups=group_keys)
        except TelcoNboError as exc:
            raise ServingError(422, str(exc), list(getattr(exc, "problems", []) or [])) from None
        decisions = core_decisions(core, loaded.as_of)
        log_rows: list[int] = []
        log_ids: list[str | None] = []
        for p, a, b in zip(members, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
            rows_p = list(range(a, b)) if p.keep is None else [a + k for k in p.keep]
            mine = [decisions[i] for i in rows_p]
            results[p.index] = {"decisions": mine, "model_versions": loaded.versions}
            if p.log:
                log_rows += rows_p
                log_ids += [p.request_id] * len(rows_p)
                if owners is not None:
                    owners += [p.index] * len(rows_p)
        if log_rows:
            records.extend(decision_records(
                decisions, cols, loaded.scorer.logged_features,
                {"churn_probability": aligned.churn, "clv": aligned.clv, "retention_uplift": aligned.retention_uplift},
                aligned.propensity, loaded.policy.offers.ids.tolist(), log_ids, rows=log_rows))

    def score(self, req: Any) -> dict[str, Any]:
        """Answer ``/score``: churn, CLV, retention uplift and propensity per offer."""
        loaded = self._require()
        which = self._check_offers(loaded, req.offer_ids)
        cols = self._columns(loaded, req)
        try:
            s = loaded.scorer.score(cols)
        except TelcoNboError as exc:
            raise ServingError(422, str(exc), list(getattr(exc, "problems", []) or [])) from None
        ids = loaded.policy.offers.ids.tolist()
        out = []
        for i, a in enumerate(np.asarray(cols["account_id"]).tolist()):
            out.append({
                "account_id": str(a), "churn_probability": float(s.churn[i]), "clv": float(s.clv[i]),
                "retention_uplift": float(s.retention_uplift[i]),
                "propensity": {ids[j]: (None if np.isnan(s.propensity[i, j]) else float(s.propensity[i, j])) for j in which},
            })
        return {"scores": out, "model_versions": loaded.versions}

    def explain(self, req: Any) -> dict[str, Any]:
        """Answer ``/explain``: SHAP reason codes of the churn score (and of chosen offers' propensity)."""
        loaded = self._require()
        self._check_explain_cost(req)
        which = self._check_offers(loaded, req.offer_ids or [])
        cols = self._columns(loaded, req)
        try:
            churn = loaded.scorer.churn_reasons(cols, req.k)
            prop = loaded.scorer.propensity_reasons(cols, which, req.k) if which else None
        except TelcoNboError as exc:
            raise ServingError(422, str(exc), list(getattr(exc, "problems", []) or [])) from None
        ids = loaded.policy.offers.ids.tolist()
        out = []
        for i, a in enumerate(np.asarray(cols["account_id"]).tolist()):
            item = {"account_id": str(a), "churn": [_reason(r) for r in churn[i]], "propensity": {}}
            if prop is not None:
                item["propensity"] = {ids[j]: [_reason(r) for r in prop[i][k]] for k, j in enumerate(which)}
            out.append(item)
        return {"explanations": out, "model_versions": loaded.versions}


def engine_host(config: dict[str, Any]) -> NboApp:
    """Build the app an engine process answers with, from the service's config as a dict.

    The engine runs the decisions in-process (``engine="thread"``); the key, the registry poll and
    the supervision belong to the HTTP worker that owns the engine.
    """
    return NboApp(ServeConfig(**{**config, "engine": "thread", "api_key_env": None, "reload_every": None}))


def _reason(r: Any) -> dict[str, Any]:
    return {"feature": r.feature, "value": r.value, "contribution": r.contribution, "direction": r.direction,
            "sentence": r.sentence}
