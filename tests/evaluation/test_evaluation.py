"""Decision quality: offer truth, true_value, the response simulator, off-policy estimates, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.data.io import write_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.errors import DataValidationError
from telco_nbo.evaluation.evaluate import PolicyEvaluation, evaluate_decisions
from telco_nbo.evaluation.ope import NONE, logged_outcomes, ope_estimates, outcome_model
from telco_nbo.evaluation.report import to_html
from telco_nbo.evaluation.respond import respond
from telco_nbo.evaluation.value import normalize_decisions, read_decisions, true_value
from telco_nbo.nbo.catalog import load_catalog


@pytest.fixture(scope="module")
def world():
    return generate_world(2500, 21)


def _oracle(oe: pd.DataFrame) -> pd.DataFrame:
    best = oe.sort_values("true_value", ascending=False).drop_duplicates("account_id")
    return best.loc[best["true_value"] > 0, ["account_id", "offer_id", "channel"]].astype(str).reset_index(drop=True)


# --- the truth -----------------------------------------------------------------------------------


def test_truth_covers_every_active_account_offer_and_allowed_channel(world) -> None:
    oe = world.truth["offer_effects"]
    active = world.truth["accounts"]["account_id"].astype(str)
    cat = load_catalog()
    assert set(oe["account_id"].astype(str)) == set(active)
    expected_rows = len(active) * sum(len(o.channels) for o in cat.offers)
    assert len(oe) == expected_rows
    for o in cat.offers:
        got = set(oe.loc[oe["offer_id"] == o.offer_id, "channel"].astype(str))
        assert got == set(o.channels), o.offer_id
    assert not oe.duplicated(["account_id", "offer_id", "channel"]).any()
    # value identity and ranges
    lhs = oe["true_value"].to_numpy()
    rhs = (oe["delta_margin"] - oe["delta_churn"] * oe["kept_value"] - oe["contact_cost"]).to_numpy()
    assert np.allclose(lhs, rhs)
    assert oe["p_accept"].between(0, 1).all()
    # sensitivity is not a function of risk: high-risk lost causes and mid-risk persuadables both exist
    acc = world.truth["accounts"]
    seg = acc.groupby("uplift_segment")["p_churn_90d"].mean()
    assert seg["lost_cause"] > seg["persuadable"] > seg["sure_thing"]
    assert (acc["uplift_segment"] == "sleeping_dog").mean() > 0.02


def test_contacts_log_policies_and_propensities(world) -> None:
    ct = world.tables["contacts"]
    logged = ct[ct["policy_id"].notna()]
    assert set(logged["policy_id"]) == {"campaign-need-v1", "explore-uniform-v1"}
    exp = logged[logged["policy_id"] == "explore-uniform-v1"]
    # uniform over "no contact" and the deliverable offers: no-contact share ~ mean propensity
    none_share = exp["offer_id"].isna().mean()
    assert abs(none_share - exp["propensity"].mean()) < 0.03
    assert ct.loc[ct["experiment_id"].notna(), "policy_id"].isna().all()


# --- true_value ------------------------------------------------------------------------------------


def test_true_value_is_the_sum_of_the_truth_rows_and_per_offer(world) -> None:
    oe = world.truth["offer_effects"]
    dec = _oracle(oe)
    pv = true_value(dec, oe, n_resamples=200)
    keyed = oe.assign(**{c: oe[c].astype(str) for c in ("account_id", "offer_id", "channel")})
    expect = dec.merge(keyed, on=["account_id", "offer_id", "channel"])["true_value"].sum()
    assert pv.total.total == pytest.approx(expect)
    assert sum(v.total for v in pv.by_offer.values()) == pytest.approx(expect)
    assert pv.total.ci95[0] <= pv.total.total <= pv.total.ci95[1]
    assert pv.total.contacts == len(dec)


def test_true_value_without_channel_uses_the_preferred_allowed_channel(world) -> None:
    oe = world.truth["offer_effects"]
    acc = world.tables["accounts"].set_index("account_id")
    a = str(oe["account_id"].iloc[0])
    pref = acc.loc[a, "channel_preference"]
    offers = load_catalog().by_id()
    oid = next(o for o, x in offers.items() if pref in x.channels)
    pv = true_value(pd.DataFrame({"account_id": [a], "offer_id": [oid]}), oe, n_resamples=100)
    assert pv.rows["channel"].iloc[0] == pref


@pytest.mark.parametrize("frame,needle", [
    (pd.DataFrame({"account_id": ["A_NOPE"], "offer_id": ["HOME_FIBER"]}), "accounts the truth does not know"),
    (pd.DataFrame({"account_id": ["@"], "offer_id": ["NOT_AN_OFFER"]}), "offers not in the catalog"),
    (pd.DataFrame({"account_id": ["@", "@"], "offer_id": ["HOME_FIBER", "DATA_UPSELL"]}), "more than once"),
    (pd.DataFrame({"account_id": ["@"], "offer_id": ["HOME_FIBER"], "channel": ["sms"]}), "does not allow"),
    (pd.DataFrame({"account": ["@"]}), "missing column"),
])
def test_bad_decision_tables_get_a_clear_error(world, frame, needle) -> None:
    oe = world.truth["offer_effects"]
    a = str(oe["account_id"].iloc[0])
    frame = frame.replace("@", a)
    with pytest.raises(DataValidationError, match=needle):
        true_value(frame, oe)


def test_a_ranking_counts_its_first_choices_and_a_log_its_last_decision(tmp_path) -> None:
    ranking = pd.DataFrame({"account_id": ["A1", "A1", "A2", "A3"], "offer_id": ["X", "Y", "X", "Z"],
                            "selected": [True, True, False, True], "rank": [1, 2, None, 1],
                            "channel": ["app", "sms", None, "email"]})
    d = normalize_decisions(ranking)
    assert d.to_dict("list") == {"account_id": ["A1", "A3"], "offer_id": ["X", "Z"], "channel": ["app", "email"]}
    log = tmp_path / "decisions.jsonl"
    log.write_text("\n".join(json.dumps(x) for x in [
        {"account_id": "A1", "offers": [{"offer_id": "Y", "rank": 2, "channel": "sms"},
                                        {"offer_id": "X", "rank": 1, "channel": "app"}]},
        {"account_id": "A2", "offers": []},
        {"account_id": "A1", "offers": [{"offer_id": "Z", "rank": 1, "channel": "email"}]},
    ]) + "\n")
    d = read_decisions(log)
    assert d.to_dict("list") == {"account_id": ["A1"], "offer_id": ["Z"], "channel": ["email"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"account_id": "A1"}\n{not json\n')
    with pytest.raises(DataValidationError, match="line 2 is not JSON"):
        read_decisions(bad)


def test_oracle_and_top_churn_keep_one_promotional_offer_per_household() -> None:
    from telco_nbo.evaluation.baselines import baselines

    rows = [  # account, offer, value; A1 and A2 share a household
        ("A1", "FIBER", 50.0), ("A1", "CARE", 5.0), ("A2", "FIBER", 40.0), ("A2", "CARE", 8.0), ("A3", "FIBER", 30.0),
        ("A1", "DISCOUNT", -1.0), ("A2", "DISCOUNT", -2.0), ("A3", "DISCOUNT", 3.0),
    ]
    truth = pd.DataFrame({"account_id": [r[0] for r in rows], "offer_id": [r[1] for r in rows], "channel": "app",
                          "p_accept": 0.5, "contact_cost": 0.05, "true_value": [r[2] for r in rows]})
    acc = pd.DataFrame({"account_id": ["A1", "A2", "A3"], "p_churn_90d": [0.3, 0.2, 0.1]})
    ranking = truth[["account_id", "offer_id"]].assign(layer=None, rule_id=None, churn_probability=0.1)
    household = pd.Series({"A1": "H1", "A2": "H1", "A3": "H2"})
    promo = pd.Series({"FIBER": True, "DISCOUNT": True, "CARE": False})
    free = baselines(truth, acc, 2, ranking=ranking, retention_offer="DISCOUNT", n_resamples=100)
    assert free.oracle.total == pytest.approx(50 + 40 + 30)
    capped = baselines(truth, acc, 2, ranking=ranking, retention_offer="DISCOUNT", household_of=household,
                       promotional=promo, n_resamples=100)
    # H1 keeps A1's fiber (the most valuable), A2 falls back to care; A3 keeps its fiber.
    assert capped.oracle.total == pytest.approx(50 + 8 + 30)
    assert "per household" in capped.rules
    # top churn: A1 (-1) then A2 is dropped (same household), then A3 (+3): best budget is all kept
    assert capped.top_churn.total == pytest.approx(2.0) and capped.top_churn.contacts == 2


@pytest.mark.slow
def test_sparse_bootstrap_matches_scipys_bootstrap_of_the_full_vector() -> None:
    from scipy.stats import bootstrap

    from telco_nbo.evaluation.value import bootstrap_total

    rng = np.random.default_rng(1)
    v, n = rng.normal(10, 30, 300), 3000
    full = np.zeros(n)
    full[: len(v)] = v
    ref = bootstrap((full,), np.sum, n_resamples=20000, method="percentile", vectorized=True,
                    random_state=np.random.default_rng(2)).confidence_interval
    lo, hi = bootstrap_total(v, n, n_resamples=20000, seed=3)  # 300 of 3,000 non-zero: the sparse path
    width = ref.high - ref.low
    assert abs(lo - ref.low) < 0.03 * width and abs(hi - ref.high) < 0.03 * width


# --- respond ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_true_value_is_the_mean_of_simulated_responses(world) -> None:
    oe = world.truth["offer_effects"]
    rng = np.random.default_rng(0)
    accounts = oe["account_id"].astype(str).unique()
    pick = rng.choice(accounts, 600, replace=False)
    sub = oe[oe["account_id"].astype(str).isin(pick)]
    dec = sub.groupby("account_id", observed=True).sample(1, random_state=1)[["account_id", "offer_id", "channel"]]
    expected = true_value(dec, oe, n_resamples=100).total.total
    totals = np.array([respond(world, dec, seed).total for seed in range(300)])
    se = totals.std(ddof=1) / np.sqrt(len(totals))
    assert abs(totals.mean() - expected) < 4 * se
    one = respond(world, dec, 7)
    assert one.expected == pytest.approx(expected)
    assert set(one.rows.columns) >= {"accepted", "churned_90d", "churned_90d_without_contact", "realized_value"}


# --- off-policy estimators on cases with a known answer ----------------------------------------------


def _bandit(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Uniform logging over no contact and 3 offers; reward normal around known means."""
    rng = np.random.default_rng(seed)
    means = {NONE: -10.0, "A": -6.0, "B": -12.0, "C": 3.0}
    acts = np.array(list(means), dtype=object)
    a = acts[rng.integers(0, 4, n)]
    r = np.array([means[x] for x in a]) + rng.normal(0, 20, n)
    return a, np.full(n, 0.25), r, means


def test_ips_snips_dr_by_hand_and_unbiased() -> None:
    a, p, r, means = _bandit(4000, 3)
    target = np.where(np.arange(len(a)) % 2 == 0, "C", "A").astype(object)
    res = ope_estimates(a, p, r, target, q=None, scale=1.0, n_resamples=300)
    hit, base = (a == target).astype(float), (a == NONE).astype(float)
    assert res.ips.estimate == pytest.approx(np.mean((hit - base) * r / p))
    assert res.snips.estimate == pytest.approx((hit * r / p).sum() / (hit / p).sum() - (base * r / p).sum() / (base / p).sum())
    truth = 0.5 * (means["C"] - means[NONE]) + 0.5 * (means["A"] - means[NONE])
    for est in (res.ips, res.snips, res.dr):
        # within two half-widths of its 95 % interval (~4 standard errors); coverage is tested below
        assert abs(est.estimate - truth) < est.ci95[1] - est.ci95[0]
    # DR with the true means as outcome model: same expectation, narrower interval
    q = {k: np.full(len(a), v) for k, v in means.items()}
    dr = ope_estimates(a, p, r, target, q=q).dr
    assert abs(dr.estimate - truth) < dr.ci95[1] - dr.ci95[0]
    assert dr.ci95[1] - dr.ci95[0] < res.ips.ci95[1] - res.ips.ci95[0]
    # the policy "contact nobody" is worth exactly 0 relative to itself
    zero = ope_estimates(a, p, r, np.full(len(a), NONE, object), q=q)
    assert zero.ips.estimate == 0 and zero.dr.estimate == pytest.approx(0)


@pytest.mark.slow
def test_dr_interval_covers_the_known_value_at_the_nominal_rate() -> None:
    covered = 0
    for s in range(200):
        a, p, r, means = _bandit(800, 100 + s)
        target = np.full(len(a), "C", object)
        q = {k: np.full(len(a), v + 3.0) for k, v in means.items()}  # a biased outcome model
        dr = ope_estimates(a, p, r, target, q=q).dr
        covered += dr.ci95[0] <= means["C"] - means[NONE] <= dr.ci95[1]
    assert covered / 200 >= 0.90


def test_ope_refuses_bad_logs() -> None:
    with pytest.raises(DataValidationError, match="propensities"):
        ope_estimates(np.array(["A"], object), np.array([0.0]), np.array([1.0]), np.array(["A"], object))
    with pytest.raises(DataValidationError, match="one entry per unit"):
        ope_estimates(np.array(["A"], object), np.array([0.5, 0.5]), np.array([1.0]), np.array(["A"], object))
    with pytest.raises(DataValidationError, match="no prediction"):
        ope_estimates(np.array(["A"], object), np.array([0.5]), np.array([1.0]), np.array(["B"], object),
                      q={"A": np.zeros(1), NONE: np.zeros(1)})


@pytest.mark.slow
def test_dr_from_the_world_logs_covers_the_true_policy_value_across_worlds() -> None:
    """Over 30 small worlds, the DR interval from the exploration wave covers the policy's true value."""
    covered, n_worlds = 0, 30
    for seed in range(n_worlds):
        w = generate_world(1500, 1000 + seed)
        oe = w.truth["offer_effects"]
        acc = w.tables["accounts"].set_index("account_id")
        # The policy: every account's best offer by truth, on its preferred allowed channel (as logged).
        pref = acc["channel_preference"].reindex(oe["account_id"].astype(str)).to_numpy()
        on_pref = oe[oe["channel"].astype(str).to_numpy() == pref]
        dec = _oracle(on_pref)
        tv = true_value(dec, oe, n_resamples=100).total.total
        logs = logged_outcomes(w.tables, w.meta["as_of"])
        target = pd.Series(dec["offer_id"].to_numpy(), index=dec["account_id"].to_numpy()).reindex(
            logs["account_id"]).fillna(NONE).to_numpy(object)
        q = outcome_model(logs, sorted(set(logs["action"]) | set(target)), w.tables["offers"], seed=seed)
        dr = ope_estimates(logs["action"].to_numpy(object), logs["propensity"].to_numpy(), logs["reward"].to_numpy(),
                           target, q=q, scale=float(len(oe["account_id"].unique()))).dr
        covered += dr.ci95[0] <= tv <= dr.ci95[1]
    assert covered / n_worlds >= 0.90


# --- evaluate ---------------------------------------------------------------------------------------


def test_evaluation_round_trips_and_the_page_answers_first(world) -> None:
    oe = world.truth["offer_effects"]
    ev = evaluate_decisions(world.tables, world.truth, _oracle(oe), world.meta["as_of"], n_resamples=200)
    again = PolicyEvaluation.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert again.to_dict() == json.loads(json.dumps(ev.to_dict()))
    assert ev.unknown_decisions == 0 and ev.true_value["total"] > 0
    for k in ("oracle", "top_churn", "random", "contact_nobody"):
        assert {"total", "at_policy_budget", "ci95"} <= set(ev.baselines[k])
    for k in ("ips", "snips", "dr"):
        assert {"estimate", "ci95"} <= set(ev.ope[k])
    assert ev.baselines["oracle"]["total"] >= ev.baselines["top_churn"]["total"] >= 0
    page = to_html(ev)
    assert page.index("id='headline'") < page.index("<img") < page.index("<table")
    assert "true value" in page[page.index("id='headline'"):][:400]


@pytest.mark.slow
def test_evaluate_cli_writes_both_files_and_refuses_unknown_decisions(world, tmp_path) -> None:
    data = tmp_path / "d"
    write_world(world, data)
    oe = world.truth["offer_effects"]
    dec = tmp_path / "dec.csv"
    _oracle(oe).head(300).to_csv(dec, index=False)
    res = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--decisions", str(dec), "--out",
                                   str(tmp_path / "ev"), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "ev" / "policy_value.json").read_text())
    assert payload["true_value"]["contacts"] == 300 and isinstance(payload["true_value"]["total"], float)
    assert (tmp_path / "ev" / "policy_value.html").read_text().startswith("<!doctype html>")
    # --tracking-uri logs the figures and both files to a real MLflow store
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--decisions", str(dec), "--out",
                                   str(tmp_path / "ev_ml"), "--resamples", "200", "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    import mlflow

    client = mlflow.tracking.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("telco-nbo-policy-value").experiment_id])[0]
    assert run.data.metrics["true_value_total"] == pytest.approx(payload["true_value"]["total"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"policy_value.json", "policy_value.html"}
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"account_id": ["A_NOPE"], "offer_id": ["HOME_FIBER"]}).to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--decisions", str(bad), "--out",
                                   str(tmp_path / "ev2")])
    assert res.exit_code == 2 and "A_NOPE" in res.output
    assert not (tmp_path / "ev2").exists()
