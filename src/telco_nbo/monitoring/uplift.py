"""Uplift by segment and period from a contact log with a control (holdout) group.

For every segment x period cell the treated and control outcome rates are compared; the interval
of the difference comes from statsmodels' ``confint_proportions_2indep`` (Newcombe's hybrid score
interval by default: good coverage at the small rates and cell sizes of a holdout).

Sign convention (explicit, because getting it backwards turns "sleeping dogs" into winners): with
the default ``outcome_is_bad: true`` the outcome is churn and the **retention uplift** is
``control churn rate - treated churn rate``; positive means the contact keeps customers. With
``outcome_is_bad: false`` (the outcome is a good event) it is ``treated rate - control rate``.

A cell is

- ``harmful`` when the whole interval is below 0 (contacting these customers pushes them away),
- ``faded`` when the uplift is below ``min_uplift`` (the point estimate, or with
  ``fade_rule: upper`` the whole interval),
- ``insufficient_data`` when either arm has fewer than ``min_group_size`` units (reported only),
- ``ok`` otherwise.
"""

from __future__ import annotations

import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep

from telco_nbo.errors import DataValidationError
from telco_nbo.monitoring.config import UpliftConfig
from telco_nbo.monitoring.result import CheckResult, UpliftCell


def validate_contact_log(log: pd.DataFrame, config: UpliftConfig) -> None:
    """Check the columns and values uplift needs.

    Raises:
        DataValidationError: Missing columns, nulls, or treated/outcome not 0/1.
    """
    need = [*config.segment_columns, config.period_column, config.treated_column, config.outcome_column]
    missing = [c for c in need if c not in log.columns]
    if missing:
        raise DataValidationError("contact log", [f"missing columns: {missing}"])
    if len(log) == 0:
        raise DataValidationError("contact log", ["the contact log is empty (0 rows)"])
    problems = []
    for c in need:
        if log[c].isna().any():
            problems.append(f"column '{c}' has {int(log[c].isna().sum())} nulls")
    for c in (config.treated_column, config.outcome_column):
        bad = set(pd.unique(log[c].dropna())) - {0, 1, True, False}
        if bad:
            problems.append(f"column '{c}' must be 0/1, got {sorted(map(str, bad))[:5]}")
    if problems:
        raise DataValidationError("contact log", problems)


def segment_label(log: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string label per row: the values of ``columns`` joined with ``/``."""
    parts = [log[c].astype(str) for c in columns]
    label = parts[0]
    for p in parts[1:]:
        label = label + "/" + p
    return label


def uplift_by_segment(log: pd.DataFrame, config: UpliftConfig) -> list[UpliftCell]:
    """Treated-vs-control outcome difference with an interval per segment and period.

    Args:
        log: One row per assigned unit: segment columns, period, treated (1 = contacted,
            0 = holdout), outcome (1 = the event, churn by default).
        config: Columns, sign convention, interval method, floors.

    Returns:
        One :class:`UpliftCell` per segment x period, sorted by segment then period.
    """
    validate_contact_log(log, config)
    frame = pd.DataFrame(
        {
            "segment": segment_label(log, config.segment_columns).to_numpy(),
            "period": log[config.period_column].to_numpy(),
            "t": log[config.treated_column].astype(int).to_numpy(),
            "y": log[config.outcome_column].astype(int).to_numpy(),
        }
    )
    agg = frame.groupby(["segment", "period", "t"], sort=True)["y"].agg(["sum", "count"]).unstack("t", fill_value=0)
    cells = []
    for (segment, period), row in agg.iterrows():
        n_t, n_c = int(row.get(("count", 1), 0)), int(row.get(("count", 0), 0))
        e_t, e_c = int(row.get(("sum", 1), 0)), int(row.get(("sum", 0), 0))
        r_t = e_t / n_t if n_t else None
        r_c = e_c / n_c if n_c else None
        lo = hi = None
        if n_t < config.min_group_size or n_c < config.min_group_size or r_t is None or r_c is None:
            uplift = None if r_t is None or r_c is None else ((r_c - r_t) if config.outcome_is_bad else (r_t - r_c))
            status = "insufficient_data"
        else:
            # Order the two groups so that "group 1 - group 2" IS the uplift under the convention.
            if config.outcome_is_bad:
                args = (e_c, n_c, e_t, n_t)
                uplift = r_c - r_t
            else:
                args = (e_t, n_t, e_c, n_c)
                uplift = r_t - r_c
            lo, hi = confint_proportions_2indep(*args, method=config.ci_method, compare="diff", alpha=config.alpha)
            lo, hi = float(lo), float(hi)
            floor_value = hi if config.fade_rule == "upper" else uplift
            if hi < 0:
                status = "harmful"
            elif floor_value < config.min_uplift:
                status = "faded"
            else:
                status = "ok"
        cells.append(
            UpliftCell(
                segment=str(segment),
                period=str(period.date() if isinstance(period, pd.Timestamp) else period),
                n_treated=n_t,
                n_control=n_c,
                rate_treated=r_t,
                rate_control=r_c,
                uplift=uplift,
                ci_low=lo,
                ci_high=hi,
                status=status,  # type: ignore[arg-type]
            )
        )
    return cells


def uplift_checks(cells: list[UpliftCell], config: UpliftConfig) -> list[CheckResult]:
    """One check per segment for the latest period (or per cell with ``test_periods: all``).

    Cells with too little data are not tested (they appear in the report as such).
    """
    if not cells:
        return []
    latest = max(c.period for c in cells)
    checks = []
    for c in cells:
        if config.test_periods == "latest" and c.period != latest:
            continue
        if c.status == "insufficient_data":
            continue
        what = {"ok": "holds", "faded": "faded below the floor", "harmful": "is harmful (sleeping dogs)"}[c.status]
        checks.append(
            CheckResult(
                category="uplift",
                name=f"uplift:{c.segment}@{c.period}",
                subject=f"{c.segment}@{c.period}",
                metric="retention_uplift" if config.outcome_is_bad else "uplift",
                value=c.uplift,
                threshold=config.min_uplift,
                op=">=",
                passed=c.status == "ok",
                detail=(
                    f"segment {c.segment}, period {c.period}: uplift {c.uplift:+.3f} "
                    f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}] (treated {c.rate_treated:.3f} n={c.n_treated}, "
                    f"control {c.rate_control:.3f} n={c.n_control}) {what}"
                ),
            )
        )
    return checks
