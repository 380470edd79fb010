"""The champion models as a :class:`~telco_nbo.nbo.scores.ScoreProvider`: feature frame in, :class:`Scores` out.

:class:`ChampionScoreProvider` is what the in-process ``telco-nbo rank`` and the monitoring window
score with. It is a thin adapter over :class:`~telco_nbo.scoring.fast.FastScorer` (the scorer of
the service and of Dask ranking), so the three paths give the same numbers by construction:

- ``churn_probability``, ``clv``, ``retention_uplift`` per account;
- ``propensity`` per account x offer, for the catalog offers the propensity model saw in training
  (no score is invented for the others). Offer attributes (price, margin, term) come from the
  catalog, so a price change reaches the model;
- ``reasons``: the top SHAP reason codes that raise the churn score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.nbo.catalog import Catalog
from telco_nbo.nbo.rules import as_columns
from telco_nbo.nbo.scores import AlignedScores, Scores
from telco_nbo.scoring.champions import ChampionModels
from telco_nbo.scoring.fast import FastScorer


def scores_from_aligned(aligned: AlignedScores, account_ids: np.ndarray, offer_ids: np.ndarray) -> Scores:
    """The :class:`Scores` value of aligned arrays (pairs with no propensity score are left out).

    Args:
        aligned: Scores aligned to ``account_ids`` and ``offer_ids``.
        account_ids: ``(n,)`` account ids, in row order.
        offer_ids: ``(m,)`` offer ids, in catalog order.

    Returns:
        Account rows, account x offer rows (account-major), reasons (if any) and versions.
    """
    accounts = pd.DataFrame({"account_id": account_ids, "churn_probability": aligned.churn, "clv": aligned.clv,
                             "retention_uplift": aligned.retention_uplift})
    if aligned.retention_uplift_se is not None:
        accounts["retention_uplift_se"] = aligned.retention_uplift_se
    i, j = np.nonzero(~np.isnan(aligned.propensity))
    offers = pd.DataFrame({"account_id": account_ids[i], "offer_id": np.asarray(offer_ids, dtype=object)[j],
                           "propensity": aligned.propensity[i, j]})
    if np.isfinite(aligned.offer_uplift).any():
        # Per-offer effects (from logged randomized contacts) travel with the pairs they value.
        offers["uplift"] = aligned.offer_uplift[i, j]
        if aligned.offer_uplift_se is not None:
            offers["uplift_se"] = aligned.offer_uplift_se[i, j]
    reasons = None
    if aligned.reasons:
        reasons = pd.DataFrame([(account_ids[a], text) for a in sorted(aligned.reasons) for _, text in aligned.reasons[a]],
                               columns=["account_id", "reason"])
    return Scores(accounts=accounts, offers=offers, reasons=reasons, model_versions=dict(aligned.model_versions))


@dataclass
class ChampionScoreProvider:
    """Score provider backed by the ``@champion`` version of each registered model.

    Args:
        tracking_uri: MLflow tracking URI (``None``: the default store).
        reason_k: Reason codes per account (0 = none).
        models: Already loaded champions (default: loaded from ``tracking_uri``).

    Raises:
        ConfigError: A model has no champion, or a shape the scorer does not know.
    """

    tracking_uri: str | None = None
    reason_k: int = 3
    models: ChampionModels | None = None
    _scorers: dict[int, FastScorer] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = ChampionModels.load(self.tracking_uri)

    @property
    def versions(self) -> dict[str, str]:
        """Registered name -> version of the champions."""
        return dict(self.models.versions)  # type: ignore[union-attr]

    def scorer(self, catalog: Catalog) -> FastScorer:
        """The compiled scorer of ``catalog``'s offers (compiled once per catalog object)."""
        hit = self._scorers.get(id(catalog))
        if hit is None or hit.catalog is not catalog:
            # Batches run with nthread=0: every core on one big matrix.
            hit = FastScorer(self.models, catalog, nthread=0)  # type: ignore[arg-type]
            self._scorers = {id(catalog): hit}
        return hit

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
        if not isinstance(features, pd.DataFrame) or features.empty:
            raise DataValidationError("features", ["no accounts to score"])
        if "account_id" not in features.columns:
            raise DataValidationError("features", ["missing column account_id"])
        dup = features["account_id"].duplicated()
        if dup.any():
            raise DataValidationError("features", [f"duplicate account_id: {features.loc[dup, 'account_id'].head(5).tolist()}"])
        scorer = self.scorer(catalog)
        columns = as_columns(features)
        aligned = scorer.score(columns, reasons=self.reason_k > 0, reason_k=self.reason_k)
        return scores_from_aligned(aligned, features["account_id"].to_numpy(), scorer.offer_ids)


__all__ = ["ChampionScoreProvider", "scores_from_aligned"]
