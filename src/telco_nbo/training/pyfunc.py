"""Multi-part models (uplift meta-learners, CLV) saved as plain files and served as MLflow pyfunc.

An uplift learner is four XGBoost models plus a propensity; the CLV model is a churn booster plus
margin and discounting rules, or one sBG per contract type. None of them is a single XGBoost
model, and none is pickled: each part is saved in its own portable format (XGBoost JSON for
boosters, JSON for the sBG parameters and every setting) and the MLflow model is a *model from
code* (``_pyfunc_model.py``) whose load path reads those files back through :func:`load_scorer`.
Everything learned at training time travels with the model (train/serve parity): the propensity,
the feature names, the margin rate, horizon and discount rate, the sBG parameters.

Scorers take the account feature frame (as :func:`telco_nbo.features.build_account_features`
makes it, or its model matrix) and return a frame of scores, one row per input row.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError
from telco_nbo.model_files import load_component_scorer
from telco_nbo.tracking import ModelLogger, pip_requirements, quiet_logger

# The learners (XGBoost, scikit-learn) and the features are imported inside the functions that use
# them: MLflow executes this module's loader in every process that loads a model.

SPEC_ARTIFACT = "spec"
"""Key of the JSON spec among the pyfunc model's artifacts."""

UPLIFT_OUTPUTS = ("tau", "retention_uplift")
CLV_OUTPUTS = ("clv", "churn_p90", "monthly_margin")
_CODE_FILE = Path(__file__).with_name("_pyfunc_model.py")


def _classifier(path: str | Path) -> Any:
    import xgboost as xgb

    m = xgb.XGBClassifier()
    m.load_model(str(path))
    return m


def _regressor(path: str | Path) -> Any:
    import xgboost as xgb

    m = xgb.XGBRegressor()
    m.load_model(str(path))
    return m


def _matrix(features: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """The model matrix of ``features`` (already a matrix, or a raw account feature frame)."""
    from telco_nbo.features import FEATURE_COLUMNS, to_model_matrix

    if list(feature_names) == list(FEATURE_COLUMNS):
        return to_model_matrix(features)[list(FEATURE_COLUMNS)]
    if all(c in features.columns for c in FEATURE_COLUMNS):
        # A raw feature frame and a model trained on a subset (constant features of imported
        # data left out) or with passthrough columns: encode it as in training, then select.
        X = to_model_matrix(features)
        missing = [c for c in feature_names if c not in X.columns]
        if not missing:
            return X[list(feature_names)]
    missing = [c for c in feature_names if c not in features.columns]
    if missing:
        from telco_nbo.errors import DataValidationError

        raise DataValidationError("features", [f"missing model columns: {', '.join(missing)}"])
    return features[list(feature_names)]


class UpliftScorer:
    """Rebuilt T- or X-learner: ``predict_frame`` gives ``tau`` (on churn) and ``retention_uplift``."""

    def __init__(self, spec: Mapping[str, Any], paths: Mapping[str, str]):
        from telco_nbo.models.uplift import TLearner, XLearner

        self.spec = dict(spec)
        names = list(spec["feature_names"])
        learner: Any = XLearner() if spec["learner"] == "x" else TLearner()
        learner.feature_names_in_ = np.asarray(names, dtype=object)
        learner.n_features_in_ = len(names)
        learner.treated_share_ = float(spec["treated_share"])
        learner.model_control_ = _classifier(paths["model_control"])
        learner.model_treated_ = _classifier(paths["model_treated"])
        if spec["learner"] == "x":
            learner.effect_control_ = _regressor(paths["effect_control"])
            learner.effect_treated_ = _regressor(paths["effect_treated"])
            learner.propensity_model_ = None
            learner.propensity_ = float(spec["propensity"])
        cal = spec.get("calibration")
        learner.calibration_ = (float(cal[0]), float(cal[1])) if cal else None
        band = spec.get("calibration_band")  # absent in models trained before it existed: no interval
        learner.calibration_band_ = tuple(float(v) for v in band) if band else None
        self.learner = learner
        self.feature_names = names

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """``tau`` (calibrated when the model carries a calibration) and ``retention_uplift = -tau``."""
        tau = np.asarray(self.learner.predict_calibrated(_matrix(features, self.feature_names)), dtype=float)
        return pd.DataFrame({"tau": tau, "retention_uplift": -tau}, index=features.index)


class ClvScorer:
    """CLV per account from a churn booster + margin rule, or from contract-type sBG curves."""

    def __init__(self, spec: Mapping[str, Any], paths: Mapping[str, str], churn_model: Any = None):
        self.spec = dict(spec)
        self.method = spec["method"]
        if self.method == "hazard":
            # In memory at training time; read from its XGBoost JSON file when loaded from MLflow.
            self.churn_model = churn_model if churn_model is not None else _classifier(paths["churn_model"])
            self.feature_names = list(spec["feature_names"])
        elif self.method == "contract_sbg":
            self.contract = contract_clv_from_spec(spec)
        else:
            raise ConfigError(f"unknown CLV method {self.method!r} in the model spec")

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """``clv``, the implied ``churn_p90`` and the ``monthly_margin`` used, per row."""
        from telco_nbo.models.clv import HazardClvRule

        charges = pd.to_numeric(features["account_monthly_charges"], errors="coerce").to_numpy(dtype=float)
        margin = float(self.spec["margin_rate"]) * np.nan_to_num(charges, nan=0.0)
        if self.method == "hazard":
            p90 = self.churn_model.predict_proba(_matrix(features, self.feature_names))[:, 1]
            # The same rule the service's compiled scorer applies (scoring.effects.ClvEffect).
            clv = HazardClvRule.from_spec(self.spec).clv(p90, charges)
        else:
            seg_col, ten_col = self.spec["segment_col"], self.spec["tenure_col"]
            X = pd.DataFrame(
                {seg_col: features[seg_col].astype(object).to_numpy(), ten_col: features[ten_col].to_numpy(),
                 "monthly_margin": margin}
            )
            clv = self.contract.predict(X)
            # P(leave within 3 periods | active after n) = 1 - S(n + 3) / S(n).
            p90 = 1.0 - self.contract.conditional_survival(X)[:, min(2, self.contract.horizon - 1)]
        return pd.DataFrame({"clv": clv, "churn_p90": p90, "monthly_margin": margin}, index=features.index)


def contract_clv_spec(model: Any) -> list[dict[str, Any]]:
    """The fitted segments of a :class:`~telco_nbo.models.clv.ContractCLV` as JSON-ready rows."""
    rows = []
    for value, m in model.segments_.items():
        f = m.fit_
        rows.append({"segment": str(value), "alpha": f.alpha, "beta": f.beta, "log_likelihood": f.log_likelihood,
                     "n_customers": f.n_customers, "n_churned": f.n_churned, "converged": bool(f.converged),
                     "homogeneous": bool(f.homogeneous)})
    return rows


def contract_clv_from_spec(spec: Mapping[str, Any]) -> Any:
    """Rebuild a fitted :class:`~telco_nbo.models.clv.ContractCLV` from its JSON spec."""
    from telco_nbo.models.clv import ContractCLV, SBGCohortModel, SBGFit

    model = ContractCLV(
        segment_col=spec["segment_col"], tenure_col=spec["tenure_col"], margin_col="monthly_margin",
        horizon=int(spec["horizon"]), discount_rate=float(spec["discount_rate"]),
    )
    segments = {}
    for row in spec["segments"]:
        fit = SBGFit(alpha=float(row["alpha"]), beta=float(row["beta"]), log_likelihood=float(row["log_likelihood"]),
                     n_customers=int(row["n_customers"]), n_churned=int(row["n_churned"]),
                     converged=bool(row["converged"]), homogeneous=bool(row["homogeneous"]))
        segments[row["segment"]] = SBGCohortModel()._set(fit)
    model.segments_ = segments
    model.params_ = pd.DataFrame(spec["segments"])
    return model


def load_scorer(paths: Mapping[str, str]) -> UpliftScorer | ClvScorer:
    """Rebuild a scorer from its artifact files (``spec`` JSON + component JSON files)."""
    spec = json.loads(Path(paths[SPEC_ARTIFACT]).read_text())
    if spec.get("kind") == "uplift":
        return UpliftScorer(spec, paths)
    if spec.get("kind") == "clv":
        return ClvScorer(spec, paths)
    raise ConfigError(f"unknown component model kind {spec.get('kind')!r}")


def save_components(folder: Path, spec: Mapping[str, Any], boosters: Mapping[str, Any]) -> dict[str, str]:
    """Write the spec and each booster (XGBoost JSON) into ``folder``; return artifact name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, model in boosters.items():
        path = folder / f"{name}.json"
        model.save_model(str(path))
        paths[name] = str(path)
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2, sort_keys=True, default=str))
    paths[SPEC_ARTIFACT] = str(spec_path)
    return paths


def uplift_components(learner: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Spec and boosters of a fitted T-/X-learner."""
    from telco_nbo.models.uplift import XLearner

    is_x = isinstance(learner, XLearner)
    if is_x and learner.propensity_model_ is not None:
        raise ConfigError("only a constant propensity (randomized experiment) is supported for saving")
    spec = {
        "kind": "uplift",
        "learner": "x" if is_x else "t",
        "feature_names": [str(c) for c in learner.feature_names_in_],
        "treated_share": learner.treated_share_,
        "propensity": learner.propensity_ if is_x else None,
        "outcome": "churn",
        "sign": "tau = P(churn | offer) - P(churn | no offer); retention_uplift = -tau",
        "hyperparameters": learner.get_params(),
        # (intercept, slope) learned out of fold: decisions use the calibrated effect.
        "calibration": list(learner.calibration_) if getattr(learner, "calibration_", None) is not None else None,
        # (var_ate, var_slope, mean raw tau): the calibrated effect's standard error per prediction.
        "calibration_band": (list(learner.calibration_band_)
                             if getattr(learner, "calibration_band_", None) is not None else None),
    }
    boosters = {"model_control": learner.model_control_, "model_treated": learner.model_treated_}
    if is_x:
        boosters.update({"effect_control": learner.effect_control_, "effect_treated": learner.effect_treated_})
    return spec, boosters


def log_pyfunc_model(paths: Mapping[str, str], *, input_example: pd.DataFrame, output_example: pd.DataFrame,
                     registered_model_name: str | None) -> Any:
    """Log the component files as an MLflow pyfunc *model from code* in the active run."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, output_example)
    with quiet_logger("mlflow.models.model"), quiet_logger("mlflow.pyfunc"):
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(_CODE_FILE),
            artifacts=dict(paths),
            signature=signature,
            input_example=input_example,
            registered_model_name=registered_model_name,
            await_registration_for=60,
            pip_requirements=pip_requirements(),
        )


def component_logger(spec: Mapping[str, Any], boosters: Mapping[str, Any], raw_example: pd.DataFrame) -> ModelLogger:
    """A :data:`telco_nbo.tracking.ModelLogger` for a multi-part model (spec + XGBoost JSON parts).

    The parts are saved and scored once here, before any run is touched, to get the model's
    output example (a part that cannot be saved or read back fails here); the returned logger
    saves them again into the run: ``components/<part>.json`` + ``components/spec.json`` and the
    pyfunc model over them.

    Args:
        spec: The model's JSON spec (:func:`uplift_components`, or the CLV spec).
        boosters: Its XGBoost parts by name.
        raw_example: A few rows of the raw account feature frame (the input example).
    """
    from telco_nbo.features import FEATURE_COLUMNS, passthrough_columns

    keep = [*FEATURE_COLUMNS, *passthrough_columns(raw_example)]
    example = raw_example[[c for c in keep if c in raw_example.columns]].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        output_example = load_scorer(save_components(Path(tmp) / "components", spec, boosters)).predict_frame(example)

    def log(registered_name: str | None) -> Any:
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            paths = save_components(Path(tmp) / "components", spec, boosters)
            for path in paths.values():
                mlflow.log_artifact(path, artifact_path="components")
            return log_pyfunc_model(paths, input_example=example, output_example=output_example,
                                    registered_model_name=registered_name)

    return log


def load_pyfunc_scorer(model_uri: str) -> UpliftScorer | ClvScorer:
    """Load a logged component model and return its scorer (bypasses pyfunc's schema casts).

    The model is checked first (:func:`telco_nbo.model_files.load_component_scorer`).
    """
    return load_component_scorer(model_uri)
