"""The uplift model (``telco-uplift``): prepare -> fit -> evaluate, then one training run.

The retention offer's effect on churn, learned from the randomized experiment
(``EXP-RETENTION-1``). Both a T- and an X-learner are fitted and evaluated; the configured one is
registered as XGBoost JSON components behind a pyfunc model.

The same run estimates every other offer's effect on churn from the logged randomized contacts
(:mod:`telco_nbo.models.offer_effects`: several offers as several treatments), with the chosen
learner's no-contact outcome model as the baseline risk; they are saved in the model's spec
(``offer_effects``) and logged as ``evaluation/offer_effects.csv`` with a forest plot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.tracking import run_record, training_run
from telco_nbo.training.config import TrainingConfig, load_config
from telco_nbo.training.data import RETENTION_EXPERIMENT, UpliftFrame, prepare_uplift
from telco_nbo.training.pyfunc import component_logger, uplift_components
from telco_nbo.training.steps import (
    LEARNER_KEYS,
    Splits,
    TrainResult,
    component_params,
    finite,
    fit_classifier,
    load_world,
    resolved_config,
    split,
)

# The models (XGBoost, scikit-learn: ~6 s to import) and the plots are imported inside the steps
# that use them, so importing a trainer (the CLI, the Dask package) stays cheap.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telco_nbo.data.world import World


@dataclass(frozen=True)
class UpliftData:
    """The prepare step's result.

    Attributes:
        frame: The experiment's enrolments: features, churn outcome, treatment, true effects
            (synthetic worlds).
        splits: Household split of the enrolments.
    """

    frame: UpliftFrame
    splits: Splits


@dataclass
class FittedUplift:
    """The fit step's result.

    Attributes:
        learners: ``x`` and ``t`` learners fitted on the non-holdout enrolments.
        chosen: The one registered (``cfg.uplift_learner``); it carries the calibration.
        learner_params: Their shared hyperparameters.
        metrics: Tuning figures, fit and calibration seconds, the calibration's coefficients.
    """

    learners: dict[str, Any]
    chosen: str
    learner_params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class UpliftHoldout:
    """The evaluate step's result.

    Attributes:
        taus: Each learner's estimated effect per holdout enrolment.
        evaluations: Each learner's uplift evaluation (Qini, AUUC, deciles).
        holdout_metrics: The chosen learner's figures (logged as ``holdout_<name>``).
        metrics: Both learners' figures (``x_learner_<name>``, ``t_learner_<name>``) and the
            calibrated effect against the truth (synthetic worlds).
        figures: Qini curve, uplift by decile, SHAP of the effect model.
    """

    taus: dict[str, np.ndarray]
    evaluations: dict[str, Any]
    holdout_metrics: dict[str, float]
    metrics: dict[str, float]
    figures: dict[str, Figure]


def prepare(world: World, cfg: TrainingConfig) -> UpliftData:
    """The experiment's enrolments, split by household.

    Raises:
        ConfigError: A split is empty.
        DataValidationError: No experiment, or an arm of a split has too few rows or one outcome.
    """
    frame = prepare_uplift(world.tables, world.truth, horizon_days=cfg.label_horizon_days,
                           drop_constant=bool(world.meta.get("drop_constant_features")))
    splits = split(frame.household_ids, cfg)
    y, t = frame.y, frame.treatment
    for name, m in (("training", ~splits.holdout), ("holdout", splits.holdout)):
        for arm in (0, 1):
            sel = m & (t == arm)
            if sel.sum() < 10 or len(np.unique(y[sel])) < 2:
                raise DataValidationError("contacts", [f"the {name} split of the experiment has too few "
                                                       f"{'treated' if arm else 'control'} rows or a single outcome"])
    return UpliftData(frame, splits)


def fit(data: UpliftData, cfg: TrainingConfig, *, parent_run_id: str | None = None,
        tracking_uri: str | None = None) -> FittedUplift:
    """Tune the base learners (if ``cfg.trials``), fit both learners, calibrate the chosen one out of fold.

    Tuning tunes the shared base-learner hyperparameters on the outcome model
    ``churn ~ features + treatment`` (log loss on the validation enrolments).
    """
    from telco_nbo.models.uplift import TLearner, XLearner, calibration_band, cross_fit_calibration

    frame, s = data.frame, data.splits
    X, y, t = frame.X, frame.y, frame.treatment
    learner_params = {k: v for k, v in cfg.params.items() if k in LEARNER_KEYS}
    metrics: dict[str, float] = {}
    if cfg.trials > 0:
        Xt = X.assign(treatment=t.astype(float))
        tuned = fit_classifier("uplift", Xt[s.train], y[s.train], Xt[s.valid], y[s.valid], cfg,
                               parent_run_id=parent_run_id, tracking_uri=tracking_uri)
        learner_params = {**{k: v for k, v in tuned.params.items() if k in LEARNER_KEYS}, **learner_params}
        metrics.update(tuned.metrics)
    learner_params.update({"random_state": cfg.seed, "n_jobs": cfg.n_jobs})
    fit_rows = ~s.holdout
    learners = {"x": XLearner(**learner_params), "t": TLearner(**learner_params)}
    for key, learner in learners.items():
        t0 = time.perf_counter()
        learner.fit(X[fit_rows], t[fit_rows], y[fit_rows])
        metrics[f"{key}_learner_fit_seconds"] = time.perf_counter() - t0
    chosen = cfg.uplift_learner
    # The effect a decision multiplies by a customer's value is calibrated out of fold: a
    # learner's largest estimates overstate the effect (the winner's curse).
    make = (lambda: XLearner(**learner_params)) if chosen == "x" else (lambda: TLearner(**learner_params))
    t0 = time.perf_counter()
    calibration, oof = cross_fit_calibration(make, X[fit_rows], t[fit_rows], y[fit_rows],
                                             groups=np.asarray(frame.household_ids)[fit_rows], seed=cfg.seed,
                                             folds=cfg.calibration_folds)
    learners[chosen].calibration_ = calibration
    metrics["calibration_seconds"] = time.perf_counter() - t0
    if calibration is not None:
        metrics["calibration_intercept"], metrics["calibration_slope"] = calibration
        # The same out-of-fold rows give the calibrated effect's standard error (risk: lcb decisions).
        ok = np.isfinite(oof)
        band = calibration_band(oof[ok], np.asarray(t[fit_rows])[ok], np.asarray(y[fit_rows])[ok])
        learners[chosen].calibration_band_ = band
        metrics["calibration_var_ate"], metrics["calibration_var_slope"], _ = band
    return FittedUplift(learners, chosen, learner_params, metrics)


def evaluate(data: UpliftData, fitted: FittedUplift, cfg: TrainingConfig) -> UpliftHoldout:
    """Both learners on the holdout enrolments (Qini, AUUC, deciles; truth on a synthetic world)."""
    from telco_nbo.models.uplift import evaluate_uplift

    frame, ho = data.frame, data.splits.holdout
    X, y, t, true_tau = frame.X, frame.y, frame.treatment, frame.true_tau
    taus, evaluations, metrics = {}, {}, {}
    for key, learner in fitted.learners.items():
        taus[key] = learner.predict(X[ho])
        evaluations[key] = evaluate_uplift(y[ho], t[ho], taus[key], negative_outcome=True,
                                           true_uplift=None if true_tau is None else true_tau[ho])
    chosen = fitted.chosen
    holdout_metrics = holdout_figures(evaluations[chosen], taus[chosen], true_tau, ho)
    for key, ev in evaluations.items():
        for name, value in holdout_figures(ev, taus[key], true_tau, ho).items():
            metrics[f"{key}_learner_{name}"] = value
    figures = plot_uplift(fitted.learners[chosen], X[ho], y[ho], t[ho], taus, evaluations[chosen],
                          None if true_tau is None else true_tau[ho], cfg)
    learner = fitted.learners[chosen]
    if getattr(learner, "calibration_", None) is not None and true_tau is not None:
        cal_ho = learner.predict_calibrated(X[ho])
        true_ho = np.asarray(true_tau)[ho]
        ok = np.isfinite(true_ho)
        if ok.sum() > 2 and np.std(cal_ho[ok]) > 1e-9:
            # Slope of the true effect on the calibrated one (1 = honest; the raw learner's in
            # ``{x,t}_learner_true_slope``-like metrics is what calibration corrects).
            metrics["calibrated_true_slope_holdout"] = float(np.polyfit(cal_ho[ok], true_ho[ok], 1)[0])
            metrics["calibrated_mean_tau_holdout"] = float(cal_ho.mean())
            metrics["true_mean_tau_holdout"] = float(true_ho[ok].mean())
    return UpliftHoldout(taus, evaluations, holdout_metrics, metrics, figures)


@dataclass
class LoggedEffects:
    """The per-offer effects step's result.

    Attributes:
        effects: The estimates (None: no logged randomized contact with a known outcome).
        metrics: ``offer_effect_<offer>`` (shrunk), ``logged_units``, ``logged_control``, ...
        table: One row per offer (raw and shrunk estimates; the true effect on a synthetic world).
        figures: The forest plot.
    """

    effects: Any
    metrics: dict[str, float]
    table: pd.DataFrame | None
    figures: dict[str, Figure]


def logged_effects(world: World, learner: Any, cfg: TrainingConfig) -> LoggedEffects:
    """Every offer's relative effect on churn from the logged randomized contacts up to ``as_of``.

    Only logging policies that can choose "no contact" are used (the others have no comparison
    group). Each offer is compared with the not-contacted units it could have been sold to (the
    catalog's eligibility and ownership rules on the unit's features), weighted by the inverse of
    the logged propensities. The baseline risk of each unit is the learner's no-contact outcome
    model (trained on the experiment's control arm) on the unit's features before the contact.
    """
    from telco_nbo.features import to_model_matrix
    from telco_nbo.models.offer_effects import estimate_offer_effects
    from telco_nbo.nbo.catalog import load_catalog
    from telco_nbo.nbo.rules import sellable
    from telco_nbo.training.data import prepare_logged

    as_of = world.as_of_date(cfg.as_of)
    contacts = world.tables.get("contacts")
    if contacts is None or "policy_id" not in contacts.columns:
        return LoggedEffects(None, {"logged_units": 0.0}, None, {})
    # Policies that logged a "no contact" choice: the others have no comparison group.
    with_none = sorted(set(contacts.loc[contacts["policy_id"].notna() & ~contacts["contacted"].astype(bool),
                                        "policy_id"].astype(str)))
    logged = prepare_logged(world.tables, as_of, cfg.label_horizon_days, policies=with_none) if with_none else None
    if logged is None:
        return LoggedEffects(None, {"logged_units": 0.0}, None, {})
    features = logged.features
    X = to_model_matrix(features).reindex(columns=list(learner.feature_names_in_))
    baseline = learner.model_control_.predict_proba(X)[:, 1]
    catalog = load_catalog()
    ids = [o.offer_id for o in catalog.offers]
    can = sellable(features, catalog)
    effects = estimate_offer_effects(
        logged.action, logged.churned, baseline, logged.household_ids,
        horizon_days=logged.horizon_days, available={o: can[:, k] for k, o in enumerate(ids)},
        weights=1.0 / logged.propensity, policies=with_none)
    metrics = {"logged_units": float(effects.n_units), "logged_control": float(effects.n_control),
               "logged_baseline_ratio": effects.baseline_ratio, "offer_effects_tau": effects.tau}
    metrics.update({f"offer_effect_{o}": e.shrunk for o, e in effects.effects.items()})
    table = pd.DataFrame(effects.table())
    if len(table):
        table = table.set_index("offer_id")
        true = true_relative_effects(world.truth)
        if true is not None:
            table["true_relative_effect_at_as_of"] = true.reindex(table.index)
    return LoggedEffects(effects, finite(metrics), table, {"offer_effects": plot_offer_effects(table)} if len(table) else {})


def true_relative_effects(truth: Any) -> pd.Series | None:
    """A synthetic world's true relative effect of each offer at ``as_of``: total effect / total risk.

    Over the accounts the world can deliver the offer to, on the channel where it is accepted most.
    ``None`` without the truth tables.
    """
    if not truth or "offer_effects" not in truth or "accounts" not in truth:
        return None
    tr = truth["offer_effects"]
    tr = tr[tr["p_accept"] > 0].sort_values("p_accept").drop_duplicates(["account_id", "offer_id"], keep="last")
    p0 = truth["accounts"].set_index("account_id")["p_churn_90d"].reindex(tr["account_id"]).to_numpy(dtype=float)
    sums = pd.DataFrame({"offer_id": tr["offer_id"].to_numpy(), "d": tr["delta_churn"].to_numpy(float), "p0": p0})
    g = sums.groupby("offer_id")[["d", "p0"]].sum()
    return g["d"] / g["p0"]


def plot_offer_effects(table: pd.DataFrame) -> Figure:
    """Forest plot: each offer's relative effect on churn (95 % interval), the shrunk value, the truth."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 0.4 * len(table) + 1.8))
    ax = fig.add_subplot()
    ypos = np.arange(len(table))
    est = table["relative_effect"].to_numpy(float)
    ax.errorbar(est, ypos, xerr=[est - table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float) - est],
                fmt="o", color="#4c72b0", label="estimate, 95 % interval")
    ax.plot(table["shrunk"].to_numpy(float), ypos, "D", color="#dd8452", label="shrunk (what decisions use)")
    if "true_relative_effect_at_as_of" in table:
        ax.plot(table["true_relative_effect_at_as_of"].to_numpy(float), ypos, "s", color="black", markersize=4,
                label="true (synthetic, at as_of)")
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(ypos, [f"{o} (n={int(n):,})" for o, n in zip(table.index, table["n_contacts"], strict=True)])
    ax.set_xlabel("relative change in 90-day churn from a contact (-0.2 = 20 % fewer leave)")
    ax.set_title("Effect of each offer on churn, from logged randomized contacts")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def holdout_figures(ev: Any, tau: np.ndarray, true_tau: np.ndarray | None, holdout: np.ndarray) -> dict[str, float]:
    """One learner's logged figures: Qini, AUUC, top-decile uplift, ATE; against the truth when known."""
    out = {"qini": ev.qini_coefficient, "auuc": ev.auuc, "qini_area": ev.qini_area,
           "uplift_top_decile": ev.uplift_top_decile, "observed_ate": ev.observed_ate}
    if true_tau is not None:
        true = true_tau[holdout]
        out.update({"qini_share_of_oracle": ev.qini_share_of_oracle, "oracle_qini": ev.oracle_qini_coefficient,
                    "true_gain_share_of_oracle": ev.true_gain_share_of_oracle,
                    "tau_spearman": ev.tau_spearman, "tau_rmse": ev.tau_rmse,
                    "tau_pearson": float(np.corrcoef(tau, true)[0, 1]) if np.std(tau) > 0 else None})
    return finite(out)


def plot_uplift(learner: Any, X_ho: pd.DataFrame, y: np.ndarray, t: np.ndarray, taus: dict[str, np.ndarray],
                ev: Any, true_tau: np.ndarray | None, cfg: TrainingConfig) -> dict[str, Figure]:
    """Qini curve of both learners, uplift by decile of the chosen one, SHAP of its effect model."""
    from matplotlib.figure import Figure

    from telco_nbo.explain import global_figures
    from telco_nbo.models.metrics import plot_qini

    figures: dict[str, Figure] = {
        "qini_curve": plot_qini(y, t, {f"{k.upper()}-learner": v for k, v in taus.items()}, true_uplift=true_tau,
                                negative_outcome=True, title="Retention offer: Qini curve on the holdout enrolments")
    }
    dec = pd.DataFrame([d.model_dump() for d in ev.deciles]).set_index("decile")
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.bar(dec.index, dec["uplift"].fillna(0).to_numpy(), yerr=1.96 * dec["std_uplift"].fillna(0).to_numpy(),
           color="#4c72b0", alpha=0.8, label="observed (treated - control), 95 % CI")
    ax.plot(dec.index, dec["mean_score"], "o-", color="#dd8452", label="predicted")
    if "mean_true_uplift" in dec and dec["mean_true_uplift"].notna().any():
        ax.plot(dec.index, dec["mean_true_uplift"], "s--", color="black", label="true (synthetic)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("decile of predicted retention uplift (1 = highest)")
    ax.set_ylabel("retention uplift (share of churn prevented)")
    ax.set_title("Uplift by decile (holdout)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figures["uplift_by_decile"] = fig
    # SHAP of the effect model: what drives the estimated effect (X-learner stage 2; for a
    # T-learner the treated arm's outcome model).
    component = getattr(learner, "effect_treated_", None) or learner.model_treated_
    figures.update(global_figures(component, X_ho, max_rows=cfg.shap_rows, seed=cfg.seed, n_dependence=3))
    return figures


def train_uplift(data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None) -> TrainResult:
    """Uplift of the retention offer on churn from the randomized experiment (``telco-uplift``).

    Both a T- and an X-learner are fitted and evaluated on the holdout enrolments (Qini, AUUC,
    uplift by decile; on a synthetic world also against the true effects); the configured one
    (``uplift_learner``) is registered as XGBoost JSON components behind a pyfunc model.
    Tuning (if ``trials``) tunes the shared base-learner hyperparameters on the outcome model
    ``churn ~ features + treatment`` (log loss on the validation enrolments).
    """
    t_start = time.perf_counter()
    cfg = cfg or load_config("uplift")
    world = world or load_world(data_dir)
    data = prepare(world, cfg)
    frame, ho = data.frame, data.splits.holdout
    X, y, t = frame.X, frame.y, frame.treatment
    fit_rows = ~ho
    with training_run("uplift", run_name=f"uplift-{cfg.uplift_learner}-learner", tracking_uri=cfg.tracking_uri) as run:
        fitted = fit(data, cfg, parent_run_id=run.run_id, tracking_uri=cfg.tracking_uri)
        result = evaluate(data, fitted, cfg)
        metrics = {**fitted.metrics, **result.metrics}
        learner = fitted.learners[fitted.chosen]
        spec, boosters = uplift_components(learner)
        spec["experiment_id"] = RETENTION_EXPERIMENT
        spec["label_horizon_days"] = cfg.label_horizon_days
        per_offer = logged_effects(world, learner, cfg)
        spec["offer_effects"] = None if per_offer.effects is None else per_offer.effects.to_spec()
        metrics.update(per_offer.metrics)
        texts = {f"evaluation/{k}_learner_holdout.json": ev.model_dump_json(indent=2)
                 for k, ev in result.evaluations.items()}
        if per_offer.table is not None:
            texts["evaluation/offer_effects.csv"] = per_offer.table.to_csv()
        record = run_record(
            X_train=X[fit_rows], y_train=y[fit_rows], X_holdout=X[ho], y_holdout=y[ho],
            train_scores=learner.predict(X[fit_rows]), holdout_scores=result.taus[fitted.chosen],
            extra_train={"treatment": t[fit_rows]}, extra_holdout={"treatment": t[ho]},
            params=component_params({**fitted.learner_params, "learner": fitted.chosen, "n_enrolled": len(y),
                                     "treated_share": float(t.mean()),
                                     "dropped_constant_features": ",".join(frame.dropped_features)[:6000]}, boosters),
            metrics=metrics, holdout_metrics=result.holdout_metrics,
            config=resolved_config(cfg, data_dir, frame.as_of, learner_params=fitted.learner_params),
            figures={**result.figures, **per_offer.figures},
            texts=texts,
        )
        logged = run.log(record, component_logger(spec, boosters, frame.features.loc[fit_rows].head(5)),
                         register=cfg.register_model)
    return TrainResult("uplift", logged.run_id, logged.model_name, logged.model_version, logged.aliases,
                       result.holdout_metrics, metrics, time.perf_counter() - t_start,
                       {"learner": learner, "evaluations": result.evaluations, "offer_effects": per_offer.effects})


__all__ = ["FittedUplift", "LoggedEffects", "UpliftData", "UpliftHoldout", "evaluate", "fit", "holdout_figures",
           "logged_effects", "plot_offer_effects", "plot_uplift", "prepare", "train_uplift", "true_relative_effects"]
