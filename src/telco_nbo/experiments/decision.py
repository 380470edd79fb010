"""The decision a readout supports, in five sentences: which arm, how sure, what it is worth, what to
do, and the timing rule.

A readout page (:func:`telco_nbo.experiments.render.to_html`) opens with this, then the details.
Pure: a function of the readout value and, when one was derived, its timing rule.

Rules, in order:

- an untrustworthy readout (sample-ratio mismatch) supports no decision;
- an arm is recommended on the primary metric only when its difference with control is
  significant at the readout's alpha and in the good direction; among several, the one with the
  highest chance to beat control;
- otherwise control stays, and an arm that is significantly worse is named;
- "how sure" gives the p-value, the chance to beat control and, with always-valid intervals,
  whether stopping now is safe for a team that looks every day;
- "worth" prices the recommended (or best) arm on every other metric of the readout, per unit and
  per 1,000 units;
- the timing rule, when there is one, overrides "roll out to everyone": it says which arm per
  segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from telco_nbo.experiments.models import Comparison, MetricResult, MetricSpec, Readout
from telco_nbo.experiments.timing_rule import TimingRule


@dataclass(frozen=True)
class Decision:
    """What to do with a readout, in words.

    Attributes:
        headline: One sentence: the recommendation and its effect on the primary metric.
        arm: The recommended arm (``None``: keep control / no decision).
        how_sure: The evidence behind the headline.
        worth: The value of the arm on the other metrics.
        action: What to do now.
        timing: The timing rule in words (``None`` without a rule).
        trustworthy: False when the readout supports no decision.
    """

    headline: str
    arm: str | None
    how_sure: str
    worth: str
    action: str
    timing: str | None
    trustworthy: bool


def _lift(c: Comparison, spec: MetricSpec) -> str:
    if spec.kind == "binary" and not c.cuped:
        return f"{c.abs_lift * 100:+.2f} pp"
    return f"{c.abs_lift:+,.2f}"


def _ci(c: Comparison, spec: MetricSpec, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "—"
    if spec.kind == "binary" and not c.cuped:
        return f"[{low * 100:+.2f}, {high * 100:+.2f}] pp"
    return f"[{low:+,.2f}, {high:+,.2f}]"


def _p(v: float) -> str:
    return "p < 0.0001" if v < 1e-4 else f"p = {v:.4f}"


def _gain(c: Comparison, spec: MetricSpec) -> float:
    return c.abs_lift if spec.higher_is_better else -c.abs_lift


def timing_text(rule: TimingRule | None) -> str | None:
    """The timing rule in one sentence (``None`` without one)."""
    if rule is None:
        return None
    if not rule.trustworthy:
        return "No timing rule: the readout is untrustworthy."
    rules = rule.rules
    tail = f"elsewhere {rule.default_arm}" if rule.default_arm else "elsewhere no rule (the ranking keeps its default timing)"
    if not rules:
        return (f"No timing rule by {rule.segment_column}: no arm beats every other in any segment on {rule.metric} "
                f"({rule.correction}-corrected, alpha {rule.alpha:g}); {tail}.")
    body = "; ".join(f"{seg} → {arm}" for seg, arm in rules.items())
    return (f"By {rule.segment_column} on {rule.metric} ({rule.correction}-corrected, alpha {rule.alpha:g}): {body}; "
            f"{tail}. Saved as timing_rule.json: `telco-nbo rank --timing-rule timing_rule.json` applies it.")


def _worth(readout: Readout, arm: str, primary: MetricResult) -> str:
    parts = []
    for m in readout.metrics:
        comp = next((c for c in m.primary_comparisons() if c.arm == arm), None)
        if comp is None:
            continue
        per_k = comp.abs_lift * 1000
        unit = readout.unit
        if m.spec.kind == "binary" and not comp.cuped:
            word = m.spec.title
            parts.append(f"{word} {_lift(comp, m.spec)} {_ci(comp, m.spec, comp.abs_ci_low, comp.abs_ci_high)}"
                         f" (≈ {per_k:+,.0f} per 1,000 {unit}s)")
        else:
            parts.append(f"{m.spec.title} {_lift(comp, m.spec)} per {unit} {_ci(comp, m.spec, comp.abs_ci_low, comp.abs_ci_high)}"
                         f" (≈ {per_k:+,.0f} per 1,000 {unit}s)")
    head = f"{arm} against {readout.control_arm}: "
    return head + ("; ".join(parts) if parts else "no other metric in this readout") + "."


def decide(readout: Readout, rule: TimingRule | None = None) -> Decision:
    """The decision the readout supports.

    Args:
        readout: The readout.
        rule: Its timing rule, when one was derived.

    Returns:
        The decision in words.
    """
    timing = timing_text(rule)
    if not readout.trustworthy:
        why = next((w for w in readout.warnings if "SAMPLE RATIO" in w), readout.warnings[0] if readout.warnings else "")
        return Decision(
            headline="No decision: this readout is untrustworthy (sample-ratio mismatch).",
            arm=None, how_sure=why, worth="—",
            action="Fix assignment or logging, then rerun the experiment; do not use any number below.",
            timing=timing, trustworthy=False,
        )
    primary = readout.metric(readout.primary_metric)
    spec = primary.spec
    comps = primary.primary_comparisons()
    control = readout.control_arm
    winners = [c for c in comps if c.significant and _gain(c, spec) > 0]
    losers = [c for c in comps if c.significant and _gain(c, spec) < 0]
    best = max(winners or comps, key=lambda c: (c.prob_beat_reference, _gain(c, spec)))
    rel = f", {best.rel_lift:+.1%} relative" if best.rel_lift is not None else ""
    effect = (f"{spec.title} {_lift(best, spec)}{rel} vs {control} "
              f"(95 % CI {_ci(best, spec, best.abs_ci_low, best.abs_ci_high)})")
    if winners:
        headline = f"Ship {best.arm}: {effect}."
        arm: str | None = best.arm
    else:
        worse = f"; {', '.join(c.arm for c in losers)} is significantly worse" if losers else ""
        headline = f"Keep {control}: no arm improves {spec.title} significantly (best: {best.arm}, {effect}){worse}."
        arm = None
    sure = (f"{_p(best.p_value)} at alpha {readout.alpha:g}; {best.prob_beat_reference:.1%} chance that {best.arm} "
            f"beats {control} on {spec.title} ({'higher' if spec.higher_is_better else 'lower'} is better).")
    if best.seq_ci_low is not None and best.seq_ci_high is not None:
        excludes = best.seq_ci_low > 0 or best.seq_ci_high < 0
        sure += (f" Always-valid interval {_ci(best, spec, best.seq_ci_low, best.seq_ci_high)}: "
                 + ("it excludes 0, so stopping now is safe even for a team that looked every day."
                    if excludes else "it still includes 0; if you look daily, keep the test running."))
    if rule is not None and rule.trustworthy and rule.rules:
        action = "Apply the timing rule per segment (below) rather than one arm for everyone."
    elif arm is not None:
        action = f"Roll out {arm} to the experiment's population; keep a small holdout to watch the effect."
    else:
        action = f"Keep {control}; collect more units or test a stronger variant before changing anything."
    return Decision(headline=headline, arm=arm, how_sure=sure, worth=_worth(readout, best.arm, primary),
                    action=action, timing=timing, trustworthy=True)


__all__ = ["Decision", "decide", "timing_text"]
