"""Training end to end against a real MLflow SQLite store and a real Optuna SQLite storage.

One small generated world (3,000 households) is trained once per module (2 Optuna trials, few
trees); the tests then read the store: runs in the right experiments with nested trials,
artifacts, lineage, registered versions and aliases, a weak challenger refused, the champion
score provider and ``telco-nbo rank`` on the trained champions, and a malformed folder stopped
before any run exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.errors import ConfigError, DataValidationError

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SMALL = {"n_estimators": 30, "max_depth": 3}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Generate a world, train the four models once, return paths and results."""
    from telco_nbo.data.io import write_world
    from telco_nbo.data.synthetic import generate_world
    from telco_nbo.training.config import load_config
    from telco_nbo.vocabulary import MODEL_KINDS as KINDS
    from telco_nbo.training.pipeline import train_all

    root = tmp_path_factory.mktemp("training")
    data = root / "data"
    write_world(generate_world(3000, seed=11), data)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    storage = f"sqlite:///{root / 'optuna.db'}"
    configs = {k: load_config(k, trials=2, params=SMALL, tracking_uri=uri, optuna_storage=storage, shap_rows=150)
               for k in KINDS}
    configs["clv"] = configs["clv"].model_copy(update={"trials": 0})
    results = train_all(data, configs)
    return {"root": root, "data": data, "uri": uri, "storage": storage, "results": results, "configs": configs}


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _artifacts(client, run_id: str, path: str = "") -> set[str]:
    out: set[str] = set()
    for f in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return out


def test_one_experiment_per_kind_with_nested_trials(store: dict) -> None:
    client = _client(store["uri"])
    assert set(store["results"]) == {"churn", "propensity", "uplift", "clv"}
    for kind, result in store["results"].items():
        exp = client.get_experiment_by_name(f"telco-{kind}")
        assert exp is not None, kind
        run = client.get_run(result.run_id)
        assert run.info.experiment_id == exp.experiment_id and run.info.status == "FINISHED"
        assert run.data.tags["telco_nbo.model_kind"] == kind
        children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
        if kind == "clv":
            assert children == []  # its hazard comes from the churn model trained just before
        else:
            assert len(children) == 2, kind
            assert all("trial-" in c.info.run_name and c.data.tags["telco_nbo.optuna.state"] in ("COMPLETE", "PRUNED")
                       for c in children)
    # The studies live in the Optuna storage given, named after kind + training data digest.
    import optuna

    names = {s.study_name for s in optuna.get_all_study_summaries(store["storage"])}
    assert any(n.startswith("telco-churn-") for n in names) and any(n.startswith("telco-uplift-") for n in names)


def test_artifacts_lineage_and_config(store: dict) -> None:
    client = _client(store["uri"])
    churn = store["results"]["churn"]
    arts = _artifacts(client, churn.run_id)
    for needed in ("figures/shap_beeswarm.png", "figures/shap_bar.png", "figures/calibration.png",
                   "figures/decile_lift.png", "reference/reference.parquet", "holdout/holdout.parquet",
                   "config/resolved_config.yaml", "evaluation/churn_holdout.json"):
        assert needed in arts, needed
    assert any(a.startswith("figures/shap_dependence_") for a in arts)
    run = client.get_run(churn.run_id)
    digests = {d.dataset.digest for d in run.inputs.dataset_inputs}
    assert digests == {run.data.tags["telco_nbo.training_digest"], run.data.tags["telco_nbo.holdout_digest"]}
    config = client.download_artifacts(churn.run_id, "config/resolved_config.yaml", str(store["root"] / "cfg"))
    text = Path(config).read_text()
    assert "max_depth: 3" in text and "as_of: '2025-12-31'" in text
    for key in ("holdout_roc_auc", "holdout_pr_auc", "holdout_log_loss", "holdout_brier", "holdout_lift_top_decile"):
        assert key in run.data.metrics

    uplift = store["results"]["uplift"]
    arts = _artifacts(client, uplift.run_id)
    assert {"figures/qini_curve.png", "figures/uplift_by_decile.png", "components/spec.json",
            "components/model_control.json", "components/effect_treated.json"} <= arts
    # Model in XGBoost / JSON files, never a pickle.
    model_files = _artifacts(client, uplift.run_id, "")
    assert not [a for a in model_files if a.endswith((".pkl", ".pickle", ".cloudpickle"))]
    m = client.get_run(uplift.run_id).data.metrics
    assert {"holdout_qini", "holdout_auuc", "holdout_qini_share_of_oracle", "holdout_tau_spearman",
            "t_learner_qini", "x_learner_qini"} <= set(m)

    prop = store["results"]["propensity"]
    assert "propensity/offers.json" in _artifacts(client, prop.run_id)
    assert any(k.startswith("holdout_auc_") for k in client.get_run(prop.run_id).data.metrics)
    clv = client.get_run(store["results"]["clv"].run_id).data.metrics
    assert clv["holdout_truth_clv_pearson"] > 0.5


def test_registered_versions_with_aliases(store: dict) -> None:
    client = _client(store["uri"])
    for kind in ("churn", "propensity", "uplift", "clv"):
        mv = client.get_model_version_by_alias(f"telco-{kind}", "champion")
        assert int(mv.version) == 1 and set(mv.aliases) == {"champion", "challenger"}
        assert mv.tags["telco_nbo.promotion.basis"] == "first_version"


def test_component_models_reload_to_the_same_scores(store: dict) -> None:
    """Train-serve parity: the pyfunc loads XGBoost JSON files and scores exactly as in training."""
    import mlflow

    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features
    from telco_nbo.tracking import tracking_session
    from telco_nbo.training.pyfunc import load_pyfunc_scorer

    world = load_world(store["data"])
    feats = build_account_features(world.tables, pd.Timestamp("2025-12-31")).head(300)
    learner = store["results"]["uplift"].details["learner"]
    from telco_nbo.features import to_model_matrix

    with tracking_session(store["uri"]):
        scorer = load_pyfunc_scorer("models:/telco-uplift@champion")
        # The served tau is the calibrated one (out-of-fold calibration saved with the model).
        np.testing.assert_allclose(scorer.predict_frame(feats)["tau"],
                                   learner.predict_calibrated(to_model_matrix(feats)), atol=1e-6)
        assert scorer.learner.calibration_ == pytest.approx(learner.calibration_)
        pyfunc = mlflow.pyfunc.load_model("models:/telco-clv@champion")
        clv = pyfunc.unwrap_python_model().scorer.predict_frame(feats)
    assert (clv["clv"] > 0).all() and clv["churn_p90"].between(0, 1).all()
    spec = json.loads(json.dumps(scorer.spec))
    assert spec["learner"] == "x" and spec["propensity"] == pytest.approx(learner.propensity_)


def test_weak_challenger_is_registered_but_not_promoted(store: dict) -> None:
    from telco_nbo.tracking import promote
    from telco_nbo.training.config import load_config
    from telco_nbo.training.pipeline import train_churn

    cfg = load_config("churn", trials=0, params={"n_estimators": 2, "max_depth": 1}, tracking_uri=store["uri"], shap_rows=100)
    weak = train_churn(store["data"], cfg)
    assert weak.model_version == 2 and weak.aliases == ("challenger",)
    assert weak.holdout_metrics["roc_auc"] < store["results"]["churn"].holdout_metrics["roc_auc"]
    decision = promote("churn", "roc_auc", tracking_uri=store["uri"])
    assert not decision.promoted and decision.basis == "same_holdout_logged_metrics"
    client = _client(store["uri"])
    assert str(client.get_model_version_by_alias("telco-churn", "champion").version) == "1"
    tags = client.get_model_version("telco-churn", "2").tags
    assert tags["telco_nbo.promotion.decision"] == "refused" and float(tags["telco_nbo.promotion.champion_score"]) > 0


def test_champion_score_provider_returns_valid_scores(store: dict) -> None:
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features
    from telco_nbo.nbo.catalog import load_catalog
    from telco_nbo.nbo.scores import align_scores
    from telco_nbo.scoring import ChampionScoreProvider

    world = load_world(store["data"])
    feats = build_account_features(world.tables, pd.Timestamp("2025-12-31")).head(500)
    catalog = load_catalog()
    scores = ChampionScoreProvider(tracking_uri=store["uri"]).score(feats, catalog)
    aligned = align_scores(scores, feats["account_id"].to_numpy(), np.array([o.offer_id for o in catalog.offers]))
    assert aligned.churn.shape == (500,) and np.isfinite(aligned.clv).all()
    assert set(scores.model_versions) == {"telco-churn", "telco-propensity", "telco-uplift", "telco-clv"}
    assert scores.offers["propensity"].between(0, 1).all() and scores.offers["offer_id"].nunique() >= 5
    assert scores.reasons is not None and scores.reasons["reason"].str.contains("raises churn risk").all()


def test_uplift_run_carries_the_logged_per_offer_effects(store: dict) -> None:
    """The uplift run estimates every offer's effect from the logged contacts and saves it in its spec."""
    from telco_nbo.scoring.champions import ChampionModels

    client = _client(store["uri"])
    run = client.get_run(store["results"]["uplift"].run_id)
    # The exploration's logged choices (the policy that can choose "no contact"): too few controls
    # per offer on this small world for any estimate.
    assert run.data.metrics["logged_units"] > 300
    spec = ChampionModels.load(store["uri"]).uplift.spec
    assert spec["offer_effects"]["effects"] == {} and spec["offer_effects"]["n_control"] < 200
    assert set(spec["offer_effects"]["too_few"]) >= {"DATA_UPSELL", "HOME_FIBER"}


def test_scorer_values_offers_with_their_own_logged_effect(store: dict) -> None:
    """Offers with a logged effect get ``-rho x churn`` (and its error); the experiment's offer keeps its own."""
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features
    from telco_nbo.models.offer_effects import OfferEffect, OfferEffects
    from telco_nbo.nbo.catalog import load_catalog
    from telco_nbo.nbo.rules import as_columns
    from telco_nbo.scoring.champions import ChampionModels
    from telco_nbo.scoring.fast import FastScorer
    from telco_nbo.scoring.provider import scores_from_aligned

    models = ChampionModels.load(store["uri"])
    effect = lambda o, r, se: OfferEffect(o, r, se, (r - 2 * se, r + 2 * se), 500, 20, 25.0, r / 2, se / 2)  # noqa: E731
    logged = OfferEffects({"HOME_FIBER": effect("HOME_FIBER", -0.4, 0.1),
                           "RETENTION_DISCOUNT": effect("RETENTION_DISCOUNT", -0.9, 0.1)}, 2000, 600, 1.0, 90)
    models.uplift.spec["offer_effects"] = logged.to_spec()
    catalog = load_catalog()
    feats = build_account_features(load_world(store["data"]).tables, pd.Timestamp("2025-12-31")).head(200)
    aligned = FastScorer(models, catalog).score(as_columns(feats))
    ids = [o.offer_id for o in catalog.offers]
    fiber, disc = ids.index("HOME_FIBER"), ids.index("RETENTION_DISCOUNT")
    np.testing.assert_allclose(aligned.offer_uplift[:, fiber], 0.2 * aligned.churn)
    np.testing.assert_allclose(aligned.offer_uplift_se[:, fiber], 0.05 * aligned.churn)
    # The discount's effect comes from its experiment (account level), never from the logs.
    assert np.isnan(aligned.offer_uplift[:, disc]).all()
    others = [k for k in range(len(ids)) if k not in (fiber, disc)]
    assert np.isnan(aligned.offer_uplift[:, others]).all()
    scores = scores_from_aligned(aligned, feats["account_id"].to_numpy(), np.array(ids, dtype=object))
    assert {"uplift", "uplift_se"} <= set(scores.offers.columns)


def test_rank_cli_writes_parquet_with_champions(store: dict) -> None:
    out = store["root"] / "ranking.parquet"
    result = CliRunner().invoke(app, ["rank", "--data", str(store["data"]), "--out", str(out), "--tracking-uri", store["uri"]])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["selected"].any() and frame.loc[frame["selected"], "expected_value"].notna().all()
    # A campaign's limits: the contacts fit them, the report says which binds.
    contacts = int((frame["selected"] & (frame["rank"] == 1)).sum())
    cfg = store["root"] / "campaign.yaml"
    cfg.write_text(f"capacity:\n  max_contacts: {contacts // 2}\n")
    limited = store["root"] / "limited.parquet"
    result = CliRunner().invoke(app, ["rank", "--data", str(store["data"]), "--out", str(limited), "--tracking-uri",
                                      store["uri"], "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(limited)
    assert int((got["selected"] & (got["rank"] == 1)).sum()) == contacts // 2
    assert "budget" in result.output and "binding" in result.output
    report = json.loads((store["root"] / "limited.capacity.json").read_text())
    assert report["binding"] == ["budget"] and report["contacts_after"] == contacts // 2


def test_malformed_data_stops_before_any_run(store: dict, tmp_path: Path) -> None:
    from telco_nbo.training.config import load_config
    from telco_nbo.training.pipeline import train_churn

    bad = tmp_path / "bad"
    shutil.copytree(store["data"], bad)
    accounts = pd.read_parquet(bad / "accounts.parquet").drop(columns=["contract_type"])
    accounts.to_parquet(bad / "accounts.parquet")
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    with pytest.raises(DataValidationError, match="contract_type"):
        train_churn(bad, load_config("churn", trials=1, tracking_uri=uri))
    assert not db.exists()  # not even a store was created, let alone a run
    result = CliRunner().invoke(app, ["train", "churn", "--data", str(bad), "--tracking-uri", uri, "--trials", "1"])
    assert result.exit_code == 2 and "contract_type" in result.output
    assert not db.exists()


def test_each_kind_is_prepare_fit_evaluate_without_mlflow(store: dict, tmp_path: Path) -> None:
    """The per-kind steps are plain functions: they run, and agree with the logged run, with no store at all."""
    from telco_nbo.training import churn, clv, propensity, uplift
    from telco_nbo.training.config import load_config
    from telco_nbo.training.steps import load_world

    db = tmp_path / "never.db"
    world = load_world(store["data"])
    cfg = load_config("churn", trials=0, params=SMALL, tracking_uri=f"sqlite:///{db}", shap_rows=50)
    data = churn.prepare(world, cfg)
    assert not (data.splits.holdout & data.splits.valid).any()
    fitted = churn.fit(data, cfg)
    result = churn.evaluate(world, data, fitted, cfg)
    assert 0.5 < result.holdout_metrics["roc_auc"] <= 1 and "calibration" in result.figures
    # The holdout (same households, same seed) is the one the logged churn run evaluated on.
    logged = store["results"]["churn"].holdout_metrics
    assert result.evaluation.n == int(_client(store["uri"]).get_run(store["results"]["churn"].run_id).data.metrics["n_holdout"])
    assert set(result.holdout_metrics) == set(logged)

    ucfg = load_config("uplift", trials=0, params=SMALL, shap_rows=50)
    udata = uplift.prepare(world, ucfg)
    ufit = uplift.fit(udata, ucfg)
    uresult = uplift.evaluate(udata, ufit, ucfg)
    assert {"qini", "auuc"} <= set(uresult.holdout_metrics) and {"x", "t"} == set(uresult.taus)

    ccfg = load_config("clv", trials=0, params=SMALL)
    cdata = clv.prepare(world, ccfg)
    cresult = clv.evaluate(world, cdata, clv.fit(cdata, ccfg, fitted.model), ccfg)
    assert cdata.method == "hazard" and cresult.holdout_metrics["mean_clv"] > 0

    # The evaluation the Dask propensity trainer shares: headline plus AUC within each offer.
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 400), rng.random(400)
    offers = np.array(["A", "B"] * 200, dtype=object)
    ev = propensity.evaluate_holdout(y, p, offers)
    assert {"roc_auc", "auc_A", "auc_B", "auc_per_offer_mean"} <= set(ev.holdout_metrics)
    assert not db.exists()


def test_configuration_errors_are_clear(tmp_path: Path) -> None:
    from telco_nbo.training.config import load_config

    bad = tmp_path / "churn.yaml"
    bad.write_text("kind: churn\ntrials: -1\n")
    with pytest.raises(ConfigError, match="trials"):
        load_config("churn", bad)
    bad.write_text("kind: uplift\n")
    with pytest.raises(ConfigError, match="for kind 'uplift'"):
        load_config("churn", bad)
    with pytest.raises(ConfigError, match="unknown model kind"):
        load_config("ltv")
    result = CliRunner().invoke(app, ["train", "ltv", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "unknown model" in result.output


def test_household_split_is_stable_and_disjoint() -> None:
    from telco_nbo.training.data import household_split

    ids = np.array([f"H{i:07d}" for i in range(5000)], dtype=object)
    a = household_split(ids, 0.25, seed=1)
    b = household_split(ids[::-1], 0.25, seed=1)[::-1]
    assert np.array_equal(a, b)  # order does not matter
    assert np.array_equal(household_split(ids[:100], 0.25, 1), a[:100])  # subsets agree
    assert 0.22 < a.mean() < 0.28
    assert not np.array_equal(a, household_split(ids, 0.25, seed=2))


def test_rank_cli_applies_a_readouts_timing_rule(store: dict, tmp_path: Path) -> None:
    """`telco-nbo rank --timing-rule` closes the loop from an A/B readout to the ranking."""
    from telco_nbo.experiments.timing_rule import SegmentDecision, TimingRule

    segments = ("mobile_only", "bundle", "home_only")
    # A readout in which control (no offer) won everywhere: timing-governed offers must vanish.
    rule = TimingRule(
        experiment_id="EXP-TIMING-1", segment_column="product_mix", metric="churned", higher_is_better=False,
        control_arm="control", alpha=0.05, correction="holm", trustworthy=True,
        decisions=[SegmentDecision(segment=s, arm="control", reason="control beats both timings") for s in segments],
    )
    rule_file = tmp_path / "timing_rule.json"
    rule_file.write_text(rule.model_dump_json())
    base, ruled = tmp_path / "base.parquet", tmp_path / "ruled.parquet"
    common = ["rank", "--data", str(store["data"]), "--tracking-uri", store["uri"]]
    assert CliRunner().invoke(app, [*common, "--out", str(base)]).exit_code == 0
    result = CliRunner().invoke(app, [*common, "--out", str(ruled), "--timing-rule", str(rule_file)])
    assert result.exit_code == 0, result.output
    def timing_blocked(path: Path, offer_id: str) -> pd.Series:
        f = pd.read_parquet(path)
        rows = f[f["offer_id"] == offer_id]
        return rows["rule_id"].eq("APPL_TIMING") | rows["also_blocked_by"].fillna("").str.contains("APPL_TIMING")
    # The readout tested the plan review's timing (EXP-TIMING-1): its "do not offer" holds everywhere,
    # where the renewal default let some through; the discount, timed by its own experiment, is not touched.
    assert not timing_blocked(base, "PLAN_REVIEW").all() and timing_blocked(ruled, "PLAN_REVIEW").all()
    assert not timing_blocked(ruled, "RETENTION_DISCOUNT").any()

    bad = tmp_path / "bad.json"
    bad.write_text('{"segment_column": 3}')
    result = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "x.parquet"), "--timing-rule", str(bad)])
    assert result.exit_code == 2 and "not a timing rule" in result.output
    assert not (tmp_path / "x.parquet").exists()
