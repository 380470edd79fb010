"""Scores from the registered champion models: the ranking's production score provider.

:class:`ChampionScoreProvider` loads ``models:/telco-<kind>@champion`` for the four kinds once and
turns an account feature frame (from :func:`telco_nbo.features.build_account_features`) and an
offer catalog into :class:`telco_nbo.nbo.scores.Scores`:

- ``churn_probability``: the churn classifier (XGBoost flavor, not pyfunc, which gives labels);
- ``clv``: the CLV model (pyfunc over XGBoost JSON / sBG JSON, with the margin rule it was
  trained with);
- ``retention_uplift``: ``-tau`` of the uplift learner, clipped to [-1, 1];
- ``propensity`` per account x offer: the offer-conditioned acceptance model on candidate rows
  built by the same function as its training rows. Offers the model never saw in training are
  left out (no score is invented for them). Offer attributes (price, margin, term) come from the
  catalog, so a price change reaches the model; ids keep the training encoding;
- ``reasons``: the top-3 SHAP reason codes of the churn score (the same function the API uses).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.catalog import Catalog
from telco_nbo.nbo.scores import Scores


@dataclass
class ChampionScoreProvider:
    """Score provider backed by the ``@champion`` version of each registered model.

    Args:
        tracking_uri: MLflow tracking URI (``None``: the default store).
        reason_k: Reason codes per account (0 = none).

    Raises:
        ConfigError: A model has no champion, or the propensity champion stored no offers table.
    """

    tracking_uri: str | None = None
    reason_k: int = 3

    def __post_init__(self) -> None:
        import mlflow

        from telco_nbo.tracking import CHAMPION, load_champion, registered_model_name, tracking_session
        from telco_nbo.training.pipeline import OFFERS_ARTIFACT
        from telco_nbo.training.pyfunc import load_pyfunc_scorer

        self.churn_model, churn_info = load_champion("churn", self.tracking_uri)
        self.propensity_model, prop_info = load_champion("propensity", self.tracking_uri)
        self.versions = {"telco-churn": str(churn_info.version), "telco-propensity": str(prop_info.version)}
        self.scorers: dict[str, Any] = {}
        with tracking_session(self.tracking_uri) as client:
            for kind in ("uplift", "clv"):
                name = registered_model_name(kind)
                try:
                    mv = client.get_model_version_by_alias(name, CHAMPION)
                except mlflow.exceptions.MlflowException as exc:
                    from telco_nbo.tracking import no_champion_reason

                    why = no_champion_reason(client, name)
                    raise ConfigError(f"model {name!r} has no '{CHAMPION}' version: {why}" if why else
                                      f"model {name!r} has no '{CHAMPION}' version; run telco-nbo train {kind} first") from exc
                self.scorers[kind] = load_pyfunc_scorer(f"models:/{name}@{CHAMPION}")
                self.versions[name] = str(mv.version)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    path = client.download_artifacts(prop_info.run_id, OFFERS_ARTIFACT, tmp)
                except Exception as exc:  # noqa: BLE001 - any store error means the artifact is unusable
                    raise ConfigError(f"telco-propensity v{prop_info.version} stored no offers table ({OFFERS_ARTIFACT}): {exc}") from exc
                with open(path) as fh:
                    self.training_offers = pd.DataFrame(json.load(fh))
        self.propensity_features = list(self.propensity_model.get_booster().feature_names or [])

    def _offers_table(self, catalog: Catalog) -> tuple[pd.DataFrame, list[str]]:
        """The training offers table with the catalog's current attributes; offers to score."""
        from telco_nbo.nbo.catalog import catalog_frame

        current = catalog_frame(catalog).set_index("offer_id")
        table = self.training_offers.set_index("offer_id").copy()
        known = [o for o in current.index if o in table.index]
        for col in ("kind", "monthly_price", "monthly_margin", "term_months"):
            table.loc[known, col] = current.loc[known, col].to_numpy()
        return table.reset_index(), known

    def score(self, features: pd.DataFrame, catalog: Catalog) -> Scores:
        """Scores for every account of ``features`` and every catalog offer the models know.

        Args:
            features: Account feature frame (``account_id`` + the model features).
            catalog: The offer catalog.

        Returns:
            The :class:`~telco_nbo.nbo.scores.Scores`.

        Raises:
            DataValidationError: Empty frame, duplicate account ids, or missing feature columns.
        """
        from telco_nbo.explain import reason_codes
        from telco_nbo.features import to_model_matrix
        from telco_nbo.models.propensity import make_candidate_rows

        if not isinstance(features, pd.DataFrame) or features.empty:
            raise DataValidationError("features", ["no accounts to score"])
        if "account_id" not in features.columns:
            raise DataValidationError("features", ["missing column account_id"])
        dup = features["account_id"].duplicated()
        if dup.any():
            raise DataValidationError("features", [f"duplicate account_id: {features.loc[dup, 'account_id'].head(5).tolist()}"])
        X = to_model_matrix(features)
        names = self.churn_model.get_booster().feature_names
        if names and list(names) != list(X.columns):
            # Trained on a subset (imported data: constant features left out) or without the
            # passthrough columns of this frame: the model's own columns, in its order.
            X = X[list(names)]
        churn = self.churn_model.predict_proba(X)[:, 1]
        clv = self.scorers["clv"].predict_frame(features)["clv"].to_numpy(dtype=float)
        uplift = np.clip(self.scorers["uplift"].predict_frame(features)["retention_uplift"].to_numpy(dtype=float), -1.0, 1.0)
        accounts = pd.DataFrame({"account_id": features["account_id"].to_numpy(), "churn_probability": churn,
                                 "clv": clv, "retention_uplift": uplift})
        offers_table, known = self._offers_table(catalog)
        if known:
            rows = make_candidate_rows(features, offers_table, offer_ids=known)
            propensity = self.propensity_model.predict_proba(rows.X[self.propensity_features])[:, 1]
            offers = rows.keys.assign(propensity=propensity)
        else:
            offers = pd.DataFrame({"account_id": [], "offer_id": [], "propensity": []})
        reasons = None
        if self.reason_k > 0:
            codes = reason_codes(self.churn_model, X, k=self.reason_k, direction="raises")
            ids = features["account_id"].to_numpy()
            reasons = pd.DataFrame(
                [(ids[i], r.sentence) for i, rs in enumerate(codes) for r in rs], columns=["account_id", "reason"]
            )
        return Scores(accounts=accounts, offers=offers, reasons=reasons, model_versions=dict(self.versions))


__all__ = ["ChampionScoreProvider"]
