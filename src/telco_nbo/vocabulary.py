"""The project's shared words, defined once: model kinds, lifecycle stages, time units, the as-of date.

Every other module imports these names from here; none restates them. This module sits at the
bottom of the import graph (it imports only pandas and the project's error types), so anything
may depend on it without creating a cycle.

Offer ids are deliberately *not* here: they live in the catalog YAML (``nbo/catalog.yaml`` or a
user's own file) and, for synthetic worlds, in the world's offer effects.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from telco_nbo.errors import ConfigError

MODEL_KINDS: tuple[str, ...] = ("churn", "propensity", "uplift", "clv")
"""The four model kinds, in training order (propensity and uplift read churn's features)."""

MODEL_NAME_PREFIX = "telco-"
"""Registered model names are ``telco-<kind>`` (``telco-churn``...)."""

LIFECYCLE_STAGES: tuple[str, ...] = ("new", "early", "growth", "renewal", "at_risk")
"""Account lifecycle stages, in order (see ``features.lifecycle_stage``)."""

DAYS_PER_MONTH = 365.25 / 12
"""Mean Gregorian month (30.4375 days): tenure and months-to-contract-end are fractional months."""


def registered_names(kinds: tuple[str, ...] = MODEL_KINDS) -> tuple[str, ...]:
    """Return the registered model names of ``kinds`` (``("telco-churn", ...)``)."""
    return tuple(MODEL_NAME_PREFIX + k for k in kinds)


def resolve_as_of(given: Any, recorded: Any, where: str = "the data folder") -> pd.Timestamp:
    """Return the feature date: ``given`` if set, else the date ``recorded`` with the data.

    Every command that reads a data folder resolves its as-of date here, so the rule ("the
    ``--as-of`` you pass, else the folder's ``meta.json``") and its messages are the same everywhere.

    Args:
        given: The date the caller passed (``--as-of``), or None.
        recorded: The date stored with the data (``meta["as_of"]``), or None.
        where: How to name the data in the message when neither is set.

    Returns:
        A naive, normalized (midnight) timestamp.

    Raises:
        ConfigError: Neither is set, the value is not a date, or it carries a time zone.
    """
    value = given if given is not None and given != "" else recorded
    if value is None:
        raise ConfigError(f"{where} records no as_of date: pass --as-of YYYY-MM-DD")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"as_of must be a date like 2025-06-30, got {value!r}") from None
    if ts is pd.NaT:
        raise ConfigError(f"as_of must be a date like 2025-06-30, got {value!r}")
    if ts.tz is not None:
        raise ConfigError(f"as_of must be a naive date, got {value!r}")
    return ts.normalize()
