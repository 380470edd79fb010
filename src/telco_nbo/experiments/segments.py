"""Segment breakdown of a readout, with multiple-testing adjustment.

For one segment column, every level gets every arm against control *and* every treatment arm against
every other treatment arm (the timing rule needs "day 30 beats 60-days-before-end", not only "beats
control"). One **family** for adjustment is (column, metric): all its ok cells' p-values go through
Holm (family-wise error) and Benjamini-Hochberg (false discovery rate) together.

A cell whose arms have fewer than ``min_units`` units is ``too_small``: it carries its counts and no
statistics at all, so nobody reads a number off 7 households. Levels come from the data plus any
unused categories of a categorical column (those show up as ``too_small`` with 0 units), and a
missing segment value is its own level ``"(missing)"`` rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.experiments import stats
from telco_nbo.experiments.comparison import compare
from telco_nbo.experiments.models import MetricResult, MetricSpec, SegmentComparison

MISSING_LEVEL = "(missing)"


def segment_levels(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Return each unit's level as text, and every level in display order.

    Args:
        values: The segment column.

    Returns:
        ``(labels per unit, ordered levels)``; categorical order is kept, others are sorted.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [str(c) for c in values.cat.categories]
    else:
        levels = sorted({str(v) for v in values.dropna()}, key=_natural_key)
    labels = values.astype(object).where(values.notna(), MISSING_LEVEL).map(str).to_numpy()
    if values.isna().any():
        levels.append(MISSING_LEVEL)
    return labels, levels


def _natural_key(s: str) -> tuple:
    # "decile_10" after "decile_9"; numbers as numbers.
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def arm_pairs(arms: Sequence[str], control_arm: str) -> list[tuple[str, str]]:
    """(arm, reference) pairs: each treatment vs control, then each treatment vs each later treatment."""
    treatments = [a for a in arms if a != control_arm]
    return [(a, control_arm) for a in treatments] + list(combinations(treatments, 2))


def segment_breakdown(
    frame: pd.DataFrame,
    *,
    column: str,
    metrics: Sequence[MetricSpec],
    results: Sequence[MetricResult],
    arms: Sequence[str],
    control_arm: str,
    alpha: float,
    min_units: int,
    arm_col: str = "arm",
    n_draws: int = 20_000,
    seed: int = 0,
) -> list[SegmentComparison]:
    """Break every metric down by the levels of ``column``.

    Metrics with a CUPED covariate are compared on the adjusted values, with the ``theta`` of the
    whole experiment (``results``), so segments gain the same variance reduction.

    Args:
        frame: The validated unit frame.
        column: Segment column.
        metrics: The metrics.
        results: The whole-experiment results (for CUPED theta), same order as ``metrics``.
        arms: All arms, control first.
        control_arm: The control arm.
        alpha: Two-sided level.
        min_units: Minimum units per arm of a cell.
        arm_col: Arm column.
        n_draws: Monte Carlo draws for binary posteriors.
        seed: Seed of those draws.

    Returns:
        One row per (level, arm pair, metric), families adjusted.

    Raises:
        DataValidationError: ``column`` is not in the frame.
    """
    if column not in frame.columns:
        raise DataValidationError("experiment unit frame", [f"segment column '{column}' not found"])
    labels, levels = segment_levels(frame[column])
    arm_of = frame[arm_col].astype(str).to_numpy()
    pairs = arm_pairs(arms, control_arm)
    rows: list[SegmentComparison] = []
    for mi, (spec, res) in enumerate(zip(metrics, results, strict=True)):
        y = frame[spec.name].astype(float).to_numpy()
        cuped = res.cuped is not None and res.cuped.theta != 0.0
        if cuped:
            y = stats.cuped_adjust(y, frame[spec.covariate].astype(float).to_numpy(), res.cuped.theta)
        family: list[SegmentComparison] = []
        for li, level in enumerate(levels):
            in_level = labels == level
            for pi, (arm, ref) in enumerate(pairs):
                y_t = y[in_level & (arm_of == arm)]
                y_c = y[in_level & (arm_of == ref)]
                base = dict(column=column, segment=level, metric=spec.name, arm=arm, reference=ref,
                            n_treatment=len(y_t), n_reference=len(y_c))
                if min(len(y_t), len(y_c)) < min_units:
                    family.append(SegmentComparison(**base, status="too_small"))
                    continue
                c = compare(spec, y_t, y_c, arm=arm, reference=ref, alpha=alpha, seed=[seed, mi, li, pi],
                            n_draws=n_draws, cuped=cuped)
                if c is None:
                    family.append(SegmentComparison(**base, status="no_variance"))
                else:
                    family.append(SegmentComparison(**base, status="ok", comparison=c))
        ok = [i for i, r in enumerate(family) if r.status == "ok"]
        raw = [family[i].comparison.p_value for i in ok]  # type: ignore[union-attr]
        holm = stats.adjust_pvalues(raw, "holm")
        bh = stats.adjust_pvalues(raw, "fdr_bh")
        for k, i in enumerate(ok):
            family[i] = family[i].model_copy(update={"p_holm": holm[k], "p_bh": bh[k]})
        rows.extend(family)
    return rows
