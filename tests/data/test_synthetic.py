"""The synthetic world: contract, determinism, hierarchy, dates, rates, experiments, truth, scenarios."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from telco_nbo.data.io import load_world, write_world
from telco_nbo.data.schema import SCHEMAS, TABLES
from telco_nbo.data.synthetic import (
    RETENTION_EXPERIMENT_ID,
    TIMING_EXPERIMENT_ID,
    UPLIFT_SEGMENTS,
    generate_world,
)
from telco_nbo.data.validate import validate_world
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.catalog import load_catalog

N = 3000
SEED = 11


@pytest.fixture(scope="module")
def world():
    return generate_world(N, SEED)


@pytest.fixture(scope="module")
def big_world():
    """Large enough for statistical checks of the truth against realized outcomes."""
    return generate_world(20_000, 5)


def _frames_equal(a, b) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)
    assert sorted(a.truth) == sorted(b.truth)
    for name in a.truth:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name], check_exact=True)


@pytest.mark.slow
def test_same_seed_identical_frames_and_files(world, tmp_path: Path) -> None:
    again = generate_world(N, SEED)
    _frames_equal(world, again)
    assert world.meta == again.meta
    d1 = write_world(world, tmp_path / "a")
    d2 = write_world(again, tmp_path / "b")
    files = sorted(p.relative_to(d1) for p in d1.rglob("*") if p.is_file())
    assert len(files) >= len(TABLES) + 3
    for f in files:
        h1 = hashlib.sha256((d1 / f).read_bytes()).hexdigest()
        h2 = hashlib.sha256((d2 / f).read_bytes()).hexdigest()
        assert h1 == h2, f"{f} differs between two runs with the same seed"
    back = load_world(d1, with_truth=True)
    for name in TABLES:
        pd.testing.assert_frame_equal(back.tables[name], world.tables[name], check_exact=True)


def test_different_seed_differs(world) -> None:
    other = generate_world(N, SEED + 1)
    assert not other.tables["accounts"]["start_date"].equals(world.tables["accounts"]["start_date"])
    assert not other.tables["usage_monthly"]["bill_amount"].head(1000).equals(
        world.tables["usage_monthly"]["bill_amount"].head(1000)
    )


def test_tables_validate_against_contract(world) -> None:
    for name in TABLES:
        df = world.tables[name]
        SCHEMAS[name].validate(df)
        assert list(df.columns) == list(SCHEMAS[name].columns)
        assert len(df) > 0, name
    validate_world(world.tables)  # cross-table rules: orphans, households, arms, dates
    # ids sorted and prefixed as the brief says
    assert world.tables["households"]["household_id"].iloc[0] == "H0000001"
    assert world.tables["accounts"]["account_id"].iloc[0] == "A0000001"
    assert world.tables["lines"]["line_id"].iloc[0] == "L00000001"
    for name, col in (("households", "household_id"), ("accounts", "account_id"), ("lines", "line_id"),
                      ("support_tickets", "ticket_id"), ("contacts", "contact_id")):
        assert world.tables[name][col].is_monotonic_increasing, name
    assert sorted(world.tables) == sorted(TABLES)  # truth never sits among the tables
    assert {"accounts", "clv", "retention", "timing"} <= set(world.truth)


def test_hierarchy_and_dates(world) -> None:
    t = world.tables
    acc, lines, usage = t["accounts"], t["lines"], t["usage_monthly"]
    n_acc = acc.groupby("household_id").size()
    assert n_acc.between(1, 3).all() and (n_acc == 1).mean() > 0.7
    hh_lines = lines.merge(acc[["account_id", "household_id"]]).groupby("household_id").size()
    assert hh_lines.min() >= 1
    # lines live inside their account's life
    la = lines.merge(acc[["account_id", "start_date", "end_date"]], on="account_id", suffixes=("", "_acc"))
    assert (la["start_date"] >= la["start_date_acc"]).all()
    ended = la["end_date_acc"].notna()
    assert (la.loc[ended, "end_date"] <= la.loc[ended, "end_date_acc"]).all()
    assert la.loc[ended, "end_date"].notna().all()
    # no usage after a line ended; usage covers >= 15 months before as_of and runs to world_end
    as_of = pd.Timestamp(world.meta["as_of"])
    world_end = pd.Timestamp(world.meta["world_end"])
    ul = usage.merge(lines[["line_id", "end_date"]], on="line_id")
    has_end = ul["end_date"].notna()
    assert (ul.loc[has_end, "month"] <= ul.loc[has_end, "end_date"]).all()
    months = usage["month"].drop_duplicates().sort_values()
    assert months.iloc[0] <= as_of - pd.DateOffset(months=15)
    assert months.iloc[-1] == world_end.to_period("M").to_timestamp()
    assert (usage["month"] > as_of).any()  # rows after as_of exist (the leakage test needs them)
    assert acc["start_date"].max() <= as_of
    assert acc["start_date"].min() >= as_of - pd.Timedelta(days=8 * 366)
    assert acc["end_date"].max() <= world_end
    # mobile lines have devices, others not; caps only on capped mobile plans
    mob = lines["line_type"] == "mobile"
    assert lines.loc[mob, "device_purchase_date"].notna().all()
    assert lines.loc[~mob, "device_purchase_date"].isna().all()
    assert lines.loc[~mob, "data_cap_gb"].isna().all()
    assert (lines.loc[lines["line_type"] == "broadband", "broadband_tech"].notna()).all()
    # bill = price part + overage charge: overage only with a cap
    assert (usage["bill_amount"] >= 0).all() and (usage["overage_gb"] <= usage["data_gb"] + 1e-9).all()


def test_churn_rate_and_hazard_causes(world) -> None:
    acc = world.tables["accounts"]
    as_of = pd.Timestamp(world.meta["as_of"])
    y0 = as_of - pd.Timedelta(days=365)
    base = acc[(acc["start_date"] <= y0) & (acc["end_date"].isna() | (acc["end_date"] > y0))]
    churned = base["end_date"].notna() & (base["end_date"] <= as_of)
    assert 0.10 <= churned.mean() <= 0.30
    # month-to-month churns more than two-year contracts (a stated cause)
    rate = churned.groupby(base["contract_type"]).mean()
    assert rate["month_to_month"] > rate["two_year"]


@pytest.mark.slow
def test_truth_churn_probability_is_calibrated(big_world) -> None:
    acc = big_world.tables["accounts"].set_index("account_id")
    tr = big_world.truth["accounts"].set_index("account_id")
    as_of = pd.Timestamp(big_world.meta["as_of"])
    end = acc.loc[tr.index, "end_date"]
    realized = (end.notna() & (end > as_of)).to_numpy()
    p = tr["p_churn_90d"].to_numpy()
    assert (end.isna() | (end > as_of)).all()  # truth rows are the accounts active at as_of
    se = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(realized.mean() - p.mean()) < 4 * se + 1e-3
    # discrimination: the top decile of true risk churns far more than the bottom half
    top = p >= np.quantile(p, 0.9)
    low = p <= np.median(p)
    assert realized[top].mean() > 3 * realized[low].mean()
    clv = big_world.truth["clv"]
    assert (clv["clv_36m"] > 0).all() and (clv["clv_36m"] <= 36 * clv["monthly_margin"] + 1e-6).all()


@pytest.mark.slow
def test_retention_experiment_segments_and_truth(big_world) -> None:
    ct = big_world.tables["contacts"]
    exp = ct[ct["experiment_id"] == RETENTION_EXPERIMENT_ID]
    assert set(exp["arm"]) == {"control", "treatment"}
    ctrl = exp[exp["arm"] == "control"]
    assert (~ctrl["contacted"]).all() and ctrl["channel"].isna().all() and (~ctrl["accepted"]).all()
    treat = exp[exp["arm"] == "treatment"]
    assert treat["contacted"].all() and set(treat["offer_id"]) == {"RETENTION_DISCOUNT"}
    assert set(treat["channel"]) <= {"call_center", "email"}
    assert exp["account_id"].is_unique and exp["contacted_at"].nunique() == 1
    tr = big_world.truth["retention"]
    assert set(tr["account_id"]) == set(exp["account_id"])
    shares = tr["segment"].value_counts(normalize=True)
    assert set(shares.index) == set(UPLIFT_SEGMENTS)
    assert 0.10 <= shares["persuadable"] <= 0.25
    assert 0.05 <= shares["sleeping_dog"] <= 0.15
    seg = tr.groupby("segment")
    assert (tr.loc[tr["segment"] == "sleeping_dog", "tau"] > 0).all()
    assert (tr.loc[tr["segment"] == "persuadable", "tau"] < 0).all()
    assert seg["tau"].mean()["persuadable"] < -0.02
    # A lost cause cannot be helped; a promotion during its open service issue even hurts.
    assert (tr.loc[tr["segment"] == "lost_cause", "tau"] >= -1e-12).all()
    assert seg["p0"].mean()["lost_cause"] > 2 * seg["p0"].mean()["sure_thing"]
    assert abs(seg["tau"].mean()["sure_thing"]) < 0.01
    # realized churn in the window matches the truth in each arm
    acc = big_world.tables["accounts"].set_index("account_id")
    t0 = exp["contacted_at"].iloc[0]
    m = tr.set_index("account_id")
    end = acc.loc[m.index, "end_date"]
    churn = (end.notna() & (end < t0 + pd.Timedelta(days=90))).to_numpy()
    assert (end.isna() | (end >= t0)).all()
    for arm, col in (("control", "p0"), ("treatment", "p1")):
        sel = (m["arm"] == arm).to_numpy()
        p = m[col].to_numpy()[sel]
        se = np.sqrt((p * (1 - p)).sum()) / sel.sum()
        assert abs(churn[sel].mean() - p.mean()) < 4 * se


@pytest.mark.slow
def test_timing_experiment_balance_arms_and_truth(big_world) -> None:
    t = big_world.tables
    ct = t["contacts"]
    exp = ct[ct["experiment_id"] == TIMING_EXPERIMENT_ID]
    acc = t["accounts"]
    # one row per account of the household, same arm across a household's accounts
    assert exp["account_id"].is_unique
    assert (exp.groupby("household_id")["arm"].nunique() == 1).all()
    hh_accounts = acc[acc["household_id"].isin(exp["household_id"])].groupby("household_id").size()
    rows = exp.groupby("household_id").size()
    assert (rows == hh_accounts.reindex(rows.index)).all()
    arms = exp.drop_duplicates("household_id")["arm"].value_counts()
    assert set(arms.index) == {"control", "day30", "pre_end60"}
    assert stats.chisquare(arms.to_numpy()).pvalue > 0.001
    assert 400 <= arms.sum() <= 1200  # a few thousand at 100k households
    assert (~exp.loc[exp["arm"] == "control", "contacted"]).all()
    assert set(exp["offer_id"]) == {"PLAN_REVIEW"}
    # cohort: first account on a one-year contract; outcome observable before as_of
    cohort_acc = acc[acc["account_id"].isin(exp["account_id"])]
    assert (cohort_acc["contract_type"] == "one_year").all()
    as_of = pd.Timestamp(big_world.meta["as_of"])
    assert (cohort_acc["contract_end_date"] + pd.Timedelta(days=90) <= as_of).all()
    ex = t["experiments"].set_index("experiment_id").loc[TIMING_EXPERIMENT_ID]
    assert ex["unit"] == "household" and ex["control_arm"] == "control" and ex["primary_metric"] == "churned"
    # contact timing per arm
    e2 = exp.merge(cohort_acc[["account_id", "start_date", "contract_end_date"]], on="account_id")
    d30 = e2[e2["arm"] == "day30"]
    assert (d30["contacted_at"] == d30["start_date"] + pd.Timedelta(days=30)).all()
    pre = e2[e2["arm"] == "pre_end60"]
    assert (pre["contacted_at"] == pre["contract_end_date"] - pd.Timedelta(days=60)).all()
    # realized outcomes (the readout's definitions) agree with the truth per arm
    truth = big_world.truth["timing"].set_index("household_id")
    churned = (cohort_acc["end_date"].notna() & (cohort_acc["end_date"] <= cohort_acc["contract_end_date"]
                                                  + pd.Timedelta(days=90))).groupby(cohort_acc["household_id"]).any()
    accepted = exp.groupby("household_id")["accepted"].any()
    lines = t["lines"].merge(cohort_acc[["account_id", "household_id", "start_date"]], on="account_id",
                             suffixes=("", "_acc"))
    u = t["usage_monthly"].merge(lines[["line_id", "household_id", "start_date_acc"]], on="line_id")
    first = u["start_date_acc"].dt.to_period("M").dt.to_timestamp() + pd.DateOffset(months=1)
    in_window = (u["month"] >= first) & (u["month"] < first + pd.DateOffset(months=12))
    revenue = u[in_window].groupby("household_id")["bill_amount"].sum().reindex(truth.index, fill_value=0.0)
    for arm in ("control", "day30", "pre_end60"):
        hh = truth.index[truth["arm"] == arm]
        p = truth.loc[hh, f"p_churned_{arm}"].to_numpy()
        se = np.sqrt((p * (1 - p)).sum()) / len(p)
        assert abs(churned.loc[hh].mean() - p.mean()) < 4 * se + 1e-9
        pa = truth.loc[hh, f"p_accept_{arm}"].to_numpy()
        se_a = np.sqrt((pa * (1 - pa)).sum()) / len(pa) + 1e-9
        assert abs(accepted.loc[hh].mean() - pa.mean()) < 4 * se_a + 1e-9
        rev = revenue.loc[hh].to_numpy()
        exp_rev = truth.loc[hh, f"revenue_{arm}"].to_numpy()
        se_r = (rev - exp_rev).std(ddof=1) / np.sqrt(len(hh))
        assert abs(rev.mean() - exp_rev.mean()) < 4 * se_r
    # true effects are heterogeneous as designed
    summ = big_world.meta["truth_summary"]["timing"]["by_segment"]
    assert summ["mobile_only"]["day30"]["churned"] < -0.03 and summ["mobile_only"]["pre_end60"]["churned"] == 0
    assert summ["bundle"]["pre_end60"]["churned"] < -0.03 and summ["bundle"]["day30"]["churned"] == 0
    assert summ["home_only"]["day30"]["churned"] == 0 and summ["home_only"]["pre_end60"]["churned"] == 0


def test_campaign_contacts_respect_catalog_and_network(world) -> None:
    t = world.tables
    ct = t["contacts"]
    catalog_ids = set(load_catalog().by_id())
    assert set(ct["offer_id"].dropna()) <= catalog_ids
    assert set(t["offers"]["offer_id"]) == catalog_ids
    # A row without an offer is an exploring policy's logged "no contact": never contacted.
    none = ct[ct["offer_id"].isna()]
    assert len(none) > 0 and (~none["contacted"]).all() and set(none["policy_id"]) == {"explore-uniform-v1"}
    as_of = pd.Timestamp(world.meta["as_of"])
    logged = ct[ct["experiment_id"].isna()]
    assert logged["policy_id"].notna().all() and logged["propensity"].between(0, 1, inclusive="right").all()
    camp = logged[logged["offer_id"].notna() & (logged["contacted_at"] <= as_of)]
    assert camp["contacted"].all() and camp["channel"].notna().all()
    assert camp["contacted_at"].between(as_of - pd.Timedelta(days=365), as_of).all()
    hh = t["households"].set_index("household_id")
    fib = camp[camp["offer_id"] == "HOME_FIBER"]
    assert len(fib) > 0 and hh.loc[fib["household_id"], "fiber_eligible"].all()
    fwa = camp[camp["offer_id"] == "HOME_FWA"]
    assert hh.loc[fwa["household_id"], "fwa_eligible"].all()
    # channel allowed by the offer
    allowed = t["offers"].set_index("offer_id")["channels"].str.split(",")
    assert all(c in allowed[o] for o, c in zip(camp["offer_id"], camp["channel"]))
    # one campaign contact per household per month (before as_of; the wave after it is per account)
    before = logged[logged["contacted_at"] <= as_of]
    per = before.groupby([before["household_id"], before["contacted_at"].dt.to_period("M")]).size()
    assert per.max() == 1
    # cancellations within 90 days of acceptance, only on accepted contacts
    canc = ct[ct["cancelled_at"].notna()]
    assert canc["accepted"].all()
    assert ((canc["cancelled_at"] - canc["accepted_at"]).dt.days.between(0, 90)).all()
    # need signals drive acceptance: upsell acceptance beats the base rate of premium care
    rate = camp.groupby("offer_id")["accepted"].mean()
    assert rate["DATA_UPSELL"] > rate["PREMIUM_CARE"]


def test_price_rise_changes_only_its_region(world) -> None:
    sc = generate_world(N, SEED, scenario="price_rise")
    assert sc.meta["scenario"] == "price_rise" and sc.meta["scenario_detail"]["region"] == "suburban"
    pd.testing.assert_frame_equal(sc.tables["households"], world.tables["households"])
    hh = world.tables["households"]
    region_hh = set(hh.loc[hh["region"] == "suburban", "household_id"])
    a0, a1 = world.tables["accounts"], sc.tables["accounts"]
    out0 = a0[~a0["household_id"].isin(region_hh)].reset_index(drop=True)
    out1 = a1[~a1["household_id"].isin(region_hh)].reset_index(drop=True)
    pd.testing.assert_frame_equal(out0, out1)
    in0 = a0[a0["household_id"].isin(region_hh)]
    in1 = a1[a1["household_id"].isin(region_hh)]
    ratio = in1["monthly_charges"].sum() / in0["monthly_charges"].sum()
    assert 1.10 < ratio < 1.20
    # churn in the region in the last 3 months goes up
    as_of = pd.Timestamp(world.meta["as_of"])
    since = as_of - pd.Timedelta(days=92)

    def churned(a):
        return (a["end_date"].between(since, as_of + pd.Timedelta(days=90))).sum()

    assert churned(in1) > churned(in0)


@pytest.mark.slow
def test_handset_launch_and_offer_fatigue(world) -> None:
    as_of = pd.Timestamp(world.meta["as_of"])
    hs = generate_world(N, SEED, scenario="handset_launch")
    mob0 = world.tables["lines"].query("line_type == 'mobile'")
    mob1 = hs.tables["lines"].query("line_type == 'mobile'")
    recent = lambda df: (df["device_purchase_date"] > as_of - pd.Timedelta(days=60)).mean()  # noqa: E731
    assert recent(mob1) > recent(mob0) + 0.2
    pd.testing.assert_frame_equal(hs.tables["households"], world.tables["households"])
    # history before the launch window is untouched
    launch = as_of - pd.Timedelta(days=60)
    early = lambda w: w.tables["accounts"]["end_date"].where(w.tables["accounts"]["end_date"] < launch)  # noqa: E731
    pd.testing.assert_series_equal(early(hs), early(world))

    fa = generate_world(N, SEED, scenario="offer_fatigue")
    r0, r1 = world.truth["retention"], fa.truth["retention"]
    pd.testing.assert_frame_equal(r0[["account_id", "segment", "p0"]], r1[["account_id", "segment", "p0"]])
    acc = world.tables["accounts"].set_index("account_id")["account_type"]
    sb = (acc.loc[r1["account_id"]] == "small_business").to_numpy()
    cons = ~sb
    pd.testing.assert_series_equal(r0.loc[cons, "tau"], r1.loc[cons, "tau"])
    assert (r1.loc[sb & (r1["segment"] != "lost_cause").to_numpy(), "tau"] > 0).all()
    assert r1.loc[sb, "fatigued"].any() and not r1.loc[cons, "fatigued"].any()
    assert fa.meta["scenario_detail"]["segment"] == "account_type == 'small_business'"
    # consumer households' tables are identical
    c0 = world.tables["accounts"].query("account_type == 'consumer'")
    c1 = fa.tables["accounts"].query("account_type == 'consumer'")
    hh_sb = set(world.tables["accounts"].query("account_type == 'small_business'")["household_id"])
    pd.testing.assert_frame_equal(c0[~c0["household_id"].isin(hh_sb)], c1[~c1["household_id"].isin(hh_sb)])


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="n_households"):
        generate_world(0, 1)
    with pytest.raises(ConfigError, match="seed"):
        generate_world(10, -1)
    with pytest.raises(ConfigError, match="scenario"):
        generate_world(10, 1, scenario="black_friday")
    with pytest.raises(ConfigError, match="as_of"):
        generate_world(10, 1, as_of="not a date")


def test_tiny_world_is_valid() -> None:
    w = generate_world(50, 3)
    assert validate_world(w.tables) is w.tables  # no error, and the tables come back as given
    assert set(TABLES) <= set(w.tables)
    assert len(w.tables["households"]) == 50


def test_cli_generate_writes_folder_and_prints_rates(tmp_path: Path) -> None:
    from telco_nbo.cli import app

    runner = CliRunner()
    out = tmp_path / "w"
    res = runner.invoke(app, ["data", "generate", "--households", "400", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "annual churn rate" in res.output and "EXP-RETENTION-1" in res.output
    back = load_world(out, with_truth=True)
    assert len(back.tables["households"]) == 400
    assert (out / "truth" / "summary.json").exists()
    # existing non-empty folder without --overwrite, and a bad scenario: exit 2, clear message
    res = runner.invoke(app, ["data", "generate", "--households", "50", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["data", "generate", "--households", "50", "--seed", "3", "--out",
                              str(tmp_path / "x"), "--scenario", "nope"])
    assert res.exit_code == 2 and "scenario" in res.output
    assert not (tmp_path / "x").exists()
