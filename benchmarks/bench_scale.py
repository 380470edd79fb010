"""Scale-out benchmark: batch ranking and churn training, in-process vs a 2-worker LocalCluster.

Every step runs in a fresh process (benchmarks/_harness.py) so peak memories never mix. The world
is the Dask world of :func:`telco_nbo.scale.generate_world_dask` (partitions of
``HOUSEHOLDS_PER_PARTITION`` households, ~0.9 active accounts per household); the in-process
steps build the *same* partitions one after another in one process and then run today's
single-call path (``rank_batch`` / ``XGBClassifier.fit`` on the whole frame).

Measured per step: wall time (generation + features + the step), accounts per second of the
whole step, the step's own seconds, and peak RSS: of the process for in-process steps; of each
worker process (``getrusage`` inside the worker) and of the client for Dask steps.

Scores for ranking are deterministic functions of the account id and features (the ranking's
cost does not depend on where scores come from; the champion provider plugs in the same way).

Usage::

    python benchmarks/bench_scale.py --accounts 1000000 [--accounts 5000000] [--inproc-rank-max 250000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_line, run_measured, write_section  # noqa: E402

HOUSEHOLDS_PER_PARTITION = 25_000
ACCOUNTS_PER_HOUSEHOLD = 0.91  # active accounts at as_of per household (measured on generated worlds)
TRAIN_PARAMS = {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 4}

COMMON = r'''
import time, resource, numpy as np, pandas as pd
from telco_nbo.nbo.scores import Scores

HH_PER_PART = {hpp}
N_HH = {n_hh}
N_PARTS = max(1, -(-N_HH // HH_PER_PART))
SEED = 7
TRAIN_PARAMS = {train_params}

class BenchScores:
    """Deterministic scores from the account id (hash) and two features."""
    def score(self, features, catalog):
        ids = features["account_id"].to_numpy(dtype=object)
        u = pd.util.hash_array(ids, hash_key="telco-nbo-bench1").astype(np.float64) / 2.0**64
        offer_ids = [o.offer_id for o in catalog.offers]
        n, m = len(ids), len(offer_ids)
        accounts = pd.DataFrame({{"account_id": ids, "churn_probability": 0.02 + 0.2 * u,
                                 "clv": 200 + 800 * (1 - u), "retention_uplift": 0.05 * (u - 0.3)}})
        prop = (np.outer(u, np.arange(1, m + 1)) % 1.0) * 0.3
        offers = pd.DataFrame({{"account_id": np.repeat(ids, m), "offer_id": np.tile(offer_ids, n),
                               "propensity": prop.ravel()}})
        return Scores(accounts, offers, model_versions={{"bench": "1"}})

def worker_peaks(client):
    import resource
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return sorted(round(v, 1) for v in peaks.values())
'''

DASK_RANK = r'''
from telco_nbo.scale import dask_client, generate_world_dask, build_account_features_dask, rank_batch_dask
t0 = time.perf_counter()
with dask_client("local") as client:
    world = generate_world_dask(N_HH, SEED, N_PARTS, client)
    ranked = rank_batch_dask(build_account_features_dask(world), BenchScores(), top_k=3)
    # A per-partition reduction: each ranking partition is made, counted and freed on its worker.
    stats = ranked.map_partitions(lambda f: pd.DataFrame({"accounts": [f["account_id"].nunique()],
                                  "rows": [len(f)], "selected": [int(f["selected"].sum())]})).compute()
    peaks = worker_peaks(client)
wall = time.perf_counter() - t0
n = int(stats["accounts"].sum())
result = {"step": "rank", "mode": "dask-2w", "accounts": n, "partitions": N_PARTS, "rows": int(stats["rows"].sum()),
          "seconds": round(wall, 1), "accounts_per_s": round(n / wall), "worker_peak_mb": peaks}
'''

DASK_TRAIN = r'''
from telco_nbo.scale import dask_client, generate_world_dask, train_churn_dask
t0 = time.perf_counter()
with dask_client("local") as client:
    world = generate_world_dask(N_HH, SEED, N_PARTS, client)
    res = train_churn_dask(world, client, params=TRAIN_PARAMS, early_stopping_rounds=None, log=False)
    peaks = worker_peaks(client)
wall = time.perf_counter() - t0
n = sum(res.n_rows.values())
result = {"step": "train", "mode": "dask-2w", "accounts": n, "partitions": N_PARTS, "seconds": round(wall, 1),
          "fit_s": round(res.seconds["fit"], 1), "features_s": round(res.seconds["features"], 1),
          "train_rows_per_s_fit": round(res.n_rows["train"] / res.seconds["fit"]),
          "holdout_auc": round(res.holdout_metrics["roc_auc"], 4), "worker_peak_mb": peaks}
'''

INPROC_FEATURES = r'''
from telco_nbo.scale import generate_partition, account_features_partition
t0 = time.perf_counter()
feats = []
for p in range(N_PARTS):
    w = generate_partition(N_HH, SEED, p, N_PARTS)
    feats.append(account_features_partition(w, w.meta["as_of"], {label}, w.meta["world_end"] if {label} else None))
    del w
features = pd.concat(feats, ignore_index=True); del feats
t_data = time.perf_counter() - t0
'''

INPROC_RANK = r'''
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.rank import rank_batch
cat = load_catalog()
t1 = time.perf_counter()
ranked = rank_batch(features, BenchScores().score(features, cat), cat, None, 3)
t_rank = time.perf_counter() - t1
wall = time.perf_counter() - t0
n = len(features)
result = {"step": "rank", "mode": "in-process", "accounts": n, "rows": len(ranked), "seconds": round(wall, 1),
          "rank_s": round(t_rank, 1), "accounts_per_s": round(n / wall)}
'''

INPROC_TRAIN = r'''
from telco_nbo.features import to_model_matrix
from telco_nbo.models.churn import make_churn_classifier
from telco_nbo.scale import split_column
from telco_nbo.models.metrics import evaluate_classifier
split = split_column(features["household_id"], 0.25, 0.2, 42)
X = to_model_matrix(features); y = features["churned"].to_numpy()
t1 = time.perf_counter()
model = make_churn_classifier(**TRAIN_PARAMS, random_state=42).fit(X[split == 0], y[split == 0])
t_fit = time.perf_counter() - t1
auc = evaluate_classifier(y[split == 2], model.predict_proba(X[split == 2])[:, 1]).roc_auc
wall = time.perf_counter() - t0
result = {"step": "train", "mode": "in-process", "accounts": len(features), "seconds": round(wall, 1),
          "fit_s": round(t_fit, 1), "train_rows_per_s_fit": round(int((split == 0).sum()) / t_fit),
          "holdout_auc": round(auc, 4)}
'''


def run(accounts: int, step: str, mode: str) -> dict:
    n_hh = int(round(accounts / ACCOUNTS_PER_HOUSEHOLD))
    head = COMMON.format(hpp=HOUSEHOLDS_PER_PARTITION, n_hh=n_hh, train_params=repr(TRAIN_PARAMS))
    if mode == "dask":
        code = head + (DASK_RANK if step == "rank" else DASK_TRAIN)
    else:
        label = "90" if step == "train" else "None"
        code = head + INPROC_FEATURES.format(label=label) + (INPROC_RANK if step == "rank" else INPROC_TRAIN)
    res = run_measured(code, env={"MPLBACKEND": "Agg"})
    res["target_accounts"] = accounts
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, action="append", help="Target active accounts (repeatable).")
    ap.add_argument("--steps", default="rank,train")
    ap.add_argument("--modes", default="dask,inproc")
    ap.add_argument("--inproc-rank-max", type=int, default=250_000,
                    help="Largest size ranked in-process (its output frame is ~13 kB per account).")
    ap.add_argument("--inproc-train-max", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("bench_scale.json"))
    ap.add_argument("--results", type=Path, default=None, help="Also write a section of this RESULTS.md.")
    args = ap.parse_args()
    sizes = args.accounts or [1_000_000]
    rows = []
    for n in sizes:
        for step in args.steps.split(","):
            for mode in args.modes.split(","):
                limit = args.inproc_rank_max if step == "rank" else args.inproc_train_max
                size = min(n, limit) if mode == "inproc" else n
                if mode == "inproc" and any(r["step"] == step and r["mode"] == "in-process" and r["target_accounts"] == size for r in rows):
                    continue
                res = run(size, step, mode)
                rows.append(res)
                print(json.dumps(res), flush=True)
                args.json.write_text(json.dumps({"machine": machine_line(), "runs": rows}, indent=1))
    if args.results:
        lines = [f"Machine: {machine_line()}", "", "| step | mode | accounts | wall s | accounts/s | step s | peak RSS MB (process or per worker) |",
                 "|---|---|---:|---:|---:|---:|---|"]
        for r in rows:
            step_s = r.get("rank_s", r.get("fit_s", ""))
            peak = r.get("worker_peak_mb", r.get("peak_rss_mb"))
            lines.append(f"| {r['step']} | {r['mode']} | {r['accounts']:,} | {r['seconds']} | "
                         f"{r.get('accounts_per_s', round(r['accounts'] / r['seconds']))} | {step_s} | {peak} |")
        write_section(args.results, "Scale-out (Dask)", "\n".join(lines))


if __name__ == "__main__":
    main()
