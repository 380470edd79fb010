"""Benchmark: the project's uplift learners against econml and causalml, on a synthetic world's truth.

The retention experiment's enrolments are prepared as ``telco-uplift`` prepares them
(:func:`telco_nbo.training.data.prepare_uplift`, the household holdout of the default uplift
configuration); every method is fitted on the non-holdout enrolments and scored on the holdout
against the true per-account effect ``tau = P(churn | offer) - P(churn | no offer)``:

- ``slope``: slope of the true ``tau`` on the predicted one (1 = honest, < 1 = overstated);
- ``pearson`` / ``spearman`` / ``gain``: agreement with the truth; ``gain`` is
  :func:`~telco_nbo.models.uplift.true_gain_share` (the noise-free Qini share of the oracle);
- ``cov_bin`` / ``cov_ind`` / ``width`` (methods with intervals, 95 %): share of accounts whose
  interval holds the mean true effect of their decile of predicted effect / their own true
  effect; ``dec_cov``: deciles whose mean interval holds the decile's mean true effect;
- ``value``: EUR per enrolled account of contacting where ``-tau_hat x CLV > cost`` (constant CLV
  and cost), measured with the true effect; ``v_lcb``: the same decision on the interval's bound;
  ``v_share``: ``value`` as a share of the oracle's (contact where ``-tau x CLV > cost``);
- ``wc_top20``: mean true over mean predicted retention uplift among the top 20 % (1 = no
  winner's curse);
- ``fit_s`` / ``cpu_s``: wall / CPU seconds to fit (the calibrated X-learner includes its 2-fold
  cross-fit); on a shared machine the CPU seconds are the steadier figure.

econml / causalml methods are skipped, with a message, when the package is not importable (they
are not project dependencies: run this with a separate environment that has them).

Usage:
    python benchmarks/bench_uplift_learners.py --data DIR [--out FILE.json] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

CALIBRATION_FOLDS = 2
"""Cross-fitting folds of the calibrated X-learner (``--calibration-folds``; training's ``calibration_folds``)."""

CLV, COST, Z95 = 300.0, 4.0, 1.959964


def load_experiment(data_dir: str | Path) -> dict[str, Any]:
    """The experiment's enrolments as the uplift trainer prepares them.

    Args:
        data_dir: A synthetic world's data folder (with ``truth/``).

    Returns:
        ``X`` (model frame), ``Xn`` (all-numeric matrix for econml / causalml: category codes,
        median-imputed values plus missing indicators), ``t``, ``y``, ``tau`` (true), ``groups``.
    """
    from telco_nbo.data.io import load_world
    from telco_nbo.training.data import prepare_uplift

    world = load_world(Path(data_dir), with_truth=True)
    frame = prepare_uplift(world.tables, world.truth, horizon_days=90,
                           drop_constant=bool(world.meta.get("drop_constant_features")))
    if frame.true_tau is None:
        raise SystemExit(f"{data_dir} has no truth/retention.parquet: a synthetic world is needed")
    X = frame.X
    num = X.apply(lambda c: c.cat.codes.astype(float) if c.dtype.name == "category" else c.astype(float))
    missing = num.columns[num.isna().any()]
    Xn = np.column_stack([num.fillna(num.median()).to_numpy(), num[missing].isna().to_numpy(float)])
    return {"X": X, "Xn": Xn, "t": np.asarray(frame.treatment, int), "y": np.asarray(frame.y, int),
            "tau": np.asarray(frame.true_tau, float), "groups": np.asarray(frame.household_ids)}


def xgb_params(n_estimators: int, seed: int) -> dict[str, Any]:
    """Base-learner hyperparameters shared by every XGBoost model (the learners' defaults)."""
    return {"n_estimators": n_estimators, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8,
            "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0, "n_jobs": 2, "random_state": seed}


# Each method: (X frame, numeric X, t, y, groups, params) of the fit rows -> predictor of
# (tau, lower, upper[, rank]) on (X frame, numeric X) of the holdout (bounds None without intervals).
Method = Callable[..., Callable[[Any, np.ndarray], tuple[np.ndarray, Any, Any]]]


def ours_x(X, Xn, t, y, g, p):
    """The project's X-learner, raw effects (no intervals)."""
    from telco_nbo.models.uplift import XLearner
    m = XLearner(**p).fit(X, t, y)
    return lambda Xh, _: (m.predict(Xh), None, None)


def ours_x_calibrated(X, Xn, t, y, g, p):
    """The X-learner with its out-of-fold linear calibration and calibration band, as ``telco-uplift`` fits it."""
    from telco_nbo.models.uplift import (XLearner, apply_calibration, calibrated_effect_se, calibration_band,
                                         cross_fit_calibration)
    m = XLearner(**p).fit(X, t, y)
    cal, oof = cross_fit_calibration(lambda: XLearner(**p), X, t, y, groups=g, folds=CALIBRATION_FOLDS,
                                     seed=p["random_state"])
    ok = np.isfinite(oof)
    band = calibration_band(oof[ok], t[ok], y[ok])

    def predict(Xh, _):
        raw = m.predict(Xh)
        tau, se = apply_calibration(raw, cal), calibrated_effect_se(raw, band)
        return tau, tau - Z95 * se, tau + Z95 * se, raw  # ranks by the raw effect, as the project does
    return predict


def ours_t(X, Xn, t, y, g, p):
    """The project's T-learner, raw effects."""
    from telco_nbo.models.uplift import TLearner
    m = TLearner(**p).fit(X, t, y)
    return lambda Xh, _: (m.predict(Xh), None, None)


def _econml_common(p):
    """Outcome classifier and (constant) propensity model shared by the econml methods."""
    from sklearn.dummy import DummyClassifier
    from xgboost import XGBClassifier
    # Randomized experiment: a constant propensity per fold, as the X-learner's treated share.
    return XGBClassifier(**p), DummyClassifier(strategy="prior")


def _with_interval(m):
    """Predictor of an econml estimator's effect and 95 % effect interval."""
    return lambda _, Xh: (m.effect(Xh), *m.effect_interval(Xh, alpha=0.05))


def econml_dr(X, Xn, t, y, g, p):
    """econml DRLearner, XGBoost nuisances and final model (intervals only by bootstrap refits: none here)."""
    from econml.dr import DRLearner
    from xgboost import XGBRegressor
    reg, prop = _econml_common(p)
    m = DRLearner(model_regression=reg, model_propensity=prop, model_final=XGBRegressor(**p),
                  discrete_outcome=True, cv=2, random_state=p["random_state"]).fit(y, t, X=Xn)
    return lambda _, Xh: (m.effect(Xh), None, None)


def econml_forest_dr(X, Xn, t, y, g, p):
    """econml ForestDRLearner (doubly robust pseudo-outcomes, honest forest, bootstrap-of-little-bags intervals)."""
    from econml.dr import ForestDRLearner
    reg, prop = _econml_common(p)
    m = ForestDRLearner(model_regression=reg, model_propensity=prop, discrete_outcome=True, cv=2,
                        n_estimators=400, min_samples_leaf=10, n_jobs=2, random_state=p["random_state"]
                        ).fit(y, t, X=Xn)
    return _with_interval(m)


def econml_causal_forest(X, Xn, t, y, g, p):
    """econml CausalForestDML (residual-on-residual causal forest, bootstrap-of-little-bags intervals)."""
    from econml.dml import CausalForestDML
    reg, prop = _econml_common(p)
    m = CausalForestDML(model_y=reg, model_t=prop, discrete_outcome=True, discrete_treatment=True, cv=2,
                        n_estimators=400, min_samples_leaf=10, n_jobs=2, random_state=p["random_state"]
                        ).fit(y, t, X=Xn)
    return _with_interval(m)


def causalml_x(X, Xn, t, y, g, p):
    """causalml BaseXClassifier with XGBoost learners and the constant treated share as propensity."""
    from causalml.inference.meta import BaseXClassifier
    from xgboost import XGBClassifier, XGBRegressor
    e = float(t.mean())
    m = BaseXClassifier(outcome_learner=XGBClassifier(**p), effect_learner=XGBRegressor(**p))
    m.fit(Xn, t, y, p=np.full(len(t), e))
    return lambda _, Xh: (np.ravel(m.predict(Xh, p=np.full(len(Xh), e), verbose=False)), None, None)


def causalml_dr(X, Xn, t, y, g, p):
    """causalml BaseDRLearner with XGBoost regressors and the constant treated share as propensity."""
    from causalml.inference.meta import BaseDRLearner
    from xgboost import XGBRegressor
    e = float(t.mean())
    m = BaseDRLearner(learner=XGBRegressor(**p))
    m.fit(Xn, t, y.astype(float), p=np.full(len(t), e), seed=p["random_state"])
    return lambda _, Xh: (np.ravel(m.predict(Xh, verbose=False)), None, None)


METHODS: dict[str, tuple[str | None, Method]] = {
    "ours X-learner raw": (None, ours_x),
    "ours X-learner calibrated+band": (None, ours_x_calibrated),
    "ours T-learner raw": (None, ours_t),
    "econml DRLearner (XGB final)": ("econml", econml_dr),
    "econml ForestDRLearner": ("econml", econml_forest_dr),
    "econml CausalForestDML": ("econml", econml_causal_forest),
    "causalml BaseXClassifier": ("causalml", causalml_x),
    "causalml BaseDRLearner": ("causalml", causalml_dr),
}


def score(tau_hat: np.ndarray, lo: Any, hi: Any, true: np.ndarray, rank: Any = None) -> dict[str, float]:
    """The figures of one method on one holdout (see the module docstring).

    Args:
        tau_hat: Predicted effects (what a decision multiplies by the value).
        lo: Lower 95 % bounds, or None.
        hi: Upper 95 % bounds, or None.
        true: True effects.
        rank: The effect the method ranks by, if not ``tau_hat`` (the raw effect of a calibrated
            learner: a monotone calibration keeps its order, a zero slope would erase it).
    """
    from scipy.stats import spearmanr

    from telco_nbo.models.uplift import true_gain_share

    tau_hat = np.asarray(tau_hat, float).ravel()
    rank = tau_hat if rank is None else np.asarray(rank, float).ravel()
    out = {"slope": float(np.polyfit(tau_hat, true, 1)[0]) if np.std(tau_hat) > 1e-12 else float("nan"),
           "pearson": float(np.corrcoef(rank, true)[0, 1]),
           "spearman": float(spearmanr(rank, true).statistic),
           "gain": float(true_gain_share(-rank, -true))}
    if rank is not tau_hat:  # the calibration's slope (0 = it found no usable spread: everyone gets the ATE)
        out["cal_slope"] = float(np.polyfit(rank, tau_hat, 1)[0])
    oracle = float(np.maximum(-true * CLV - COST, 0).mean())
    out["value"] = float(np.where(-tau_hat * CLV > COST, -true * CLV - COST, 0).mean())
    out["v_share"] = out["value"] / oracle if oracle > 0 else float("nan")
    out["contacted"] = float((-tau_hat * CLV > COST).mean())
    top = np.argsort(rank, kind="mergesort")[: max(1, len(true) // 5)]  # most negative tau first
    out["wc_top20"] = float(true[top].mean() / tau_hat[top].mean()) if tau_hat[top].mean() != 0 else float("nan")
    if lo is not None:
        lo, hi = np.asarray(lo, float).ravel(), np.asarray(hi, float).ravel()
        order = np.argsort(rank, kind="mergesort")
        bin_mean, dec_cov = np.empty_like(true), 0
        for idx in np.array_split(order, 10):
            m = true[idx].mean()
            bin_mean[idx] = m
            dec_cov += int(lo[idx].mean() <= m <= hi[idx].mean())
        out.update({"cov_bin": float(((lo <= bin_mean) & (bin_mean <= hi)).mean()),
                    "cov_ind": float(((lo <= true) & (true <= hi)).mean()), "dec_cov": float(dec_cov),
                    "width": float((hi - lo).mean()),
                    "v_lcb": float(np.where(-hi * CLV > COST, -true * CLV - COST, 0).mean())})
    return out


def run(data_dir: str, repeats: int, n_estimators: int, only: list[str] | None) -> dict[str, Any]:
    """Fit and score every available method on ``repeats`` household holdouts of one world.

    Args:
        data_dir: The world's data folder.
        repeats: Holdouts (config seeds 42, 43, ...): each redraws the household split.
        n_estimators: Trees per XGBoost model.
        only: Substrings of method names to run (None = all).

    Returns:
        ``{"world", "n_enrolled", "true_tau", ..., "methods": {name: {"mean", "sd", "median", "runs"}}, "skipped"}``.
    """
    import importlib

    from telco_nbo.training.config import load_config
    from telco_nbo.training.steps import split

    d = load_experiment(data_dir)
    X, Xn, t, y, tau, g = d["X"], d["Xn"], d["t"], d["y"], d["tau"], d["groups"]
    skipped, methods = {}, {}
    for name, (pkg, fn) in METHODS.items():
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        try:
            if pkg:
                importlib.import_module(pkg)
            methods[name] = fn
        except ImportError as exc:
            skipped[name] = f"{pkg} not importable ({exc})"
            print(f"skip {name}: {skipped[name]}")
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in methods}
    for r in range(repeats):
        cfg = load_config("uplift", seed=42 + r)
        ho = split(g, cfg).holdout
        fit = ~ho
        p = xgb_params(n_estimators, cfg.seed)
        for name, fn in methods.items():
            t0, c0 = time.perf_counter(), time.process_time()
            predict = fn(X[fit], Xn[fit], t[fit], y[fit], g[fit], p)
            fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0  # every method threads in-process
            tau_hat, lo, hi, *rank = predict(X[ho], Xn[ho])
            runs[name].append({**score(tau_hat, lo, hi, tau[ho], *rank), "fit_s": fit_s, "cpu_s": cpu_s})
            print(f"  [{r + 1}/{repeats}] {name}: {fit_s:.1f} s", flush=True)
    return {"world": str(data_dir), "n_enrolled": int(len(t)), "n_holdout_last": int(ho.sum()),
            "true_tau": {"mean": float(tau.mean()), "sd": float(tau.std())},
            "oracle_value_eur_per_account": float(np.maximum(-tau * CLV - COST, 0).mean()),
            "clv": CLV, "cost": COST, "n_estimators": n_estimators, "repeats": repeats, "skipped": skipped,
            "methods": {n: {"mean": {k: float(np.nanmean([x.get(k, np.nan) for x in rs])) for k in rs[0]},
                            "sd": {k: float(np.nanstd([x.get(k, np.nan) for x in rs])) for k in rs[0]},
                            "median": {k: float(np.nanmedian([x.get(k, np.nan) for x in rs])) for k in rs[0]},
                            "runs": rs} for n, rs in runs.items()}}


COLUMNS = ("slope", "pearson", "spearman", "gain", "cov_bin", "dec_cov", "cov_ind", "width", "value", "v_share",
           "v_lcb", "contacted", "wc_top20", "fit_s", "cpu_s")
MEDIAN = ("slope", "wc_top20", "fit_s", "cpu_s")  # ratios and times: one wild holdout should not set the figure


def table(result: dict[str, Any]) -> str:
    """A plain-text table of the methods' mean figures over the repeats."""
    tt = result["true_tau"]
    lines = [f"world {result['world']}: {result['n_enrolled']} enrolments, "
             f"true tau mean {tt['mean']:.4f} sd {tt['sd']:.4f}; "
             f"oracle value {result['oracle_value_eur_per_account']:.3f} EUR/account; "
             f"mean of {result['repeats']} holdouts ({', '.join(MEDIAN)}: median)",
             f"{'method':32s}" + "".join(f"{c:>10s}" for c in COLUMNS)]
    for name, m in result["methods"].items():
        row = {**m["mean"], **{c: m["median"].get(c, float("nan")) for c in MEDIAN}}
        lines.append(f"{name:32s}" + "".join(f"{row.get(c, float('nan')):10.3f}" for c in COLUMNS))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="synthetic world folder (telco-nbo data generate)")
    ap.add_argument("--out", help="JSON file for the results")
    ap.add_argument("--repeats", type=int, default=3, help="household holdouts (seeds 42, 43, ...)")
    ap.add_argument("--n-estimators", type=int, default=200, help="trees per XGBoost model")
    ap.add_argument("--only", nargs="*", help="run only methods whose name contains one of these")
    ap.add_argument("--calibration-folds", type=int, default=CALIBRATION_FOLDS,
                    help="cross-fitting folds of the calibrated X-learner (training's calibration_folds)")
    args = ap.parse_args(argv)
    globals()["CALIBRATION_FOLDS"] = args.calibration_folds
    warnings.filterwarnings("ignore")
    result = run(args.data, args.repeats, args.n_estimators, args.only)
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
