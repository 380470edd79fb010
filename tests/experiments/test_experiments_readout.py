"""Readout behaviour: results, segments, bad input, serialization, timing rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telco_nbo.errors import ConfigError, DataValidationError, TelcoNboError
from telco_nbo.experiments.models import MetricSpec, Readout
from telco_nbo.experiments.readout import run_readout, unit_frame
from telco_nbo.experiments.timing_rule import TimingRule, timing_rule_from_readout

ARMS = ["control", "day30", "pre_end60"]
METRICS = [
    MetricSpec(name="accepted", kind="binary", higher_is_better=True),
    MetricSpec(name="churned", kind="binary", higher_is_better=False),
    MetricSpec(name="revenue", kind="continuous", covariate="pre_revenue"),
]


def make_frame(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Timing experiment with known effects: day30 cuts churn only for mobile_only households."""
    rng = np.random.default_rng(seed)
    arm = rng.permutation(np.resize(ARMS, n))
    mix = rng.choice(["mobile_only", "bundle", "broadband_only"], n)
    pre = rng.gamma(4.0, 20.0, n)
    p_churn = np.where((arm == "day30") & (mix == "mobile_only"), 0.04, 0.16)
    return pd.DataFrame({
        "unit_id": [f"H{i:07d}" for i in range(n)],
        "arm": arm,
        "accepted": rng.random(n) < np.where(arm == "control", 0.0, 0.2),
        "churned": rng.random(n) < p_churn,
        "revenue": 12 * pre + rng.normal(0, 150, n) + np.where(arm == "day30", 25.0, 0.0),
        "pre_revenue": pre,
        "product_mix": mix,
        "region": pd.Categorical(rng.choice(["urban", "rural"], n), categories=["urban", "rural", "suburban"]),
        "tiny": np.where(np.arange(n) < 30, "rare", "common"),
    })


def readout(frame: pd.DataFrame | None = None, **kw: object) -> Readout:
    frame = make_frame() if frame is None else frame
    kw.setdefault("metrics", METRICS)
    return run_readout(frame, experiment_id="EXP-TIMING-1", arms=ARMS, control_arm="control", **kw)  # type: ignore[arg-type]


def test_readout_numbers_match_the_data() -> None:
    f = make_frame()
    r = readout(f, primary_metric="churned")
    m = r.metric("churned")
    for a in m.arms:
        sub = f.loc[f["arm"] == a.arm, "churned"]
        assert a.units == len(sub) and a.mean == pytest.approx(sub.mean())
    c = r.comparison("churned", "day30")
    assert c.abs_lift == pytest.approx(c.mean_treatment - c.mean_reference)
    assert c.rel_lift == pytest.approx(c.mean_treatment / c.mean_reference - 1)
    assert c.abs_ci_low < c.abs_lift < c.abs_ci_high
    # day30 lowers churn (lower is better): the posterior agrees, with little expected loss.
    assert c.abs_lift < 0 and c.prob_beat_reference > 0.95 and c.expected_loss < 0.002
    assert r.trustworthy and not r.srm.flagged and r.primary_metric == "churned"
    # Acceptance against a never-contacted control: relative lift is undefined, and says so.
    acc = r.comparison("accepted", "day30")
    assert acc.rel_lift is None and "control mean is 0" in (acc.note or "")


def test_cuped_keeps_the_estimand_and_shrinks_the_interval() -> None:
    r = readout()
    m = r.metric("revenue")
    raw, adj = m.comparisons[0], m.cuped.comparisons[0]
    assert m.cuped.variance_reduction > 0.7
    assert (adj.abs_ci_high - adj.abs_ci_low) < 0.6 * (raw.abs_ci_high - raw.abs_ci_low)
    # Same estimand: within two half-widths of the injected +25 (coverage itself is tested elsewhere).
    assert abs(adj.abs_lift - 25.0) < (adj.abs_ci_high - adj.abs_ci_low) and adj.cuped
    assert r.comparison("revenue", "day30") == adj  # decisions use the adjusted comparison


def test_sequential_interval_is_wider_and_contains_the_fixed_one() -> None:
    r = readout(sequential=True)
    for m in r.metrics:
        for c in m.comparisons:
            assert c.seq_ci_low is not None and c.seq_ci_low < c.abs_ci_low and c.abs_ci_high < c.seq_ci_high
    assert r.sequential is not None and r.sequential.planned_units == 6000
    assert readout().metrics[0].comparisons[0].seq_ci_low is None


def test_segments_adjusted_and_too_small_cells_carry_no_numbers() -> None:
    r = readout(segments=["product_mix", "region", "tiny"], min_segment_units=40)
    rows = [s for s in r.segments if s.column == "product_mix" and s.metric == "churned"]
    # 3 levels x (2 arms vs control + 1 arm vs arm).
    assert len(rows) == 9 and all(s.status == "ok" for s in rows)
    raw = np.array([s.comparison.p_value for s in rows])
    holm = np.array([s.p_holm for s in rows])
    bh = np.array([s.p_bh for s in rows])
    assert np.all(holm >= raw - 1e-15) and np.all(bh >= raw - 1e-15) and np.all(holm >= bh - 1e-15)
    # The unused category and the rare level are "too small", never a number.
    empty = [s for s in r.segments if s.column == "region" and s.segment == "suburban"]
    assert empty and all(s.status == "too_small" and s.comparison is None and s.p_holm is None for s in empty)
    assert all(s.n_treatment == 0 for s in empty)
    rare = [s for s in r.segments if s.column == "tiny" and s.segment == "rare"]
    assert rare and all(s.status == "too_small" for s in rare)
    assert any("too small" in w for w in r.warnings)


def test_json_round_trip() -> None:
    r = readout(segments=["product_mix", "region"], sequential=True)
    text = r.model_dump_json()
    back = Readout.model_validate_json(text)
    assert back == r
    assert back.model_dump_json() == text


def test_timing_rule_picks_only_significant_winners() -> None:
    r = readout(segments=["product_mix"], primary_metric="churned")
    rule = timing_rule_from_readout(r, "product_mix")
    assert rule.arm_for("mobile_only") == "day30"
    assert rule.arm_for("bundle") is None and rule.arm_for("broadband_only") is None
    assert "no rule" in rule.reason_for("bundle")
    assert rule.arm_for("never-seen") is None
    assert TimingRule.model_validate_json(rule.model_dump_json()) == rule
    with_default = timing_rule_from_readout(r, "product_mix", correction="bh", default_arm="pre_end60")
    assert with_default.arm_for("bundle") == "pre_end60" and with_default.arm_for("mobile_only") == "day30"
    # Acceptance: both timings beat the never-contacted control; control never wins it.
    acc = timing_rule_from_readout(r, "product_mix", metric="accepted")
    assert "control" not in acc.rules.values()
    with pytest.raises(ConfigError, match="no segment breakdown"):
        timing_rule_from_readout(r, "region")
    with pytest.raises(ConfigError, match="correction"):
        timing_rule_from_readout(r, "product_mix", correction="bonferroni")  # type: ignore[arg-type]


def test_timing_rule_control_wins_where_contact_hurts() -> None:
    # Sleeping dogs: contacting raises churn; "do not offer" (the control arm) becomes the rule.
    f = make_frame(seed=3)
    rng = np.random.default_rng(4)
    f["churned"] = rng.random(len(f)) < np.where(f["arm"] == "control", 0.05, 0.25)
    r = readout(f, segments=["product_mix"], primary_metric="churned")
    rule = timing_rule_from_readout(r, "product_mix")
    assert set(rule.rules.values()) == {"control"}


def test_untrustworthy_readout_gives_no_rule() -> None:
    f = make_frame()
    f = f.drop(f.index[(f["arm"] == "control")][:500])  # lose a third of control: SRM
    r = readout(f, segments=["product_mix"], primary_metric="churned")
    assert not r.trustworthy
    rule = timing_rule_from_readout(r, "product_mix")
    assert rule.rules == {} and not rule.trustworthy
    assert "untrustworthy" in rule.reason_for("mobile_only")


# --- bad input ------------------------------------------------------------------------------------


def test_arm_missing_from_data() -> None:
    f = make_frame()
    with pytest.raises(DataValidationError, match="arm 'pre_end60' is missing"):
        readout(f[f["arm"] != "pre_end60"])


def test_no_control_arm() -> None:
    with pytest.raises(ConfigError, match="no control arm"):
        run_readout(make_frame(), experiment_id="E", arms=["day30", "pre_end60"], control_arm="control", metrics=METRICS)


def test_unit_in_two_arms() -> None:
    f = make_frame(300)
    dup = f.iloc[[0]].assign(arm="pre_end60" if f["arm"].iloc[0] != "pre_end60" else "day30")
    with pytest.raises(DataValidationError, match=r"1 unit\(s\) in two arms, e.g. H0000000"):
        readout(pd.concat([f, dup]))


def test_unknown_arm_and_nan_outcome_and_non_binary() -> None:
    f = make_frame(300)
    f.loc[3, "arm"] = "day90"
    f["revenue"] = f["revenue"].astype(float)
    f.loc[5, "revenue"] = np.nan
    f["accepted"] = f["accepted"].astype(int)
    f.loc[7, "accepted"] = 2
    with pytest.raises(DataValidationError) as info:
        readout(f)
    text = str(info.value)
    assert "['day90']" in text and "'revenue' has 1 NaN" in text and "H0000005" in text and "other than 0/1" in text


def test_missing_column_and_empty_frame() -> None:
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['pre_revenue'\]"):
        readout(make_frame(300).drop(columns="pre_revenue"))
    with pytest.raises(DataValidationError, match="missing column"):
        readout(segments=["lifecycle"])
    with pytest.raises(DataValidationError, match="empty"):
        readout(make_frame(300).iloc[0:0])


def test_constant_metric_is_an_error_not_a_number() -> None:
    f = make_frame(300).assign(churned=False)
    with pytest.raises(TelcoNboError, match="'churned' is constant"):
        readout(f)


def test_bad_design_arguments() -> None:
    with pytest.raises(ConfigError, match="designed split"):
        readout(designed_split={"control": 1, "day30": 1})
    with pytest.raises(ConfigError, match="primary metric"):
        readout(primary_metric="arpu")
    with pytest.raises(ConfigError, match="alpha"):
        readout(alpha=1.5)


def test_unit_frame_from_assignment_and_outcome_tables() -> None:
    assignments = pd.DataFrame({"unit_id": ["H1", "H1", "H2", "H3", "H4"], "arm": ["a", "a", "b", "a", "b"]})
    outcomes = pd.DataFrame({"unit_id": ["H1", "H2", "H3", "H4"], "churned": [0, 1, 0, 1]})
    f = unit_frame(assignments, outcomes)
    assert list(f["unit_id"]) == ["H1", "H2", "H3", "H4"] and list(f["arm"]) == ["a", "b", "a", "b"]
    with pytest.raises(DataValidationError, match=r"more than one arm, e.g. H1 in a/b"):
        unit_frame(pd.concat([assignments, pd.DataFrame({"unit_id": ["H1"], "arm": ["b"]})]), outcomes)
    with pytest.raises(DataValidationError, match="never assigned: H9"):
        unit_frame(assignments, pd.concat([outcomes, pd.DataFrame({"unit_id": ["H9"], "churned": [0]})]))
    with pytest.raises(DataValidationError, match="no outcome row: H4"):
        unit_frame(assignments, outcomes.iloc[:3])


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.05, max_value=0.5))
def test_property_interval_contains_estimate_and_aa_interval_is_sane(seed: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    f = pd.DataFrame({"unit_id": np.arange(n).astype(str), "arm": np.resize(["control", "b"], n),
                      "m": rng.random(n) < p})
    r = run_readout(f, experiment_id="AA", arms=["control", "b"], control_arm="control",
                    metrics=[MetricSpec(name="m", kind="binary")], n_draws=2000)
    c = r.metric("m").comparisons[0]
    assert c.abs_ci_low <= c.abs_lift <= c.abs_ci_high
    assert 0.0 <= c.prob_beat_reference <= 1.0 and c.expected_loss >= 0.0
    assert (c.p_value < 0.05) == c.significant
