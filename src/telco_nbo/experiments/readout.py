"""Read out an A/B(/n) test: one row per unit in, a :class:`~telco_nbo.experiments.models.Readout` out.

The unit frame has one row per randomization unit (household or account) with its arm, its outcomes
and any segment columns. :func:`unit_frame` builds it from an assignment table and an outcome table;
:func:`telco_nbo.experiments.data.experiment_frame` builds it from a data folder. Everything here is a
pure function of that frame: nothing is read, written or mutated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError, TelcoNboError
from telco_nbo.experiments import sequential as seqmod
from telco_nbo.experiments import stats
from telco_nbo.experiments.comparison import compare
from telco_nbo.experiments.data import SEGMENT_COLUMNS, experiment_design, experiment_frame
from telco_nbo.experiments.models import (
    ArmStats,
    CupedSummary,
    MetricResult,
    MetricSpec,
    Readout,
    SequentialInfo,
    SrmCheck,
)
from telco_nbo.experiments.segments import segment_breakdown

FRAME = "experiment unit frame"


def _examples(values: Sequence[object], k: int = 5) -> str:
    vals = list(values)
    more = f" (+{len(vals) - k} more)" if len(vals) > k else ""
    return ", ".join(map(str, vals[:k])) + more


def unit_frame(
    assignments: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    unit_col: str = "unit_id",
    arm_col: str = "arm",
) -> pd.DataFrame:
    """Join an assignment table and an outcome table into one row per unit.

    Args:
        assignments: One row per (unit, arm) assignment; a unit may repeat only within one arm
            (e.g. one row per contacted account of a household).
        outcomes: One row per unit with outcome, covariate and segment columns.
        unit_col: Unit id column in both tables.
        arm_col: Arm column in ``assignments``.

    Returns:
        The unit frame (``unit_col``, ``arm_col``, then the outcome columns).

    Raises:
        DataValidationError: A missing column, a unit in two arms, a duplicated outcome row, an
            outcome for a unit never assigned, or an assigned unit without outcome.
    """
    problems: list[str] = []
    for name, df, cols in (("assignments", assignments, [unit_col, arm_col]), ("outcomes", outcomes, [unit_col])):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataValidationError(name, [f"missing column(s) {missing}"])
    a = assignments[[unit_col, arm_col]].drop_duplicates()
    if a[arm_col].isna().any():
        problems.append(f"{int(a[arm_col].isna().sum())} assignment(s) without an arm, e.g. units {_examples(a.loc[a[arm_col].isna(), unit_col])}")
    n_arms = a.groupby(unit_col)[arm_col].nunique()
    multi = n_arms[n_arms > 1]
    if len(multi):
        detail = a[a[unit_col].isin(multi.index[:5])].groupby(unit_col)[arm_col].apply(lambda s: "/".join(sorted(map(str, s))))
        problems.append(
            f"{len(multi)} unit(s) assigned to more than one arm, e.g. "
            + ", ".join(f"{u} in {arms}" for u, arms in detail.items())
        )
    if problems:
        raise DataValidationError("assignments", problems)
    dup = outcomes[unit_col].duplicated(keep=False)
    if dup.any():
        raise DataValidationError("outcomes", [f"duplicate unit ids: {_examples(outcomes.loc[dup, unit_col].unique())}"])
    orphans = sorted(set(outcomes[unit_col]) - set(a[unit_col]))
    if orphans:
        raise DataValidationError("outcomes", [f"{len(orphans)} outcome row(s) for units never assigned: {_examples(orphans)}"])
    no_outcome = sorted(set(a[unit_col]) - set(outcomes[unit_col]))
    if no_outcome:
        raise DataValidationError("outcomes", [f"{len(no_outcome)} assigned unit(s) have no outcome row: {_examples(no_outcome)}"])
    extra = [c for c in outcomes.columns if c == arm_col]
    out = outcomes.drop(columns=extra)
    return a.merge(out, on=unit_col, how="left", validate="one_to_one").reset_index(drop=True)


def validate_unit_frame(
    frame: pd.DataFrame,
    *,
    arms: Sequence[str],
    control_arm: str,
    metrics: Sequence[MetricSpec],
    segments: Sequence[str] = (),
    unit_col: str = "unit_id",
    arm_col: str = "arm",
) -> None:
    """Check a unit frame against the experiment design; raise naming every problem found.

    Raises:
        ConfigError: No control arm, fewer than two arms, duplicate arm names or metrics.
        DataValidationError: Missing column, duplicate unit / unit in two arms, an arm of the data
            not in the design, a designed arm with fewer than 2 units, NaN outcome or covariate, a
            binary metric that is not 0/1.
    """
    arms = list(arms)
    if len(set(arms)) != len(arms):
        raise ConfigError(f"arms are not unique: {arms}")
    if len(arms) < 2:
        raise ConfigError(f"an experiment needs a control and at least one other arm, got {arms}")
    if control_arm not in arms:
        raise ConfigError(f"no control arm: control '{control_arm}' is not one of the arms {arms}")
    names = [m.name for m in metrics]
    if not names:
        raise ConfigError("no metric to read out")
    if len(set(names)) != len(names):
        raise ConfigError(f"metrics are not unique: {names}")

    needed = [unit_col, arm_col, *names, *[m.covariate for m in metrics if m.covariate], *segments]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise DataValidationError(FRAME, [f"missing column(s) {missing}"])
    if frame.empty:
        raise DataValidationError(FRAME, ["no units: the frame is empty"])

    problems: list[str] = []
    ids = frame[unit_col]
    if ids.isna().any():
        problems.append(f"{int(ids.isna().sum())} row(s) without a unit id")
    dup = ids.duplicated(keep=False)
    if dup.any():
        by_unit = frame.loc[dup].groupby(unit_col)[arm_col].agg(lambda s: sorted(set(map(str, s))))
        two_arms = by_unit[by_unit.map(len) > 1]
        if len(two_arms):
            problems.append(
                f"{len(two_arms)} unit(s) in two arms, e.g. "
                + ", ".join(f"{u} in {'/'.join(a)}" for u, a in list(two_arms.items())[:5])
            )
        same = by_unit[by_unit.map(len) == 1]
        if len(same):
            problems.append(f"{len(same)} duplicated unit id(s): {_examples(same.index)}")
    arm_values = frame[arm_col]
    if arm_values.isna().any():
        problems.append(f"{int(arm_values.isna().sum())} unit(s) without an arm, e.g. {_examples(ids[arm_values.isna()])}")
    unknown = sorted(set(arm_values.dropna().astype(str)) - set(arms))
    if unknown:
        problems.append(f"arm(s) {unknown} in the data are not in the design {arms}")
    counts = arm_values.value_counts()
    for arm in arms:
        n = int(counts.get(arm, 0))
        if n == 0:
            problems.append(f"arm '{arm}' is missing from the data (0 units)")
        elif n < 2:
            problems.append(f"arm '{arm}' has {n} unit: at least 2 are needed to estimate a variance")
    for m in metrics:
        for col in (m.name, m.covariate):
            if col is None:
                continue
            values = frame[col]
            if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
                problems.append(f"column '{col}' must be numeric, got {values.dtype}")
                continue
            bad = values.isna() | ~np.isfinite(values.astype(float))
            if bad.any():
                problems.append(f"column '{col}' has {int(bad.sum())} NaN/infinite value(s), e.g. units {_examples(ids[bad])}")
        if m.kind == "binary" and pd.api.types.is_numeric_dtype(frame[m.name]):
            v = frame[m.name].dropna().astype(float)
            off = ~v.isin([0.0, 1.0])
            if off.any():
                problems.append(f"binary metric '{m.name}' has {int(off.sum())} value(s) other than 0/1, e.g. {_examples(v[off].unique())}")
    if problems:
        raise DataValidationError(FRAME, problems)


def default_metrics(frame: pd.DataFrame) -> list[MetricSpec]:
    """The standard offer-timing metrics that exist as columns of ``frame``.

    ``accepted`` (binary, higher is better), ``churned`` (binary, lower is better), ``revenue``
    (continuous, CUPED on ``pre_revenue`` when present).
    """
    out = []
    if "accepted" in frame:
        out.append(MetricSpec(name="accepted", kind="binary", higher_is_better=True, label="offer acceptance"))
    if "churned" in frame:
        out.append(MetricSpec(name="churned", kind="binary", higher_is_better=False, label="churn"))
    if "revenue" in frame:
        cov = "pre_revenue" if "pre_revenue" in frame else None
        out.append(MetricSpec(name="revenue", kind="continuous", higher_is_better=True, covariate=cov, label="revenue (12 months)"))
    if not out:
        raise ConfigError("no known metric column (accepted, churned, revenue) in the frame: pass metrics=")
    return out


def run_readout(
    frame: pd.DataFrame,
    *,
    experiment_id: str,
    arms: Sequence[str],
    control_arm: str,
    metrics: Sequence[MetricSpec] | None = None,
    unit: str = "household",
    unit_col: str = "unit_id",
    arm_col: str = "arm",
    designed_split: Mapping[str, float] | None = None,
    segments: Sequence[str] = (),
    alpha: float = 0.05,
    min_segment_units: int = 50,
    sequential: bool = False,
    planned_units: int | None = None,
    primary_metric: str | None = None,
    srm_threshold: float = 0.001,
    n_draws: int = 20_000,
    seed: int = 0,
) -> Readout:
    """Read out an experiment from its unit frame.

    Args:
        frame: One row per unit: ``unit_col``, ``arm_col``, metric, covariate and segment columns.
        experiment_id: Experiment id (for the report).
        arms: All designed arms (control included).
        control_arm: The control arm.
        metrics: What to measure; default :func:`default_metrics`.
        unit: Randomization unit, for the report.
        unit_col: Unit id column.
        arm_col: Arm column.
        designed_split: Arm -> designed share; default equal split.
        segments: Columns to break the results down by.
        alpha: Two-sided level of every interval and test.
        min_segment_units: Per-arm units below which a segment cell is "too small" (no numbers).
        sequential: Add always-valid intervals (for teams that look every day).
        planned_units: Total units the sequential boundary is tuned for; default the current total.
            For strict always-validity fix it before the experiment starts.
        primary_metric: Metric decisions are made on; default the first metric.
        srm_threshold: SRM p-value below which the readout is flagged untrustworthy.
        n_draws: Unused (the Beta-Binomial chance to win is computed by quadrature); kept for callers.
        seed: Unused, as ``n_draws``.

    Returns:
        The readout.

    Raises:
        ConfigError: Bad design (no control, unknown primary metric, bad split, bad alpha).
        DataValidationError: Bad data (see :func:`validate_unit_frame`).
        TelcoNboError: A metric with no variance at all (nothing can be tested).
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if min_segment_units < 2:
        raise ConfigError(f"min_segment_units must be >= 2, got {min_segment_units}")
    metrics = list(metrics) if metrics is not None else default_metrics(frame)
    arms = [control_arm, *[a for a in arms if a != control_arm]] if control_arm in arms else list(arms)
    segments = list(dict.fromkeys(segments))
    validate_unit_frame(
        frame, arms=arms, control_arm=control_arm, metrics=metrics, segments=segments, unit_col=unit_col, arm_col=arm_col
    )
    primary = primary_metric or metrics[0].name
    if primary not in {m.name for m in metrics}:
        raise ConfigError(f"primary metric '{primary}' is not one of the metrics {[m.name for m in metrics]}")

    # --- SRM ---------------------------------------------------------------------------------
    split = dict(designed_split) if designed_split is not None else {a: 1.0 for a in arms}
    if set(split) != set(arms) or any((not np.isfinite(v)) or v <= 0 for v in split.values()):
        raise ConfigError(f"designed split must give a positive share to exactly the arms {arms}, got {split}")
    total_share = sum(split.values())
    share = {a: split[a] / total_share for a in arms}
    counts = frame[arm_col].astype(str).value_counts()
    observed = {a: int(counts.get(a, 0)) for a in arms}
    chi2, p_srm = stats.srm_test(observed, share)
    srm = SrmCheck(
        observed=observed, expected_share=share, chi2=chi2, p_value=p_srm, threshold=srm_threshold, flagged=p_srm < srm_threshold
    )
    warnings: list[str] = []
    if srm.flagged:
        warnings.append(
            f"SAMPLE RATIO MISMATCH (chi-square p = {p_srm:.2g} < {srm_threshold}): observed "
            + ", ".join(f"{a}={n}" for a, n in observed.items())
            + " vs designed "
            + ", ".join(f"{a}={share[a]:.1%}" for a in arms)
            + ". Assignment or logging is broken; do not trust any number in this readout."
        )

    n_total = int(len(frame))
    seq_factor = None
    seq_info = None
    if sequential:
        planned = planned_units or n_total
        if planned <= 0:
            raise ConfigError(f"planned_units must be positive, got {planned}")
        # tau^2 = k V* with V* the variance at the planned size; V scales as 1/n, so V* = V n/planned.
        seq_factor = seqmod.mixture_k(alpha) * n_total / planned
        seq_info = SequentialInfo(alpha=alpha, planned_units=int(planned))

    arm_of = frame[arm_col].astype(str).to_numpy()
    results: list[MetricResult] = []
    for i, spec in enumerate(metrics):
        y = frame[spec.name].astype(float).to_numpy()
        arm_stats = [
            ArmStats(arm=a, units=observed[a], mean=float(y[arm_of == a].mean()), std=float(y[arm_of == a].std(ddof=1)))
            for a in arms
        ]
        comps = []
        for j, arm in enumerate(arms[1:], start=1):
            c = compare(
                spec, y[arm_of == arm], y[arm_of == control_arm], arm=arm, reference=control_arm, alpha=alpha,
                seed=[seed, i, j], n_draws=n_draws, seq_tau2_factor=seq_factor,
            )
            if c is None:
                raise TelcoNboError(
                    f"metric '{spec.name}' is constant ({y[0]:g}) in arms '{arm}' and '{control_arm}': nothing to test"
                )
            comps.append(c)
        cuped = None
        if spec.covariate:
            x = frame[spec.covariate].astype(float).to_numpy()
            theta, reduction = stats.cuped_theta(y, x, arm_of)
            if theta == 0.0:
                warnings.append(f"CUPED on '{spec.name}': covariate '{spec.covariate}' is constant within arms; no adjustment")
            y_adj = stats.cuped_adjust(y, x, theta)
            adj = []
            for j, arm in enumerate(arms[1:], start=1):
                c = compare(
                    spec, y_adj[arm_of == arm], y_adj[arm_of == control_arm], arm=arm, reference=control_arm, alpha=alpha,
                    seed=[seed, i, j], n_draws=n_draws, cuped=True, seq_tau2_factor=seq_factor,
                )
                if c is not None:
                    adj.append(c)
            cuped = CupedSummary(covariate=spec.covariate, theta=theta, variance_reduction=reduction, comparisons=adj)
        results.append(MetricResult(spec=spec, arms=arm_stats, comparisons=comps, cuped=cuped))

    seg_rows = []
    if segments:
        for col in segments:
            seg_rows.extend(
                segment_breakdown(
                    frame, column=col, metrics=metrics, results=results, arms=arms, control_arm=control_arm,
                    alpha=alpha, min_units=min_segment_units, arm_col=arm_col, n_draws=n_draws, seed=seed,
                )
            )
        small = sum(r.status == "too_small" for r in seg_rows)
        if small:
            warnings.append(
                f"{small} segment cell(s) have fewer than {min_segment_units} units in an arm and are marked 'too small' (no numbers)"
            )

    return Readout(
        experiment_id=experiment_id,
        unit=unit,
        arms=arms,
        control_arm=control_arm,
        alpha=alpha,
        primary_metric=primary,
        metrics=results,
        srm=srm,
        trustworthy=not srm.flagged,
        warnings=warnings,
        segments=seg_rows,
        segment_columns=segments,
        min_segment_units=min_segment_units,
        sequential=seq_info,
        seed=seed,
    )


def readout_from_tables(
    tables: Mapping[str, pd.DataFrame],
    experiment_id: str,
    *,
    metrics: Sequence[MetricSpec] | None = None,
    segments: Sequence[str] | None = None,
    **kwargs: object,
) -> Readout:
    """Read out an experiment straight from a data folder's tables.

    Args:
        tables: Table name -> frame (at least ``experiments``, ``contacts``, ``accounts``, ``lines``,
            ``usage_monthly``, ``households``).
        experiment_id: Row of the ``experiments`` table.
        metrics: Default: the standard metrics present (see :func:`default_metrics`).
        segments: Default: every segment column :func:`~telco_nbo.experiments.data.experiment_frame`
            builds.
        **kwargs: Passed to :func:`run_readout` (``alpha``, ``sequential``, ``min_segment_units``...).

    Returns:
        The readout.
    """

    design = experiment_design(tables, experiment_id)
    frame = experiment_frame(tables, experiment_id)
    if segments is None:
        segments = [c for c in SEGMENT_COLUMNS if c in frame.columns]
    metrics = list(metrics) if metrics is not None else default_metrics(frame)
    kwargs.setdefault("primary_metric", design["primary_metric"] if design["primary_metric"] in {m.name for m in metrics} else None)
    return run_readout(
        frame,
        experiment_id=experiment_id,
        arms=design["arms"],
        control_arm=design["control_arm"],
        unit=design["unit"],
        metrics=metrics,
        segments=segments,
        **kwargs,  # type: ignore[arg-type]
    )
