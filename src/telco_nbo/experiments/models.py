"""The typed, serializable result of an A/B readout.

These pydantic models are the *value* a readout produces: they hold numbers and verdicts, never
frames, so a readout survives ``model_dump_json`` / ``model_validate_json`` unchanged and can be
rendered (:mod:`telco_nbo.experiments.render`), logged to MLflow, or turned into a timing rule
(:mod:`telco_nbo.experiments.timing_rule`) by code that imports nothing heavier than pydantic.

Undefined numbers (a relative lift against a control mean of 0, an interval of a segment that is too
small) are ``None`` with a ``note`` saying why — never NaN, which JSON cannot carry and readers
would mistake for a number.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MetricKind = Literal["binary", "continuous"]
SegmentStatus = Literal["ok", "too_small", "no_variance"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(_Model):
    """What to measure and which direction is good.

    Attributes:
        name: Column of the unit frame holding the outcome.
        kind: ``binary`` (0/1, two-proportion z test, Beta-Binomial posterior) or ``continuous``
            (Welch t test, normal posterior).
        higher_is_better: False for churn: a *drop* is a win, so "chance to beat control" and
            "expected loss" are computed in that direction.
        covariate: Pre-period column for CUPED (e.g. ``pre_revenue``); ``None`` for no adjustment.
        label: Human name for reports.
    """

    name: str
    kind: MetricKind
    higher_is_better: bool = True
    covariate: str | None = None
    label: str | None = None

    @property
    def title(self) -> str:
        """The label, or the column name."""
        return self.label or self.name


class Comparison(_Model):
    """One arm against a reference arm (usually control) on one metric.

    Attributes:
        arm: The treatment arm.
        reference: The arm it is compared with (the control arm, or another arm in segments).
        n_treatment: Units in ``arm``.
        n_reference: Units in ``reference``.
        mean_treatment: Metric mean in ``arm`` (CUPED-adjusted when ``cuped``).
        mean_reference: Metric mean in ``reference`` (CUPED-adjusted when ``cuped``).
        abs_lift: ``mean_treatment - mean_reference``.
        abs_ci_low: Lower end of the ``1 - alpha`` interval of ``abs_lift``.
        abs_ci_high: Upper end.
        rel_lift: ``mean_treatment / mean_reference - 1``; ``None`` when the reference mean is 0.
        rel_ci_low: Delta-method interval of ``rel_lift``.
        rel_ci_high: Upper end.
        rel_p_value: Two-sided p-value of ``rel_lift`` (delta method, same standard error as its
            interval).
        test: ``two_proportion_z`` (pooled) or ``welch_t``.
        statistic: z or t.
        df: Welch-Satterthwaite degrees of freedom (t test only).
        p_value: Two-sided p-value.
        significant: ``p_value < alpha``.
        prob_beat_reference: Posterior probability the arm is better (direction-aware).
        expected_loss: Posterior expected loss of shipping the arm, in metric units (>= 0).
        seq_ci_low: Always-valid (normal-mixture confidence sequence) interval of ``abs_lift``.
        seq_ci_high: Upper end.
        rel_seq_ci_low: Always-valid interval of ``rel_lift`` (the same mixture boundary on the
            delta-method variance of the relative lift).
        rel_seq_ci_high: Upper end.
        cuped: Whether the means are CUPED-adjusted.
        note: Why a number is missing, if one is.
    """

    arm: str
    reference: str
    n_treatment: int
    n_reference: int
    mean_treatment: float
    mean_reference: float
    abs_lift: float
    abs_ci_low: float
    abs_ci_high: float
    rel_lift: float | None = None
    rel_ci_low: float | None = None
    rel_ci_high: float | None = None
    rel_p_value: float | None = None
    test: Literal["two_proportion_z", "welch_t"]
    statistic: float
    df: float | None = None
    p_value: float
    significant: bool
    prob_beat_reference: float
    expected_loss: float
    seq_ci_low: float | None = None
    seq_ci_high: float | None = None
    rel_seq_ci_low: float | None = None
    rel_seq_ci_high: float | None = None
    cuped: bool = False
    note: str | None = None


class CupedSummary(_Model):
    """CUPED adjustment of one metric.

    Attributes:
        covariate: The pre-period column.
        theta: Pooled within-arm regression slope of the metric on the covariate.
        variance_reduction: ``1 - Var(adjusted) / Var(raw)`` (pooled within arms), in [0, 1].
        comparisons: Arm-vs-control comparisons on the adjusted metric.
    """

    covariate: str
    theta: float
    variance_reduction: float
    comparisons: list[Comparison]


class ArmStats(_Model):
    """Raw per-arm description of one metric."""

    arm: str
    units: int
    mean: float
    std: float


class MetricResult(_Model):
    """Everything about one metric.

    Attributes:
        spec: The metric.
        arms: Per-arm units, mean and standard deviation (raw).
        comparisons: Each non-control arm vs control, raw (unadjusted) metric.
        cuped: The CUPED-adjusted comparisons, when the metric has a covariate.
    """

    spec: MetricSpec
    arms: list[ArmStats]
    comparisons: list[Comparison]
    cuped: CupedSummary | None = None

    def primary_comparisons(self) -> list[Comparison]:
        """The comparisons to decide on: CUPED-adjusted when available (same estimand, less noise)."""
        return self.cuped.comparisons if self.cuped is not None else self.comparisons


class SrmCheck(_Model):
    """Sample-ratio-mismatch check: chi-square of observed units per arm vs the designed split.

    Attributes:
        observed: Arm -> units.
        expected_share: Arm -> designed share (sums to 1).
        chi2: The statistic.
        p_value: Its p-value.
        threshold: Flag when ``p_value < threshold`` (0.001 by convention).
        flagged: The verdict: a flagged readout is untrustworthy whatever its p-values say.
    """

    observed: dict[str, int]
    expected_share: dict[str, float]
    chi2: float
    p_value: float
    threshold: float
    flagged: bool


class SegmentComparison(_Model):
    """One (segment level, arm pair, metric) cell of the segment breakdown.

    Attributes:
        column: The segment column.
        segment: Its level (as text; missing values are the level ``"(missing)"``).
        metric: Metric name.
        arm: Treatment arm.
        reference: Reference arm (control, or the other treatment arm).
        n_treatment: Units of ``arm`` in the segment.
        n_reference: Units of ``reference`` in the segment.
        status: ``ok``; ``too_small`` (fewer than ``min_units`` in an arm: no numbers, by design);
            ``no_variance`` (both arms constant and equal: no test is possible).
        comparison: The statistics when ``status == "ok"``.
        p_holm: Holm-adjusted p-value within the family (this column x this metric).
        p_bh: Benjamini-Hochberg adjusted p-value within the same family.
    """

    column: str
    segment: str
    metric: str
    arm: str
    reference: str
    n_treatment: int
    n_reference: int
    status: SegmentStatus
    comparison: Comparison | None = None
    p_holm: float | None = None
    p_bh: float | None = None


class SequentialInfo(_Model):
    """How the always-valid intervals were built.

    Attributes:
        method: Description of the boundary.
        alpha: Error rate, uniformly over all looks.
        planned_units: Total units the mixture was tuned for (narrowest interval there).
    """

    method: str = "normal-mixture confidence sequence (Howard et al. 2021), plug-in variance"
    alpha: float
    planned_units: int


class Readout(_Model):
    """A complete A/B readout.

    Attributes:
        experiment_id: Id of the experiment.
        unit: Randomization unit (``household`` or ``account``).
        arms: All arms, control first.
        control_arm: The control arm.
        alpha: Two-sided significance level of every interval and test.
        primary_metric: The metric decisions are made on.
        metrics: One result per metric.
        srm: The sample-ratio-mismatch check.
        trustworthy: False when SRM is flagged (or another validity check failed).
        warnings: Human-readable problems, most serious first.
        segments: The segment breakdown (may be empty).
        segment_columns: Columns the breakdown covers.
        min_segment_units: Per-arm minimum below which a segment is "too small".
        sequential: Set when always-valid intervals were computed.
        seed: Seed of the Monte Carlo posterior draws.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str
    unit: str
    arms: list[str]
    control_arm: str
    alpha: float
    primary_metric: str
    metrics: list[MetricResult]
    srm: SrmCheck
    trustworthy: bool
    warnings: list[str] = Field(default_factory=list)
    segments: list[SegmentComparison] = Field(default_factory=list)
    segment_columns: list[str] = Field(default_factory=list)
    min_segment_units: int
    sequential: SequentialInfo | None = None
    seed: int

    def metric(self, name: str) -> MetricResult:
        """Return the result of metric ``name``.

        Raises:
            KeyError: When the readout has no such metric.
        """
        for m in self.metrics:
            if m.spec.name == name:
                return m
        raise KeyError(f"readout has no metric '{name}' (has: {[m.spec.name for m in self.metrics]})")

    def comparison(self, metric: str, arm: str) -> Comparison:
        """Return the decision comparison (CUPED when available) of ``arm`` vs control on ``metric``."""
        for c in self.metric(metric).primary_comparisons():
            if c.arm == arm:
                return c
        raise KeyError(f"metric '{metric}' has no comparison for arm '{arm}'")
