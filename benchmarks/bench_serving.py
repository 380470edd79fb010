"""Serving benchmark: in-process batch ranking vs raw XGBoost, and HTTP /rank vs ``mlflow models serve``.

What is measured (one run, this machine; results into benchmarks/RESULTS.md, section "Serving"):

1. **Batch, in process, 100k accounts.** Baseline: ``Booster.inplace_predict`` of every model a
   ranking needs (churn, offer propensity for all catalog offers, the uplift learner's boosters;
   the CLV model reuses the churn booster) on float32 matrices built beforehand — the floor any
   ranking on these models pays. Ours: the numpy fast path (building the model matrices from the
   feature columns + the same predictions + CLV + rules + value + household selection), then
   separately the long audit table (one row per account x offer) and the pandas reference path
   (``rank_batch`` with :class:`~telco_nbo.scoring.ChampionScoreProvider`).
2. **HTTP, one account per request.** ``POST /rank`` (features in the payload, and by account id)
   on ``telco-nbo serve`` (engine process, the default; and ``--engine thread`` at concurrency 8)
   vs ``POST /invocations`` on ``mlflow models serve --env-manager local`` serving the churn model
   alone, at concurrency 1 and 8, from the light client of ``_loadgen.py`` (one process, keep-alive
   connections): requests/s, p50, p99, each server process's CPU per request, the mean batch.

The world and models are built once into ``--workdir`` (a synthetic world, the real training
pipeline with default model sizes and no tuning) and reused on the next run.

Usage: ``python benchmarks/bench_serving.py [--workdir DIR] [--accounts 100000] [--seconds 15] [--http-repeat 3]``
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
    from telco_nbo.training.config import KINDS, load_config
    from telco_nbo.training.pipeline import train_all

    data, uri = workdir / "data", f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "trained.json").exists():
        from telco_nbo.data.io import write_world
        from telco_nbo.data.synthetic import generate_world

        workdir.mkdir(parents=True, exist_ok=True)
        write_world(generate_world(households, seed=seed), data, overwrite=True)
        cfgs = {k: load_config(k, trials=0, seed=seed, tracking_uri=uri, optuna_storage=f"sqlite:///{workdir / 'optuna.db'}",
                               shap_rows=200) for k in KINDS}
        res = train_all(data, cfgs)
        (workdir / "trained.json").write_text(json.dumps({k: r.model_version for k, r in res.items()}))
    return {"data": data, "uri": uri}


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
    from telco_nbo.scoring import ChampionScoreProvider
    from telco_nbo.serving.scoring import ChampionModels, FastScorer

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
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        role = ("engine" if "spawn_main" in cmd else "http worker" if "worker" in cmd or "uvicorn" in cmd
                or "scoring_server" in cmd else "supervisor")
        out[p.pid] = (role, t.user + t.system)
    return out


def load(url: str, bodies: list[bytes], concurrency: int, seconds: float, proc: subprocess.Popen | None = None) -> dict:
    """Closed-loop load from the light client (benchmarks/_loadgen.py), with the server's CPU per request."""
    from _loadgen import closed_loop

    before = _tree_cpu(proc) if proc is not None else {}
    res = closed_loop(url, bodies, concurrency, seconds)
    if proc is not None:
        after = _tree_cpu(proc)
        cpu: dict[str, float] = {}
        for pid, (role, t) in after.items():
            cpu[role] = cpu.get(role, 0.0) + t - before.get(pid, (role, 0.0))[1]
        # The warm-up requests are counted too (3 per connection): a slight overestimate.
        n = res["requests"] + 3 * concurrency
        res["server_cpu_ms_per_request"] = {k: 1000 * v / n for k, v in sorted(cpu.items())}
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


def bench_http(store: dict, workdir: Path, seconds: float, http_repeat: int = 3) -> dict:
    import pandas as pd

    from telco_nbo.data.io import load_world
    from telco_nbo.features import FEATURE_COLUMNS, build_account_features, to_model_matrix

    world = load_world(store["data"])
    feats = build_account_features(world.tables, pd.Timestamp(world.meta["as_of"])).head(200)
    rows = [json.loads(r.to_json()) for _, r in feats.iterrows()]
    rank_bodies = [json.dumps({"account": r}).encode() for r in rows]
    id_bodies = [json.dumps({"account_id": r["account_id"]}).encode() for r in rows]
    X = to_model_matrix(feats)
    mlflow_bodies = [json.dumps({"dataframe_split": {"columns": list(FEATURE_COLUMNS),
                                                      "data": [X.iloc[i].astype(object).tolist()]}}).encode()
                     for i in range(len(X))]
    out: dict = {}
    env = {"BENTOML_DO_NOT_TRACK": "True", "TELCO_NBO_PREDICTION_LOG": str(workdir / "bench_decisions.jsonl")}
    for engine in ("process", "thread"):
        port = free_port()
        proc = start([sys.executable, "-m", "telco_nbo", "serve", "--data", str(store["data"]), "--tracking-uri",
                      store["uri"], "--port", str(port), "--engine", engine], env, f"http://127.0.0.1:{port}/readyz",
                     workdir / f"nbo_server_{engine}.log")
        try:
            base = f"http://127.0.0.1:{port}"
            # The default engine (a process beside the HTTP worker) at both concurrencies; the
            # engine inside the HTTP worker at concurrency 8 for comparison.
            for c in ((1, 8) if engine == "process" else (8,)):
                suffix = "" if engine == "process" else "_thread"
                # The shipped configuration at concurrency 8 is the aim's figure: measured several
                # times, so one lucky or unlucky 15 s window does not decide it.
                repeats = http_repeat if (engine == "process" and c == 8) else 1
                for key, bodies in ((f"nbo_rank_features{suffix}_c{c}", rank_bodies), (f"nbo_rank_id{suffix}_c{c}", id_bodies)):
                    runs = []
                    for _ in range(repeats):
                        b0 = batching(base)
                        r = load(base + "/rank", bodies, c, seconds, proc)
                        b1 = batching(base)
                        r["mean_batch"] = (b1["requests"] - b0["requests"]) / max(b1["batches"] - b0["batches"], 1)
                        runs.append(r)
                    # The row shows the run with the median p99 (a real run, not an average).
                    out[key] = dict(sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2])
                    if repeats > 1:
                        out[key]["runs"] = [{k: r[k] for k in ("req_per_s", "p50_ms", "p99_ms")} for r in runs]
        finally:
            stop(proc)
    # BentoML's floor: the same request schema and settings, no work (bentoml_floor_service.py).
    port = free_port()
    proc = start([sys.executable, "-m", "bentoml", "serve", "bentoml_floor_service:BentoFloor", "--host", "127.0.0.1",
                  "--port", str(port), "--working-dir", str(Path(__file__).parent)], {"BENTOML_DO_NOT_TRACK": "True"},
                 f"http://127.0.0.1:{port}/readyz", workdir / "floor_server.log")
    try:
        out["bentoml_floor_c8"] = load(f"http://127.0.0.1:{port}/rank", rank_bodies, 8, seconds, proc)
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
        for c in (1, 8):
            out[f"mlflow_churn_c{c}"] = load(f"http://127.0.0.1:{port}/invocations", mlflow_bodies, c, seconds, proc)
    finally:
        stop(proc)
    return out


def render(batch: dict, http: dict, load: float | None = None) -> str:
    b = batch
    ratio = b["fast_rank_s"] / b["raw_inplace_predict_s"]
    lines = [
        f"Machine: {machine_line()} (best of the repeats; the load average below says how busy the machine was).",
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
        f"| reference: `ChampionScoreProvider.score` (pandas) | {b['reference_provider_score_s']:.2f} | |",
        f"| reference: `rank_batch` on those scores | {b['reference_rank_batch_s']:.2f} | |",
        "",
        "### HTTP, one account per request (client on the same machine)",
        "",
        "`telco-nbo serve` as shipped: one BentoML HTTP worker and one decision-engine process beside it "
        "(`--engine process`, the default); requests that wait while the engine works are ranked together. "
        "Client: `benchmarks/_loadgen.py` (closed loop, keep-alive connections, ~0.1 ms of CPU per request). "
        "CPU columns: CPU time of each server process per answered request (user + system).",
        "",
        "| server | endpoint | concurrency | req/s | p50 ms | p99 ms | errors | CPU ms/req: HTTP worker | engine | mean batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(server: str, label: str, key: str, c: int) -> str:
        r = http[key]
        cpu = r.get("server_cpu_ms_per_request", {})
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        batch = r.get("mean_batch")
        return (f"| {server} | {label} | {c} | {r['req_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']} | {fmt(cpu.get('http worker'))} | {fmt(cpu.get('engine'))} | "
                f"{'-' if batch is None else f'{batch:.1f}'} |")

    for c in (1, 8):
        lines.append(row("NBO, engine process", "`/rank`, features in the payload", f"nbo_rank_features_c{c}", c))
        lines.append(row("NBO, engine process", "`/rank`, account id", f"nbo_rank_id_c{c}", c))
    lines.append(row("NBO, engine in the HTTP worker", "`/rank`, features in the payload", "nbo_rank_features_thread_c8", 8))
    lines.append(row("NBO, engine in the HTTP worker", "`/rank`, account id", "nbo_rank_id_thread_c8", 8))
    if "bentoml_floor_c8" in http:
        lines.append(row("BentoML floor: /rank's schema, no work (**)", "`/rank`, features in the payload",
                         "bentoml_floor_c8", 8))
    for c in (1, 8):
        lines.append(row("`mlflow models serve --env-manager local` (*)", "`/invocations`, churn model alone",
                         f"mlflow_churn_c{c}", c))
    for c in (1, 8):
        lines.append("")
        lines.append(f"Concurrency {c}: NBO /rank (features) answers {http[f'nbo_rank_features_c{c}']['req_per_s'] / http[f'mlflow_churn_c{c}']['req_per_s']:.1f}x "
                     f"the requests/s of mlflow serving one model (by id: "
                     f"{http[f'nbo_rank_id_c{c}']['req_per_s'] / http[f'mlflow_churn_c{c}']['req_per_s']:.1f}x).")
    c8 = http["nbo_rank_features_c8"]
    ok = lambda cond: "met" if cond else "NOT met"  # noqa: E731
    lines += ["", f"Targets: batch <= 2x raw predict: {ok(ratio <= 2)} ({ratio:.2f}x). HTTP >= 8x mlflow's req/s: "
              f"{ok(c8['req_per_s'] >= 8 * http['mlflow_churn_c8']['req_per_s'])} "
              f"({c8['req_per_s'] / http['mlflow_churn_c8']['req_per_s']:.1f}x at concurrency 8). "
              f"p99 <= 25 ms at concurrency 8: {ok(c8['p99_ms'] <= 25)} ({c8['p99_ms']:.0f} ms"
              + (f", the median of {len(c8['runs'])} runs" if c8.get("runs") else "") + "). "
              + (f"Highest 1-minute load average seen during the run: {load:.1f} on {os.cpu_count()} cores." if load else "")]
    for key, label in (("nbo_rank_features_c8", "features in the payload"), ("nbo_rank_id_c8", "account id")):
        runs = http[key].get("runs")
        if runs:
            lines += ["", f"Concurrency 8, `/rank` ({label}), all {len(runs)} runs of the shipped configuration "
                      "(the table shows the run with the median p99): "
                      + "; ".join(f"{r['req_per_s']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
                                  for r in runs) + "."]
    lines += ["", "(*) The registered `telco-churn` (XGBoost flavor) cannot be served as it is: its pyfunc passes the "
              "categorical columns to XGBoost as `object` and every request fails (400). The baseline serves the same "
              "booster through a minimal pyfunc that casts them (`benchmarks/mlflow_churn_model.py`).",
              "(**) `benchmarks/bentoml_floor_service.py`: validates the same request body and answers a fixed JSON "
              "body, one worker, no access log: what BentoML itself costs per request on this machine, before any "
              "work. With the client on the same 2 cores, its p99 at concurrency 8 is the floor under ours.",
              "NBO `/rank` does the whole decision: 4 boosters (churn, propensity for all 12 offers, uplift x2; CLV "
              "reuses churn), 15 rules, value, channel, household step, need-signal reasons, a prediction-log line."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_serving")
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--http-repeat", type=int, default=3, help="Runs of the shipped service at concurrency 8.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-batch", action="store_true", help="Reuse the last run's batch figures (HTTP only).")
    ap.add_argument("--render-only", action="store_true", help="Rewrite the RESULTS.md section from the last run's JSON.")
    args = ap.parse_args()
    if args.render_only:
        saved = json.loads((args.workdir / "bench_serving.json").read_text())
        write_section(REPO / "benchmarks" / "RESULTS.md", "Serving",
                      render(saved["batch"], saved["http"], saved.get("max_loadavg")))
        return
    store = build(args.workdir, args.households, args.seed)
    loads = [os.getloadavg()[0]]
    if args.skip_batch:
        batch = json.loads((args.workdir / "bench_serving.json").read_text())["batch"]
    else:
        batch = bench_batch(store, args.accounts, args.repeat)
    loads.append(os.getloadavg()[0])
    print(json.dumps(batch, indent=1), flush=True)
    http = {} if args.skip_http else bench_http(store, args.workdir, args.seconds, args.http_repeat)
    print(json.dumps(http, indent=1), flush=True)
    loads.append(os.getloadavg()[0])
    (args.workdir / "bench_serving.json").write_text(json.dumps({"batch": batch, "http": http, "max_loadavg": max(loads)},
                                                                indent=1))
    if http:
        write_section(REPO / "benchmarks" / "RESULTS.md", "Serving", render(batch, http, max(loads)))


if __name__ == "__main__":
    main()
