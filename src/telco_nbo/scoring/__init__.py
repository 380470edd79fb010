"""Scoring with the champion models: one stack for batch ``rank``, the service and Dask ranking.

- :mod:`~telco_nbo.scoring.champions`: load the four ``@champion`` models (registry or exported
  folder), export them for a Bento;
- :mod:`~telco_nbo.scoring.compiled`: one XGBoost booster compiled for numpy input;
- :mod:`~telco_nbo.scoring.offers`: the catalog's offers in the propensity model's input form;
- :mod:`~telco_nbo.scoring.effects`: uplift and CLV through what their models expose;
- :mod:`~telco_nbo.scoring.reasons`: SHAP reason codes of a compiled booster;
- :mod:`~telco_nbo.scoring.fast`: :class:`FastScorer`, numpy columns in, aligned scores out;
- :mod:`~telco_nbo.scoring.provider`: :class:`ChampionScoreProvider`, the same scores as a
  :class:`~telco_nbo.nbo.scores.Scores` value for a feature frame.
"""

from __future__ import annotations

from telco_nbo.scoring.champions import ChampionModels, export_champions
from telco_nbo.scoring.compiled import CompiledBooster, DirectPredict
from telco_nbo.scoring.effects import ClvEffect, UpliftEffect
from telco_nbo.scoring.fast import FastScorer
from telco_nbo.scoring.offers import OFFER_ATTRIBUTES, offer_attributes
from telco_nbo.scoring.provider import ChampionScoreProvider, scores_from_aligned
from telco_nbo.scoring.reasons import booster_reasons

__all__ = [
    "OFFER_ATTRIBUTES",
    "ChampionModels",
    "ChampionScoreProvider",
    "ClvEffect",
    "CompiledBooster",
    "DirectPredict",
    "FastScorer",
    "UpliftEffect",
    "booster_reasons",
    "export_champions",
    "offer_attributes",
    "scores_from_aligned",
]
