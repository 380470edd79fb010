"""Serving benchmark: in-process batch ranking vs raw XGBoost, and HTTP /rank vs ``mlflow models serve``.

What is measured (one run, this machine; results into benchmarks/RESULTS.md, section "Serving"):

1. **Batch, in process, 100k accounts.** Baseline: ``Booster.inplace_predict`` of every model a
   ranking needs (churn, offer propensity for all catalog offers, the uplift learner's boosters;
   the CLV model reuses the churn booster) on float32 matrices built beforehand — the floor any
   ranking on these models pays. Ours: the numpy fast path (building the model matrices from the
   feature columns + the same predictions + CLV + rules + value + household selection), then
   separately the long audit table (one row per account x offer) and the batch provider path
   (``rank_batch`` with :class:`~telco_nbo.scoring.ChampionScoreProvider`).
2. **HTTP, one account per request.** ``POST /rank`` (features in the payload, and by account id)
   on ``telco-nbo serve`` (engine process, the default; and ``--engine thread`` at concurrency 8)
   vs ``POST /invocations`` on ``mlflow models serve --env-manager local`` serving the churn model
   alone, at each ``--concurrency`` (default 1 and 8), from the light client of ``_loadgen.py`` (one
   process, keep-alive connections): requests/s, p50, p99, each server process's CPU per request,
   the mean batch, the 1-minute load average after the run. With ``--wrk`` the same routes again
   from ``wrk`` (``benchmarks/wrk_post.lua``), when it is installed.
3. **Optional scenarios.** ``--explain-load``: ``/rank`` at concurrency 8 while 1,000-account
   ``/explain`` requests run back to back, on the shipped service (``/explain`` in its own engine)
   and with ``--no-explain-engine`` (``/explain`` in the decision engine, as before that engine
   existed). ``--compare-setups``: concurrency-8 ``/rank`` on the world under test, the same
   champions without a data folder, the same without the ``/explain`` engine, and the small bench
   world, in turns (round-robin), so world size, data-folder lookups and the ``/explain`` engine are
   told apart in one run.

By default a synthetic world and its models are built once into ``--workdir`` (the real training
pipeline with default model sizes and no tuning) and reused on the next run. ``--data DIR
--tracking-uri URI`` measure an existing world and its ``@champion`` models instead (e.g. the
output of ``telco-nbo demo --out DIR``: ``--data DIR/data --tracking-uri sqlite:///DIR/mlflow.db``).

Usage: ``python benchmarks/bench_serving.py [--workdir DIR] [--accounts 100000] [--seconds 15] [--http-repeat 3]
[--data DIR --tracking-uri URI] [--concurrency 1,8,32] [--wrk] [--explain-load] [--compare-setups]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(workdir: Path, households: int, seed: int) -> dict:
    """World + champions (reused when present)."""
    from telco_nbo.training.config import load_config
    from telco_nbo.training.pipeline import train_all
    from telco_nbo.vocabulary import MODEL_KINDS

    data, uri = workdir / "data", f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "trained.json").exists():
        from telco_nbo.data.io import write_world
        from telco_nbo.data.synthetic import generate_world

        workdir.mkdir(parents=True, exist_ok=True)
        # The models' artifacts beside their store, not in the working folder.
        os.environ.setdefault("TELCO_NBO_ARTIFACT_ROOT", (workdir / "mlartifacts").resolve().as_uri())
        write_world(generate_world(households, seed=seed), data, overwrite=True)
        cfgs = {k: load_config(k, trials=0, seed=seed, tracking_uri=uri, optuna_storage=f"sqlite:///{workdir / 'optuna.db'}",
                               shap_rows=200) for k in MODEL_KINDS}
        res = train_all(data, cfgs)
        force_champions(tuple(res), uri, f"serving benchmark on a {households:,}-household world: the ranking "
                                         "needs every champion")
        (workdir / "trained.json").write_text(json.dumps({k: r.model_version for k, r in res.items()}))
    return {"data": data, "uri": uri}


def force_champions(kinds: tuple[str, ...], uri: str, reason: str) -> None:
    """Promote, with ``reason`` recorded, the latest version of each kind the quality floor left without a champion.

    On a small world the floor may refuse a first version (the uplift holdout is a few hundred
    enrolments); the benchmark measures serving speed, which needs all four champions (as the
    demo does, the forced version carries the tags that say so).
    """
    from telco_nbo.tracking import CHAMPION, promote, registered_model_name, tracking_session

    for kind in kinds:
        with tracking_session(uri) as client:
            try:
                client.get_model_version_by_alias(registered_model_name(kind), CHAMPION)
                continue
            except Exception:  # noqa: BLE001 - MLflow raises its own exception type for a missing alias
                pass
        print(f"{kind}: no champion (quality floor); forced for the benchmark", flush=True)
        promote(kind, tracking_uri=uri, force=True, reason=reason)


def inflate(features, n: int):
    """Repeat a feature frame to ``n`` accounts with distinct account and household ids."""
    import pandas as pd

    reps = -(-n // len(features))
    parts = []
    for k in range(reps):
        p = features.copy()
        p["account_id"] = p["account_id"].astype(str) + f"-{k}"
        p["household_id"] = p["household_id"].astype(str) + f"-{k}"
        parts.append(p)
    return pd.concat(parts, ignore_index=True).head(n)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_batch(store: dict, n: int, repeat: int) -> dict:
    import pandas as pd

    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features
    from telco_nbo.nbo.rank import Policy, core_frame, rank_batch, rank_core
    from telco_nbo.nbo.rules import as_columns, validate_features
    from telco_nbo.scoring import ChampionModels, ChampionScoreProvider, FastScorer

    world = load_world(store["data"])
    feats = inflate(build_account_features(world.tables, pd.Timestamp(world.meta["as_of"])), n)
    policy = Policy.build()
    scorer = FastScorer(ChampionModels.load(store["uri"]), policy, nthread=0)
    cols = as_columns(feats)
    attrs = scorer.offer_attributes
    mats = [(b, b.matrix(cols, n, attrs if b.per_offer else None)) for b in scorer.boosters()]

    def raw() -> None:
        for b, X in mats:
            b.predict(X)

    def fast() -> None:
        rank_core(policy, cols, scorer.score(cols), 3)

    raw_s = best_of(raw, repeat)
    fast_s = best_of(fast, repeat)
    t = time.perf_counter()
    aligned = scorer.score(cols)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    core = rank_core(policy, cols, aligned, 3)
    core_s = time.perf_counter() - t
    t = time.perf_counter()
    validate_features(feats)
    validate_s = time.perf_counter() - t
    t = time.perf_counter()
    frame = core_frame(core, world.meta["as_of"])
    frame_s = time.perf_counter() - t
    t = time.perf_counter()
    provider = ChampionScoreProvider(store["uri"], reason_k=0)
    scores = provider.score(feats, policy.catalog)
    ref_score_s = time.perf_counter() - t
    t = time.perf_counter()
    rank_batch(feats, scores, top_k=3, policy=policy)
    ref_rank_s = time.perf_counter() - t
    return {
        "accounts": n, "offers": len(policy.offers), "rows_predicted": int(sum(len(X) for _, X in mats)),
        "boosters": len(mats), "raw_inplace_predict_s": raw_s, "fast_rank_s": fast_s, "fast_score_s": score_s,
        "fast_rules_value_selection_s": core_s, "validate_features_s": validate_s, "long_table_s": frame_s,
        "long_table_rows": len(frame), "reference_provider_score_s": ref_score_s, "reference_rank_batch_s": ref_rank_s,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict, ready_url: str, log: Path, timeout: float = 180) -> subprocess.Popen:
    import httpx

    fh = log.open("w")
    proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server died: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise TimeoutError(f"{args[:4]} never got ready: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _tree_cpu(proc: subprocess.Popen) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by the server process and every descendant (pid -> (role, seconds))."""
    import psutil

    root = psutil.Process(proc.pid)
    base_nice = root.nice()
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            cmd = " ".join(p.cmdline())
            niced = p.nice() > base_nice
        except psutil.Error:
            continue
        # The /explain engine is the engine process started at a lower CPU priority.
        role = (("explain engine" if niced else "engine") if "spawn_main" in cmd else "http worker"
                if "worker" in cmd or "uvicorn" in cmd or "scoring_server" in cmd else "supervisor")
        out[p.pid] = (role, t.user + t.system)
    return out


def _cpu_per_request(before: dict, after: dict, n: int) -> dict[str, float]:
    cpu: dict[str, float] = {}
    for pid, (role, t) in after.items():
        cpu[role] = cpu.get(role, 0.0) + t - before.get(pid, (role, 0.0))[1]
    return {k: 1000 * v / max(n, 1) for k, v in sorted(cpu.items())}


def load(url: str, bodies: list[bytes], concurrency: int, seconds: float, proc: subprocess.Popen | None = None,
         warmup: int = 3) -> dict:
    """Closed-loop load from the light client (benchmarks/_loadgen.py), with the server's CPU per request."""
    from _loadgen import closed_loop

    before = _tree_cpu(proc) if proc is not None else {}
    res = closed_loop(url, bodies, concurrency, seconds, warmup=warmup)
    if proc is not None:
        # The warm-up requests are counted too (per connection): a slight overestimate.
        res["server_cpu_ms_per_request"] = _cpu_per_request(before, _tree_cpu(proc),
                                                            res["requests"] + warmup * concurrency)
    res["load1"] = os.getloadavg()[0]
    return res


WRK_SCRIPT = Path(__file__).with_name("wrk_post.lua")


def wrk_missing() -> str | None:
    """Why wrk rows cannot be measured here (None: they can)."""
    import shutil

    return None if shutil.which("wrk") else "wrk is not installed (e.g. `apt-get install wrk`)"


def _wrk_ms(text: str) -> float:
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(f"unexpected wrk latency {text!r}")


def wrk_load(url: str, bodies: list[bytes], concurrency: int, seconds: float, workdir: Path,
             proc: subprocess.Popen | None = None) -> dict:
    """Closed-loop load from wrk (one thread, ``concurrency`` keep-alive connections), parsed from its report."""
    import re

    path = workdir / "wrk_bodies.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    before = _tree_cpu(proc) if proc is not None else {}
    # A 60 s timeout: wrk leaves requests slower than its timeout (2 s by default) out of the latencies.
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "60s", "--latency",
           "-s", str(WRK_SCRIPT), url, "--", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    res: dict = {"client": "wrk"}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["req_per_s"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _wrk_ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = errors + (sum(int(g) for g in m.groups()) if m else 0)
    if proc is not None:
        res["server_cpu_ms_per_request"] = _cpu_per_request(before, _tree_cpu(proc), res["requests"])
    res["load1"] = os.getloadavg()[0]
    return res


def batching(url: str) -> dict:
    import httpx

    st = httpx.post(url + "/status", json={}, timeout=10).json()
    return {"batches": st.get("batches", 0), "requests": st.get("requests_batched", 0)}


def mlflow_churn_model(store: dict, workdir: Path) -> Path:
    """The champion churn booster as an MLflow pyfunc that casts categories (see mlflow_churn_model.py)."""
    import shutil

    import mlflow

    from telco_nbo.tracking import load_champion

    model, _ = load_champion("churn", store["uri"])
    booster = workdir / "churn_booster.json"
    model.save_model(str(booster))
    path = workdir / "mlflow_churn_pyfunc"
    if path.exists():
        shutil.rmtree(path)
    mlflow.pyfunc.save_model(str(path), python_model=str(Path(__file__).with_name("mlflow_churn_model.py")),
                             artifacts={"booster": str(booster)})
    return path


def request_bodies(store: dict, n: int = 200, explain_accounts: int = 1000, explain_offers: int = 0) -> dict:
    """Request bodies of the world's first active accounts, and what the world is."""
    import pandas as pd

    from telco_nbo.data.io import load_world
    from telco_nbo.features import FEATURE_COLUMNS, build_account_features, to_model_matrix
    from telco_nbo.nbo.catalog import load_catalog

    world = load_world(store["data"])
    all_feats = build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))
    feats = all_feats.head(n)
    rows = [json.loads(r.to_json()) for _, r in feats.iterrows()]
    X = to_model_matrix(feats)
    # The heavy /explain of the scenario: the churn reasons of 1,000 accounts (3 each, the default).
    offers = [o.offer_id for o in load_catalog().offers][:explain_offers]
    explain = {"account_ids": all_feats["account_id"].astype(str).head(explain_accounts).tolist(), "k": 3}
    if offers:
        explain["offer_ids"] = offers
    return {
        "features": [json.dumps({"account": r}).encode() for r in rows],
        "id": [json.dumps({"account_id": r["account_id"]}).encode() for r in rows],
        "mlflow": [json.dumps({"dataframe_split": {"columns": list(FEATURE_COLUMNS),
                                                   "data": [X.iloc[i].astype(object).tolist()]}}).encode()
                   for i in range(len(X))],
        "explain": json.dumps(explain).encode(),
        "explain_size": {"accounts": len(explain["account_ids"]), "offers": len(offers), "k": explain["k"]},
        "world": {"data": str(store["data"]), "households": int(all_feats["household_id"].nunique()),
                  "active_accounts": len(all_feats), "models": model_sizes(store["uri"])},
    }


def model_sizes(uri: str) -> dict:
    """Champion versions and the size of every booster one /rank runs (trees used, deepest split)."""
    from telco_nbo.cli.rank import champion_versions
    from telco_nbo.nbo.rank import Policy
    from telco_nbo.scoring import ChampionModels, FastScorer

    scorer = FastScorer(ChampionModels.load(uri), Policy.build())
    names = ["churn", "propensity", "uplift (1)", "uplift (2)", "CLV churn"]
    boosters = {}
    for name, b in zip(names, scorer.boosters(), strict=False):
        dump = b.booster.get_dump()
        lo, hi = b.iteration_range
        depth = max((len(line) - len(line.lstrip("\t")) for tree in dump for line in tree.splitlines()), default=0)
        boosters[name] = {"trees": (hi - lo) if hi else len(dump), "max_depth": depth}
    return {"versions": champion_versions(uri), "boosters": boosters}


class Nbo:
    """A ``telco-nbo serve`` started for the benchmark (its process, URL and how it was started)."""

    def __init__(self, store: dict, workdir: Path, name: str, *, data: bool = True, engine: str = "process",
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "telco_nbo", "serve", "--tracking-uri", store["uri"], "--port", str(self.port),
                "--engine", engine, "--state-dir", str(workdir / "bentoml_state"), *extra]
        if data:
            args += ["--data", str(store["data"])]
        env = {"BENTOML_DO_NOT_TRACK": "True", "TELCO_NBO_PREDICTION_LOG": str(workdir / "bench_decisions.jsonl"),
               **(env or {})}
        # A 100k-household data folder takes a minute or more to load on a busy machine.
        self.proc = start(args, env, self.base + "/readyz", workdir / f"nbo_server_{name}.log", timeout=900)

    def wait_explain_engine(self, timeout: float = 600) -> bool:
        """Wait until the /explain engine is up (it starts after the main engine), if this server has one."""
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = httpx.post(self.base + "/status", json={}, timeout=10).json()
            if "explain_engine_alive" not in st or st["explain_engine_alive"]:
                return bool(st.get("explain_engine_alive"))
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}: the /explain engine did not start within {timeout:.0f} s")

    def measure(self, bodies: list[bytes], c: int, seconds: float, repeats: int = 1, warmup: int = 3) -> dict:
        """``/rank`` under the light client ``repeats`` times; the run with the median p99 (and all runs)."""
        runs = []
        for _ in range(repeats):
            b0 = batching(self.base)
            r = load(self.base + "/rank", bodies, c, seconds, self.proc, warmup)
            b1 = batching(self.base)
            r["mean_batch"] = (b1["requests"] - b0["requests"]) / max(b1["batches"] - b0["batches"], 1)
            runs.append(r)
        return median_run(runs)

    def stop(self) -> None:
        stop(self.proc)


def median_run(runs: list[dict]) -> dict:
    """The run with the median p99 (a real run, not an average), with every run's figures beside it."""
    out = dict(sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2])
    if len(runs) > 1:
        out["runs"] = [{k: r[k] for k in ("req_per_s", "p50_ms", "p99_ms", "load1")} for r in runs]
    return out


def rank_during_explain(srv: Nbo, rank_bodies: list[bytes], explain_body: bytes, c: int, seconds: float) -> dict:
    """``/rank`` at concurrency ``c`` alone, then while heavy ``/explain`` requests run back to back."""
    import httpx

    before = srv.measure(rank_bodies, c, seconds)
    took: list[tuple[float, int]] = []
    stop_now = threading.Event()

    def explains() -> None:
        with httpx.Client(timeout=600) as client:
            while not stop_now.is_set():
                t = time.perf_counter()
                r = client.post(srv.base + "/explain", content=explain_body, headers={"Content-Type": "application/json"})
                took.append((time.perf_counter() - t, r.status_code))

    th = threading.Thread(target=explains, name="bench-explain", daemon=True)
    th.start()
    time.sleep(0.5)  # the first /explain is under way before the clock starts
    # No warm-up: the client warms its connections one after the other, and a connection left
    # idle for 5 s behind a stalled engine is closed by the server (uvicorn's keep-alive timeout).
    during = srv.measure(rank_bodies, c, seconds, warmup=0)
    stop_now.set()
    th.join(600)
    return {"before": before, "during": during, "explains": len(took),
            "explain_s": [round(t, 2) for t, _ in took], "explain_status": sorted({s for _, s in took})}


def compare_setups(store: dict, bench_store: dict | None, workdir: Path, seconds: float, repeats: int,
                   sample: dict) -> dict:
    """Concurrency-8 ``/rank`` on setups that tell world size, data folder and /explain engine apart.

    Every server is up for the whole comparison and the runs go round-robin (a different setup
    first in each round), so a busier minute of the shared machine falls on every setup alike.
    """
    setups: list[tuple[str, dict, dict, bool, tuple[str, ...]]] = [
        ("world under test, as shipped", store, sample, True, ()),
        ("same champions, no data folder", store, sample, False, ()),
        ("world under test, --no-explain-engine", store, sample, True, ("--no-explain-engine",)),
    ]
    if bench_store is not None:
        setups.append(("bench world, as shipped", bench_store, request_bodies(bench_store), True, ()))
    servers: list[Nbo] = []
    out: dict = {"setups": []}
    try:
        for k, (label, st, bodies, data, extra) in enumerate(setups):
            servers.append(Nbo(st, workdir, f"compare{k}", data=data, extra=extra))
            out["setups"].append({"label": label, "world": None if st is store else bodies["world"],
                                  "data_folder": data, "explain_engine": "--no-explain-engine" not in extra})
        for srv in servers:
            srv.wait_explain_engine()
        runs: dict[tuple[int, str], list[dict]] = {}
        for rnd in range(repeats):
            for k in [*range(rnd % len(setups), len(setups)), *range(rnd % len(setups))]:
                _, _, bodies, data, _ = setups[k]
                for kind in ("features", "id") if data else ("features",):
                    others = [srv for j, srv in enumerate(servers) if j != k]
                    idle0 = [_tree_cpu(srv.proc) for srv in others]
                    r = servers[k].measure(bodies[kind], 8, seconds)
                    # CPU the other (idle) servers used meanwhile: what they took from this run.
                    r["idle_servers_cpu_s"] = sum(sum(t for _, t in _tree_cpu(srv.proc).values()) -
                                                  sum(t for _, t in i0.values()) for srv, i0 in zip(others, idle0, strict=True))
                    runs.setdefault((k, kind), []).append(r)
        for (k, kind), rs in runs.items():
            out["setups"][k][kind] = median_run(rs)
    finally:
        for srv in servers:
            srv.stop()
    return out


def bench_http(store: dict, workdir: Path, seconds: float, http_repeat: int = 3, concurrency: tuple[int, ...] = (1, 8),
               *, use_wrk: bool = False, thread_engine: bool = True, explain_load: bool = False,
               compare: bool = False, bench_store: dict | None = None) -> dict:
    sample = request_bodies(store)
    out: dict = {"world": sample["world"], "concurrency": list(concurrency), "seconds": seconds}
    why_no_wrk = wrk_missing() if use_wrk else None
    if why_no_wrk:
        print(f"skipping the wrk rows: {why_no_wrk}", flush=True)
        out["wrk_skipped"] = why_no_wrk
    do_wrk = use_wrk and why_no_wrk is None
    wrk_c = [c for c in concurrency if c > 1]

    srv = Nbo(store, workdir, "process")
    try:
        # The shipped configuration is measured with both of its engines up.
        srv.wait_explain_engine()
        for c in concurrency:
            # At concurrency 8 and more (the aim's figures) several runs, so one lucky or unlucky
            # window does not decide it.
            repeats = http_repeat if c >= 8 else 1
            for kind in ("features", "id"):
                out[f"nbo_rank_{kind}_c{c}"] = srv.measure(sample[kind], c, seconds, repeats)
        if do_wrk:
            for c in wrk_c:
                for kind in ("features", "id"):
                    out[f"wrk_nbo_rank_{kind}_c{c}"] = wrk_load(srv.base + "/rank", sample[kind], c, seconds, workdir,
                                                                srv.proc)
        if explain_load:
            out["explain_load"] = {"size": sample["explain_size"],
                                   "shipped": rank_during_explain(srv, sample["id"], sample["explain"], 8, seconds)}
    finally:
        srv.stop()
    if explain_load:
        # Before /explain had its own engine: the decision engine answers it between /rank batches.
        srv = Nbo(store, workdir, "no_explain_engine", extra=("--no-explain-engine",))
        try:
            out["explain_load"]["no_explain_engine"] = rank_during_explain(srv, sample["id"], sample["explain"], 8, seconds)
        finally:
            srv.stop()
    if thread_engine:
        srv = Nbo(store, workdir, "thread", engine="thread")
        try:
            for kind in ("features", "id"):
                out[f"nbo_rank_{kind}_thread_c8"] = srv.measure(sample[kind], 8, seconds)
        finally:
            srv.stop()
    if compare:
        out["compare"] = compare_setups(store, bench_store, workdir, seconds, http_repeat, sample)
    # BentoML's floor: the same request schema and settings, no work (bentoml_floor_service.py).
    port = free_port()
    proc = start([sys.executable, "-m", "bentoml", "serve", "bentoml_floor_service:BentoFloor", "--host", "127.0.0.1",
                  "--port", str(port), "--working-dir", str(Path(__file__).parent)], {"BENTOML_DO_NOT_TRACK": "True"},
                 f"http://127.0.0.1:{port}/readyz", workdir / "floor_server.log")
    try:
        for c in wrk_c:
            out[f"bentoml_floor_c{c}"] = load(f"http://127.0.0.1:{port}/rank", sample["features"], c, seconds, proc)
    finally:
        stop(proc)
    port = free_port()
    model_path = mlflow_churn_model(store, workdir)
    # mlflow execs `uvicorn` from PATH: put this interpreter's scripts first.
    env = {"MLFLOW_TRACKING_URI": store["uri"], "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = start([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_path), "--env-manager",
                  "local", "--host", "127.0.0.1", "-p", str(port), "--workers", "1"], env,
                 f"http://127.0.0.1:{port}/ping", workdir / "mlflow_server.log")
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        for c in concurrency:
            out[f"mlflow_churn_c{c}"] = load(url, sample["mlflow"], c, seconds, proc)
        if do_wrk:
            for c in wrk_c:
                out[f"wrk_mlflow_churn_c{c}"] = wrk_load(url, sample["mlflow"], c, seconds, workdir, proc)
    finally:
        stop(proc)
    return out


def _world_line(w: dict) -> str:
    m = w["models"]
    versions = ", ".join(f"{k} v{v}" for k, v in m["versions"].items())
    sizes = ", ".join(f"{k} {b['trees']} trees (depth <= {b['max_depth']})" for k, b in m["boosters"].items())
    return (f"{w['active_accounts']:,} active accounts in {w['households']:,} households (`{w['data']}`); "
            f"champions {versions}; boosters per /rank: {sizes}")


def render(batch: dict, http: dict, load: float | None = None, world_label: str | None = None) -> str:
    b = batch
    ratio = b["fast_rank_s"] / b["raw_inplace_predict_s"]
    conc = http.get("concurrency", [1, 8])
    label = world_label or "bench world"
    lines = [
        f"Machine: {machine_line()} (best of the repeats; the load average below says how busy the machine was).",
        "",
        f"World: {label}" + (f": {_world_line(http['world'])}." if "world" in http else "."),
        "",
        f"### Batch ranking in process: {b['accounts']:,} accounts x {b['offers']} offers",
        "",
        "| step | seconds | vs raw predict |",
        "|---|---:|---:|",
        f"| raw `Booster.inplace_predict` of the {b['boosters']} boosters ({b['rows_predicted']:,} rows, matrices prebuilt) "
        f"| {b['raw_inplace_predict_s']:.2f} | 1.00x |",
        f"| **numpy fast path: build matrices + score + rules + value + household selection** | **{b['fast_rank_s']:.2f}** "
        f"| **{ratio:.2f}x** |",
        f"| of which scoring (matrices + predict + CLV) | {b['fast_score_s']:.2f} | |",
        f"| of which rules + value + selection | {b['fast_rules_value_selection_s']:.2f} | |",
        f"| + feature contract check (`validate_features`) | {b['validate_features_s']:.2f} | |",
        f"| + long audit table ({b['long_table_rows']:,} rows, reasons) | {b['long_table_s']:.2f} | |",
        f"| reference: `ChampionScoreProvider.score` (the same scorer, plus the per-pair Scores frames) | {b['reference_provider_score_s']:.2f} | |",
        f"| reference: `rank_batch` on those scores | {b['reference_rank_batch_s']:.2f} | |",
        "",
        "### HTTP, one account per request (client on the same machine)",
        "",
        "`telco-nbo serve` as shipped: one BentoML HTTP worker, one decision-engine process beside it "
        "(`--engine process`, the default) and the `/explain` engine (idle here); requests that wait while the "
        "engine works are ranked together. Client: `benchmarks/_loadgen.py` (closed loop, keep-alive connections, "
        "~0.1 ms of CPU per request). CPU columns: CPU time of each server process per answered request "
        "(user + system). Load: the 1-minute load average right after the run.",
        "",
        "| server | endpoint | concurrency | req/s | p50 ms | p99 ms | errors | CPU ms/req: HTTP worker | engine | mean batch | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731

    def row(server: str, endpoint: str, key: str, c: int) -> str:
        r = http[key]
        cpu = r.get("server_cpu_ms_per_request", {})
        batch_ = r.get("mean_batch")
        return (f"| {server} | {endpoint} | {c} | {r['req_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']} | {fmt(cpu.get('http worker'))} | {fmt(cpu.get('engine'))} | "
                f"{'-' if batch_ is None else f'{batch_:.1f}'} | {fmt(r.get('load1'))} |")

    for c in conc:
        lines.append(row("NBO, engine process", "`/rank`, features in the payload", f"nbo_rank_features_c{c}", c))
        lines.append(row("NBO, engine process", "`/rank`, account id", f"nbo_rank_id_c{c}", c))
    if "nbo_rank_features_thread_c8" in http:
        lines.append(row("NBO, engine in the HTTP worker", "`/rank`, features in the payload", "nbo_rank_features_thread_c8", 8))
        lines.append(row("NBO, engine in the HTTP worker", "`/rank`, account id", "nbo_rank_id_thread_c8", 8))
    for c in conc:
        if f"bentoml_floor_c{c}" in http:
            lines.append(row("BentoML floor: /rank's schema, no work (**)", "`/rank`, features in the payload",
                             f"bentoml_floor_c{c}", c))
    for c in conc:
        lines.append(row("`mlflow models serve --env-manager local` (*)", "`/invocations`, churn model alone",
                         f"mlflow_churn_c{c}", c))
    lines.append("")
    for c in conc:
        ml = http[f"mlflow_churn_c{c}"]["req_per_s"]
        lines.append(f"Concurrency {c}: NBO /rank (features) answers {http[f'nbo_rank_features_c{c}']['req_per_s'] / ml:.1f}x "
                     f"the requests/s of mlflow serving one model (by id: {http[f'nbo_rank_id_c{c}']['req_per_s'] / ml:.1f}x).")
        lines.append("")

    if any(k.startswith("wrk_") for k in http):
        lines += ["#### The same with wrk", "",
                  f"`wrk -t1 -cN -d{http.get('seconds', 15):.0f}s --timeout 60s --latency -s benchmarks/wrk_post.lua URL -- "
                  "bodies.jsonl` (one wrk thread, "
                  "N keep-alive connections, the same request bodies in turn; wrk's own p50 / p99).", "",
                  "| server | endpoint | concurrency | req/s | p50 ms | p99 ms | errors | CPU ms/req: HTTP worker | engine | load |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key, server, endpoint in (("wrk_nbo_rank_features", "NBO, engine process", "`/rank`, features in the payload"),
                                      ("wrk_nbo_rank_id", "NBO, engine process", "`/rank`, account id"),
                                      ("wrk_mlflow_churn", "`mlflow models serve --env-manager local` (*)",
                                       "`/invocations`, churn model alone")):
            for c in conc:
                r = http.get(f"{key}_c{c}")
                if r is None:
                    continue
                cpu = r.get("server_cpu_ms_per_request", {})
                lines.append(f"| {server} | {endpoint} | {c} | {r['req_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                             f"{r['errors']} | {fmt(cpu.get('http worker'))} | {fmt(cpu.get('engine'))} | {fmt(r.get('load1'))} |")
        lines.append("")
        for c in conc:
            if f"wrk_mlflow_churn_c{c}" in http and f"wrk_nbo_rank_features_c{c}" in http:
                ml = http[f"wrk_mlflow_churn_c{c}"]["req_per_s"]
                lines.append(f"wrk, concurrency {c}: NBO /rank (features) answers "
                             f"{http[f'wrk_nbo_rank_features_c{c}']['req_per_s'] / ml:.1f}x the requests/s of mlflow "
                             f"(by id: {http[f'wrk_nbo_rank_id_c{c}']['req_per_s'] / ml:.1f}x).")
                lines.append("")
    elif http.get("wrk_skipped"):
        lines += [f"wrk rows not measured: {http['wrk_skipped']}.", ""]

    c8 = http["nbo_rank_features_c8"]
    ok = lambda cond: "met" if cond else "NOT met"  # noqa: E731
    lines += [f"Targets: batch <= 2x raw predict: {ok(ratio <= 2)} ({ratio:.2f}x). HTTP >= 8x mlflow's req/s: "
              f"{ok(c8['req_per_s'] >= 8 * http['mlflow_churn_c8']['req_per_s'])} "
              f"({c8['req_per_s'] / http['mlflow_churn_c8']['req_per_s']:.1f}x at concurrency 8). "
              f"p99 <= 25 ms at concurrency 8: {ok(c8['p99_ms'] <= 25)} ({c8['p99_ms']:.0f} ms"
              + (f", the median of {len(c8['runs'])} runs" if c8.get("runs") else "") + "). "
              + (f"Highest 1-minute load average seen during the run: {load:.1f} on {os.cpu_count()} cores." if load else "")]
    for c in conc:
        for kind, what in (("features", "features in the payload"), ("id", "account id")):
            runs = http[f"nbo_rank_{kind}_c{c}"].get("runs")
            if runs:
                lines += ["", f"Concurrency {c}, `/rank` ({what}), all {len(runs)} runs of the shipped configuration "
                          "(the table shows the run with the median p99): "
                          + "; ".join(f"{r['req_per_s']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
                                      for r in runs) + "."]

    ex = http.get("explain_load")
    if ex:
        size = ex["size"]
        lines += ["", f"### `/rank` while a {size['accounts']:,}-account `/explain` runs", "",
                  f"`/rank` by account id at concurrency 8 for {http.get('seconds', 15):.0f} s alone, then again while "
                  f"`/explain` requests of {size['accounts']:,} accounts ("
                  + (f"churn + {size['offers']} offers" if size["offers"] else "the churn model")
                  + f", {size['k']} reasons each) run back to back from a second client.", "",
                  "| server | /explain requests (seconds each) | /rank alone: req/s, p50, p99 ms | "
                  "/rank during /explain: req/s | p50 ms | p99 ms | errors |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for key, server in (("shipped", "as shipped: `/explain` in its own engine process"),
                            ("no_explain_engine", "`--no-explain-engine`: `/explain` in the decision engine (before)")):
            e = ex.get(key)
            if not e:
                continue
            a, d = e["before"], e["during"]
            lines.append(f"| {server} | {e['explains']} ({', '.join(f'{t:.1f}' for t in e['explain_s'])}; "
                         f"status {'/'.join(map(str, e['explain_status']))}) | {a['req_per_s']:.0f}, {a['p50_ms']:.1f}, "
                         f"{a['p99_ms']:.1f} | {d['req_per_s']:.0f} | {d['p50_ms']:.1f} | **{d['p99_ms']:.1f}** | {d['errors']} |")
        lines.append("")

    cmp_ = http.get("compare")
    if cmp_:
        lines += ["### Concurrency 8 on setups that tell world, data folder and `/explain` engine apart", "",
                  "Every server up for the whole comparison, runs in turns (round-robin, a different setup first each "
                  "round); each cell is the run with the median p99 of the rounds. Light client, as above.", "",
                  "| setup | data folder | /explain engine | features: req/s | p50 ms | p99 ms | CPU ms/req: HTTP worker | engine "
                  "| by id: req/s | p50 ms | p99 ms |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for st in cmp_["setups"]:
            f, i = st.get("features"), st.get("id")
            cpu = f.get("server_cpu_ms_per_request", {}) if f else {}
            lines.append(f"| {st['label']} | {'yes' if st['data_folder'] else 'no'} | {'yes' if st['explain_engine'] else 'no'} "
                         f"| {f['req_per_s']:.0f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {fmt(cpu.get('http worker'))} "
                         f"| {fmt(cpu.get('engine'))} | "
                         + (f"{i['req_per_s']:.0f} | {i['p50_ms']:.1f} | {i['p99_ms']:.1f} |" if i else "- | - | - |"))
        for st in cmp_["setups"]:
            if st.get("world"):
                lines += ["", f"{st['label']}: {_world_line(st['world'])}."]
        lines.append("")
        for st in cmp_["setups"]:
            for kind in ("features", "id"):
                r = st.get(kind)
                if r and r.get("runs"):
                    lines.append(f"- {st['label']}, {kind}: " + "; ".join(
                        f"{x['req_per_s']:.0f} req/s, p50 {x['p50_ms']:.1f}, p99 {x['p99_ms']:.1f} (load {x['load1']:.2f})"
                        for x in r["runs"]))
        lines.append("")

    lines += ["(*) The registered `telco-churn` (XGBoost flavor) cannot be served as it is: its pyfunc passes the "
              "categorical columns to XGBoost as `object` and every request fails (400). The baseline serves the same "
              "booster through a minimal pyfunc that casts them (`benchmarks/mlflow_churn_model.py`).",
              "(**) `benchmarks/bentoml_floor_service.py`: validates the same request body and answers a fixed JSON "
              "body, one worker, no access log: what BentoML itself costs per request on this machine, before any "
              "work. With the client on the same 2 cores, its p99 is the floor under ours.",
              "NBO `/rank` does the whole decision: 4 boosters (churn, propensity for all 12 offers, uplift x2; CLV "
              "reuses churn), 15 rules, value, channel, household step, need-signal reasons, a prediction-log line."]
    return "\n".join(lines)


def _load_averages(tree: object):
    """Every ``load1`` recorded in the results (after each run)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == "load1" and isinstance(v, (int, float)):
                yield float(v)
            else:
                yield from _load_averages(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _load_averages(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_serving")
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--http-repeat", type=int, default=3, help="Runs of the shipped service at concurrency 8 and more.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, help="Measure this data folder (e.g. DIR/data of `telco-nbo demo --out DIR`) "
                    "instead of building the bench world; needs --tracking-uri.")
    ap.add_argument("--tracking-uri", help="MLflow store whose @champion models serve --data (e.g. sqlite:///DIR/mlflow.db).")
    ap.add_argument("--world-label", help="How RESULTS.md names the world (default: 'bench world' / the --data folder).")
    ap.add_argument("--concurrency", default="1,8", help="Comma-separated concurrencies of the HTTP runs (default 1,8).")
    ap.add_argument("--wrk", action="store_true", help="Also load /rank and mlflow with wrk (skipped, with the reason, "
                    "when wrk is not installed).")
    ap.add_argument("--explain-load", action="store_true", help="Measure /rank at concurrency 8 while 1,000-account "
                    "/explain requests run (with and without the /explain engine).")
    ap.add_argument("--compare-setups", action="store_true", help="Concurrency-8 /rank, round-robin: the world under "
                    "test, no data folder, no /explain engine, and (with --data) the bench world.")
    ap.add_argument("--skip-thread", action="store_true", help="Leave out the engine-in-the-HTTP-worker rows.")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-batch", action="store_true", help="Reuse the last run's batch figures (HTTP only).")
    ap.add_argument("--render-only", action="store_true", help="Rewrite the RESULTS.md section from the last run's JSON.")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md",
                    help="Markdown file whose 'Serving' section is rewritten (default benchmarks/RESULTS.md).")
    args = ap.parse_args()
    if (args.data is None) != (args.tracking_uri is None):
        ap.error("--data and --tracking-uri go together")
    concurrency = tuple(int(c) for c in args.concurrency.split(","))
    if 8 not in concurrency:
        ap.error("--concurrency must include 8 (the aim's figures)")
    label = args.world_label or ("bench world" if args.data is None else f"the world in `{args.data}`")
    if args.render_only:
        saved = json.loads((args.workdir / "bench_serving.json").read_text())
        write_section(args.results, "Serving",
                      render(saved["batch"], saved["http"], saved.get("max_loadavg"), saved.get("world_label", label)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    default_workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_serving"
    if args.data is not None:
        store = {"data": args.data.resolve(), "uri": args.tracking_uri}
        # The small bench world, for the comparison (built into its usual folder, reused).
        bench_store = build(default_workdir, args.households, args.seed) if args.compare_setups else None
    else:
        store, bench_store = build(args.workdir, args.households, args.seed), None
    loads = [os.getloadavg()[0]]
    if args.skip_batch:
        batch = json.loads((args.workdir / "bench_serving.json").read_text())["batch"]
    else:
        batch = bench_batch(store, args.accounts, args.repeat)
    loads.append(os.getloadavg()[0])
    print(json.dumps(batch, indent=1), flush=True)
    http = {} if args.skip_http else bench_http(store, args.workdir, args.seconds, args.http_repeat, concurrency,
                                                use_wrk=args.wrk, thread_engine=not args.skip_thread,
                                                explain_load=args.explain_load, compare=args.compare_setups,
                                                bench_store=bench_store)
    print(json.dumps(http, indent=1, default=str), flush=True)
    loads.append(os.getloadavg()[0])
    loads += list(_load_averages(http))
    (args.workdir / "bench_serving.json").write_text(json.dumps({"batch": batch, "http": http, "max_loadavg": max(loads),
                                                                 "world_label": label}, indent=1, default=str))
    if http:
        write_section(args.results, "Serving", render(batch, http, max(loads), label))


if __name__ == "__main__":
    main()
