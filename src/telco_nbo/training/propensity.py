"""The offer-propensity model (``telco-propensity``): prepare -> fit -> evaluate, then one training run.

With a contact history the model is P(accept | contacted, account, offer). Without one (e.g. the
IBM sample) one "propensity to own" classifier per add-on is trained and logged in the same
experiment, not registered (:func:`train_ownership`). The Dask trainer
(:func:`telco_nbo.scale.propensity.train_propensity_dask`) shares :func:`evaluate_holdout`,
:func:`run_params` and :func:`run_texts`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.tracking import TAG, training_run, xgboost_record
from telco_nbo.training.churn import ClassifierHoldout
from telco_nbo.training.churn import evaluate_holdout as evaluate_classifier_holdout
from telco_nbo.training.config import TrainingConfig, load_config
from telco_nbo.training.data import OfferFrame, has_contact_history, prepare_offers
from telco_nbo.training.steps import (
    FittedClassifier,
    Splits,
    TrainResult,
    check_split_labels,
    classifier_figures,
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

OFFERS_ARTIFACT = "propensity/offers.json"
"""Artifact of a propensity run: the offers table (ids, kinds, prices) the model was trained with."""
AUC_BY_OFFER_ARTIFACT = "evaluation/auc_by_offer.csv"
EVALUATION_ARTIFACT = "evaluation/propensity_holdout.json"


@dataclass(frozen=True)
class PropensityData:
    """The prepare step's result.

    Attributes:
        as_of: Feature date.
        offers: One row per contact made up to ``as_of`` (features of the account on the
            snapshot before it, the offer, accepted or not).
        splits: Household split of the rows.
    """

    as_of: pd.Timestamp
    offers: OfferFrame
    splits: Splits


@dataclass
class OfferHoldout(ClassifierHoldout):
    """A propensity model's holdout evaluation: the classifier's, plus ROC AUC within each offer.

    Attributes:
        per_offer: Rows per offer (and ``__all__``): ``n``, ``roc_auc``.
    """

    per_offer: pd.DataFrame | None = None


def prepare(world: World, cfg: TrainingConfig) -> PropensityData:
    """Contacts made up to ``cfg.as_of`` with the account's features, split by household.

    Raises:
        ConfigError: A split is empty.
        DataValidationError: No contact, or a split has a single class.
    """
    as_of = world.as_of_date(cfg.as_of)
    offers = prepare_offers(world.tables, as_of)
    splits = split(offers.household_ids, cfg)
    check_split_labels(offers.y, splits.masks(), "contacts")
    return PropensityData(as_of, offers, splits)


def fit(data: PropensityData, cfg: TrainingConfig, *, parent_run_id: str | None = None,
        tracking_uri: str | None = None) -> FittedClassifier:
    """Tune (trials nested under ``parent_run_id``) and fit the classifier on train + validation."""
    X, y, s = data.offers.X, data.offers.y, data.splits
    return fit_classifier("propensity", X[s.train], y[s.train], X[s.valid], y[s.valid], cfg,
                          parent_run_id=parent_run_id, tracking_uri=tracking_uri)


def evaluate_holdout(y_holdout: np.ndarray, p_holdout: np.ndarray, offer_ids: np.ndarray) -> OfferHoldout:
    """The evaluation both trainers log: the classifier's headline plus ``auc_<offer>`` and their mean."""
    from telco_nbo.models.propensity import auc_by_offer

    base = evaluate_classifier_holdout(y_holdout, p_holdout)
    metrics = dict(base.holdout_metrics)
    per_offer = auc_by_offer(y_holdout, p_holdout, offer_ids, min_per_class=5)
    for offer_id, row in per_offer.iterrows():
        if offer_id != "__all__" and np.isfinite(row["roc_auc"]):
            metrics[f"auc_{offer_id}"] = float(row["roc_auc"])
    ok = per_offer.drop(index="__all__")["roc_auc"].dropna()
    if len(ok):
        metrics["auc_per_offer_mean"] = float(ok.mean())
    return OfferHoldout(base.evaluation, metrics, base.p_holdout, per_offer=per_offer)


def evaluate(data: PropensityData, fitted: FittedClassifier, cfg: TrainingConfig) -> OfferHoldout:
    """Holdout evaluation (overall and per offer) with calibration / lift / SHAP / per-offer figures."""
    X, ho = data.offers.X, data.splits.holdout
    out = evaluate_holdout(data.offers.y[ho], fitted.model.predict_proba(X[ho])[:, 1],
                           data.offers.keys["offer_id"].to_numpy()[ho])
    out.figures = classifier_figures(fitted.model, X[ho], out.evaluation, cfg, "Offer acceptance")
    out.figures["auc_by_offer"] = plot_auc_by_offer(out.per_offer)
    return out


def run_params(as_of: pd.Timestamp, n_snapshots: int, **extra: Any) -> dict[str, Any]:
    """The run parameters every propensity run records (both trainers), plus ``extra``."""
    return {"as_of": str(as_of.date()), "n_snapshots": n_snapshots, "use_channel": False, **extra}


def run_texts(offers: pd.DataFrame, result: OfferHoldout, *, with_evaluation: bool = True) -> dict[str, str]:
    """The text artifacts of a propensity run: the offers the model knows (the scorers read them), AUC per offer.

    ``with_evaluation``: also the full holdout evaluation as JSON.
    """
    texts = {
        # The offers the model knows (ids are categories of the model): saved with it for serving.
        OFFERS_ARTIFACT: offers.to_json(orient="records", date_format="iso"),
        AUC_BY_OFFER_ARTIFACT: result.per_offer.to_csv(),
    }
    if with_evaluation:
        texts[EVALUATION_ARTIFACT] = result.evaluation.model_dump_json(indent=2)
    return texts


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
    world = world or load_world(data_dir)
    if not has_contact_history(world.tables):
        return train_ownership(data_dir, world, world.as_of_date(cfg.as_of), cfg, t_start)
    data = prepare(world, cfg)
    offers, s = data.offers, data.splits
    X, y = offers.X, offers.y
    with training_run("propensity", run_name=f"propensity-{data.as_of.date()}", tracking_uri=cfg.tracking_uri) as run:
        fitted = fit(data, cfg, parent_run_id=run.run_id, tracking_uri=cfg.tracking_uri)
        result = evaluate(data, fitted, cfg)
        train_rows = s.train | s.valid
        record, logger = xgboost_record(
            fitted.model, X_train=X[train_rows], y_train=y[train_rows], X_holdout=X[s.holdout], y_holdout=y[s.holdout],
            params=run_params(data.as_of, len(offers.snapshots)),
            metrics={**fitted.metrics, "n_contacts": float(len(y)), "acceptance_rate": float(y.mean())},
            holdout_metrics=result.holdout_metrics,
            config=resolved_config(cfg, data_dir, data.as_of, model_params=fitted.params,
                                   snapshots=[str(d.date()) for d in offers.snapshots]),
            figures=result.figures, texts=run_texts(offers.offers, result),
        )
        logged = run.log(record, logger, register=cfg.register_model)
    return TrainResult("propensity", logged.run_id, logged.model_name, logged.model_version, logged.aliases,
                       result.holdout_metrics, fitted.metrics, time.perf_counter() - t_start,
                       {"model": fitted.model, "auc_by_offer": result.per_offer})


def plot_auc_by_offer(per_offer: pd.DataFrame) -> Figure:
    """Bar chart of the ROC AUC within each offer on the holdout (with its row count)."""
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


# --------------------------------------------------------------------------------------------------
# propensity to own (data without a contact history)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnershipData:
    """One add-on's ownership data (the prepare step of :func:`train_ownership`).

    Attributes:
        addon: The add-on.
        X: Account features (constant columns of imported data left out).
        y: Owns the add-on.
        splits: Household split.
        excluded: Features excluded because they reveal ownership.
        dropped: Constant features left out.
    """

    addon: str
    X: pd.DataFrame
    y: np.ndarray
    splits: Splits
    excluded: Any
    dropped: list[str]


def prepare_ownership(world: World, as_of: pd.Timestamp, cfg: TrainingConfig) -> tuple[list[OwnershipData], dict[str, str]]:
    """Every add-on with owners and non-owners in each split, and why the others were skipped.

    Raises:
        DataValidationError: No add-on can be trained.
    """
    from telco_nbo.features import build_account_features, constant_columns
    from telco_nbo.models.propensity import ADDONS, ownership_dataset

    feats = build_account_features(world.tables, as_of)
    datasets: list[OwnershipData] = []
    skipped: dict[str, str] = {}
    for addon in ADDONS:
        try:
            ds = ownership_dataset(feats, addon)
        except DataValidationError as exc:
            skipped[addon] = str(exc)
            continue
        splits = split(feats.loc[ds.index, "household_id"].to_numpy(dtype=object), cfg)
        if any(len(np.unique(ds.y[m])) < 2 for m in splits.masks().values()):
            skipped[addon] = "a split has a single class"
            continue
        X = ds.X
        # Imported data: features only a default filled are left out, not fed as data.
        dropped = constant_columns(X) if world.meta.get("drop_constant_features") else []
        datasets.append(OwnershipData(addon, X.drop(columns=dropped), ds.y, splits, ds.excluded, dropped))
    if not datasets:
        raise DataValidationError("accounts", ["no add-on has owners and non-owners in every split: "
                                               + "; ".join(f"{k}: {v}" for k, v in skipped.items())])
    return datasets, skipped


def train_ownership(data_dir: str | Path, world: World, as_of: pd.Timestamp, cfg: TrainingConfig,
                    t_start: float) -> TrainResult:
    """One "propensity to own" classifier per add-on, each in its own (unregistered) run."""
    datasets, skipped = prepare_ownership(world, as_of, cfg)
    uri = cfg.tracking_uri
    results: dict[str, dict[str, Any]] = {}
    first: Any = None
    for ds in datasets:
        s, X, y = ds.splits, ds.X, ds.y
        sub = cfg.model_copy(update={"study_name": f"{cfg.study_name}-{ds.addon}" if cfg.study_name else None})
        with training_run("propensity", run_name=f"own-{ds.addon}", tags={TAG + "propensity.addon": ds.addon},
                          tracking_uri=uri) as run:
            fitted = fit_classifier(f"propensity-own-{ds.addon}", X[s.train], y[s.train], X[s.valid], y[s.valid], sub,
                                    parent_run_id=run.run_id, tracking_uri=uri)
            result = evaluate_classifier_holdout(y[s.holdout], fitted.model.predict_proba(X[s.holdout])[:, 1])
            record, logger = xgboost_record(
                fitted.model, X_train=X[~s.holdout], y_train=y[~s.holdout], X_holdout=X[s.holdout], y_holdout=y[s.holdout],
                params={"as_of": str(as_of.date()), "target": f"owns {ds.addon}", "excluded": json.dumps(ds.excluded),
                        "dropped_constant_features": ",".join(ds.dropped)[:6000]},
                metrics=fitted.metrics, holdout_metrics=result.holdout_metrics,
                config=resolved_config(cfg, data_dir, as_of, model_params=fitted.params, addon=ds.addon),
                figures=classifier_figures(fitted.model, X[s.holdout], result.evaluation, cfg, f"Owns {ds.addon}"),
            )
            logged = run.log(record, logger, register=False)
        results[ds.addon] = {"run_id": logged.run_id, **{f"holdout_{k}": v for k, v in result.holdout_metrics.items()}}
        first = first or logged
    holdout_metrics = {f"auc_own_{a}": r["holdout_roc_auc"] for a, r in results.items()}
    return TrainResult("propensity", first.run_id, None, None, (), holdout_metrics, {}, time.perf_counter() - t_start,
                       {"ownership": results, "skipped": skipped})


__all__ = ["OFFERS_ARTIFACT", "OfferHoldout", "OwnershipData", "PropensityData", "evaluate", "evaluate_holdout", "fit",
           "plot_auc_by_offer", "prepare", "prepare_ownership", "run_params", "run_texts", "train_ownership",
           "train_propensity"]
