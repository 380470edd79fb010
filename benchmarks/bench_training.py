"""Benchmark: churn quality on IBM Telco, synthetic-world model quality, and training time.

Steps (each in a fresh process: its own wall time and peak RSS):

- ``ibm``: the public IBM Telco CSV imported with the built-in mapping, 5-fold stratified CV ROC
  AUC of the XGBoost churn model (fixed, shallow, regularized parameters; no tuning on the test
  folds) and of a logistic-regression baseline (one-hot + standardized, same folds); plus the
  contract-type sBG fit (alpha, beta per contract) and the CLV it implies. Target: AUC >= 0.84.
- ``churn``: `train_churn` on a synthetic world of N households (tuned, logged, registered):
  wall time, holdout AUC vs the oracle AUC of the true probabilities.
- ``all``: `train_all` (churn, propensity, uplift, CLV) with T trials each: time per model,
  churn AUC, propensity AUC, uplift Qini as a share of the oracle's, CLV correlation with truth.

Usage:
    python benchmarks/bench_training.py --steps ibm churn all --households 83000 --trials 20 \
        [--json out.json]

(83,000 households ~ 100,000 accounts; ~830,000 households ~ 1M accounts.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_line, run_measured, write_section  # noqa: E402

IBM_CSV = Path(__file__).resolve().parents[1] / "src" / "telco_nbo" / "data" / "samples" / "ibm_telco_customer_churn.csv"

IBM = """
import time, numpy as np, pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.compose import make_column_transformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.impute import SimpleImputer
from telco_nbo.data.importers import import_flat_csv
from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix, CATEGORICAL_FEATURES
from telco_nbo.models.churn import make_churn_classifier
from telco_nbo.models.clv import ContractCLV

world = import_flat_csv({csv!r}, "ibm")
as_of = pd.Timestamp(world.meta["as_of"])
feats = build_account_features(world.tables, as_of)
y = make_churn_labels(world.tables, as_of)["churned"].to_numpy()
X = to_model_matrix(feats)
X = X.loc[:, X.notna().any() & (X.nunique(dropna=True) > 1)]  # usage/ticket columns are empty for flat data
cats = [c for c in CATEGORICAL_FEATURES if c in X.columns]
nums = [c for c in X.columns if c not in cats]
params = dict(n_estimators=300, learning_rate=0.03, max_depth=3, min_child_weight=5.0, subsample=0.8,
              colsample_bytree=0.8, reg_lambda=5.0, n_jobs=1, random_state=0)
xgb_auc, lr_auc, t_fit = [], [], 0.0
for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
    t0 = time.perf_counter()
    m = make_churn_classifier(**params).fit(X.iloc[tr], y[tr], verbose=False)
    t_fit += time.perf_counter() - t0
    xgb_auc.append(roc_auc_score(y[te], m.predict_proba(X.iloc[te])[:, 1]))
    lr = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats),
                                (make_pipeline(SimpleImputer(), StandardScaler()), nums)),
        LogisticRegression(max_iter=2000))
    Xs = X.copy()
    for c in cats:
        Xs[c] = Xs[c].astype(str)
    lr.fit(Xs.iloc[tr], y[tr])
    lr_auc.append(roc_auc_score(y[te], lr.predict_proba(Xs.iloc[te])[:, 1]))
clv = ContractCLV(segment_col="account_contract_type", tenure_col="account_tenure_months").fit(feats, y)
f2 = feats.assign(monthly_margin=0.5 * feats["account_monthly_charges"])
v = clv.predict(f2)
result = dict(rows=len(X), features=X.shape[1], churn_rate=round(float(y.mean()), 4),
              xgb_cv_auc=round(float(np.mean(xgb_auc)), 4), xgb_cv_auc_sd=round(float(np.std(xgb_auc)), 4),
              logreg_cv_auc=round(float(np.mean(lr_auc)), 4), logreg_cv_auc_sd=round(float(np.std(lr_auc)), 4),
              xgb_fit_s_per_fold=round(t_fit / 5, 2),
              sbg=[dict(segment=r.segment, alpha=round(r.alpha, 4), beta=round(r.beta, 4), homogeneous=bool(r.homogeneous),
                        n=int(r.n_customers), churned=int(r.n_churned)) for r in clv.params_.itertuples()],
              mean_clv_by_contract={{k: round(float(g.mean()), 1) for k, g in pd.Series(v).groupby(feats["account_contract_type"].to_numpy())}})
"""

SYNTH = """
import os, time, tempfile
from pathlib import Path
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
from telco_nbo.data.io import write_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.training.config import load_config
from telco_nbo.vocabulary import MODEL_KINDS as KINDS
from telco_nbo.training.pipeline import load_world, train_all
root = Path(tempfile.mkdtemp(prefix="bench_training_"))
t0 = time.perf_counter()
write_world(generate_world({n}, seed=5), root / "data")
t_gen = time.perf_counter() - t0
t0 = time.perf_counter()
world = load_world(root / "data")
t_load = time.perf_counter() - t0
uri, st = f"sqlite:///{{root}}/mlflow.db", f"sqlite:///{{root}}/optuna.db"
cfgs = {{k: load_config(k, Path("training") / f"{{k}}.yaml", trials={trials}, tracking_uri=uri, optuna_storage=st,
                        n_jobs={n_jobs}) for k in KINDS}}
kinds = {kinds!r}
t0 = time.perf_counter()
res = train_all(root / "data", cfgs, kinds=tuple(kinds), world=world)
total = time.perf_counter() - t0
result = dict(households={n}, accounts=len(world.tables["accounts"]), trials={trials}, generate_s=round(t_gen, 1),
              load_validate_s=round(t_load, 1), train_s=round(total, 1),
              seconds={{k: round(r.seconds, 1) for k, r in res.items()}})
h = {{k: r.holdout_metrics for k, r in res.items()}}
m = {{k: r.metrics for k, r in res.items()}}
if "churn" in res:
    result.update(churn_auc=round(h["churn"]["roc_auc"], 4), churn_oracle_auc=round(m["churn"].get("truth_oracle_roc_auc", float("nan")), 4),
                  churn_n_trees=m["churn"]["n_trees"], churn_rows=int(res["churn"].details["model"].n_features_in_))
if "propensity" in res:
    result.update(propensity_auc=round(h["propensity"]["roc_auc"], 4),
                  propensity_auc_per_offer={{k[4:]: round(v, 3) for k, v in h["propensity"].items() if k.startswith("auc_")}})
if "uplift" in res:
    result.update({{f"uplift_{{k}}": round(v, 4) for k, v in h["uplift"].items()}})
    result.update(t_learner_qini_share_of_oracle=round(m["uplift"].get("t_learner_qini_share_of_oracle", float("nan")), 4))
if "clv" in res:
    result.update({{f"clv_{{k}}": round(v, 4) for k, v in h["clv"].items()}})
"""


def main(argv: list[str] | None = None) -> int:
    """Run the selected steps and print (and optionally save) their results as JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", nargs="+", default=["ibm", "churn", "all"], choices=["ibm", "churn", "all"])
    ap.add_argument("--households", type=int, nargs="+", default=[83_000])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"),
                    help="RESULTS.md whose 'Training' section is rewritten ('-' to skip)")
    args = ap.parse_args(argv)
    out: dict = {"machine": machine_line()}
    env = {"MPLBACKEND": "Agg"}
    if "ibm" in args.steps:
        if not IBM_CSV.exists():
            print(f"skipping ibm: {IBM_CSV} not found", file=sys.stderr)
        else:
            out["ibm"] = run_measured(IBM.format(csv=str(IBM_CSV)), env=env)
            print(json.dumps({"ibm": out["ibm"]}), flush=True)
    for n in args.households:
        for step, kinds in (("churn", ["churn"]), ("all", ["churn", "propensity", "uplift", "clv"])):
            if step in args.steps:
                key = f"{step}_{n}"
                out[key] = run_measured(SYNTH.format(n=n, trials=args.trials, kinds=kinds, n_jobs=args.n_jobs), env=env)
                print(json.dumps({key: out[key]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if str(args.results) != "-":
        write_section(args.results, "Training", render(out, argv if argv is not None else sys.argv[1:]))
    return 0


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def render(out: dict, argv: list[str]) -> str:
    """Markdown for RESULTS.md from this run's results (every figure from this run)."""
    lines = [f"Machine: {out['machine']}", "", f"`python benchmarks/bench_training.py {' '.join(argv)}`", ""]
    ibm = out.get("ibm")
    if ibm:
        lines += [
            f"**IBM Telco churn** ({ibm['rows']:,} customers, churn {ibm['churn_rate']:.1%}), 5-fold stratified CV ROC AUC, same folds:",
            "",
            "| model | ROC AUC (mean ± sd) |",
            "|---|---:|",
            f"| XGBoost churn model (fixed shallow params, {ibm['xgb_fit_s_per_fold']} s per fold) | {ibm['xgb_cv_auc']:.3f} ± {ibm['xgb_cv_auc_sd']:.3f} |",
            f"| logistic regression baseline (one-hot + standardized) | {ibm['logreg_cv_auc']:.3f} ± {ibm['logreg_cv_auc_sd']:.3f} |",
            "",
            "Contract-type sBG: " + "; ".join(
                f"{r['segment']} α={r['alpha']:.3g}, β={r['beta']:.3g}" + (" (constant churn fits best)" if r["homogeneous"] else "")
                for r in ibm["sbg"]) + ". Mean CLV by contract: " + ", ".join(f"{k} {v:,.0f}" for k, v in ibm["mean_clv_by_contract"].items()) + ".",
            "",
        ]
    synth = {k: v for k, v in out.items() if k.startswith(("churn_", "all_"))}
    if synth:
        lines += ["**Synthetic world** (each row its own process; wall time includes imports and MLflow logging):", "",
                  "| run | accounts | trials | train s (per model) | peak RSS MB | churn AUC (oracle) | propensity AUC | uplift true-gain / Qini share of oracle (X; T) | CLV corr / MAPE |",
                  "|---|---:|---:|---|---:|---|---:|---|---|"]
        for key, r in synth.items():
            per = ", ".join(f"{k} {v}" for k, v in r["seconds"].items())
            up = ""
            if "uplift_qini_share_of_oracle" in r:
                up = (f"{r.get('uplift_true_gain_share_of_oracle', float('nan')):.0%} / {r['uplift_qini_share_of_oracle']:.0%}; "
                      f"T {r.get('t_learner_qini_share_of_oracle', float('nan')):.0%}")
            clv = ""
            if "clv_truth_clv_pearson" in r:
                clv = f"{r['clv_truth_clv_pearson']:.3f} / {r.get('clv_truth_clv_mape', float('nan')):.0%}"
            lines.append(
                f"| {key} | {r['accounts']:,} | {r['trials']} | {r['train_s']} ({per}) | {r['peak_rss_mb']:,.0f} | "
                f"{r.get('churn_auc', float('nan')):.3f} ({r.get('churn_oracle_auc', float('nan')):.3f}) | "
                f"{_fmt(r.get('propensity_auc'))} | {up or '–'} | {clv or '–'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
