"""Turn a readout into the next-best-offer timing rule: which timing arm, per segment.

An arm becomes the rule of a segment only when it beats *every* other arm of that segment (control
included) on the decision metric, each difference significant after the family's multiple-testing
correction (Holm by default; Benjamini-Hochberg on request) and in the good direction. When control
beats every timing arm, the rule is the control arm: "do not make this offer" is a timing too.
Everywhere else — too-small segments, no significant difference, two arms that both beat control
but not each other, an untrustworthy readout — the segment gets **no rule**, and
:meth:`TimingRule.arm_for` returns the default (``None`` unless set): the ranking's applicability
layer keeps its own default timing there.

This module imports only pydantic and the readout models, so the ranking can import it cheaply.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from telco_nbo.errors import ConfigError
from telco_nbo.experiments.models import Readout, SegmentComparison

NO_RULE = "no rule / default"


class SegmentDecision(BaseModel):
    """The decision for one segment level.

    Attributes:
        segment: The level.
        arm: The winning arm, or ``None`` for no rule.
        reason: Plain-words justification (or why there is no rule).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    segment: str
    arm: str | None
    reason: str


class TimingRule(BaseModel):
    """Which arm (timing) to use per segment, derived from a readout.

    Attributes:
        experiment_id: The readout's experiment.
        segment_column: The column segments are levels of.
        metric: The decision metric.
        higher_is_better: Direction of that metric.
        control_arm: The readout's control arm (as a rule: "do not offer").
        alpha: Significance level after correction.
        correction: ``holm`` or ``bh``.
        trustworthy: False when the readout was untrustworthy (then there are no rules).
        decisions: One per segment level of the readout.
        default_arm: What :meth:`arm_for` returns where there is no rule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str
    segment_column: str
    metric: str
    higher_is_better: bool
    control_arm: str
    alpha: float
    correction: Literal["holm", "bh"]
    trustworthy: bool
    decisions: list[SegmentDecision]
    default_arm: str | None = None

    @property
    def rules(self) -> dict[str, str]:
        """Segment -> arm, only for segments that have a rule."""
        return {d.segment: d.arm for d in self.decisions if d.arm is not None}

    def arm_for(self, segment: object) -> str | None:
        """Return the arm for ``segment`` (compared as text), or :attr:`default_arm` without a rule."""
        return self.rules.get(str(segment), self.default_arm)

    def reason_for(self, segment: object) -> str:
        """Return the plain-words reason of the decision for ``segment``."""
        for d in self.decisions:
            if d.segment == str(segment):
                return d.reason
        return f"segment '{segment}' was not in the experiment: {NO_RULE}"


def _p(row: SegmentComparison, correction: str) -> float | None:
    return row.p_holm if correction == "holm" else row.p_bh


def timing_rule_from_readout(
    readout: Readout,
    segment_column: str,
    alpha: float = 0.05,
    correction: Literal["holm", "bh"] = "holm",
    metric: str | None = None,
    default_arm: str | None = None,
) -> TimingRule:
    """Derive the timing rule for one segment column of a readout.

    Args:
        readout: A readout whose segment breakdown includes ``segment_column``.
        segment_column: The column the rule is keyed by (e.g. ``product_mix``).
        alpha: Level the corrected p-values must beat.
        correction: ``holm`` (family-wise) or ``bh`` (false discovery rate).
        metric: Decision metric; default the readout's primary metric.
        default_arm: What :meth:`TimingRule.arm_for` returns where there is no rule.

    Returns:
        The rule.

    Raises:
        ConfigError: Unknown segment column, metric or correction, or alpha outside (0, 1).
    """
    if correction not in ("holm", "bh"):
        raise ConfigError(f"correction must be 'holm' or 'bh', got '{correction}'")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if segment_column not in readout.segment_columns:
        raise ConfigError(
            f"the readout has no segment breakdown by '{segment_column}' (has: {readout.segment_columns})"
        )
    metric = metric or readout.primary_metric
    try:
        spec = readout.metric(metric).spec
    except KeyError as exc:
        raise ConfigError(str(exc)) from None
    sign = 1.0 if spec.higher_is_better else -1.0
    rows = [r for r in readout.segments if r.column == segment_column and r.metric == metric]
    levels = list(dict.fromkeys(r.segment for r in rows))
    arms = readout.arms

    decisions: list[SegmentDecision] = []
    for level in levels:
        cells = {(r.arm, r.reference): r for r in rows if r.segment == level}
        if not readout.trustworthy:
            decisions.append(SegmentDecision(segment=level, arm=None, reason=f"readout untrustworthy (sample ratio mismatch): {NO_RULE}"))
            continue
        if any(r.status == "too_small" for r in cells.values()):
            decisions.append(SegmentDecision(segment=level, arm=None, reason=f"segment too small: {NO_RULE}"))
            continue
        winner, why = None, []
        for a in arms:
            beats_all = True
            evidence = []
            for b in arms:
                if b == a:
                    continue
                row, flip = (cells.get((a, b)), 1.0) if (a, b) in cells else (cells.get((b, a)), -1.0)
                p = _p(row, correction) if row is not None and row.status == "ok" else None
                if row is None or row.comparison is None or p is None:
                    beats_all = False
                    break
                gain = sign * flip * row.comparison.abs_lift
                if not (gain > 0 and p < alpha):
                    beats_all = False
                    break
                evidence.append(f"vs {b}: lift {flip * row.comparison.abs_lift:+.4g}, {correction} p = {p:.3g}")
            if beats_all:
                winner, why = a, evidence
                break
        if winner is not None:
            decisions.append(SegmentDecision(segment=level, arm=winner, reason=f"{winner} beats every other arm on {metric} ({'; '.join(why)})"))
        else:
            decisions.append(
                SegmentDecision(segment=level, arm=None, reason=f"no arm beats all others significantly on {metric} after {correction} correction: {NO_RULE}")
            )
    return TimingRule(
        experiment_id=readout.experiment_id,
        segment_column=segment_column,
        metric=metric,
        higher_is_better=spec.higher_is_better,
        control_arm=readout.control_arm,
        alpha=alpha,
        correction=correction,
        trustworthy=readout.trustworthy,
        decisions=decisions,
        default_arm=default_arm,
    )
