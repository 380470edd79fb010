"""The uplift and CLV champions compiled for numpy scoring, their formulas left to the models.

The scorer predicts with compiled boosters (:class:`~telco_nbo.scoring.compiled.CompiledBooster`)
and hands the predictions to what the models expose: the uplift learner combines its parts into a
calibrated effect (``effect_models`` / ``effect_from_parts`` of
:mod:`telco_nbo.models.uplift`'s learners) and the hazard CLV rule turns a churn probability into
CLV (:class:`telco_nbo.models.clv.HazardClvRule`). Nothing here restates either formula.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError
from telco_nbo.models.clv import HazardClvRule
from telco_nbo.models.offer_effects import OfferEffects, uplift_from
from telco_nbo.scoring.compiled import CompiledBooster

Predict = Callable[[CompiledBooster], np.ndarray]
"""Predicts one compiled booster on the batch being scored (the scorer reuses matrices it has built)."""


class UpliftEffect:
    """The uplift champion's effect ``tau`` on churn, from its learner's own effect models.

    Args:
        scorer: The uplift champion's scorer (it carries the fitted ``learner``).

    Raises:
        ConfigError: The champion carries no learner, or one whose effect cannot be compiled.
    """

    def __init__(self, scorer: Any):
        learner = getattr(scorer, "learner", None)
        if learner is None:
            raise ConfigError("the uplift champion carries no learner")
        self.learner = learner
        self.parts = [CompiledBooster.compile(m) for m in learner.effect_models()]
        spec = getattr(scorer, "spec", None) or {}
        # Every offer's effect from the logged randomized contacts (None: a model trained without logs).
        self.offer_effects = OfferEffects.from_spec(spec.get("offer_effects"))
        self.experiment_id = spec.get("experiment_id")
        self._catalog_cache: tuple[Any, np.ndarray, np.ndarray] | None = None

    def offer_uplift(self, churn: np.ndarray, catalog: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each catalog offer's drop in churn probability from the logged per-offer effects, and its error.

        NaN for offers without a logged estimate and for offers whose ``effect_evidence`` names the
        model's own experiment (their account-level effect governs, see
        :func:`telco_nbo.nbo.arbitration.value_parts`).
        """
        rho, sd = self._per_catalog(catalog)
        return uplift_from(churn, rho, sd)

    def _per_catalog(self, catalog: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(m,)`` shrunk relative effects and their errors in catalog order (NaN: none to use).

        Built once per catalog: one API request scores one account, where the per-offer lookups
        would cost more than the product.
        """
        hit = self._catalog_cache
        if hit is not None and hit[0] is catalog:
            return hit[1], hit[2]
        offers = list(catalog.offers)
        rho, sd = (np.full(len(offers), np.nan), np.full(len(offers), np.nan)) if self.offer_effects is None \
            else self.offer_effects.vectors([o.offer_id for o in offers])
        own = np.array([self.experiment_id is not None and self.experiment_id in o.effect_evidence for o in offers],
                       dtype=bool)
        rho[own], sd[own] = np.nan, np.nan
        self._catalog_cache = (catalog, rho, sd)
        return rho, sd

    def tau(self, predict: Predict) -> np.ndarray:
        """Calibrated ``tau`` per account (negative = the offer lowers churn)."""
        return self.learner.effect_from_parts([predict(p) for p in self.parts], calibrated=True)

    def retention_uplift(self, predict: Predict) -> np.ndarray:
        """``-tau`` clipped to [-1, 1]: the churn probability a retention contact removes."""
        return np.clip(-self.tau(predict), -1.0, 1.0)

    def retention_uplift_with_se(self, predict: Predict) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`retention_uplift` and its standard error (NaN when the model carries no band)."""
        parts = [predict(p) for p in self.parts]
        uplift = np.clip(-self.learner.effect_from_parts(parts, calibrated=True), -1.0, 1.0)
        se = self.learner.effect_se_from_parts(parts) if hasattr(self.learner, "effect_se_from_parts") \
            else np.full(len(uplift), np.nan)
        return uplift, np.asarray(se, dtype=float)


class ClvEffect:
    """The CLV champion: its churn booster and hazard rule, or its own scorer for the sBG method.

    Args:
        scorer: The CLV champion's scorer (``method``, ``spec`` and, for ``hazard``, ``churn_model``).
    """

    def __init__(self, scorer: Any):
        self.scorer = scorer
        self.method = scorer.method
        self.spec = dict(scorer.spec)
        self.churn = CompiledBooster.compile(scorer.churn_model) if self.method == "hazard" else None
        self.rule = HazardClvRule.from_spec(self.spec) if self.method == "hazard" else None

    def clv(self, columns: Mapping[str, np.ndarray], p90: Callable[[], np.ndarray]) -> np.ndarray:
        """CLV per account.

        Args:
            columns: The feature columns.
            p90: Returns the CLV model's churn probability per account (``hazard`` method only).
        """
        if self.rule is None:
            # The contract-type sBG needs no booster: its scorer values a small frame directly.
            frame = pd.DataFrame({k: np.asarray(columns[k]) for k in
                                  (self.spec["segment_col"], self.spec["tenure_col"], "account_monthly_charges")})
            return self.scorer.predict_frame(frame)["clv"].to_numpy(dtype=float)
        return self.rule.clv(p90(), columns["account_monthly_charges"])


__all__ = ["ClvEffect", "UpliftEffect"]
