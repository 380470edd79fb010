"""The customer-lifetime-value model (``telco-clv``): prepare -> fit -> evaluate, then one training run.

Method ``hazard`` (data with usage, e.g. the synthetic world): each account's monthly hazard from
the churn model's 90-day probability, ``h = 1 - (1 - p90)^(1/3)``, survival ``S(t) = (1-h)^t`` and
``CLV = sum_t margin * S(t) / (1+d)^t`` over the horizon. Method ``contract_sbg`` (flat data such
as IBM Telco): one shifted-beta-geometric model per contract type fitted on tenure + churn, valued
conditional on the account's tenure.

**Margin assumption**: ``monthly margin = margin_rate x account_monthly_charges`` (default 0.5);
the data has no cost side. The rate is saved with the model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.tracking import run_record, training_run
from telco_nbo.training.churn import ChurnData
from telco_nbo.training.churn import prepare as prepare_churn_data
from telco_nbo.training.config import TrainingConfig, load_config
from telco_nbo.training.data import LabelledFrame
from telco_nbo.training.pyfunc import ClvScorer, component_logger, contract_clv_spec
from telco_nbo.training.steps import (
    TrainResult,
    component_params,
    fit_classifier,
    load_world,
    resolved_config,
)

# The models (XGBoost, scikit-learn: ~6 s to import) and the plots are imported inside the steps
# that use them, so importing a trainer (the CLI, the Dask package) stays cheap.
if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.figure import Figure

    from telco_nbo.data.world import World


@dataclass(frozen=True)
class ClvData:
    """The prepare step's result: the churn data and the resolved method.

    Attributes:
        churn: Account features, churn labels, household split (as for the churn model).
        method: ``hazard`` or ``contract_sbg`` (``auto`` resolved on the data).
    """

    churn: ChurnData
    method: str


@dataclass
class FittedClv:
    """The fit step's result.

    Attributes:
        spec: The model's JSON spec (method, margin, horizon, discounting, parts' parameters).
        boosters: Its XGBoost parts (the churn model for ``hazard``; none for ``contract_sbg``).
        scorer: The scorer over them.
        metrics: The churn model's fit figures when it was fitted here.
    """

    spec: dict[str, Any]
    boosters: dict[str, Any]
    scorer: ClvScorer
    metrics: dict[str, float]


@dataclass
class ClvHoldout:
    """The evaluate step's result.

    Attributes:
        scores: The scorer's output for every account (``clv``, ``churn_p90``, ``monthly_margin``).
        holdout_metrics: Label log loss and ROC AUC, mean CLV; against the truth on a synthetic world.
        figures: CLV by contract type, vs the truth, sBG survival curves.
    """

    scores: pd.DataFrame
    holdout_metrics: dict[str, float]
    figures: dict[str, Figure]


def prepare(world: World, cfg: TrainingConfig) -> ClvData:
    """The churn data at ``cfg.as_of`` and the method (``auto``: ``hazard`` when there is usage)."""
    data = prepare_churn_data(world, cfg)
    method = cfg.clv_method
    if method == "auto":
        usage = world.tables.get("usage_monthly")
        method = "hazard" if usage is not None and len(usage) > 0 else "contract_sbg"
    return ClvData(data, method)


def fit(data: ClvData, cfg: TrainingConfig, churn_model: Any = None) -> FittedClv:
    """Fit the CLV model: hazards from ``churn_model`` (fitted here untuned if ``None``), or sBG per contract."""
    frame, s = data.churn.frame, data.churn.splits
    base_spec = {"kind": "clv", "method": data.method, "margin_rate": cfg.margin_rate,
                 "horizon": cfg.clv_horizon_months, "discount_rate": cfg.discount_rate,
                 "margin_assumption": f"monthly margin = {cfg.margin_rate} x account_monthly_charges"}
    metrics: dict[str, float] = {}
    if data.method == "hazard":
        if churn_model is None:
            X = frame.X
            fitted = fit_classifier("clv", X[s.train], frame.y[s.train], X[s.valid], frame.y[s.valid],
                                    cfg.model_copy(update={"trials": 0}))
            churn_model, metrics = fitted.model, fitted.metrics
        spec = {**base_spec, "feature_names": list(churn_model.get_booster().feature_names)}
        boosters = {"churn_model": churn_model}
    else:
        from telco_nbo.models.clv import ContractCLV

        fit_frame = frame.features.loc[~s.holdout, ["account_contract_type", "account_tenure_months"]]
        contract = ContractCLV(segment_col="account_contract_type", tenure_col="account_tenure_months",
                               horizon=cfg.clv_horizon_months, discount_rate=cfg.discount_rate).fit(fit_frame, frame.y[~s.holdout])
        spec = {**base_spec, "segment_col": "account_contract_type", "tenure_col": "account_tenure_months",
                "segments": contract_clv_spec(contract)}
        boosters = {}
    return FittedClv(spec, boosters, ClvScorer(spec, {}, churn_model=boosters.get("churn_model")), metrics)


def evaluate(world: World, data: ClvData, fitted: FittedClv, cfg: TrainingConfig) -> ClvHoldout:
    """Score every account; check the churn label's probability on the holdout; truth on a synthetic world."""
    from sklearn.metrics import log_loss, roc_auc_score

    frame, ho = data.churn.frame, data.churn.splits.holdout
    scores = fitted.scorer.predict_frame(frame.features)
    p90 = np.clip(label_probability(fitted.scorer, frame, scores), 1e-6, 1 - 1e-6)
    y_ho = frame.y[ho]
    holdout_metrics = {"log_loss": float(log_loss(y_ho, p90[ho], labels=[0, 1])),
                       "roc_auc": float(roc_auc_score(y_ho, p90[ho])),
                       "mean_clv": float(scores["clv"][ho].mean())}
    holdout_metrics.update(truth_metrics(world, frame, scores["clv"].to_numpy(), ho, cfg))
    return ClvHoldout(scores, holdout_metrics, plot_clv(world, frame, scores, ho, data.method, fitted.spec))


def label_probability(scorer: Any, frame: LabelledFrame, scores: pd.DataFrame) -> np.ndarray:
    """The CLV model's probability of the churn label itself (what the holdout can check).

    Hazard method: the label is churn within the window after ``as_of``, i.e. ``churn_p90``.
    Contract sBG: the fit reads a churn flag as "left during the account's current (n-th) period"
    (flat extracts flag who left in the last period), so the label's probability is the sBG
    hazard of that period, ``1 - r(n)``, not the forward-looking ``churn_p90``.
    """
    if scorer.method == "hazard":
        return scores["churn_p90"].to_numpy()
    from telco_nbo.models.clv import sbg_retention

    spec = {row["segment"]: row for row in scorer.spec["segments"]}
    seg = frame.features[scorer.spec["segment_col"]].astype(str).to_numpy()
    n = np.maximum(np.floor(pd.to_numeric(frame.features[scorer.spec["tenure_col"]]).to_numpy(dtype=float)), 1.0)
    p = np.empty(len(seg))
    for value, row in spec.items():
        mask = seg == value
        p[mask] = 1.0 - sbg_retention(n[mask], row["alpha"], row["beta"])
    return p


def truth_metrics(world: World, frame: LabelledFrame, clv: np.ndarray, holdout: np.ndarray, cfg: TrainingConfig) -> dict[str, float]:
    """On a synthetic world at its own ``as_of``: predicted CLV vs the true ``clv_36m``."""
    truth = world.truth.get("clv")
    if truth is None or frame.as_of != world.as_of_date() or cfg.clv_horizon_months != 36:
        return {}
    true = pd.Series(frame.account_ids).map(truth.set_index("account_id")["clv_36m"]).to_numpy(dtype=float)
    ok = holdout & np.isfinite(true)
    if ok.sum() < 10:
        return {}
    a, b = clv[ok], true[ok]
    pos = b > 0
    return {"truth_clv_pearson": float(np.corrcoef(a, b)[0, 1]),
            "truth_clv_spearman": float(pd.Series(a).corr(pd.Series(b), method="spearman")),
            "truth_clv_mape": float(np.mean(np.abs(a[pos] - b[pos]) / b[pos])),
            "truth_clv_total_ratio": float(a.sum() / b.sum())}


def plot_clv(world: World, frame: LabelledFrame, scores: pd.DataFrame, holdout: np.ndarray, method: str,
             spec: Mapping[str, Any]) -> dict[str, Figure]:
    """CLV by contract type; predicted vs true CLV (synthetic worlds); sBG survival (``contract_sbg``)."""
    from matplotlib.figure import Figure

    figures: dict[str, Figure] = {}
    clv = scores["clv"].to_numpy()
    contract = frame.features["account_contract_type"].astype(str).to_numpy()
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for c in sorted(set(contract)):
        ax.hist(clv[contract == c], bins=50, alpha=0.5, label=c)
    ax.set_xlabel("predicted CLV (currency)")
    ax.set_ylabel("accounts")
    ax.set_title(f"CLV by contract type ({method})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figures["clv_by_contract"] = fig
    truth = world.truth.get("clv")
    if truth is not None and frame.as_of == world.as_of_date():
        true = pd.Series(frame.account_ids).map(truth.set_index("account_id")["clv_36m"]).to_numpy(dtype=float)
        ok = holdout & np.isfinite(true)
        fig = Figure(figsize=(5.5, 5))
        ax = fig.add_subplot()
        ax.scatter(true[ok], clv[ok], s=3, alpha=0.3)
        hi = float(np.nanmax(np.r_[true[ok], clv[ok]])) if ok.any() else 1.0
        ax.plot([0, hi], [0, hi], color="black", linewidth=0.8)
        ax.set_xlabel("true CLV (36 months, synthetic truth)")
        ax.set_ylabel("predicted CLV")
        ax.set_title("CLV: predicted vs true (holdout)")
        fig.tight_layout()
        figures["clv_vs_truth"] = fig
    if method == "contract_sbg":
        from telco_nbo.models.clv import sbg_survival

        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.add_subplot()
        t = np.arange(0, 73)
        for row in spec["segments"]:
            ax.plot(t, sbg_survival(t, row["alpha"], row["beta"]), label=f"{row['segment']} (a={row['alpha']:.3g}, b={row['beta']:.3g})")
        ax.set_xlabel("months since start")
        ax.set_ylabel("S(t)")
        ax.set_title("sBG survival by contract type")
        ax.legend(fontsize=8)
        fig.tight_layout()
        figures["sbg_survival"] = fig
    return figures


def train_clv(
    data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None, churn_model: Any = None
) -> TrainResult:
    """Customer lifetime value (``telco-clv``; methods and margin assumption in the module doc).

    Args:
        data_dir: Data folder.
        cfg: Configuration.
        world: The loaded world.
        churn_model: The churn classifier to take hazards from (e.g. just trained by
            :func:`~telco_nbo.training.pipeline.train_all`); default: fit one here with
            ``cfg.params`` (no tuning).
    """
    t_start = time.perf_counter()
    cfg = cfg or load_config("clv")
    world = world or load_world(data_dir)
    data = prepare(world, cfg)
    frame, ho = data.churn.frame, data.churn.splits.holdout
    with training_run("clv", run_name=f"clv-{data.method}", tracking_uri=cfg.tracking_uri) as run:
        fitted = fit(data, cfg, churn_model)
        result = evaluate(world, data, fitted, cfg)
        clv = result.scores["clv"].to_numpy()
        record = run_record(
            X_train=frame.X[~ho], y_train=frame.y[~ho], X_holdout=frame.X[ho], y_holdout=frame.y[ho],
            train_scores=clv[~ho], holdout_scores=clv[ho],
            params=component_params({"method": data.method, "margin_rate": cfg.margin_rate,
                                     "horizon_months": cfg.clv_horizon_months, "discount_rate": cfg.discount_rate,
                                     "as_of": str(data.churn.as_of.date())}, fitted.boosters),
            metrics=fitted.metrics, holdout_metrics=result.holdout_metrics,
            config=resolved_config(cfg, data_dir, data.churn.as_of, resolved_method=data.method),
            figures=result.figures, texts={"clv/spec.json": json.dumps(fitted.spec, indent=2, default=str)},
        )
        logged = run.log(record, component_logger(fitted.spec, fitted.boosters, frame.features.loc[~ho].head(5)),
                         register=cfg.register_model)
    return TrainResult("clv", logged.run_id, logged.model_name, logged.model_version, logged.aliases,
                       result.holdout_metrics, fitted.metrics, time.perf_counter() - t_start,
                       {"method": data.method, "spec": fitted.spec})


__all__ = ["ClvData", "ClvHoldout", "FittedClv", "evaluate", "fit", "label_probability", "plot_clv", "prepare",
           "train_clv", "truth_metrics"]
