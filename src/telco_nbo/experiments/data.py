"""From a data folder's tables to a readout's unit frame (one row per randomized unit).

The ``experiments`` table says who is in an experiment only indirectly: the assignment is the
``contacts`` rows carrying the experiment id and an arm (control rows are holdout records with
``contacted = False``). :func:`experiment_frame` collapses those rows to one row per unit
(household or account, the experiment's ``unit``) and attaches outcomes and segments:

* ``accepted``: any accepted contact of the unit in this experiment.
* ``churned``:
  - household unit: any account of the household ended (``end_date``) on or before its
    ``contract_end_date + 90 days`` (month-to-month accounts, without a contract end, use the
    experiment's ``end_date + 90 days``);
  - account unit: the account ended within 90 days after its (would-be) contact time.
* ``revenue``: sum of ``bill_amount`` of the unit's lines over the 12 calendar months starting the
  month after the experiment's ``start_date`` (a churned unit simply bills less: that is the point).
* ``pre_revenue``: ``bill_amount`` of the unit's lines in its first full month (the first billed
  month starting on or after the unit's first line start) — the CUPED covariate.
* segments: ``product_mix`` (``mobile_only``, ``bundle``, ``broadband_only``, ``other``) from the
  line types active at enrolment; ``lifecycle_stage`` at enrolment (``new`` < 90 days of tenure,
  ``renewal_window`` a contract ending within 90 days, ``early_use`` < 1 year, ``growth``);
  ``value_decile`` (``D01``..``D10`` of ``pre_revenue``); ``account_type`` (``mixed`` when a
  household holds both kinds); ``region``.

The enrolment time of a unit is its earliest (would-be) contact time in the experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError

SEGMENT_COLUMNS = ("product_mix", "lifecycle_stage", "value_decile", "account_type", "region")
"""Segment columns :func:`experiment_frame` builds, in report order."""

CHURN_WINDOW = pd.Timedelta(days=90)
REVENUE_MONTHS = 12

METRIC_ALIASES = {
    "churn": "churned",
    "churn_90d": "churned",
    "churned": "churned",
    "acceptance": "accepted",
    "accepted": "accepted",
    "offer_acceptance": "accepted",
    "revenue": "revenue",
    "arpu": "revenue",
    "revenue_12m": "revenue",
}
"""Names an ``experiments.primary_metric`` may use -> unit-frame column."""

_NEEDED = {
    "experiments": ["experiment_id", "unit", "arms", "control_arm", "start_date", "end_date", "primary_metric"],
    "contacts": ["household_id", "account_id", "experiment_id", "arm", "contacted_at", "accepted"],
    "accounts": ["account_id", "household_id", "account_type", "start_date", "end_date", "contract_end_date"],
    "households": ["household_id", "region"],
    "lines": ["line_id", "account_id", "line_type", "start_date", "end_date"],
    "usage_monthly": ["line_id", "month", "bill_amount"],
}


def _require(tables: Mapping[str, pd.DataFrame], names: list[str]) -> None:
    for name in names:
        if name not in tables:
            raise DataValidationError(name, [f"table '{name}' is missing from the data"])
        missing = [c for c in _NEEDED[name] if c not in tables[name].columns]
        if missing:
            raise DataValidationError(name, [f"missing column(s) {missing}"])


def experiment_design(tables: Mapping[str, pd.DataFrame], experiment_id: str) -> dict[str, Any]:
    """Return the design of one experiment from the ``experiments`` table.

    Args:
        tables: The data folder's tables.
        experiment_id: The experiment.

    Returns:
        ``{"experiment_id", "name", "unit", "arms" (list, control first), "control_arm",
        "primary_metric" (unit-frame column when known), "start_date", "end_date"}``.

    Raises:
        ConfigError: Unknown experiment id, or a control arm that is not one of its arms.
    """
    _require(tables, ["experiments"])
    exp = tables["experiments"]
    row = exp[exp["experiment_id"] == experiment_id]
    if row.empty:
        raise ConfigError(f"experiment '{experiment_id}' not found (experiments: {sorted(exp['experiment_id'].astype(str))})")
    r = row.iloc[0]
    arms = [a.strip() for a in str(r["arms"]).split(",") if a.strip()]
    control = str(r["control_arm"])
    if control not in arms:
        raise ConfigError(f"experiment '{experiment_id}': no control arm — control '{control}' is not one of its arms {arms}")
    pm = str(r["primary_metric"])
    return {
        "experiment_id": experiment_id,
        "name": str(r.get("name", experiment_id)),
        "unit": str(r["unit"]),
        "arms": [control, *[a for a in arms if a != control]],
        "control_arm": control,
        "primary_metric": METRIC_ALIASES.get(pm.lower(), pm),
        "start_date": pd.Timestamp(r["start_date"]),
        "end_date": pd.Timestamp(r["end_date"]),
    }


def _assignments(contacts: pd.DataFrame, experiment_id: str, unit_col: str) -> pd.DataFrame:
    c = contacts[contacts["experiment_id"] == experiment_id]
    if c.empty:
        raise DataValidationError("contacts", [f"no contact rows for experiment '{experiment_id}': nobody was assigned"])
    if c["arm"].isna().any():
        bad = c.loc[c["arm"].isna(), "contact_id" if "contact_id" in c else unit_col]
        raise DataValidationError("contacts", [f"{len(bad)} row(s) of '{experiment_id}' have no arm, e.g. {list(bad[:5])}"])
    arms_per_unit = c.groupby(unit_col)["arm"].nunique()
    multi = arms_per_unit[arms_per_unit > 1].index
    if len(multi):
        ex = c[c[unit_col].isin(multi[:5])].groupby(unit_col)["arm"].agg(lambda s: "/".join(sorted(set(s))))
        raise DataValidationError(
            "contacts",
            [f"{len(multi)} {unit_col.removesuffix('_id')}(s) of '{experiment_id}' are in two arms, e.g. "
             + ", ".join(f"{u} in {a}" for u, a in ex.items())],
        )
    g = c.groupby(unit_col, sort=True)
    out = pd.DataFrame({
        "arm": g["arm"].first(),
        "enrolled_at": g["contacted_at"].min(),
        "accepted": g["accepted"].any(),
    })
    if unit_col == "account_id":
        out["household_id"] = g["household_id"].first()
    return out


def _household_churn(units: pd.DataFrame, accounts: pd.DataFrame, design: dict[str, Any]) -> pd.Series:
    acc = accounts[accounts["household_id"].isin(units.index)]
    fallback = design["end_date"] + CHURN_WINDOW
    window_end = (acc["contract_end_date"] + CHURN_WINDOW).fillna(fallback)
    ended = acc["end_date"].notna() & (acc["end_date"] <= window_end)
    return ended.groupby(acc["household_id"]).any().reindex(units.index, fill_value=False)


def _monthly_bills(tables: Mapping[str, pd.DataFrame], key: str) -> pd.DataFrame:
    """Usage rows with the unit key (household or account) attached."""
    lines = tables["lines"][["line_id", "account_id"]]
    if key == "household_id":
        lines = lines.merge(tables["accounts"][["account_id", "household_id"]], on="account_id", how="left")
    u = tables["usage_monthly"][["line_id", "month", "bill_amount"]].merge(lines, on="line_id", how="inner")
    return u


def experiment_frame(tables: Mapping[str, pd.DataFrame], experiment_id: str) -> pd.DataFrame:
    """Turn a data folder's tables into one row per unit of one experiment.

    Args:
        tables: Table name -> frame (``experiments``, ``contacts``, ``accounts``, ``households``,
            ``lines``, ``usage_monthly``). Not mutated.
        experiment_id: The experiment.

    Returns:
        Columns ``unit_id, arm, household_id, [account_id,] enrolled_at, accepted, churned,
        revenue, pre_revenue`` and the :data:`SEGMENT_COLUMNS`, sorted by ``unit_id``.

    Raises:
        ConfigError: Unknown experiment, unknown unit, no control arm.
        DataValidationError: Missing table/column, no assigned units, a unit in two arms.
    """
    _require(tables, list(_NEEDED))
    design = experiment_design(tables, experiment_id)
    unit = design["unit"]
    if unit not in ("household", "account"):
        raise ConfigError(f"experiment '{experiment_id}': unknown unit '{unit}' (household or account)")
    key = f"{unit}_id"
    units = _assignments(tables["contacts"], experiment_id, key)
    accounts = tables["accounts"]

    # --- churn ----------------------------------------------------------------------------------
    if unit == "household":
        units["churned"] = _household_churn(units, accounts, design)
    else:
        end = accounts.set_index("account_id")["end_date"].reindex(units.index)
        units["churned"] = (end.notna() & (end <= units["enrolled_at"] + CHURN_WINDOW)).to_numpy()

    # --- revenue and its pre-period covariate --------------------------------------------------
    bills = _monthly_bills(tables, key)
    bills = bills[bills[key].isin(units.index)]
    first = (design["start_date"].to_period("M") + 1).to_timestamp()
    last = (design["start_date"].to_period("M") + REVENUE_MONTHS).to_timestamp()
    in_window = bills[(bills["month"] >= first) & (bills["month"] <= last)]
    units["revenue"] = in_window.groupby(key)["bill_amount"].sum().reindex(units.index, fill_value=0.0)
    # First *full* month: the first billed month that starts on or after the unit's first line
    # start (a line starting on the 20th bills a partial first month, a poor covariate).
    line_start = tables["lines"].set_index("line_id")["start_date"]
    unit_start = line_start.reindex(bills["line_id"]).groupby(bills[key].to_numpy()).min()
    full = bills["month"].to_numpy() >= unit_start.reindex(bills[key]).to_numpy()
    candidates = bills[full] if full.any() else bills
    first_month = candidates.groupby(key)["month"].min()
    # Units whose every billed month is partial fall back to their first billed month.
    first_month = first_month.combine_first(bills.groupby(key)["month"].min())
    is_first = bills["month"].to_numpy() == first_month.reindex(bills[key]).to_numpy()
    pre = bills[is_first].groupby(key)["bill_amount"].sum()
    units["pre_revenue"] = pre.reindex(units.index, fill_value=0.0)

    # --- segments ------------------------------------------------------------------------------
    if unit == "household":
        acc = accounts[accounts["household_id"].isin(units.index)]
        units["household_id"] = units.index.to_numpy()
    else:
        acc = accounts[accounts["account_id"].isin(units.index)]
    acc = acc.assign(_unit=acc[key])
    enrolled = units["enrolled_at"].reindex(acc["_unit"]).to_numpy()

    ln = tables["lines"].merge(acc[["account_id", "_unit"]], on="account_id", how="inner")
    at = units["enrolled_at"].reindex(ln["_unit"]).to_numpy()
    active = (ln["start_date"].to_numpy() <= at) & (ln["end_date"].isna().to_numpy() | (ln["end_date"].to_numpy() > at))
    ln = ln[active]
    has = pd.crosstab(ln["_unit"], ln["line_type"]).reindex(units.index, fill_value=0) > 0
    mob = has["mobile"] if "mobile" in has else pd.Series(False, index=units.index)
    bb = has["broadband"] if "broadband" in has else pd.Series(False, index=units.index)
    units["product_mix"] = np.select([mob & bb, mob, bb], ["bundle", "mobile_only", "broadband_only"], "other")

    tenure = pd.Series(enrolled - acc["start_date"].to_numpy(), index=acc.index)
    to_end = pd.Series(acc["contract_end_date"].to_numpy() - enrolled, index=acc.index)
    per = pd.DataFrame({"_unit": acc["_unit"].to_numpy(), "tenure": tenure.to_numpy(), "to_end": to_end.to_numpy()})
    g = per.groupby("_unit")
    max_tenure = g["tenure"].max().reindex(units.index)
    renewal = per.assign(r=(per["to_end"] >= pd.Timedelta(0)) & (per["to_end"] <= CHURN_WINDOW)).groupby("_unit")["r"].any()
    renewal = renewal.reindex(units.index, fill_value=False)
    units["lifecycle_stage"] = np.select(
        [max_tenure < pd.Timedelta(days=90), renewal, max_tenure < pd.Timedelta(days=365)],
        ["new", "renewal_window", "early_use"],
        "growth",
    )

    labels = [f"D{i:02d}" for i in range(1, 11)]
    if len(units) >= 10:
        dec = pd.qcut(units["pre_revenue"].rank(method="first"), 10, labels=labels)
    else:
        dec = pd.Categorical([None] * len(units), categories=labels)
    units["value_decile"] = pd.Categorical(dec, categories=labels, ordered=True)

    types = acc.groupby("_unit")["account_type"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "mixed")
    units["account_type"] = types.reindex(units.index)
    hh = tables["households"].set_index("household_id")["region"]
    units["region"] = hh.reindex(units["household_id"]).to_numpy()

    units.index.name = "unit_id"
    units = units.reset_index()
    if unit == "account":
        units["account_id"] = units["unit_id"]
    cols = ["unit_id", "arm", "household_id"] + (["account_id"] if unit == "account" else [])
    cols += ["enrolled_at", "accepted", "churned", "revenue", "pre_revenue", *SEGMENT_COLUMNS]
    return units[cols].sort_values("unit_id").reset_index(drop=True)
