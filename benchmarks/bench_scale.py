"""Scale-out benchmark: batch ranking and churn training, in-process vs a 2-worker LocalCluster.

Each world is generated **once** to disk as a partitioned data folder (the code of ``telco-nbo
data generate --scheduler``: partitions of ``HOUSEHOLDS_PER_PARTITION`` households written by the
workers, plus the union at the top) and reused by every step; re-running the benchmark reuses
the folders it finds in ``--workdir``. The champion models are trained once (``train all``, no
tuning, default parameters) on the first partition of the first world (a complete 25,000-household
data folder) into an MLflow SQLite store in ``--workdir``.

Steps, each in a fresh process (benchmarks/_harness.py) so peak memories never mix:

- ``rank`` on Dask: what ``telco-nbo rank --scheduler local`` runs
  (:func:`~telco_nbo.scale.rank_world_to_parquet`): one task per partition that reads it,
  builds its features, scores it with the four real champions through
  :class:`~telco_nbo.scale.ChampionRanking` (the service's fast scorer, compiled once per worker),
  ranks it and writes it; then the parts are concatenated into one Parquet file;
- ``rank`` in-process: what ``telco-nbo rank`` runs: ``load_world`` of the union,
  ``build_account_features``, ``ChampionScoreProvider`` scores, ``rank_batch``, one Parquet file;
- ``train`` on Dask: ``train_churn_dask`` (features + labels per partition, ``xgboost.dask``
  fit, holdout AUC; no tuning, no MLflow logging);
- ``train`` on Dask with ``--modes dask-extmem``: the same with ``external_memory=True``
  (rows written as Parquet shards, ``ExtMemQuantileDMatrix`` per worker on XGBoost's collective);
- ``train`` in-process: ``load_world``, features + labels, ``XGBClassifier.fit`` on the same
  split and parameters.

Peak RSS: of the process for in-process steps; for Dask steps of each worker process
(``getrusage`` inside the worker, whole worker lifetime) and of the client.

Usage::

    python benchmarks/bench_scale.py --accounts 1000000 --accounts 5000000 [--inproc-max 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_line, run_measured, write_section  # noqa: E402

HOUSEHOLDS_PER_PARTITION = 25_000
ACCOUNTS_PER_HOUSEHOLD = 0.91  # active accounts at as_of per household (measured on generated worlds)
SEED = 7
TRAIN_PARAMS = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 4}
ROOT = Path(__file__).resolve().parents[1]

COMMON = r'''
import time, resource, json, numpy as np, pandas as pd
WORLD = {world!r}
URI = {uri!r}
OUT = {out!r}
TRAIN_PARAMS = {train_params}

def worker_peaks(client):
    import resource
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return sorted(round(v) for v in peaks.values())
'''

DASK_RANK = r'''
from telco_nbo.scale import ChampionRanking, dask_client, load_partitioned_world, rank_world_to_parquet
from telco_nbo.scoring import ChampionModels
t0 = time.perf_counter()
ranking = ChampionRanking(ChampionModels.load(URI))
with dask_client("local") as client:
    t1 = time.perf_counter()
    world = load_partitioned_world(WORLD, client)
    as_of = pd.Timestamp(world.meta["as_of"])
    timings, summary = {}, {}
    rows = rank_world_to_parquet(world, ranking, OUT, client, top_k=3, as_of=as_of, timings=timings, summary=summary)
    peaks = worker_peaks(client)
t2 = time.perf_counter()
n = summary["accounts"]  # counted by the workers: re-reading 12 rows per account would inflate the client's peak
result = {"step": "rank", "mode": "dask-2w", "accounts": int(n), "partitions": world.n_partitions, "rows": rows,
          "seconds": round(t2 - t0, 1), "cluster_start_s": round(t1 - t0, 1),
          "workers_s": round(timings["workers"], 1), "concat_s": round(timings["concat"], 1),
          "worker_peak_mb": peaks}
'''

INPROC_RANK = r'''
from telco_nbo.data.io import load_world
from telco_nbo.features import build_account_features
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.rank import rank_batch
from telco_nbo.scoring import ChampionScoreProvider
t0 = time.perf_counter()
provider = ChampionScoreProvider(tracking_uri=URI)
world = load_world(WORLD)
as_of = pd.Timestamp(world.meta["as_of"])
t1 = time.perf_counter()
features = build_account_features(world.tables, as_of)
del world
t2 = time.perf_counter()
cat = load_catalog()
scores = provider.score(features, cat)
t3 = time.perf_counter()
frame = rank_batch(features, scores, cat, None, 3, as_of=as_of)
t4 = time.perf_counter()
frame.to_parquet(OUT, index=False)
t5 = time.perf_counter()
n = len(features)
result = {"step": "rank", "mode": "in-process", "accounts": n, "rows": len(frame), "seconds": round(t5 - t0, 1),
          "load_s": round(t1 - t0, 1), "features_s": round(t2 - t1, 1), "score_s": round(t3 - t2, 1),
          "rank_s": round(t4 - t3, 1), "write_s": round(t5 - t4, 1)}
'''

DASK_TRAIN = r'''
from telco_nbo.scale import dask_client, load_partitioned_world, train_churn_dask
t0 = time.perf_counter()
with dask_client("local", n_workers=WORKERS) as client:
    world = load_partitioned_world(WORLD, client)
    # Which phase holds a worker's peak: its RSS sampled every 2 s while the trainer runs.
    import threading
    samples, stop = [], threading.Event()

    def _rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

    def _sample():
        while not stop.wait(2.0):
            try:
                samples.append((time.perf_counter(), max(client.run(_rss).values())))
            except Exception:  # the cluster closing at the end
                return

    threading.Thread(target=_sample, daemon=True).start()
    t_call = time.perf_counter()
    res = train_churn_dask(world, client, params=TRAIN_PARAMS, early_stopping_rounds=None, log=False, seed=42,
                           external_memory=EXTMEM, restart_workers=EXTMEM and RESTART)
    stop.set()
    peaks = worker_peaks(client)
wall = time.perf_counter() - t0
n = sum(res.n_rows.values())
t_fit = t_call + res.seconds["features"] + res.seconds.get("restart", 0.0)
phase_rss = {"features": max([m for t, m in samples if t <= t_fit], default=None),
             "fit": max([m for t, m in samples if t_fit < t <= t_fit + res.seconds["fit"]], default=None)}
result = {"step": "train", "mode": f"dask-{WORKERS}w" + (" external memory" if EXTMEM else "") + ("" if RESTART or not EXTMEM else ", no restart"), "accounts": n, "partitions": world.n_partitions, "seconds": round(wall, 1),
          "fit_s": round(res.seconds["fit"], 1), "features_s": round(res.seconds["features"], 1),
          "train_rows": res.n_rows["train"], "holdout_auc": round(res.holdout_metrics["roc_auc"], 4),
          "worker_peak_mb": peaks, "sampled_worker_rss_mb_by_phase": phase_rss,
          "restart_s": round(res.seconds.get("restart", 0.0), 1),
          # external memory: peaks of the shard step's processes and of the (restarted) fit's
          "worker_peak_mb_by_step": res.worker_peak_mb}
if res.worker_peak_mb:
    result["worker_peak_mb"] = [max(a, b) for a, b in zip(res.worker_peak_mb["shards"], res.worker_peak_mb["fit"])]
'''

INPROC_TRAIN = r'''
from telco_nbo.data.io import load_world
from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix
from telco_nbo.models.churn import make_churn_classifier
from telco_nbo.models.metrics import evaluate_classifier
from telco_nbo.scale import split_column
t0 = time.perf_counter()
world = load_world(WORLD)
as_of = pd.Timestamp(world.meta["as_of"])
features = build_account_features(world.tables, as_of)
y = make_churn_labels(world.tables, as_of, 90, observed_until=world.meta["world_end"])["churned"].to_numpy()
del world
t1 = time.perf_counter()
split = split_column(features["household_id"], 0.25, 0.2, 42)
X = to_model_matrix(features)
t2 = time.perf_counter()
model = make_churn_classifier(**TRAIN_PARAMS, random_state=42).fit(X[split == 0], y[split == 0])
t_fit = time.perf_counter() - t2
auc = evaluate_classifier(y[split == 2], model.predict_proba(X[split == 2])[:, 1]).roc_auc
wall = time.perf_counter() - t0
result = {"step": "train", "mode": "in-process", "accounts": len(features), "seconds": round(wall, 1),
          "fit_s": round(t_fit, 1), "features_s": round(t1 - t0, 1), "train_rows": int((split == 0).sum()),
          "holdout_auc": round(auc, 4)}
'''

GENERATE = r'''
from telco_nbo.scale import dask_client, generate_world_dask, write_partitioned_world
t0 = time.perf_counter()
with dask_client("local") as client:
    world = generate_world_dask({n_hh}, {seed}, {n_parts}, client)
    write_partitioned_world(world, WORLD, client)
    peaks = worker_peaks(client)
result = {{"step": "generate", "mode": "dask-2w", "households": {n_hh}, "partitions": {n_parts},
          "seconds": round(time.perf_counter() - t0, 1), "worker_peak_mb": peaks}}
'''


def world_dir(workdir: Path, accounts: int) -> Path:
    """Folder of the world of ``accounts`` target accounts."""
    return workdir / f"world_{accounts}"


def ensure_world(workdir: Path, accounts: int) -> dict | None:
    """Generate the world once (Dask, partitions written by the workers); ``None`` if it exists."""
    path = world_dir(workdir, accounts)
    if (path / "meta.json").exists():
        return None
    n_hh = int(round(accounts / ACCOUNTS_PER_HOUSEHOLD))
    n_parts = max(1, round(n_hh / HOUSEHOLDS_PER_PARTITION))
    head = COMMON.format(world=str(path), uri="", out="", train_params="{}")
    return run_measured(head + GENERATE.format(n_hh=n_hh, seed=SEED, n_parts=n_parts), timeout=4 * 3600)


def ensure_champions(workdir: Path, first_world: Path) -> str:
    """Train the four champions once on the first partition of ``first_world``; return the store URI."""
    db = workdir / "mlflow.db"
    uri = f"sqlite:///{db}"
    if db.exists():
        return uri
    part = first_world / "partitions" / "part-00000"
    cmd = [str(Path(sys.executable).with_name("telco-nbo")), "train", "all", "--data", str(part), "--trials", "0",
           "--tracking-uri", uri, "--optuna-storage", f"sqlite:///{workdir / 'optuna.db'}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=workdir, env={**os.environ, "MPLBACKEND": "Agg"})
    print(f"champions trained in {time.perf_counter() - t0:.0f} s on {part}", flush=True)
    return uri


# In-process steps run under an address-space cap: on a shared machine a step that outgrows
# memory must fail with MemoryError (recorded) rather than wake the kernel's OOM killer.
CAP = r'''
import resource
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
'''


def run(step: str, mode: str, world: Path, uri: str, out: Path, cap_gb: float, workers: int = 2,
        restart: bool = True) -> dict:
    head = COMMON.format(world=str(world), uri=uri, out=str(out), train_params=repr(TRAIN_PARAMS))
    if mode == "inproc":
        head = CAP.format(cap=int(cap_gb * 2**30)) + head
    body = {("rank", "dask"): DASK_RANK, ("rank", "inproc"): INPROC_RANK,
            ("train", "dask"): "EXTMEM = False\n" + DASK_TRAIN, ("train", "inproc"): INPROC_TRAIN,
            ("train", "dask-extmem"): "EXTMEM = True\n" + DASK_TRAIN}[(step, mode)]
    body = f"WORKERS = {int(workers)}\nRESTART = {bool(restart)}\n" + body
    t0 = time.perf_counter()
    try:
        res = run_measured(head + body, env={"MPLBACKEND": "Agg"}, timeout=4 * 3600)
    except RuntimeError as exc:  # the step's own failure (e.g. MemoryError under the cap): recorded
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        res = {"step": step, "mode": {"inproc": "in-process", "dask-extmem": f"dask-{workers}w external memory"}.get(
                   mode, f"dask-{workers}w"),
               "failed": last, "stderr_tail": str(exc)[-3000:],
               "seconds": round(time.perf_counter() - t0, 1), "cap_gb": cap_gb}
    finally:
        out.unlink(missing_ok=True)
    return res


def table(rows: list[dict]) -> str:
    lines = ["| step | mode | accounts | wall s | accounts/s | parts of the wall time (s) | peak RSS MB | holdout AUC |",
             "|---|---|---:|---:|---:|---|---|---:|"]
    for r in rows:
        if r["step"] == "generate":
            continue
        if "failed" in r:
            lines.append(f"| {r['step']} | {r['mode']} | {r['target_accounts']:,} (target) | {r['seconds']} | – | "
                         f"failed under a {r['cap_gb']} GB address-space cap: {r['failed']} | – | |")
            continue
        keys = [k for k in ("cluster_start_s", "workers_s", "concat_s", "load_s", "features_s", "score_s", "rank_s",
                            "write_s", "fit_s") if k in r]
        parts = ", ".join(f"{k[:-2]} {r[k]}" for k in keys)
        peak = (f"workers {' / '.join(map(str, r['worker_peak_mb']))}; client {r['peak_rss_mb']:.0f}"
                if "worker_peak_mb" in r else f"{r['peak_rss_mb']:.0f}")
        lines.append(f"| {r['step']} | {r['mode']} | {r['accounts']:,} | {r['seconds']} | "
                     f"{round(r['accounts'] / r['seconds']):,} | {parts} | {peak} | {r.get('holdout_auc', '')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, action="append", help="Target active accounts (repeatable).")
    ap.add_argument("--steps", default="rank,train")
    ap.add_argument("--modes", default="dask,inproc",
                    help="Comma list of dask, dask-extmem (train only: external-memory fit), inproc.")
    ap.add_argument("--inproc-max", type=int, default=1_000_000,
                    help="Largest world run in-process (in-process peak memory grows with the world: see RESULTS.md).")
    ap.add_argument("--inproc-cap-gb", type=float, default=18.0,
                    help="Address-space cap of in-process steps (fail with MemoryError instead of the OOM killer).")
    ap.add_argument("--workers", type=int, default=2,
                    help="Workers of the local cluster for training (memory per worker follows rows per worker).")
    ap.add_argument("--no-restart", action="store_true",
                    help="dask-extmem: fit on the shard step's worker processes (no restart between the steps).")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/telco_nbo_bench_scale"))
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("bench_scale.json"))
    ap.add_argument("--results", type=Path, default=None, help="Also write a section of this RESULTS.md.")
    args = ap.parse_args()
    sizes = args.accounts or [1_000_000]
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = json.loads(args.json.read_text())["runs"] if args.json.exists() and os.environ.get("BENCH_SCALE_APPEND") else []

    def record(res: dict) -> None:
        rows.append(res)
        print(json.dumps(res), flush=True)
        args.json.write_text(json.dumps({"machine": machine_line(), "runs": rows}, indent=1))

    for n in sizes:
        gen = ensure_world(args.workdir, n)
        if gen:
            record({**gen, "target_accounts": n})
    uri = ensure_champions(args.workdir, world_dir(args.workdir, sizes[0]))
    for n in sizes:
        for step in args.steps.split(","):
            for mode in args.modes.split(","):
                if mode == "inproc" and n > args.inproc_max:
                    print(f"skip {step} in-process at {n:,} accounts (> --inproc-max)", flush=True)
                    continue
                res = run(step, mode, world_dir(args.workdir, n), uri, args.workdir / f"ranking_{n}_{mode}.parquet",
                          args.inproc_cap_gb, args.workers, not args.no_restart)
                record({**res, "target_accounts": n})
    if args.results:
        write_section(args.results, "Scale-out on Dask", f"Machine: {machine_line()}\n\n{table(rows)}")


if __name__ == "__main__":
    main()
