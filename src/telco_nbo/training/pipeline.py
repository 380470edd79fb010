"""Training every model kind: :func:`train_all`, :func:`promote_all` and the demo step.

Each kind lives in its own module as plain steps, ``prepare -> fit -> evaluate``, and a thin
``train_<kind>`` that wraps them in one MLflow run (:func:`telco_nbo.tracking.training_run`):

- :mod:`telco_nbo.training.churn`, :mod:`telco_nbo.training.propensity`,
  :mod:`telco_nbo.training.uplift`, :mod:`telco_nbo.training.clv`;
- :mod:`telco_nbo.training.steps`: what they share (household splits, the tuned classifier fit,
  figures, :class:`TrainResult`).

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
   (``challenger``; the first version also ``champion``). An exception marks the run failed.

To add a model kind: its module with the three steps and ``train_<kind>``, then one entry in
:data:`TRAINERS` (and its name in :mod:`telco_nbo.vocabulary`).

Promotion is a separate, explicit step (:func:`promote_all`, ``telco-nbo promote``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from telco_nbo.data.world import World
from telco_nbo.errors import DataValidationError
from telco_nbo.tracking import model_versions, promote
from telco_nbo.training.churn import train_churn
from telco_nbo.training.clv import train_clv
from telco_nbo.training.config import PROMOTION_METRICS, TrainingConfig, load_config
from telco_nbo.training.data import RETENTION_EXPERIMENT
from telco_nbo.training.propensity import OFFERS_ARTIFACT, train_propensity
from telco_nbo.training.steps import TrainResult, load_world
from telco_nbo.training.uplift import train_uplift
from telco_nbo.vocabulary import MODEL_KINDS


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
    configs = dict(configs or {})
    world = world or load_world(data_dir)
    results: dict[str, TrainResult] = {}
    for kind in kinds:
        cfg = configs.get(kind) or load_config(kind)
        if kind == "uplift" and "contacts" in world.tables and not (world.tables["contacts"]["experiment_id"] == RETENTION_EXPERIMENT).any():
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
    "load_world",
    "promote_all",
    "train_all",
    "train_churn",
    "train_clv",
    "train_propensity",
    "train_uplift",
]
