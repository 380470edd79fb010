"""From a data folder to a readout: the adapter, and the readout against the generator's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from worlds import tiny_world

from telco_nbo.data.synthetic import TIMING_EXPERIMENT_ID, generate_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.experiments.data import experiment_design, experiment_frame
from telco_nbo.experiments.readout import readout_from_tables
from telco_nbo.experiments.timing_rule import timing_rule_from_readout


@pytest.fixture(scope="module")
def world() -> World:
    # ~3 % of households form the timing cohort: 6,000 gives ~200 households, in ~3 s.
    return generate_world(6000, seed=7)


def test_tiny_world_frame_by_hand() -> None:
    w = tiny_world()
    acc = w.tables["accounts"].copy()
    # Let H0000002 start within the usage data (2025-05-10) so its revenue window (2025-06..2026-05)
    # is observable; H0000001 started in 2019: its window (2019-04..2020-03) has no usage rows.
    acc.loc[acc["account_id"] == "A0000003", "start_date"] = pd.Timestamp("2025-05-10")
    tables = {**w.tables, "accounts": acc}
    f = experiment_frame(tables, "EXP_RENEWAL_TIMING").set_index("unit_id")
    assert list(f.index) == ["H0000001", "H0000002", "H0000003"]
    assert f.loc["H0000001", "arm"] == "early" and bool(f.loc["H0000001", "accepted"])
    assert not f.loc["H0000002", "accepted"]  # holdout record
    # H0000003's only account ended 2025-10-20, before its contract end 2026-01-10 + 90 days.
    assert f["churned"].tolist() == [False, False, True]
    # H0000001: two mobile lines and broadband -> bundle; H0000002: one mobile line; H0000003: TV only.
    assert f["product_mix"].tolist() == ["bundle", "mobile_only", "home_only"]
    assert f.loc["H0000001", "account_type"] == "mixed"
    u = w.tables["usage_monthly"]
    h2 = u[u["line_id"] == "L0000005"].sort_values("month")
    assert f.loc["H0000002", "revenue"] == pytest.approx(h2["bill_amount"].sum())
    assert f.loc["H0000001", "revenue"] == 0.0 and f.loc["H0000003", "revenue"] == 0.0
    # pre_revenue: the first billed month starting on or after the household start (2025-08 here).
    assert f.loc["H0000002", "pre_revenue"] == pytest.approx(h2["bill_amount"].iloc[0])
    h1 = u[u["line_id"].isin(["L0000001", "L0000002"])]
    assert f.loc["H0000001", "pre_revenue"] == pytest.approx(h1[h1["month"] == h1["month"].min()]["bill_amount"].sum())


def test_design_and_bad_input() -> None:
    w = tiny_world()
    d = experiment_design(w.tables, "EXP_RENEWAL_TIMING")
    assert d["arms"] == ["holdout", "early", "late"] and d["primary_metric"] == "churned"
    with pytest.raises(ConfigError, match="'NOPE' not found"):
        experiment_frame(w.tables, "NOPE")
    t = dict(w.tables)
    t["experiments"] = t["experiments"].assign(control_arm="control")
    with pytest.raises(ConfigError, match="no control arm"):
        experiment_frame(t, "EXP_RENEWAL_TIMING")
    t = dict(w.tables)
    c = t["contacts"].copy()
    c.loc[1, ["experiment_id", "arm"]] = ["EXP_RENEWAL_TIMING", "late"]  # H0000001's 2nd account, other arm
    t["contacts"] = c
    with pytest.raises(DataValidationError, match=r"household\(s\) of 'EXP_RENEWAL_TIMING' are in two arms, e.g. H0000001 in early/late"):
        experiment_frame(t, "EXP_RENEWAL_TIMING")
    t = dict(w.tables)
    t["contacts"] = t["contacts"].assign(experiment_id=None)
    with pytest.raises(DataValidationError, match="nobody was assigned"):
        experiment_frame(t, "EXP_RENEWAL_TIMING")
    t = {k: v for k, v in w.tables.items() if k != "usage_monthly"}
    with pytest.raises(DataValidationError, match="usage_monthly"):
        experiment_frame(t, "EXP_RENEWAL_TIMING")


def test_synthetic_timing_frame_matches_the_generator(world: World) -> None:
    f = experiment_frame(world.tables, TIMING_EXPERIMENT_ID)
    truth = world.truth["timing"].set_index("household_id")
    assert set(f["unit_id"]) == set(truth.index)
    t = truth.loc[f["unit_id"]]
    assert (t["arm"].to_numpy() == f["arm"].to_numpy()).all()
    # Our product mix is the generator's timing segment, household by household.
    assert (t["segment"].to_numpy() == f["product_mix"].to_numpy()).all()
    assert not f["accepted"][f["arm"] == "control"].any()
    # Observed arm levels sit inside 99.9 % intervals around the mean true probabilities/revenue.
    z = sps.norm.ppf(0.9995)
    for arm in ("control", "day30", "pre_end60"):
        m = (f["arm"] == arm).to_numpy()
        for col, tcol in (("churned", f"p_churned_{arm}"), ("accepted", f"p_accept_{arm}"), ("revenue", f"revenue_{arm}")):
            obs = f.loc[m, col].astype(float)
            se = obs.std(ddof=1) / np.sqrt(m.sum()) if col == "revenue" else np.sqrt(t.loc[m, tcol].mean() * (1 - t.loc[m, tcol].mean()) / m.sum())
            assert abs(obs.mean() - t.loc[m, tcol].mean()) <= z * se + 1e-12, (arm, col)


def test_readout_intervals_contain_the_true_effects(world: World) -> None:
    # Six comparisons: 99 % intervals keep the family's chance of a spurious miss small.
    r = readout_from_tables(world.tables, TIMING_EXPERIMENT_ID, alpha=0.01, sequential=True)
    truth = world.meta["truth_summary"]["timing"]["overall"]
    assert r.trustworthy and r.unit == "household" and r.arms == ["control", "day30", "pre_end60"]
    checked = 0
    for m in r.metrics:
        for c in m.primary_comparisons():
            true = truth[c.arm][m.spec.name]
            assert c.abs_ci_low <= true <= c.abs_ci_high, (m.spec.name, c.arm, c.abs_ci_low, true, c.abs_ci_high)
            assert c.seq_ci_low <= true <= c.seq_ci_high
            checked += 1
    assert checked == 6
    assert r.metric("revenue").cuped.variance_reduction > 0.3  # first-month bill predicts revenue
    # Segments exist for every column; the rule is derivable (small world: mostly "no rule").
    assert set(r.segment_columns) == {"product_mix", "lifecycle_stage", "value_decile", "account_type", "region"}
    rule = timing_rule_from_readout(r, "product_mix")
    assert {d.segment for d in rule.decisions} == {"mobile_only", "bundle", "home_only"}


def test_retention_experiment_frame(world: World) -> None:
    f = experiment_frame(world.tables, "EXP-RETENTION-1")
    truth = world.truth["retention"].set_index("account_id")
    assert set(f["unit_id"]) == set(truth.index) and (f["unit_id"] == f["account_id"]).all()
    r = readout_from_tables(world.tables, "EXP-RETENTION-1", alpha=0.01, segments=["account_type"])
    ate = world.meta["truth_summary"]["retention"]["ate_churn_90d"]
    c = r.comparison("churned", "treatment")
    assert c.abs_ci_low <= ate <= c.abs_ci_high
    assert isinstance(pd.Timestamp(f["enrolled_at"].iloc[0]), pd.Timestamp)
