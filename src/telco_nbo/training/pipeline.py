"""Training pipeline: one function per model kind, :func:`train_all`, and the demo step.

Every ``train_*`` function follows the same order, so nothing is half-written on bad input:

1. load the data folder through the validating loader and prepare the frames
   (:mod:`telco_nbo.training.data`) — a malformed or insufficient folder raises here, *before*
   any MLflow run exists;
2. open the run in the kind's experiment (``telco-<kind>``), tune with Optuna (trials nested
   under it), fit the final model on train + validation with the tuned number of trees;
3. evaluate on the household-level holdout (the same households for every run on the same data
   and seed, so :func:`telco_nbo.tracking.promote` compares like with like);
4. log params, metrics, lineage, the resolved config, plots and the model (XGBoost's own format,
   or XGBoost JSON components behind a pyfunc for uplift and CLV), register a new version
   (``challenger``; the first version also ``champion``).

Promotion is a separate, explicit step (:func:`promote_all`, ``telco-nbo promote``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError
from telco_nbo.training.config import PROMOTION_METRICS, TrainingConfig, load_config
from telco_nbo.training.data import (
    LabelledFrame,
    has_contact_history,
    household_split,
    prepare_churn,
    prepare_offers,
    prepare_uplift,
)
from telco_nbo.vocabulary import MODEL_KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telco_nbo.data.world import World

_LEARNER_KEYS = ("n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree", "min_child_weight", "reg_lambda")


@dataclass
class TrainResult:
    """What one training call produced.

    Attributes:
        kind: Model kind.
        run_id: The MLflow run holding the model.
        model_name: Registered name (``None`` if not registered).
        model_version: New registry version.
        aliases: Aliases the version holds after registration.
        holdout_metrics: Metrics on the holdout (logged as ``holdout_<name>``).
        metrics: Other metrics (tuning, timings, comparisons).
        seconds: Wall time of the call.
        details: Kind-specific extras (e.g. per-offer AUC, per add-on runs).
    """

    kind: str
    run_id: str
    model_name: str | None
    model_version: int | None
    aliases: tuple[str, ...]
    holdout_metrics: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# shared steps
# --------------------------------------------------------------------------------------------------


def _load_world(data_dir: str | Path) -> World:
    from telco_nbo.data.io import load_world

    # Truth (synthetic worlds) is loaded for evaluation only; features never read it.
    return load_world(Path(data_dir), with_truth=True)


def _splits(household_ids: np.ndarray, cfg: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Masks (holdout, validation); validation is drawn among the non-holdout households."""
    holdout = household_split(household_ids, cfg.holdout_fraction, cfg.seed, "holdout")
    valid = household_split(household_ids, cfg.valid_fraction, cfg.seed, "valid") & ~holdout
    for name, mask in (("holdout", holdout), ("validation", valid), ("training", ~holdout & ~valid)):
        if mask.sum() == 0:
            raise ConfigError(f"the {name} split is empty: too few households for the split fractions")
    return holdout, valid


def _check_split_labels(y: np.ndarray, masks: Mapping[str, np.ndarray], what: str) -> None:
    from telco_nbo.errors import DataValidationError

    problems = [f"the {name} split of the {what} data has a single class" for name, m in masks.items() if len(np.unique(y[m])) < 2]
    if problems:
        raise DataValidationError(what, problems + ["use more data or other split fractions"])


def _fit_classifier(
    kind: str,
    X_tr: pd.DataFrame,
    y_tr: np.ndarray,
    X_va: pd.DataFrame,
    y_va: np.ndarray,
    cfg: TrainingConfig,
    *,
    run_id: str | None,
    tracking_uri: str | None,
) -> tuple[Any, dict[str, Any], dict[str, float]]:
    """Tune (if ``cfg.trials``) and fit the final XGBoost classifier on train + validation.

    Returns:
        The model, its resolved parameters and tuning metrics.
    """
    from telco_nbo.models.churn import default_search_space, make_churn_classifier
    from telco_nbo.tracking import frame_digest
    from telco_nbo.tuning import tune

    fixed = {**cfg.params}
    metrics: dict[str, float] = {}
    base = {"random_state": cfg.seed, "early_stopping_rounds": cfg.early_stopping_rounds, "n_jobs": cfg.n_jobs}
    if cfg.trials > 0:
        study = cfg.study_name or f"telco-{kind}-{frame_digest(X_tr, y_tr)}"

        def space(trial: Any) -> dict[str, Any]:
            # Fixed parameters win: the sampler still proposes them, the model ignores them.
            return {k: v for k, v in default_search_space(trial).items() if k not in fixed}

        result = tune(
            lambda p: make_churn_classifier(**{**base, **p, **fixed}),
            space, X_tr, y_tr, X_va, y_va,
            n_trials=cfg.trials, study_name=study, metric="logloss", storage=cfg.optuna_storage, seed=cfg.seed,
            tracking=run_id is not None, tracking_uri=tracking_uri, parent_run_id=run_id,
            # Reporting every round writes to the study's database each round; every 5 is plenty.
            report_interval=5,
        )
        params = {**result.best_params, **fixed}
        best_it = result.best_iteration
        metrics.update({"tuning_best_logloss": result.best_value, "tuning_trials": float(result.n_trials),
                        "tuning_pruned": float(result.n_pruned), "tuning_seconds": result.elapsed_seconds})
    else:
        params = fixed
        probe = make_churn_classifier(**{**base, **params}).fit(X_tr, y_tr, eval_set=[(X_va, y_va)], verbose=False)
        best_it = getattr(probe, "best_iteration", None)
    n_trees = int(best_it) + 1 if best_it is not None else int(make_churn_classifier(**params).get_params()["n_estimators"])
    final_params = {"n_jobs": cfg.n_jobs, **params, "n_estimators": n_trees, "random_state": cfg.seed}
    t0 = time.perf_counter()
    model = make_churn_classifier(**final_params).fit(pd.concat([X_tr, X_va]), np.concatenate([y_tr, y_va]), verbose=False)
    metrics["final_fit_seconds"] = time.perf_counter() - t0
    metrics["n_trees"] = float(n_trees)
    return model, final_params, metrics


def _classifier_figures(model: Any, X_ho: pd.DataFrame, evaluation: Any, cfg: TrainingConfig, title: str) -> dict[str, Figure]:
    from telco_nbo.explain import global_figures
    from telco_nbo.models.metrics import plot_calibration, plot_lift

    figures = {"calibration": plot_calibration(evaluation, title=f"{title}: calibration on the holdout"),
               "decile_lift": plot_lift(evaluation, title=f"{title}: lift and capture by decile (holdout)")}
    figures.update(global_figures(model, X_ho, max_rows=cfg.shap_rows, seed=cfg.seed))
    return figures


def _log_extra(run_id: str, tracking_uri: str | None, texts: Mapping[str, str]) -> None:
    """Write extra text artifacts (JSON/CSV tables) into a finished run."""
    from telco_nbo.tracking import tracking_session

    with tracking_session(tracking_uri) as client:
        for path, text in texts.items():
            client.log_text(run_id, text, path)


def _fail_run(run_id: str | None, tracking_uri: str | None) -> None:
    if run_id is None:
        return
    from telco_nbo.tracking import tracking_session

    with tracking_session(tracking_uri) as client:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="FAILED")


def _resolved(cfg: TrainingConfig, data_dir: str | Path, as_of: pd.Timestamp, **extra: Any) -> dict[str, Any]:
    out = cfg.model_dump(mode="json")
    out.update({"data": str(Path(data_dir).resolve()), "as_of": str(as_of.date())})
    out.update({k: v for k, v in extra.items()})
    return json.loads(json.dumps(out, default=str))


def _observed_until(world: World) -> Any:
    return world.meta.get("world_end")


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(float(v))}


# --------------------------------------------------------------------------------------------------
# churn
# --------------------------------------------------------------------------------------------------


def train_churn(data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None) -> TrainResult:
    """Train, evaluate, log and register the churn model (``telco-churn``).

    Args:
        data_dir: Data folder.
        cfg: Configuration (default: :func:`load_config` defaults).
        world: The loaded world (skips loading; ``data_dir`` is still recorded).

    Returns:
        The :class:`TrainResult`; ``details["model"]`` is the fitted classifier.
    """
    from telco_nbo.models.metrics import evaluate_classifier
    from telco_nbo.tracking import log_training_run, start_run

    t_start = time.perf_counter()
    cfg = cfg or load_config("churn")
    world = world or _load_world(data_dir)
    as_of = world.as_of_date(cfg.as_of)
    frame = prepare_churn(world.tables, as_of, cfg.label_horizon_days, _observed_until(world),
                          drop_constant=bool(world.meta.get("drop_constant_features")))
    holdout, valid = _splits(frame.household_ids, cfg)
    train = ~holdout & ~valid
    _check_split_labels(frame.y, {"training": train, "validation": valid, "holdout": holdout}, "churn")
    X, y = frame.X, frame.y
    uri = cfg.tracking_uri
    run_id = start_run("churn", run_name=f"churn-{as_of.date()}", tracking_uri=uri)
    try:
        model, params, metrics = _fit_classifier("churn", X[train], y[train], X[valid], y[valid], cfg, run_id=run_id, tracking_uri=uri)
        p_ho = model.predict_proba(X[holdout])[:, 1]
        evaluation = evaluate_classifier(y[holdout], p_ho)
        holdout_metrics = evaluation.headline()
        metrics.update(_truth_churn_metrics(world, frame, holdout, p_ho))
        figures = _classifier_figures(model, X[holdout], evaluation, cfg, "Churn (90 days)")
        train_rows = train | valid
        run = log_training_run(
            "churn", model, X_train=X[train_rows], y_train=y[train_rows], X_holdout=X[holdout], y_holdout=y[holdout],
            params={"as_of": str(as_of.date()), "label_horizon_days": cfg.label_horizon_days, "n_holdout_households": int(len(set(frame.household_ids[holdout]))),
                    # Imported data: features only a default filled, left out rather than fed as data.
                    "dropped_constant_features": ",".join(frame.dropped_features)[:6000]},
            metrics=metrics, holdout_metrics=holdout_metrics,
            config=_resolved(cfg, data_dir, as_of, model_params=params), figures=figures,
            run_id=run_id, register=cfg.register_model, tracking_uri=uri,
        )
        _log_extra(run.run_id, uri, {"evaluation/churn_holdout.json": evaluation.model_dump_json(indent=2)})
    except BaseException:
        _fail_run(run_id, uri)
        raise
    return TrainResult("churn", run.run_id, run.model_name, run.model_version, run.aliases, holdout_metrics, metrics,
                       time.perf_counter() - t_start, {"model": model, "as_of": as_of})


def _truth_churn_metrics(world: World, frame: LabelledFrame, holdout: np.ndarray, p_ho: np.ndarray) -> dict[str, float]:
    """On a synthetic world: the model's holdout scores against the true 90-day churn probability."""
    truth = world.truth.get("accounts")
    if truth is None or frame.as_of != world.as_of_date():
        return {}
    true_p = pd.Series(frame.account_ids[holdout]).map(truth.set_index("account_id")["p_churn_90d"]).to_numpy(dtype=float)
    ok = np.isfinite(true_p)
    if ok.sum() < 10:
        return {}
    from sklearn.metrics import roc_auc_score

    out = {"truth_pearson_p_churn_90d": float(np.corrcoef(p_ho[ok], true_p[ok])[0, 1]),
           "truth_mean_abs_error_p_churn_90d": float(np.mean(np.abs(p_ho[ok] - true_p[ok])))}
    # AUC an oracle knowing the true probabilities would reach on these labels: the ceiling.
    y = np.asarray(frame.y[holdout])[ok]
    if len(np.unique(y)) == 2:
        out["truth_oracle_roc_auc"] = float(roc_auc_score(y, true_p[ok]))
    return out


# --------------------------------------------------------------------------------------------------
# propensity
# --------------------------------------------------------------------------------------------------


def train_propensity(data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None) -> TrainResult:
    """Offer propensity: the offer-conditioned acceptance model, or propensity-to-own without contacts.

    With a contact history the model is P(accept | contacted, account, offer) over every contact
    made up to ``as_of`` (registered as ``telco-propensity``; AUC per offer logged). Without one
    (e.g. the IBM sample) one "propensity to own" classifier per add-on is trained and logged in
    the same experiment, *not registered*: the ranking needs P(accept | offer), which ownership
    only approximates.
    """
    t_start = time.perf_counter()
    cfg = cfg or load_config("propensity")
    world = world or _load_world(data_dir)
    as_of = world.as_of_date(cfg.as_of)
    if not has_contact_history(world.tables):
        return _train_ownership(data_dir, world, as_of, cfg, t_start)
    from telco_nbo.models.metrics import evaluate_classifier
    from telco_nbo.models.propensity import auc_by_offer
    from telco_nbo.tracking import log_training_run, start_run

    offers = prepare_offers(world.tables, as_of)
    holdout, valid = _splits(offers.household_ids, cfg)
    train = ~holdout & ~valid
    _check_split_labels(offers.y, {"training": train, "validation": valid, "holdout": holdout}, "contacts")
    X, y = offers.X, offers.y
    uri = cfg.tracking_uri
    run_id = start_run("propensity", run_name=f"propensity-{as_of.date()}", tracking_uri=uri)
    try:
        model, params, metrics = _fit_classifier("propensity", X[train], y[train], X[valid], y[valid], cfg, run_id=run_id, tracking_uri=uri)
        p_ho = model.predict_proba(X[holdout])[:, 1]
        evaluation = evaluate_classifier(y[holdout], p_ho)
        holdout_metrics = evaluation.headline()
        per_offer = auc_by_offer(y[holdout], p_ho, offers.keys["offer_id"].to_numpy()[holdout], min_per_class=5)
        for offer_id, row in per_offer.iterrows():
            if offer_id != "__all__" and np.isfinite(row["roc_auc"]):
                holdout_metrics[f"auc_{offer_id}"] = float(row["roc_auc"])
        ok = per_offer.drop(index="__all__")["roc_auc"].dropna()
        if len(ok):
            holdout_metrics["auc_per_offer_mean"] = float(ok.mean())
        figures = _classifier_figures(model, X[holdout], evaluation, cfg, "Offer acceptance")
        figures["auc_by_offer"] = _plot_auc_by_offer(per_offer)
        train_rows = train | valid
        run = log_training_run(
            "propensity", model, X_train=X[train_rows], y_train=y[train_rows], X_holdout=X[holdout], y_holdout=y[holdout],
            params={"as_of": str(as_of.date()), "n_snapshots": len(offers.snapshots), "use_channel": False},
            metrics={**metrics, "n_contacts": float(len(y)), "acceptance_rate": float(y.mean())},
            holdout_metrics=holdout_metrics, config=_resolved(cfg, data_dir, as_of, model_params=params,
                                                              snapshots=[str(d.date()) for d in offers.snapshots]),
            figures=figures, run_id=run_id, register=cfg.register_model, tracking_uri=uri,
        )
        # The offers the model knows (ids are categories of the model): saved with it for serving.
        _log_extra(run.run_id, uri, {
            OFFERS_ARTIFACT: offers.offers.to_json(orient="records", date_format="iso"),
            "evaluation/auc_by_offer.csv": per_offer.to_csv(),
            "evaluation/propensity_holdout.json": evaluation.model_dump_json(indent=2),
        })
    except BaseException:
        _fail_run(run_id, uri)
        raise
    return TrainResult("propensity", run.run_id, run.model_name, run.model_version, run.aliases, holdout_metrics, metrics,
                       time.perf_counter() - t_start, {"model": model, "auc_by_offer": per_offer})


OFFERS_ARTIFACT = "propensity/offers.json"
"""Artifact of a propensity run: the offers table (ids, kinds, prices) the model was trained with."""


def _plot_auc_by_offer(per_offer: pd.DataFrame) -> Figure:
    from matplotlib.figure import Figure

    data = per_offer.drop(index="__all__", errors="ignore")
    fig = Figure(figsize=(7, 0.35 * len(data) + 1.5))
    ax = fig.add_subplot()
    ax.barh(list(map(str, data.index)), data["roc_auc"].fillna(0.5).to_numpy(), color="#4c72b0")
    for i, (n, auc) in enumerate(zip(data["n"], data["roc_auc"], strict=True)):
        ax.text(0.505, i, f"n={int(n):,}" + ("" if np.isfinite(auc) else " (too few)"), va="center", fontsize=7)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0.4, 1.0)
    ax.set_xlabel("ROC AUC within the offer (holdout)")
    ax.set_title("Offer acceptance: AUC per offer")
    fig.tight_layout()
    return fig


def _train_ownership(data_dir: str | Path, world: World, as_of: pd.Timestamp, cfg: TrainingConfig, t_start: float) -> TrainResult:
    from telco_nbo.errors import DataValidationError
    from telco_nbo.features import build_account_features
    from telco_nbo.models.metrics import evaluate_classifier
    from telco_nbo.models.propensity import ADDONS, ownership_dataset
    from telco_nbo.tracking import TAG, log_training_run, start_run

    feats = build_account_features(world.tables, as_of)
    datasets = {}
    skipped: dict[str, str] = {}
    for addon in ADDONS:
        try:
            ds = ownership_dataset(feats, addon)
        except DataValidationError as exc:
            skipped[addon] = str(exc)
            continue
        hh = feats.loc[ds.index, "household_id"].to_numpy(dtype=object)
        holdout, valid = _splits(hh, cfg)
        masks = {"training": ~holdout & ~valid, "validation": valid, "holdout": holdout}
        if any(len(np.unique(ds.y[m])) < 2 for m in masks.values()):
            skipped[addon] = "a split has a single class"
            continue
        datasets[addon] = (ds, holdout, valid)
    if not datasets:
        raise DataValidationError("accounts", ["no add-on has owners and non-owners in every split: "
                                               + "; ".join(f"{k}: {v}" for k, v in skipped.items())])
    uri = cfg.tracking_uri
    results: dict[str, dict[str, Any]] = {}
    first: Any = None
    for addon, (ds, holdout, valid) in datasets.items():
        train = ~holdout & ~valid
        X, y = ds.X, ds.y
        dropped: list[str] = []
        if world.meta.get("drop_constant_features"):
            from telco_nbo.features import constant_columns

            # Imported data: features only a default filled are left out, not fed as data.
            dropped = constant_columns(X)
            X = X.drop(columns=dropped)
        sub = cfg.model_copy(update={"study_name": f"{cfg.study_name}-{addon}" if cfg.study_name else None})
        run_id = start_run("propensity", run_name=f"own-{addon}", tags={TAG + "propensity.addon": addon}, tracking_uri=uri)
        try:
            model, params, metrics = _fit_classifier(f"propensity-own-{addon}", X[train], y[train], X[valid], y[valid], sub, run_id=run_id, tracking_uri=uri)
            p_ho = model.predict_proba(X[holdout])[:, 1]
            evaluation = evaluate_classifier(y[holdout], p_ho)
            run = log_training_run(
                "propensity", model, X_train=X[~holdout], y_train=y[~holdout], X_holdout=X[holdout], y_holdout=y[holdout],
                params={"as_of": str(as_of.date()), "target": f"owns {addon}", "excluded": json.dumps(ds.excluded),
                        "dropped_constant_features": ",".join(dropped)[:6000]},
                metrics=metrics, holdout_metrics=evaluation.headline(),
                config=_resolved(cfg, data_dir, as_of, model_params=params, addon=addon),
                figures=_classifier_figures(model, X[holdout], evaluation, cfg, f"Owns {addon}"),
                run_id=run_id, register=False, tracking_uri=uri,
            )
        except BaseException:
            _fail_run(run_id, uri)
            raise
        results[addon] = {"run_id": run.run_id, **{f"holdout_{k}": v for k, v in evaluation.headline().items()}}
        first = first or run
    holdout_metrics = {f"auc_own_{a}": r["holdout_roc_auc"] for a, r in results.items()}
    return TrainResult("propensity", first.run_id, None, None, (), holdout_metrics, {}, time.perf_counter() - t_start,
                       {"ownership": results, "skipped": skipped})


# --------------------------------------------------------------------------------------------------
# uplift
# --------------------------------------------------------------------------------------------------


def train_uplift(data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None) -> TrainResult:
    """Uplift of the retention offer on churn from the randomized experiment (``telco-uplift``).

    Both a T- and an X-learner are fitted and evaluated on the holdout enrolments (Qini, AUUC,
    uplift by decile; on a synthetic world also against the true effects); the configured one
    (``uplift_learner``) is registered as XGBoost JSON components behind a pyfunc model.
    Tuning (if ``trials``) tunes the shared base-learner hyperparameters on the outcome model
    ``churn ~ features + treatment`` (log loss on the validation enrolments).
    """
    from telco_nbo.models.uplift import TLearner, XLearner, cross_fit_calibration, evaluate_uplift
    from telco_nbo.tracking import start_run

    t_start = time.perf_counter()
    cfg = cfg or load_config("uplift")
    world = world or _load_world(data_dir)
    frame = prepare_uplift(world.tables, world.truth, horizon_days=cfg.label_horizon_days,
                           drop_constant=bool(world.meta.get("drop_constant_features")))
    holdout, valid = _splits(frame.household_ids, cfg)
    train = ~holdout & ~valid
    X, y, t = frame.X, frame.y, frame.treatment
    for name, m in (("training", ~holdout), ("holdout", holdout)):
        for arm in (0, 1):
            sel = m & (t == arm)
            if sel.sum() < 10 or len(np.unique(y[sel])) < 2:
                from telco_nbo.errors import DataValidationError

                raise DataValidationError("contacts", [f"the {name} split of the experiment has too few "
                                                       f"{'treated' if arm else 'control'} rows or a single outcome"])
    uri = cfg.tracking_uri
    run_id = start_run("uplift", run_name=f"uplift-{cfg.uplift_learner}-learner", tracking_uri=uri)
    try:
        learner_params = {k: v for k, v in cfg.params.items() if k in _LEARNER_KEYS}
        metrics: dict[str, float] = {}
        if cfg.trials > 0:
            Xt = X.assign(treatment=t.astype(float))
            _, tuned, tmetrics = _fit_classifier("uplift", Xt[train], y[train], Xt[valid], y[valid], cfg, run_id=run_id, tracking_uri=uri)
            learner_params = {**{k: v for k, v in tuned.items() if k in _LEARNER_KEYS}, **learner_params}
            metrics.update(tmetrics)
        learner_params.update({"random_state": cfg.seed, "n_jobs": cfg.n_jobs})
        fit_rows = ~holdout
        learners = {"x": XLearner(**learner_params), "t": TLearner(**learner_params)}
        evaluations = {}
        taus = {}
        for key, learner in learners.items():
            t0 = time.perf_counter()
            learner.fit(X[fit_rows], t[fit_rows], y[fit_rows])
            metrics[f"{key}_learner_fit_seconds"] = time.perf_counter() - t0
            taus[key] = learner.predict(X[holdout])
            evaluations[key] = evaluate_uplift(
                y[holdout], t[holdout], taus[key], negative_outcome=True,
                true_uplift=None if frame.true_tau is None else frame.true_tau[holdout],
            )
        chosen = cfg.uplift_learner
        holdout_metrics = _uplift_metrics(evaluations[chosen], taus[chosen], frame.true_tau, holdout)
        for key, ev in evaluations.items():
            for name, value in _uplift_metrics(ev, taus[key], frame.true_tau, holdout).items():
                metrics[f"{key}_learner_{name}"] = value
        figures = _uplift_figures(learners[chosen], X[holdout], y[holdout], t[holdout], taus, evaluations[chosen],
                                  None if frame.true_tau is None else frame.true_tau[holdout], cfg)
        from telco_nbo.training.pyfunc import save_components, uplift_components

        # The effect a decision multiplies by a customer's value is calibrated out of fold: a
        # learner's largest estimates overstate the effect (the winner's curse).
        make = (lambda: XLearner(**learner_params)) if chosen == "x" else (lambda: TLearner(**learner_params))
        t0 = time.perf_counter()
        calibration, _ = cross_fit_calibration(make, X[fit_rows], t[fit_rows], y[fit_rows],
                                               groups=np.asarray(frame.household_ids)[fit_rows], seed=cfg.seed)
        learners[chosen].calibration_ = calibration
        metrics["calibration_seconds"] = time.perf_counter() - t0
        if calibration is not None:
            metrics["calibration_intercept"], metrics["calibration_slope"] = calibration
        if calibration is not None and frame.true_tau is not None:
            cal_ho = learners[chosen].predict_calibrated(X[holdout])
            true_ho = np.asarray(frame.true_tau)[holdout]
            ok = np.isfinite(true_ho)
            if ok.sum() > 2 and np.std(cal_ho[ok]) > 1e-9:
                # Slope of the true effect on the calibrated one (1 = honest; the raw learner's in
                # ``{x,t}_learner_true_slope``-like metrics is what calibration corrects).
                metrics["calibrated_true_slope_holdout"] = float(np.polyfit(cal_ho[ok], true_ho[ok], 1)[0])
                metrics["calibrated_mean_tau_holdout"] = float(cal_ho.mean())
                metrics["true_mean_tau_holdout"] = float(true_ho[ok].mean())
        spec, boosters = uplift_components(learners[chosen])
        spec["experiment_id"] = "EXP-RETENTION-1"
        spec["label_horizon_days"] = cfg.label_horizon_days
        train_pred = learners[chosen].predict(X[fit_rows])
        run = _log_component_run(
            "uplift", run_id, spec, boosters,
            X_train=X[fit_rows], y_train=y[fit_rows], X_holdout=X[holdout], y_holdout=y[holdout],
            extra_train={"treatment": t[fit_rows]}, extra_holdout={"treatment": t[holdout]},
            train_pred=train_pred, holdout_pred=taus[chosen],
            raw_example=frame.features.loc[fit_rows].head(5),
            params={**learner_params, "learner": chosen, "n_enrolled": len(y), "treated_share": float(t.mean()),
                    "dropped_constant_features": ",".join(frame.dropped_features)[:6000]},
            metrics=metrics, holdout_metrics=holdout_metrics,
            config=_resolved(cfg, data_dir, frame.as_of, learner_params=learner_params),
            figures=figures,
            texts={f"evaluation/{k}_learner_holdout.json": ev.model_dump_json(indent=2) for k, ev in evaluations.items()},
            register=cfg.register_model, tracking_uri=uri, save_components=save_components,
        )
    except BaseException:
        _fail_run(run_id, uri)
        raise
    return TrainResult("uplift", run.run_id, run.model_name, run.model_version, run.aliases, holdout_metrics, metrics,
                       time.perf_counter() - t_start, {"learner": learners[chosen], "evaluations": evaluations})


def _uplift_metrics(ev: Any, tau: np.ndarray, true_tau: np.ndarray | None, holdout: np.ndarray) -> dict[str, float]:
    out = {"qini": ev.qini_coefficient, "auuc": ev.auuc, "qini_area": ev.qini_area,
           "uplift_top_decile": ev.uplift_top_decile, "observed_ate": ev.observed_ate}
    if true_tau is not None:
        true = true_tau[holdout]
        out.update({"qini_share_of_oracle": ev.qini_share_of_oracle, "oracle_qini": ev.oracle_qini_coefficient,
                    "true_gain_share_of_oracle": ev.true_gain_share_of_oracle,
                    "tau_spearman": ev.tau_spearman, "tau_rmse": ev.tau_rmse,
                    "tau_pearson": float(np.corrcoef(tau, true)[0, 1]) if np.std(tau) > 0 else None})
    return _finite(out)


def _uplift_figures(learner: Any, X_ho: pd.DataFrame, y: np.ndarray, t: np.ndarray, taus: Mapping[str, np.ndarray],
                    ev: Any, true_tau: np.ndarray | None, cfg: TrainingConfig) -> dict[str, Figure]:
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


def _log_component_run(
    kind: str,
    run_id: str,
    spec: dict[str, Any],
    boosters: Mapping[str, Any],
    *,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    train_pred: np.ndarray,
    holdout_pred: np.ndarray,
    raw_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    holdout_metrics: Mapping[str, float],
    config: Mapping[str, Any],
    figures: Mapping[str, Figure],
    texts: Mapping[str, str],
    register: bool,
    tracking_uri: str | None,
    save_components: Any,
    extra_train: Mapping[str, np.ndarray] | None = None,
    extra_holdout: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """Log a multi-part model the way :func:`telco_nbo.tracking.log_training_run` logs an XGBoost one.

    Same tags (kind, digests, artifacts), lineage, reference sample and holdout, config and
    figures; the model is the pyfunc over XGBoost JSON components; registration sets the same
    aliases (first version = champion).
    """
    import mlflow
    import yaml

    from telco_nbo.features import FEATURE_COLUMNS, passthrough_columns
    from telco_nbo.tracking import (
        CONFIG_ARTIFACT, HOLDOUT_ARTIFACT, REFERENCE_ARTIFACT, REFERENCE_MAX_ROWS, SCORE_COLUMN, TAG_FEATURES,
        TAG_HOLDOUT_ARTIFACT, TAG_HOLDOUT_DIGEST, TAG_KIND, TAG_REFERENCE_ARTIFACT, TAG_TRAINING_DIGEST, TARGET_COLUMN,
        TrainingRun, _model_params, _register_new_version, ensure_experiment, experiment_name, frame_digest,
        registered_model_name, tracking_session,
    )
    from telco_nbo.training.pyfunc import load_scorer, log_pyfunc_model

    exp_name = experiment_name(kind)
    name = registered_model_name(kind) if register else None
    train_digest = frame_digest(X_train, y_train)
    holdout_digest = frame_digest(X_holdout, y_holdout)
    rng = np.random.default_rng(0)
    n_ref = min(REFERENCE_MAX_ROWS, len(X_train))
    rows = np.sort(rng.choice(len(X_train), n_ref, replace=False))
    reference = X_train.iloc[rows].reset_index(drop=True).assign(**{k: np.asarray(v)[rows] for k, v in (extra_train or {}).items()})
    reference[TARGET_COLUMN] = np.asarray(y_train)[rows]
    reference[SCORE_COLUMN] = np.asarray(train_pred)[rows]
    holdout = X_holdout.reset_index(drop=True).assign(**{k: np.asarray(v) for k, v in (extra_holdout or {}).items()})
    holdout[TARGET_COLUMN] = np.asarray(y_holdout)
    holdout[SCORE_COLUMN] = np.asarray(holdout_pred)
    keep = [*FEATURE_COLUMNS, *passthrough_columns(raw_example)]
    example = raw_example[[c for c in keep if c in raw_example.columns]].reset_index(drop=True)

    with tracking_session(tracking_uri) as client, tempfile.TemporaryDirectory() as tmp:
        paths = save_components(Path(tmp) / "components", spec, boosters)
        output_example = load_scorer(paths).predict_frame(example)
        with mlflow.start_run(run_id=run_id) as run:
            mlflow.set_tags({
                TAG_KIND: kind, TAG_TRAINING_DIGEST: train_digest, TAG_HOLDOUT_DIGEST: holdout_digest,
                TAG_REFERENCE_ARTIFACT: REFERENCE_ARTIFACT, TAG_HOLDOUT_ARTIFACT: HOLDOUT_ARTIFACT,
                TAG_FEATURES: ",".join(map(str, X_train.columns))[:5000],
            })
            logged = {str(k): str(v)[:6000] for k, v in params.items()}
            for comp, model in boosters.items():
                logged.update({f"{comp}.{k}": v for k, v in _model_params(model, None).items() if k in _LEARNER_KEYS or k == "model_class"})
            mlflow.log_params(logged)
            all_metrics = {**_finite(metrics), **{f"holdout_{k}": v for k, v in _finite(holdout_metrics).items()},
                           "n_train": float(len(X_train)), "n_holdout": float(len(X_holdout))}
            mlflow.log_metrics(all_metrics)
            for context, X, y, digest in (("training", X_train, y_train, train_digest), ("holdout", X_holdout, y_holdout, holdout_digest)):
                ds = mlflow.data.from_pandas(X.assign(**{TARGET_COLUMN: y}), name=f"{exp_name}-{context}", targets=TARGET_COLUMN, digest=digest)
                mlflow.log_input(ds, context=context)
            mlflow.log_text(yaml.safe_dump(dict(config), sort_keys=True), CONFIG_ARTIFACT)
            for fig_name, fig in figures.items():
                mlflow.log_figure(fig, f"figures/{fig_name}.png")
            for path, text in texts.items():
                mlflow.log_text(text, path)
            for art, frame in ((REFERENCE_ARTIFACT, reference), (HOLDOUT_ARTIFACT, holdout)):
                local = Path(tmp) / Path(art).name
                frame.to_parquet(local, index=False)
                mlflow.log_artifact(str(local), artifact_path=str(Path(art).parent))
            for comp, path in paths.items():
                mlflow.log_artifact(path, artifact_path="components")
            info = log_pyfunc_model(paths, input_example=example, output_example=output_example, registered_model_name=name)
        version, aliases = None, []
        if name is not None:
            version = int(info.registered_model_version)
            aliases = _register_new_version(client, name, version, kind, holdout_digest, run.info.run_id)
        return TrainingRun(run.info.run_id, run.info.experiment_id, exp_name, info.model_uri, name, version,
                           tuple(aliases), train_digest, holdout_digest)


# --------------------------------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------------------------------


def train_clv(
    data_dir: str | Path, cfg: TrainingConfig | None = None, *, world: World | None = None, churn_model: Any = None
) -> TrainResult:
    """Customer lifetime value (``telco-clv``).

    Method ``hazard`` (data with usage, e.g. the synthetic world): each account's monthly hazard
    from the churn model's 90-day probability, ``h = 1 - (1 - p90)^(1/3)``, survival
    ``S(t) = (1-h)^t`` and ``CLV = sum_t margin * S(t) / (1+d)^t`` over the horizon. Method
    ``contract_sbg`` (flat data such as IBM Telco): one shifted-beta-geometric model per contract
    type fitted on tenure + churn, valued conditional on the account's tenure.

    **Margin assumption**: ``monthly margin = margin_rate x account_monthly_charges`` (default 0.5);
    the data has no cost side. The rate is saved with the model.

    Args:
        data_dir: Data folder.
        cfg: Configuration.
        world: The loaded world.
        churn_model: The churn classifier to take hazards from (e.g. just trained by
            :func:`train_all`); default: fit one here with ``cfg.params`` (no tuning).
    """
    from sklearn.metrics import log_loss, roc_auc_score

    from telco_nbo.tracking import start_run
    from telco_nbo.training.pyfunc import ClvScorer, contract_clv_spec, save_components

    t_start = time.perf_counter()
    cfg = cfg or load_config("clv")
    world = world or _load_world(data_dir)
    as_of = world.as_of_date(cfg.as_of)
    frame = prepare_churn(world.tables, as_of, cfg.label_horizon_days, _observed_until(world),
                          drop_constant=bool(world.meta.get("drop_constant_features")))
    holdout, valid = _splits(frame.household_ids, cfg)
    train = ~holdout & ~valid
    _check_split_labels(frame.y, {"training": train, "validation": valid, "holdout": holdout}, "churn")
    method = cfg.clv_method
    if method == "auto":
        usage = world.tables.get("usage_monthly")
        method = "hazard" if usage is not None and len(usage) > 0 else "contract_sbg"
    base_spec = {"kind": "clv", "method": method, "margin_rate": cfg.margin_rate, "horizon": cfg.clv_horizon_months,
                 "discount_rate": cfg.discount_rate,
                 "margin_assumption": f"monthly margin = {cfg.margin_rate} x account_monthly_charges"}
    uri = cfg.tracking_uri
    run_id = start_run("clv", run_name=f"clv-{method}", tracking_uri=uri)
    try:
        metrics: dict[str, float] = {}
        if method == "hazard":
            if churn_model is None:
                X = frame.X
                churn_model, _, metrics = _fit_classifier("clv", X[train], frame.y[train], X[valid], frame.y[valid],
                                                          cfg.model_copy(update={"trials": 0}), run_id=None, tracking_uri=uri)
            spec = {**base_spec, "feature_names": list(churn_model.get_booster().feature_names)}
            boosters = {"churn_model": churn_model}
        else:
            from telco_nbo.models.clv import ContractCLV

            fit_frame = frame.features.loc[~holdout, ["account_contract_type", "account_tenure_months"]]
            contract = ContractCLV(segment_col="account_contract_type", tenure_col="account_tenure_months",
                                   horizon=cfg.clv_horizon_months, discount_rate=cfg.discount_rate).fit(fit_frame, frame.y[~holdout])
            spec = {**base_spec, "segment_col": "account_contract_type", "tenure_col": "account_tenure_months",
                    "segments": contract_clv_spec(contract)}
            boosters = {}
        scorer = ClvScorer(spec, {}, churn_model=boosters.get("churn_model"))
        scores = scorer.predict_frame(frame.features)
        p90 = np.clip(_label_probability(scorer, frame, scores), 1e-6, 1 - 1e-6)
        y_ho = frame.y[holdout]
        holdout_metrics = {"log_loss": float(log_loss(y_ho, p90[holdout], labels=[0, 1])),
                           "roc_auc": float(roc_auc_score(y_ho, p90[holdout])),
                           "mean_clv": float(scores["clv"][holdout].mean())}
        holdout_metrics.update(_truth_clv_metrics(world, frame, scores["clv"].to_numpy(), holdout, cfg))
        figures = _clv_figures(world, frame, scores, holdout, method, spec)
        run = _log_component_run(
            "clv", run_id, spec, boosters,
            X_train=frame.X[~holdout], y_train=frame.y[~holdout], X_holdout=frame.X[holdout], y_holdout=y_ho,
            train_pred=scores["clv"].to_numpy()[~holdout], holdout_pred=scores["clv"].to_numpy()[holdout],
            raw_example=frame.features.loc[~holdout].head(5),
            params={"method": method, "margin_rate": cfg.margin_rate, "horizon_months": cfg.clv_horizon_months,
                    "discount_rate": cfg.discount_rate, "as_of": str(as_of.date())},
            metrics=metrics, holdout_metrics=holdout_metrics,
            config=_resolved(cfg, data_dir, as_of, resolved_method=method), figures=figures,
            texts={"clv/spec.json": json.dumps(spec, indent=2, default=str)},
            register=cfg.register_model, tracking_uri=uri, save_components=save_components,
        )
    except BaseException:
        _fail_run(run_id, uri)
        raise
    return TrainResult("clv", run.run_id, run.model_name, run.model_version, run.aliases, holdout_metrics, metrics,
                       time.perf_counter() - t_start, {"method": method, "spec": spec})


def _label_probability(scorer: Any, frame: LabelledFrame, scores: pd.DataFrame) -> np.ndarray:
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


def _truth_clv_metrics(world: World, frame: LabelledFrame, clv: np.ndarray, holdout: np.ndarray, cfg: TrainingConfig) -> dict[str, float]:
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


def _clv_figures(world: World, frame: LabelledFrame, scores: pd.DataFrame, holdout: np.ndarray, method: str,
                 spec: Mapping[str, Any]) -> dict[str, Figure]:
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


# --------------------------------------------------------------------------------------------------
# all, promotion, demo
# --------------------------------------------------------------------------------------------------


TRAINERS = {"churn": train_churn, "propensity": train_propensity, "uplift": train_uplift, "clv": train_clv}


def train_all(data_dir: str | Path, configs: Mapping[str, TrainingConfig] | None = None, *,
              kinds: tuple[str, ...] = MODEL_KINDS, world: World | None = None,
              on_done: Any = None) -> dict[str, TrainResult]:
    """Train every kind on one data folder (loaded and validated once).

    The CLV model takes its hazards from the churn model trained here (same data, same holdout).
    Uplift needs a randomized experiment and is skipped (with the reason in the result's
    ``details``) on data without one, e.g. the IBM sample.

    Args:
        data_dir: Data folder.
        configs: Kind -> configuration (default: :func:`load_config` defaults).
        kinds: Kinds to train, in order.
        world: The loaded world.
        on_done: Optional callback ``(kind, TrainResult)`` after each model.

    Returns:
        Kind -> result (kinds that could not be trained on this data are missing).
    """
    from telco_nbo.errors import DataValidationError

    configs = dict(configs or {})
    world = world or _load_world(data_dir)
    results: dict[str, TrainResult] = {}
    for kind in kinds:
        cfg = configs.get(kind) or load_config(kind)
        if kind == "uplift" and "contacts" in world.tables and not (world.tables["contacts"]["experiment_id"] == "EXP-RETENTION-1").any():
            continue
        if kind == "clv":
            churn = results.get("churn")
            ccfg = configs.get("churn", cfg)
            # Reuse only if the churn model never saw this CLV run's holdout households.
            same = churn is not None and all(
                getattr(cfg, f) == getattr(ccfg, f) for f in ("as_of", "seed", "holdout_fraction", "label_horizon_days")
            )
            result = train_clv(data_dir, cfg, world=world, churn_model=churn.details["model"] if same else None)
        else:
            try:
                result = TRAINERS[kind](data_dir, cfg, world=world)
            except DataValidationError:
                if kind == "uplift":
                    continue
                raise
        results[kind] = result
        if on_done is not None:
            on_done(kind, result)
    return results


def promote_all(kinds: tuple[str, ...] = MODEL_KINDS, tracking_uri: str | None = None) -> dict[str, Any]:
    """Run :func:`telco_nbo.tracking.promote` for each kind with its metric (see ``PROMOTION_METRICS``)."""
    from telco_nbo.tracking import model_versions, promote

    out = {}
    for kind in kinds:
        if not model_versions(kind, tracking_uri):
            continue
        metric, greater = PROMOTION_METRICS[kind]
        out[kind] = promote(kind, metric, greater, tracking_uri=tracking_uri)
    return out


def demo_step(ctx: Any) -> dict[str, Any]:
    """Demo step: train the four models with a short budget, promote, print a compact table.

    Args:
        ctx: The demo context (``data_dir``, ``tracking_uri``, ``trials``, ``seed``, ``console``,
            ``out``).

    Returns:
        Kind -> headline numbers, plus the promotion decisions.
    """
    from rich.table import Table

    storage = f"sqlite:///{(Path(ctx.out) / 'optuna.db').resolve()}"
    configs = {k: load_config(k, trials=int(ctx.trials), seed=int(ctx.seed), tracking_uri=ctx.tracking_uri,
                              optuna_storage=storage, shap_rows=1000)
               for k in MODEL_KINDS}
    results = train_all(ctx.data_dir, configs)
    decisions = promote_all(tuple(results), tracking_uri=ctx.tracking_uri)
    table = Table(title=f"Models trained ({ctx.trials} Optuna trials each), holdout = unseen households")
    for col in ("model", "version", "holdout quality", "vs truth (synthetic)", "champion", "time"):
        table.add_column(col)
    summary: dict[str, Any] = {}
    for kind, r in results.items():
        h = r.holdout_metrics
        if kind == "churn":
            quality = f"ROC AUC {h['roc_auc']:.3f} · PR AUC {h['pr_auc']:.3f} · top-decile lift {h['lift_top_decile']:.2f}"
            truth = f"oracle AUC {r.metrics['truth_oracle_roc_auc']:.3f}" if "truth_oracle_roc_auc" in r.metrics else ""
        elif kind == "propensity":
            quality = (f"ROC AUC {h['roc_auc']:.3f} · mean AUC per offer {h.get('auc_per_offer_mean', float('nan')):.3f}"
                       if "roc_auc" in h else ", ".join(f"{k} {v:.3f}" for k, v in h.items()))
            truth = ""
        elif kind == "uplift":
            quality = f"Qini {h['qini']:.3f} · AUUC {h['auuc']:.3f}"
            # The share on true effects is the stable figure; the realized-outcome Qini share of a
            # small holdout is mostly outcome noise (shown for completeness).
            truth = (f"{h.get('true_gain_share_of_oracle', float('nan')):.0%} of the oracle's ranking value on true effects"
                     f" (realized Qini share {h['qini_share_of_oracle']:.0%}) · corr(tau) {h.get('tau_pearson', float('nan')):.2f}"
                     if "qini_share_of_oracle" in h else "")
        else:
            quality = f"90-day churn log loss {h['log_loss']:.3f} · mean CLV {h['mean_clv']:.0f}"
            truth = (f"corr {h['truth_clv_pearson']:.2f} · MAPE {h['truth_clv_mape']:.0%}" if "truth_clv_pearson" in h else "")
        d = decisions.get(kind)
        champion = "" if d is None else ("yes" if d.promoted or d.basis == "already_champion" else f"no ({d.basis})")
        table.add_row(f"telco-{kind}", "" if r.model_version is None else f"v{r.model_version}", quality, truth, champion, f"{r.seconds:.0f} s")
        summary[kind] = {"version": r.model_version, "seconds": round(r.seconds, 1), **{k: round(v, 4) for k, v in h.items()}}
    ctx.console.print(table)
    summary["promotions"] = {k: d.model_dump(mode="json") for k, d in decisions.items()}
    return summary


__all__ = [
    "OFFERS_ARTIFACT",
    "TRAINERS",
    "TrainResult",
    "demo_step",
    "promote_all",
    "train_all",
    "train_churn",
    "train_clv",
    "train_propensity",
    "train_uplift",
]
