"""Training configuration: one pydantic model per model kind, loaded from ``training/<kind>.yaml``.

The resolved configuration (file values, then command-line overrides, then defaults) is what a
run logs to MLflow as ``config/resolved_config.yaml``, so every run says exactly how it was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from telco_nbo.errors import ConfigError
from telco_nbo.vocabulary import MODEL_KINDS

Kind = Literal[MODEL_KINDS]  # type: ignore[valid-type]  # the one list, in vocabulary

PROMOTION_METRICS: dict[str, tuple[str, bool]] = {
    "churn": ("roc_auc", True),
    "propensity": ("roc_auc", True),
    "uplift": ("qini", True),
    "clv": ("log_loss", False),
}
"""Holdout metric (and whether greater is better) that decides promotion, per model kind.

CLV: the CLV model's only observable prediction on a holdout is the churn it implies over the
label window (its survival curve at 90 days), so promotion compares that log loss.
"""


class TrainingConfig(BaseModel):
    """How one model kind is trained (every field has a default; YAML files override them).

    Attributes:
        kind: ``churn``, ``propensity``, ``uplift`` or ``clv``.
        as_of: Feature date (default: the data folder's ``as_of``).
        seed: Seed of splits, samplers and models.
        trials: Optuna trials (0 = no tuning: ``params`` as given).
        holdout_fraction: Share of households kept out of training (the holdout promotion uses).
        valid_fraction: Share of the training households used for early stopping / tuning.
        label_horizon_days: Churn label window after ``as_of`` (churn, uplift outcome, CLV check).
        early_stopping_rounds: Rounds without improvement before XGBoost stops.
        params: Fixed model parameters; they win over tuned ones (e.g. ``{max_depth: 1}``).
        study_name: Optuna study name (default ``telco-<kind>-<training data digest>``: the same
            data continues the same study).
        optuna_storage: Optuna storage URL (default SQLite in the working directory).
        tracking_uri: MLflow tracking URI (default SQLite in the working directory).
        uplift_learner: ``x`` (X-learner, registered) or ``t`` (T-learner); both are evaluated.
        calibration_folds: Cross-fitting folds of the uplift calibration and its band (each fold's
            learner sees ``1 - 1/folds`` of the enrolments; more folds: closer to the full model).
        margin_rate: CLV: monthly margin = ``margin_rate * account_monthly_charges``. An assumption
            (the data has no cost side); 0.5 is a typical telecom gross margin on service revenue.
        clv_horizon_months: CLV horizon.
        discount_rate: Monthly discount rate of CLV (0.01 ~ 12.7 % a year).
        clv_method: ``auto`` (hazard from the churn model where the data has usage, otherwise the
            contract-type sBG), ``hazard`` or ``contract_sbg``.
        shap_rows: Rows sampled for the SHAP plots.
        register_model: Register the model (``telco-<kind>``) and set aliases.
        n_jobs: XGBoost threads (at most 2). Default 1: on a shared, busy machine two threads
            that spin-wait for each other were measured 9x slower than one.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    kind: Kind
    as_of: str | None = None
    seed: int = 42
    trials: int = Field(10, ge=0)
    holdout_fraction: float = Field(0.25, gt=0.0, lt=0.9)
    valid_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    label_horizon_days: int = Field(90, gt=0)
    early_stopping_rounds: int = Field(30, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)
    study_name: str | None = None
    optuna_storage: str | None = None
    tracking_uri: str | None = None
    uplift_learner: Literal["x", "t"] = "x"
    calibration_folds: int = Field(2, ge=2, le=10)
    margin_rate: float = Field(0.5, gt=0.0, le=1.0)
    clv_horizon_months: int = Field(36, ge=1, le=240)
    discount_rate: float = Field(0.01, ge=0.0, lt=1.0)
    clv_method: Literal["auto", "hazard", "contract_sbg"] = "auto"
    shap_rows: int = Field(2000, ge=50)
    register_model: bool = True
    n_jobs: int = Field(1, ge=1, le=2)


def load_config(kind: str, path: str | Path | None = None, **overrides: Any) -> TrainingConfig:
    """Resolve a kind's configuration: YAML file values, then non-``None`` overrides.

    Args:
        kind: The model kind.
        path: A parameter file (YAML mapping of :class:`TrainingConfig` fields); its ``kind``, if
            present, must match.
        **overrides: Field values that win over the file (``None`` = not given).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Unknown kind, unreadable file, or invalid values (all named).
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read parameter file {p}: {exc}") from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"parameter file {p} must hold a mapping, got {type(raw).__name__}")
        if raw.get("kind", kind) != kind:
            raise ConfigError(f"parameter file {p} is for kind {raw['kind']!r}, not {kind!r}")
        values.update(raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["kind"] = kind
    try:
        return TrainingConfig(**values)
    except ValidationError as exc:
        where = f"parameter file {path}" if path else "training configuration"
        raise ConfigError(f"{where} is invalid:\n{exc}") from exc
