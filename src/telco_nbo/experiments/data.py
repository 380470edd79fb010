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
  - account unit: the account ended within 90 days after its (would-be) contact time
    (``end_date < contacted_at + 90 days``).
* ``revenue``: sum of ``bill_amount`` of the unit's lines over 12 calendar months — household unit:
  starting the month after the household's start month (its first account start); account unit:
  starting the month after the enrolment month, cut at the end of the data. A churned unit simply
  bills less: that is part of the effect.
* ``pre_revenue`` (the CUPED covariate, untouched by treatment): household unit, ``bill_amount`` of
  the household's first full month (the first month starting on or after its start); account
  unit, ``bill_amount`` of the last full month before the enrolment month.
* segments, measured at the *segment time* = the later of the experiment start and the unit's
  start, never at the contact time (which depends on the arm in a timing experiment, and a
  segment must not): ``product_mix`` (``mobile_only`` = only mobile lines, ``bundle`` = mobile and
  broadband, ``home_only`` = everything else; the generator's timing segments) from the lines held
  then; ``lifecycle_stage`` (``new`` < 90 days of tenure, ``renewal_window`` a contract ending
  within 90 days, ``early_use`` < 1 year, ``growth``); ``value_decile`` (``D01``..``D10`` of
  ``pre_revenue``); ``account_type`` (``mixed`` when a household holds both kinds); ``region``.

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

    # The unit's start (first account start) and its segment time: the later of the experiment
    # start and the unit start. Segments must be pre-treatment and must not depend on the arm, so
    # they are never measured at the (arm-dependent) contact time.
    acc = accounts[accounts[key].isin(units.index)]
    acc = acc.assign(_unit=acc[key].to_numpy())
    units["unit_start"] = acc.groupby("_unit")["start_date"].min().reindex(units.index)
    seg_at = units["unit_start"].where(units["unit_start"] > design["start_date"], design["start_date"])
    units["segment_at"] = seg_at

    # --- churn ----------------------------------------------------------------------------------
    if unit == "household":
        units["churned"] = _household_churn(units, accounts, design)
    else:
        end = accounts.set_index("account_id")["end_date"].reindex(units.index)
        units["churned"] = (end.notna() & (end < units["enrolled_at"] + CHURN_WINDOW)).to_numpy()

    # --- revenue and its pre-period covariate --------------------------------------------------
    bills = _monthly_bills(tables, key)
    bills = bills[bills[key].isin(units.index)]
    unit_of_bill = bills[key].to_numpy()
    month = bills["month"].to_numpy()
    # Revenue window: household -> 12 months from the month after the unit's start month;
    # account -> 12 months from the month after the enrolment month (cut at the end of the data).
    anchor = units["unit_start"] if unit == "household" else units["enrolled_at"]
    first = (anchor.dt.to_period("M") + 1).dt.to_timestamp()
    last = (anchor.dt.to_period("M") + REVENUE_MONTHS).dt.to_timestamp()
    in_window = (month >= first.reindex(unit_of_bill).to_numpy()) & (month <= last.reindex(unit_of_bill).to_numpy())
    units["revenue"] = bills[in_window].groupby(key)["bill_amount"].sum().reindex(units.index, fill_value=0.0)
    if unit == "household":
        # First *full* month: the first month starting on or after the unit's start (treatment
        # cannot touch it: nothing happens before day 30).
        full_from = units["unit_start"].reindex(unit_of_bill).to_numpy()
        pre_mask = month >= full_from
        first_month = bills[pre_mask].groupby(key)["month"].min()
        pre_mask &= month == first_month.reindex(unit_of_bill).to_numpy()
    else:
        # Last full month before the enrolment month: the classic CUPED pre-period.
        pre_month = (units["enrolled_at"].dt.to_period("M") - 1).dt.to_timestamp()
        pre_mask = month == pre_month.reindex(unit_of_bill).to_numpy()
    units["pre_revenue"] = bills[pre_mask].groupby(key)["bill_amount"].sum().reindex(units.index, fill_value=0.0)

    # --- segments (as of segment_at) -------------------------------------------------------------
    if unit == "household":
        units["household_id"] = units.index.to_numpy()
    at_acc = units["segment_at"].reindex(acc["_unit"]).to_numpy()

    ln = tables["lines"].merge(acc[["account_id", "_unit"]], on="account_id", how="inner")
    at = units["segment_at"].reindex(ln["_unit"]).to_numpy()
    # Lines held at the segment time (a line ended later still counts: churn is an outcome).
    held = (ln["start_date"].to_numpy() <= at) & (ln["end_date"].isna().to_numpy() | (ln["end_date"].to_numpy() > at))
    ln = ln[held]
    has = pd.crosstab(ln["_unit"], ln["line_type"]).reindex(units.index, fill_value=0) > 0
    none = pd.Series(False, index=units.index)
    mob = has["mobile"] if "mobile" in has else none
    bb = has["broadband"] if "broadband" in has else none
    only_mob = mob & ~has.drop(columns=["mobile"], errors="ignore").any(axis=1)
    units["product_mix"] = np.select([only_mob, mob & bb], ["mobile_only", "bundle"], "home_only")

    live = acc["end_date"].isna().to_numpy() | (acc["end_date"].to_numpy() > at_acc)
    per = pd.DataFrame({
        "_unit": acc["_unit"].to_numpy(),
        "tenure": at_acc - acc["start_date"].to_numpy(),
        "to_end": acc["contract_end_date"].to_numpy() - at_acc,
        "live": live,
    })
    per = per[per["live"]]
    max_tenure = per.groupby("_unit")["tenure"].max().reindex(units.index)
    renewal = ((per["to_end"] >= pd.Timedelta(0)) & (per["to_end"] <= CHURN_WINDOW)).groupby(per["_unit"]).any()
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
