"""Reason codes of a compiled booster's scores: exact TreeSHAP, phrased by :mod:`telco_nbo.explain`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xgboost as xgb

from telco_nbo.explain import REASON_PHRASES, Reason, generic_phrase, reason_strength
from telco_nbo.scoring.compiled import CompiledBooster


def feature_value(raw: Any, categorical: bool) -> Any:
    """A feature value as the model frame holds it (categories as text, the rest as float; None if missing)."""
    if raw is None:
        return None
    if categorical:
        return str(raw)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return str(raw)
    return None if np.isnan(v) else v


def booster_reasons(
    booster: CompiledBooster,
    X: np.ndarray,
    columns: Mapping[str, np.ndarray],
    k: int,
    direction: Literal["raises", "lowers", "both"],
    outcome: str,
) -> list[list[Reason]]:
    """Top-``k`` reasons per row of ``X``: the features whose SHAP values move the score most.

    Args:
        booster: The compiled model.
        X: Its input matrix (from :meth:`CompiledBooster.matrix`).
        columns: The feature columns ``X`` was built from (row-aligned), for the values shown.
        k: Reasons per row at most (a feature with no push in ``direction`` is never a reason).
        direction: ``"raises"`` / ``"lowers"`` the score, or ``"both"`` (by absolute size).
        outcome: What the score is, in words (``"churn risk"``, ``"acceptance"``).

    Returns:
        One list of :class:`~telco_nbo.explain.Reason` per row, strongest first.
    """
    dm = xgb.DMatrix(X, feature_names=booster.names, feature_types=list(booster.booster.feature_types or []) or None,
                     enable_categorical=True, nthread=1)
    phi = np.asarray(booster.booster.predict(dm, pred_contribs=True, iteration_range=booster.iteration_range))[:, :-1]
    strength = reason_strength(phi, direction)
    k_eff = min(k, phi.shape[1])
    top = np.argsort(-strength, axis=1, kind="stable")[:, :k_eff]
    out: list[list[Reason]] = []
    for i in range(phi.shape[0]):
        rs = []
        for j in top[i].tolist():
            if strength[i, j] <= 1e-9:
                break
            name = booster.names[j]
            raw = np.asarray(columns[name])[i] if name in columns else None
            value = feature_value(raw, j in booster.categories)
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


__all__ = ["booster_reasons", "feature_value"]
