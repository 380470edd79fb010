"""The champion models, loaded once, and a numpy fast path that scores accounts with them.

:class:`ChampionModels` loads ``models:/telco-<kind>@champion`` for the four kinds (churn and
propensity through the XGBoost flavor, uplift and CLV through their component pyfunc, whose
boosters are plain XGBoost models) and records the versions.

:class:`FastScorer` compiles, once, how each booster's input row is built from the feature
columns (model feature order, categories coded with the booster's *own* stored category lists,
booleans as 0/1, missing as NaN) and then scores with ``Booster.inplace_predict`` on a float32
numpy matrix: no pandas, no DMatrix, one thread per request. It computes exactly what the models'
own ``predict`` paths compute (tested to 1e-6):

- churn probability: the churn classifier's P(class 1);
- propensity: the offer-conditioned acceptance classifier on account features + the offer's
  attributes, for every catalog offer (``n x m`` rows in one call);
- retention uplift: ``-tau``; T-learner ``tau = mu1 - mu0``; X-learner
  ``tau = e * tau0 + (1 - e) * tau1``;
- CLV: ``hazard`` method (churn booster of the CLV model -> monthly hazard -> discounted survival
  sum of ``margin_rate x monthly charges``) or the contract-type sBG (delegated to its scorer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.models.uplift import apply_calibration
from telco_nbo.nbo.rank import Policy
from telco_nbo.nbo.scores import AlignedScores
from telco_nbo.vocabulary import MODEL_KINDS

OFFER_ATTRIBUTES = ("offer_id", "offer_kind", "offer_monthly_price", "offer_monthly_margin", "offer_term_months")


def _booster(model: Any) -> Any:
    return model.get_booster() if hasattr(model, "get_booster") else model


def _iteration_range(model: Any) -> tuple[int, int]:
    # The sklearn wrapper predicts with the best iteration after early stopping: match it.
    best = getattr(model, "best_iteration", None) if hasattr(model, "get_booster") else None
    return (0, int(best) + 1) if best is not None else (0, 0)


def _stored_categories(booster: Any) -> dict[str, list[str]]:
    try:
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
    except Exception:  # noqa: BLE001 - a model saved without categories
        return {}
    return {n: [str(v) for v in arr.to_pylist()] for n, arr in stored if arr is not None}


def _json_value(raw: Any, categorical: bool) -> Any:
    """A feature value as the model frame holds it (categories as text, the rest as float)."""
    if raw is None:
        return None
    if categorical:
        return str(raw)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return str(raw)
    return None if np.isnan(v) else v


def _same_booster(a: CompiledBooster, b: CompiledBooster) -> bool:
    return a.names == b.names and a.iteration_range == b.iteration_range and \
        bytes(a.booster.save_raw("ubj")) == bytes(b.booster.save_raw("ubj"))


@dataclass
class CompiledBooster:
    """One booster and the recipe of its input matrix.

    Attributes:
        model: The loaded model (sklearn wrapper or Booster).
        booster: Its Booster.
        names: Input feature names, in order.
        categories: Feature index -> {value: code} for categorical inputs.
        offer_columns: Feature index -> offer attribute name (rows are account x offer).
        iteration_range: Trees used (the sklearn wrapper's best iteration).
    """

    model: Any
    booster: Any
    names: list[str]
    categories: dict[int, dict[str, int]]
    offer_columns: dict[int, str]
    iteration_range: tuple[int, int]
    _direct: Any = field(default=None, repr=False, compare=False)
    _numeric: list[int] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def compile(cls, model: Any) -> CompiledBooster:
        """Read a model's feature names, types and stored categories.

        Raises:
            ConfigError: The model has no feature names, or a categorical feature without its
                stored categories (its codes could not be rebuilt from values).
        """
        booster = _booster(model)
        names = list(booster.feature_names or [])
        if not names:
            raise ConfigError("model has no feature names: it must be trained on a DataFrame")
        types = list(booster.feature_types or ["float"] * len(names))
        stored = _stored_categories(booster)
        cats: dict[int, dict[str, int]] = {}
        for j, (n, t) in enumerate(zip(names, types, strict=True)):
            if t == "c":
                if n not in stored:
                    raise ConfigError(f"categorical feature {n} has no stored categories in the model")
                cats[j] = {v: k for k, v in enumerate(stored[n])}
        offer_cols = {j: n for j, n in enumerate(names) if n in OFFER_ATTRIBUTES}
        return cls(model, booster, names, cats, offer_cols, _iteration_range(model))

    def __getstate__(self) -> dict[str, Any]:
        # The direct-predict handle holds ctypes pointers into this process: rebuilt after unpickling.
        return {**self.__dict__, "_direct": None}

    @property
    def per_offer(self) -> bool:
        """Whether rows are account x offer pairs."""
        return bool(self.offer_columns)

    def matrix(self, columns: Mapping[str, np.ndarray], n: int, offers: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Build the float32 input: ``(n, F)``, or ``(n * m, F)`` account-major when per offer.

        Raises:
            DataValidationError: A model input column is missing or not numeric.
        """
        m = 1
        if self.per_offer:
            if offers is None:
                raise ConfigError("a per-offer model needs the offer attributes")
            m = len(next(iter(offers.values())))
        out = np.empty((n, m, len(self.names)), dtype=np.float32)
        if self._numeric is None:
            self._numeric = [j for j in range(len(self.names)) if j not in self.categories and j not in self.offer_columns]
        try:
            num = [columns[self.names[j]] for j in self._numeric]
        except KeyError:
            missing = [c for j, c in enumerate(self.names) if j not in self.offer_columns and c not in columns]
            raise DataValidationError("features", [f"missing model columns: {', '.join(missing)}"]) from None
        if num:
            try:
                # One conversion for every numeric column (a request's few rows make the per-column
                # numpy calls, not the data, the cost); None in an object column becomes NaN.
                block = np.array(num, dtype=np.float32).T
            except (TypeError, ValueError):  # a non-numeric value: name its column
                block = np.stack([self._encode(j, np.asarray(v), self.names[j])
                                  for j, v in zip(self._numeric, num, strict=True)], axis=1)
            out[:, :, self._numeric] = block[:, None, :]
        for j, attr in self.offer_columns.items():
            out[:, :, j] = self._encode(j, offers[attr], self.names[j])[None, :]  # type: ignore[index]
        for j in self.categories:
            if j in self.offer_columns:
                continue
            name = self.names[j]
            if name not in columns:
                raise DataValidationError("features", [f"missing model columns: {name}"])
            out[:, :, j] = self._encode(j, columns[name], name)[:, None]
        return out.reshape(n * m, len(self.names))

    def _encode(self, j: int, values: np.ndarray, name: str) -> np.ndarray:
        values = np.asarray(values)
        if j in self.categories:
            mapping = self.categories[j]
            # Unseen or missing categories go down XGBoost's missing-value branch, as in training.
            return np.array([mapping.get(str(v), np.nan) if v is not None else np.nan for v in values.tolist()],
                            dtype=np.float32)
        if values.dtype == object:
            try:
                return np.array([np.nan if v is None else float(v) for v in values.tolist()], dtype=np.float32)
            except (TypeError, ValueError):
                raise DataValidationError("features", [f"column {name} must be numeric"]) from None
        return values.astype(np.float32)

    def set_threads(self, nthread: int) -> None:
        """Set XGBoost's threads for this booster (0 = all cores).

        Set once, not per call: changing a booster parameter makes XGBoost reconfigure the model
        on the next prediction, which costs more than predicting one account.
        """
        self.booster.set_param({"nthread": int(nthread)})

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Transformed prediction (probability for classifiers) of a float32 matrix."""
        if self._direct is None:
            self._direct = _DirectPredict.build(self.booster, self.iteration_range) or False
        if self._direct:
            return self._direct(X)
        return np.asarray(self.booster.inplace_predict(X, iteration_range=self.iteration_range), dtype=float)


class _DirectPredict:
    """``Booster.inplace_predict`` on a dense float32 matrix, through XGBoost's C API directly.

    Why: for the few rows of an API request, ``inplace_predict`` costs ~0.41 ms per call, of which
    ~0.26 ms is Python (data-type dispatch, JSON arguments rebuilt on every call, an array class
    defined per call to read the output back); the C call itself (``XGBoosterPredictFromDense``,
    a documented function of XGBoost's C API) is ~0.15 ms. A ranking makes four such calls
    (measured with XGBoost 3.2 on this machine; see benchmarks/RESULTS.md "Serving"). This makes
    the same call with the arguments built once and copies the result out. If the library's
    internals it needs are absent (another XGBoost release), :meth:`build` returns None and
    ``inplace_predict`` is used; tests check both give the same numbers.
    """

    def __init__(self, lib: Any, check: Any, handle: Any, args: bytes, ulong: Any):
        import ctypes

        self._ctypes = ctypes
        self._lib, self._check, self._handle, self._args, self._ulong = lib, check, handle, args, ulong

    @classmethod
    def build(cls, booster: Any, iteration_range: tuple[int, int]) -> _DirectPredict | None:
        try:
            from xgboost.core import _LIB, _check_call, c_bst_ulong
        except ImportError:  # pragma: no cover - another XGBoost layout
            return None
        args = json.dumps({"type": 0, "training": False, "iteration_begin": int(iteration_range[0]),
                           "iteration_end": int(iteration_range[1]), "missing": float("nan"),
                           "strict_shape": False, "cache_id": 0}).encode()
        return cls(_LIB, _check_call, booster.handle, args, c_bst_ulong)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        ctypes = self._ctypes
        X = np.ascontiguousarray(X, dtype=np.float32)
        rows, cols = X.shape
        iface = (f'{{"data": [{X.__array_interface__["data"][0]}, true], "shape": [{rows}, {cols}], '
                 f'"strides": null, "typestr": "<f4", "version": 3}}').encode()
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        preds = ctypes.POINTER(ctypes.c_float)()
        self._check(self._lib.XGBoosterPredictFromDense(self._handle, iface, self._args, None, ctypes.byref(shape),
                                                        ctypes.byref(dims), ctypes.byref(preds)))
        size = 1
        for d in range(dims.value):
            size *= int(shape[d])
        # The result lives in a buffer the booster reuses on its next call: copy it out now.
        buf = np.empty(size, dtype=np.float32)
        ctypes.memmove(buf.__array_interface__["data"][0], preds, 4 * size)
        out = buf.astype(float)
        return out.reshape(tuple(int(shape[d]) for d in range(dims.value))) if dims.value > 1 else out


@dataclass
class ChampionModels:
    """The four champion models and the versions that produced them.

    Attributes:
        churn: Churn classifier (XGBoost sklearn).
        propensity: Offer-acceptance classifier (XGBoost sklearn).
        uplift: Uplift scorer (``telco_nbo.training.pyfunc.UpliftScorer``).
        clv: CLV scorer (``telco_nbo.training.pyfunc.ClvScorer``).
        versions: Registered name -> version.
        offers: The offers table the propensity model was trained with (None if not stored).
    """

    churn: Any
    propensity: Any
    uplift: Any
    clv: Any
    versions: dict[str, str]
    offers: pd.DataFrame | None = None

    @classmethod
    def load(cls, tracking_uri: str | None) -> ChampionModels:
        """Load every ``@champion`` from the registry at ``tracking_uri``.

        Raises:
            ConfigError: A model has no champion (names which, and the store).
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        from telco_nbo.tracking import CHAMPION, load_model_version, registered_model_name, tracking_session

        churn, churn_info = load_model_version("churn", CHAMPION, tracking_uri)
        prop, prop_info = load_model_version("propensity", CHAMPION, tracking_uri)
        versions = {churn_info.name: str(churn_info.version), prop_info.name: str(prop_info.version)}
        scorers = {}
        with tracking_session(tracking_uri) as client:
            for kind in ("uplift", "clv"):
                name = registered_model_name(kind)
                try:
                    mv = client.get_model_version_by_alias(name, CHAMPION)
                except MlflowException:
                    raise ConfigError(f"model {name!r} has no version with alias '{CHAMPION}' in "
                                      f"{mlflow.get_tracking_uri()}; run the training first") from None
                scorers[kind] = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model().scorer
                versions[name] = str(mv.version)
        return cls(churn, prop, scorers["uplift"], scorers["clv"], dict(sorted(versions.items())))

    @classmethod
    def load_dir(cls, folder: str | Path) -> ChampionModels:
        """Load models exported by :func:`export_champions` (a Bento carries them; no registry needed).

        Raises:
            ConfigError: The folder lacks a model or ``versions.json``.
        """
        import json

        import mlflow

        from telco_nbo.tracking import registered_model_name

        root = Path(folder)
        try:
            versions = json.loads((root / "versions.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{root} holds no exported champion models (versions.json): {exc}") from exc
        paths = {k: root / registered_model_name(k) for k in MODEL_KINDS}
        missing = [str(p) for p in paths.values() if not (p / "MLmodel").exists()]
        if missing:
            raise ConfigError(f"exported models missing: {missing}")
        churn = mlflow.xgboost.load_model(str(paths["churn"]))
        prop = mlflow.xgboost.load_model(str(paths["propensity"]))
        up = mlflow.pyfunc.load_model(str(paths["uplift"])).unwrap_python_model().scorer
        clv = mlflow.pyfunc.load_model(str(paths["clv"])).unwrap_python_model().scorer
        return cls(churn, prop, up, clv, {str(k): str(v) for k, v in sorted(versions.items())})


def export_champions(tracking_uri: str | None, out_dir: str | Path) -> dict[str, str]:
    """Copy the four ``@champion`` models out of the registry into ``out_dir`` (for a Bento).

    Each model lands in ``out_dir/<registered name>/`` in MLflow's own model format (XGBoost JSON
    / UBJ and the component JSON files, no pickles); ``versions.json`` records which versions.

    Returns:
        Registered name -> version.

    Raises:
        ConfigError: A model has no champion.
    """
    import json
    import shutil

    import mlflow
    from mlflow.exceptions import MlflowException

    from telco_nbo.tracking import CHAMPION, registered_model_name, tracking_session

    out = Path(out_dir)
    versions: dict[str, str] = {}
    with tracking_session(tracking_uri) as client:
        for kind in MODEL_KINDS:
            name = registered_model_name(kind)
            try:
                mv = client.get_model_version_by_alias(name, CHAMPION)
            except MlflowException:
                raise ConfigError(f"model {name!r} has no '{CHAMPION}' version in {mlflow.get_tracking_uri()}") from None
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(f"models:/{name}@{CHAMPION}", dst_path=str(target))
            versions[name] = str(mv.version)
    (out / "versions.json").write_text(json.dumps(dict(sorted(versions.items())), indent=2))
    return versions


class FastScorer:
    """Scores feature columns with the champion models' boosters (numpy in, :class:`AlignedScores` out)."""

    def __init__(self, models: ChampionModels, policy: Policy, nthread: int = 1):
        """Compile every booster's input recipe.

        Args:
            models: The loaded champions.
            policy: The compiled policy (its catalog gives the offers scored).
            nthread: XGBoost threads per prediction: 1 for the API (concurrency comes from
                requests, and a thread pool costs more than it saves on one row), 0 for batches.

        Raises:
            ConfigError: A model has a shape this fast path does not know (e.g. per-add-on
                propensity-to-own models); use the models' own predict paths instead.
        """
        self.models = models
        self.policy = policy
        self.churn = CompiledBooster.compile(models.churn)
        self.propensity = CompiledBooster.compile(models.propensity)
        if not self.propensity.per_offer:
            raise ConfigError("the propensity champion is not offer-conditioned (no offer_id input)")
        learner = getattr(models.uplift, "learner", None)
        if learner is None:
            raise ConfigError("the uplift champion carries no learner")
        self.uplift_kind = "x" if hasattr(learner, "effect_control_") else "t"
        if self.uplift_kind == "x":
            # tau = e tau0 + (1 - e) tau1: the stage-1 outcome models are not needed to predict.
            self.uplift_parts = [CompiledBooster.compile(learner.effect_control_),
                                 CompiledBooster.compile(learner.effect_treated_)]
            self.e = float(learner.propensity_)
        else:
            self.uplift_parts = [CompiledBooster.compile(learner.model_control_),
                                 CompiledBooster.compile(learner.model_treated_)]
        # The learner's out-of-fold calibration (intercept, slope), applied as in predict_calibrated.
        self.uplift_calibration = getattr(learner, "calibration_", None)
        clv = models.clv
        self.clv_method = clv.method
        self.clv_spec = dict(clv.spec)
        self.clv_churn = CompiledBooster.compile(clv.churn_model) if clv.method == "hazard" else None
        # The CLV model usually carries the very churn booster of telco-churn (trained together):
        # then its hazard comes from the churn probability already computed (one predict less).
        self.clv_is_churn = self.clv_churn is not None and _same_booster(self.clv_churn, self.churn)
        offers = policy.offers
        self.offer_attributes = {
            "offer_id": offers.ids.astype(str),
            "offer_kind": offers.kind.astype(str),
            "offer_monthly_price": policy.monthly_price,
            "offer_monthly_margin": np.array([o.monthly_margin for o in offers.offers], dtype=float),
            "offer_term_months": policy.term_months.astype(float),
        }
        pos = self.propensity.names.index("offer_id") if "offer_id" in self.propensity.names else None
        known = set(self.propensity.categories.get(pos, {})) if pos is not None else set()
        # Offers the propensity model never saw get no score (as in ChampionScoreProvider): the
        # model would only send them down its missing-value branch, an invented number.
        self._unseen = np.array([o not in known for o in offers.ids.astype(str)], dtype=bool)
        self.logged_features = list(dict.fromkeys([*self.churn.names, *(
            c for c in ("account_id", "household_id", "account_lifecycle_stage", "account_channel_preference",
                        "account_promo_contacts_30d", "household_promo_contacts_30d"))]))
        self.set_threads(nthread)

    def unknown_offers(self) -> list[str]:
        """Catalog offers the propensity model never saw in training (scored NaN)."""
        return self.policy.offers.ids[self._unseen].astype(str).tolist()

    def set_threads(self, nthread: int) -> None:
        """Set XGBoost's threads of every booster (see :meth:`CompiledBooster.set_threads`)."""
        for b in self.boosters():
            b.set_threads(nthread)

    def boosters(self) -> list[CompiledBooster]:
        """Every booster a score call runs (for the benchmark's raw-predict baseline)."""
        out = [self.churn, self.propensity, *self.uplift_parts]
        if self.clv_churn is not None and not self.clv_is_churn:
            out.append(self.clv_churn)
        return out

    def score(self, columns: Mapping[str, np.ndarray], *, reasons: bool = False, reason_k: int = 3) -> AlignedScores:
        """Score ``n`` accounts for every catalog offer.

        Args:
            columns: Feature columns (name -> ``(n,)`` array).
            reasons: Also attach the top ``reason_k`` SHAP reasons that raise the churn score (as
                :class:`~telco_nbo.scoring.ChampionScoreProvider` does; for every offer).
            reason_k: Reasons per account.

        Returns:
            Scores aligned to the rows and the catalog order.
        """
        n = len(columns["account_id"])
        m = len(self.policy.offers)
        x_acc = self.churn.matrix(columns, n)
        churn = self.churn.predict(x_acc)
        prop = self.propensity.predict(self.propensity.matrix(columns, n, self.offer_attributes)).reshape(n, m)
        if self._unseen.any():
            prop[:, self._unseen] = np.nan
        a, b = (p.predict(x_acc if p.names == self.churn.names else p.matrix(columns, n)) for p in self.uplift_parts)
        tau = self.e * a + (1.0 - self.e) * b if self.uplift_kind == "x" else b - a
        tau = apply_calibration(tau, self.uplift_calibration)
        clv = self._clv(columns, n, x_acc, churn)
        return AlignedScores(
            churn=churn, clv=clv, retention_uplift=np.clip(-tau, -1.0, 1.0), propensity=prop,
            offer_uplift=np.full((n, m), np.nan), model_versions=dict(self.models.versions),
            reasons={i: [(None, r.sentence) for r in rs]
                     for i, rs in enumerate(self._reasons(self.churn, x_acc, columns, reason_k, "raises", "churn risk"))}
            if reasons else {},
        )

    def churn_reasons(self, columns: Mapping[str, np.ndarray], k: int = 3) -> list[list[Any]]:
        """Top-``k`` SHAP reason codes of the churn score per account (both directions)."""
        n = len(columns["account_id"])
        return self._reasons(self.churn, self.churn.matrix(columns, n), columns, k, "both", "churn risk")

    def propensity_reasons(self, columns: Mapping[str, np.ndarray], offers: list[int], k: int = 3) -> list[list[list[Any]]]:
        """Top-``k`` reason codes of the propensity of each offer in ``offers`` (catalog positions)."""
        n = len(columns["account_id"])
        attrs = {a: v[offers] for a, v in self.offer_attributes.items()}
        X = self.propensity.matrix(columns, n, attrs)
        flat_cols = {c: np.repeat(np.asarray(v), len(offers)) for c, v in columns.items()}
        flat_cols.update({a: np.tile(v, n) for a, v in attrs.items()})
        flat = self._reasons(self.propensity, X, flat_cols, k, "both", "acceptance")
        return [flat[i * len(offers):(i + 1) * len(offers)] for i in range(n)]

    @staticmethod
    def _reasons(b: CompiledBooster, X: np.ndarray, columns: Mapping[str, np.ndarray], k: int, direction: str,
                 outcome: str) -> list[list[Any]]:
        """Exact TreeSHAP on the float matrix, rendered by :mod:`telco_nbo.explain`'s phrases."""
        import xgboost as xgb

        from telco_nbo.explain import REASON_PHRASES, Reason, generic_phrase

        dm = xgb.DMatrix(X, feature_names=b.names, feature_types=list(b.booster.feature_types or []) or None,
                         enable_categorical=True, nthread=1)
        phi = np.asarray(b.booster.predict(dm, pred_contribs=True, iteration_range=b.iteration_range))[:, :-1]
        if direction == "raises":
            strength = np.where(phi > 0, phi, 0.0)
        elif direction == "lowers":
            strength = np.where(phi < 0, -phi, 0.0)
        else:
            strength = np.abs(phi)
        k_eff = min(k, phi.shape[1])
        top = np.argsort(-strength, axis=1, kind="stable")[:, :k_eff]
        out: list[list[Any]] = []
        for i in range(phi.shape[0]):
            rs = []
            for j in top[i].tolist():
                if strength[i, j] <= 1e-9:
                    break
                name = b.names[j]
                raw = np.asarray(columns[name])[i] if name in columns else None
                value = _json_value(raw, j in b.categories)
                fn = REASON_PHRASES.get(name)
                try:
                    phrase = fn(value) if fn is not None else generic_phrase(name, value)
                except (TypeError, ValueError):
                    phrase = generic_phrase(name, value)
                c = float(phi[i, j])
                rs.append(Reason(feature=name, value=value, contribution=c, direction="raises" if c > 0 else "lowers",
                                 phrase=phrase, outcome=outcome))
            out.append(rs)
        return out

    def _clv(self, columns: Mapping[str, np.ndarray], n: int, x_acc: np.ndarray, churn: np.ndarray) -> np.ndarray:
        from telco_nbo.models.clv import clv_from_survival, monthly_hazard_from_p90, survival_from_hazard

        charges = np.asarray(columns["account_monthly_charges"], dtype=float)
        margin = float(self.clv_spec["margin_rate"]) * np.nan_to_num(charges, nan=0.0)
        if self.clv_churn is None:
            frame = pd.DataFrame({k: np.asarray(columns[k]) for k in
                                  (self.clv_spec["segment_col"], self.clv_spec["tenure_col"], "account_monthly_charges")})
            return self.models.clv.predict_frame(frame)["clv"].to_numpy(dtype=float)
        if self.clv_is_churn:
            p90 = churn
        else:
            p90 = self.clv_churn.predict(x_acc if self.clv_churn.names == self.churn.names
                                         else self.clv_churn.matrix(columns, n))
        s = survival_from_hazard(monthly_hazard_from_p90(np.clip(p90, 0.0, 1.0)), int(self.clv_spec["horizon"]))
        return np.atleast_1d(clv_from_survival(s, margin, float(self.clv_spec["discount_rate"]))).astype(float)
