"""The champion models' scores from numpy feature columns: what batch ``rank``, the service and Dask ranking run.

:class:`FastScorer` compiles each champion's boosters once (:mod:`telco_nbo.scoring.compiled`) and
then scores with XGBoost's in-place prediction on float32 matrices: no pandas, no DMatrix, one
thread per request in the service. It computes what the models' own ``predict`` paths compute
(tested to 1e-6):

- churn probability: the churn classifier's P(class 1);
- propensity: the offer-conditioned acceptance classifier on account features + the offer's
  attributes (:func:`telco_nbo.scoring.offers.offer_attributes`), for every catalog offer (``n x m``
  rows in one call); offers the model never saw in training get no score;
- retention uplift: ``-tau`` clipped to [-1, 1], ``tau`` from the learner's own effect models and
  formula, calibrated (:class:`telco_nbo.scoring.effects.UpliftEffect`);
- per-offer uplift: the other offers' relative effects from logged randomized contacts (saved with
  the uplift model) times the churn probability (:mod:`telco_nbo.models.offer_effects`);
- CLV: the CLV model's churn booster and hazard rule, or its contract-type sBG
  (:class:`telco_nbo.scoring.effects.ClvEffect`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from telco_nbo.errors import ConfigError
from telco_nbo.explain import Reason
from telco_nbo.nbo.catalog import Catalog
from telco_nbo.nbo.rank import Policy
from telco_nbo.nbo.scores import AlignedScores
from telco_nbo.scoring.champions import ChampionModels
from telco_nbo.scoring.compiled import CompiledBooster
from telco_nbo.scoring.effects import ClvEffect, UpliftEffect
from telco_nbo.scoring.offers import offer_attributes
from telco_nbo.scoring.reasons import booster_reasons

LOGGED_COLUMNS = ("account_id", "household_id", "account_lifecycle_stage", "account_channel_preference",
                  "account_promo_contacts_30d", "household_promo_contacts_30d")
"""Columns the prediction log keeps besides the churn model's inputs."""


class FastScorer:
    """Scores feature columns with the champion models' boosters (numpy in, :class:`AlignedScores` out)."""

    def __init__(self, models: ChampionModels, policy: Policy | Catalog, nthread: int = 1):
        """Compile every booster's input recipe.

        Args:
            models: The loaded champions.
            policy: The compiled policy, or just the catalog: its offers are the ones scored.
            nthread: XGBoost threads per prediction: 1 for the API (concurrency comes from
                requests, and a thread pool costs more than it saves on one row), 0 for batches.

        Raises:
            ConfigError: A model has a shape this fast path does not know (e.g. per-add-on
                propensity-to-own models, an X-learner with a propensity model).
        """
        self.models = models
        self.catalog: Catalog = policy.catalog if isinstance(policy, Policy) else policy
        self.offer_ids = np.array([o.offer_id for o in self.catalog.offers], dtype=object)
        self.churn = CompiledBooster.compile(models.churn)
        self.propensity = CompiledBooster.compile(models.propensity)
        if not self.propensity.per_offer:
            raise ConfigError("the propensity champion is not offer-conditioned (no offer_id input)")
        self.uplift = UpliftEffect(models.uplift)
        self.clv = ClvEffect(models.clv)
        # The CLV model usually carries the very churn booster of telco-churn (trained together):
        # then its hazard comes from the churn probability already computed (one predict less).
        self.clv_is_churn = self.clv.churn is not None and self.clv.churn.same_as(self.churn)
        self.offer_attributes = offer_attributes(self.catalog)
        known = self.propensity.known_categories("offer_id")
        # Offers the propensity model never saw get no score: the model would only send them down
        # its missing-value branch, an invented number.
        self._unseen = np.array([str(o) not in known for o in self.offer_ids], dtype=bool)
        self.logged_features = list(dict.fromkeys([*self.churn.names, *LOGGED_COLUMNS]))
        self.set_threads(nthread)

    def unknown_offers(self) -> list[str]:
        """Catalog offers the propensity model never saw in training (scored NaN)."""
        return self.offer_ids[self._unseen].astype(str).tolist()

    def set_threads(self, nthread: int) -> None:
        """Set XGBoost's threads of every booster (see :meth:`CompiledBooster.set_threads`)."""
        for b in self.boosters():
            b.set_threads(nthread)

    def boosters(self) -> list[CompiledBooster]:
        """Every booster a score call runs (for the benchmark's raw-predict baseline)."""
        out = [self.churn, self.propensity, *self.uplift.parts]
        if self.clv.churn is not None and not self.clv_is_churn:
            out.append(self.clv.churn)
        return out

    def score(self, columns: Mapping[str, np.ndarray], *, reasons: bool = False, reason_k: int = 3) -> AlignedScores:
        """Score ``n`` accounts for every catalog offer.

        Args:
            columns: Feature columns (name -> ``(n,)`` array).
            reasons: Also attach the top ``reason_k`` SHAP reasons that raise the churn score (for
                every offer).
            reason_k: Reasons per account.

        Returns:
            Scores aligned to the rows and the catalog order.
        """
        n = len(columns["account_id"])
        m = len(self.offer_ids)
        x_acc = self.churn.matrix(columns, n)
        churn = self.churn.predict(x_acc)
        prop = self.propensity.predict(self.propensity.matrix(columns, n, self.offer_attributes)).reshape(n, m)
        if self._unseen.any():
            prop[:, self._unseen] = np.nan

        def predict(b: CompiledBooster) -> np.ndarray:
            # Boosters on the churn model's inputs reuse its matrix (the usual case).
            return b.predict(x_acc if b.names == self.churn.names else b.matrix(columns, n))

        uplift, uplift_se = self.uplift.retention_uplift_with_se(predict)
        offer_uplift, offer_uplift_se = self.uplift.offer_uplift(churn, self.catalog)
        clv = self.clv.clv(columns, lambda: churn if self.clv_is_churn else predict(self.clv.churn))
        return AlignedScores(
            churn=churn, clv=clv, retention_uplift=uplift, retention_uplift_se=uplift_se, propensity=prop,
            offer_uplift=offer_uplift, offer_uplift_se=offer_uplift_se, model_versions=dict(self.models.versions),
            reasons={i: [(None, r.sentence) for r in rs]
                     for i, rs in enumerate(booster_reasons(self.churn, x_acc, columns, reason_k, "raises", "churn risk"))}
            if reasons else {},
        )

    def churn_reasons(self, columns: Mapping[str, np.ndarray], k: int = 3,
                      direction: Literal["raises", "lowers", "both"] = "both") -> list[list[Reason]]:
        """Top-``k`` SHAP reason codes of the churn score per account (``direction``: which pushes count)."""
        n = len(columns["account_id"])
        return booster_reasons(self.churn, self.churn.matrix(columns, n), columns, k, direction, "churn risk")

    def propensity_reasons(self, columns: Mapping[str, np.ndarray], offers: list[int], k: int = 3) -> list[list[list[Reason]]]:
        """Top-``k`` reason codes of the propensity of each offer in ``offers`` (catalog positions)."""
        n = len(columns["account_id"])
        attrs = {a: v[offers] for a, v in self.offer_attributes.items()}
        X = self.propensity.matrix(columns, n, attrs)
        flat_cols: dict[str, Any] = {c: np.repeat(np.asarray(v), len(offers)) for c, v in columns.items()}
        flat_cols.update({a: np.tile(v, n) for a, v in attrs.items()})
        flat = booster_reasons(self.propensity, X, flat_cols, k, "both", "acceptance")
        return [flat[i * len(offers):(i + 1) * len(offers)] for i in range(n)]


__all__ = ["FastScorer", "LOGGED_COLUMNS"]
