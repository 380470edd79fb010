"""MLflow tracking, registry aliases and promotion against a real SQLite store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xgboost as xgb  # noqa: E402
import yaml  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from telco_nbo import tracking as T  # noqa: E402
from telco_nbo.config import get_settings  # noqa: E402
from telco_nbo.errors import ConfigError  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _data(seed: int = 0, n: int = 900) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=n, n_features=6, n_informative=3, flip_y=0.15, random_state=seed)
    df = pd.DataFrame(X, columns=[f"account_x{i}" for i in range(6)])
    rng = np.random.default_rng(seed)
    df["account_contract_type"] = pd.Categorical(rng.choice(["month_to_month", "one_year", "two_year"], n))
    df["household_region"] = pd.Categorical(rng.choice(["urban", "rural"], n))
    return df, y


def _fit(X: pd.DataFrame, y: np.ndarray, n_estimators: int) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=n_estimators, max_depth=3, enable_categorical=True, n_jobs=1, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One SQLite store for the module (creating its tables costs seconds), plus the split data."""
    root = tmp_path_factory.mktemp("tracking")
    settings = get_settings(workdir=root, seed=7)
    X, y = _data()
    return {
        "settings": settings,
        "uri": settings.resolved_tracking_uri(),
        "X_train": X.iloc[:600],
        "y_train": y[:600],
        "X_holdout": X.iloc[600:],
        "y_holdout": y[600:],
    }


def _log(store: dict, model: xgb.XGBClassifier, kind: str = "churn", **kw) -> T.TrainingRun:
    auc = roc_auc_score(store["y_holdout"], model.predict_proba(store["X_holdout"])[:, 1])
    args = {
        "X_train": store["X_train"],
        "y_train": store["y_train"],
        "X_holdout": store["X_holdout"],
        "y_holdout": store["y_holdout"],
        "holdout_metrics": {"roc_auc": auc},
        "settings": store["settings"],
        "tracking_uri": store["uri"],
    }
    args.update(kw)
    return T.log_training_run(kind, model, **args)


@pytest.fixture(scope="module")
def first(store: dict) -> tuple[T.TrainingRun, xgb.XGBClassifier]:
    model = _fit(store["X_train"], store["y_train"], 40)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    run = _log(
        store,
        model,
        params={"search": "none"},
        metrics={"cv_roc_auc": 0.9},
        config={"model": "churn", "seed": 7, "path": Path("/data")},
        figures={"calibration": fig},
        reference_max_rows=250,
    )
    plt.close(fig)
    return run, model


def test_first_version_is_champion_and_challenger(first, store):
    run, _ = first
    assert run.model_name == "telco-churn" and run.model_version == 1
    assert set(run.aliases) == {"challenger", "champion"}
    client = mlflow.MlflowClient(store["uri"])
    mv = client.get_model_version_by_alias("telco-churn", "champion")
    assert str(mv.version) == "1" and mv.run_id == run.run_id
    assert mv.tags["telco_nbo.promotion.basis"] == "first_version"
    assert mv.tags["telco_nbo.holdout_digest"] == run.holdout_digest


def test_run_records_params_metrics_lineage_and_artifacts(first, store, tmp_path):
    run, model = first
    client = mlflow.MlflowClient(store["uri"])
    r = client.get_run(run.run_id)
    assert client.get_experiment(r.info.experiment_id).name == "telco-churn"
    assert client.get_experiment(r.info.experiment_id).artifact_location.startswith(
        store["settings"].resolved_artifact_root()
    )
    assert r.data.params["n_estimators"] == "40" and r.data.params["search"] == "none"
    assert r.data.params["model_class"] == "XGBClassifier"
    assert r.data.metrics["cv_roc_auc"] == 0.9 and 0.5 < r.data.metrics["holdout_roc_auc"] <= 1
    assert r.data.metrics["n_train"] == 600

    inputs = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in r.inputs.dataset_inputs
    }
    assert inputs["training"].digest == run.training_digest == r.data.tags["telco_nbo.training_digest"]
    assert inputs["holdout"].digest == run.holdout_digest
    assert run.training_digest != run.holdout_digest
    assert json.loads(inputs["holdout"].profile)["num_rows"] == 300

    files = {a.path for a in client.list_artifacts(run.run_id)} | {
        a.path for d in ("config", "figures", "reference", "holdout") for a in client.list_artifacts(run.run_id, d)
    }
    assert {"config/resolved_config.yaml", "figures/calibration.png", "reference/reference.parquet", "holdout/holdout.parquet"} <= files
    cfg = yaml.safe_load(Path(client.download_artifacts(run.run_id, "config/resolved_config.yaml", str(tmp_path))).read_text())
    assert cfg == {"model": "churn", "seed": 7, "path": "/data"}

    ref = pd.read_parquet(client.download_artifacts(run.run_id, r.data.tags["telco_nbo.reference_artifact"], str(tmp_path)))
    assert len(ref) == 250 and {"target", "prediction"} <= set(ref.columns)
    assert isinstance(ref["account_contract_type"].dtype, pd.CategoricalDtype)
    # The scores stored are the model's own on those rows.
    feats = ref.drop(columns=["target", "prediction"])
    np.testing.assert_allclose(ref["prediction"], model.predict_proba(feats)[:, 1], rtol=1e-6)


def test_model_is_logged_in_xgboost_format_with_signature_and_example(first, store, tmp_path):
    run, model = first
    with T.tracking_session(store["uri"]):
        local = Path(mlflow.artifacts.download_artifacts(f"models:/telco-churn/{run.model_version}", dst_path=str(tmp_path)))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"]["model_format"] == "ubj"
    assert (local / "model.ubj").exists() and not list(local.glob("*.pkl"))
    sig_inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in sig_inputs] == list(store["X_train"].columns)
    assert "input_example.json" in {p.name for p in local.iterdir()}


def test_load_champion_returns_the_xgboost_model(first, store):
    run, model = first
    loaded, info = T.load_champion("churn", store["uri"])
    assert isinstance(loaded, xgb.XGBClassifier)
    assert info.version == 1 and info.run_id == run.run_id and "champion" in info.aliases
    np.testing.assert_allclose(loaded.predict_proba(store["X_holdout"]), model.predict_proba(store["X_holdout"]), rtol=1e-6)
    ref = T.load_reference_frame("telco-churn", tracking_uri=store["uri"])
    assert len(ref) == 250


def test_worse_challenger_is_refused_and_better_one_promoted(first, store):
    client = mlflow.MlflowClient(store["uri"])
    worse = _log(store, _fit(store["X_train"], store["y_train"], 1))
    assert worse.aliases == ("challenger",) and worse.model_version == 2
    decision = T.promote("telco-churn", tracking_uri=store["uri"])
    assert not decision.promoted and decision.basis == "same_holdout_logged_metrics"
    assert decision.challenger_score < decision.champion_score
    assert decision.champion_version == 1 and decision.holdout_digest == worse.holdout_digest
    assert str(client.get_model_version_by_alias("telco-churn", "champion").version) == "1"
    tags = client.get_model_version("telco-churn", "2").tags
    assert tags["telco_nbo.promotion.decision"] == "refused"
    assert float(tags["telco_nbo.promotion.challenger_score"]) == decision.challenger_score
    assert float(tags["telco_nbo.promotion.champion_score"]) == decision.champion_score
    assert "does not beat" in tags["telco_nbo.promotion.reason"]

    better = _log(store, _fit(store["X_train"], store["y_train"], 120))
    decision = T.promote("churn", tracking_uri=store["uri"])
    first_auc = client.get_run(first[0].run_id).data.metrics["holdout_roc_auc"]
    if decision.challenger_score > first_auc:
        assert decision.promoted
        assert str(client.get_model_version_by_alias("telco-churn", "champion").version) == str(better.model_version)
        assert client.get_model_version("telco-churn", str(better.model_version)).tags["telco_nbo.promotion.decision"] == "promoted"
    else:  # pragma: no cover - the data are seeded; this only documents the rule
        assert not decision.promoted

    # Asking again changes nothing: the challenger already is the champion.
    again = T.promote("churn", tracking_uri=store["uri"])
    assert not again.promoted and again.basis in ("already_champion", "same_holdout_logged_metrics")

    # A metric of unknown direction needs to be told which way is better.
    with pytest.raises(ConfigError, match="direction"):
        T.promote("churn", metric="mystery", tracking_uri=store["uri"])


def test_different_holdout_is_rescored_on_the_challengers(first, store):
    """A challenger trained on a new split is compared by re-scoring both on its holdout."""
    X, y = _data(seed=0)
    X2_tr, y2_tr, X2_ho, y2_ho = X.iloc[300:], y[300:], X.iloc[:300], y[:300]
    model = _fit(X2_tr, y2_tr, 60)
    uri = store["uri"]
    run = T.log_training_run(
        "propensity", _fit(store["X_train"], store["y_train"], 30),
        X_train=store["X_train"], y_train=store["y_train"], X_holdout=store["X_holdout"], y_holdout=store["y_holdout"],
        holdout_metrics={"roc_auc": 0.5}, settings=store["settings"], tracking_uri=uri,
    )  # fmt: skip
    assert set(run.aliases) == {"challenger", "champion"}
    champion, _ = T.load_champion("propensity", uri)
    new = T.log_training_run(
        "propensity", model, X_train=X2_tr, y_train=y2_tr, X_holdout=X2_ho, y_holdout=y2_ho,
        holdout_metrics={"roc_auc": 0.5}, settings=store["settings"], tracking_uri=uri,
    )  # fmt: skip
    assert new.holdout_digest != run.holdout_digest
    decision = T.promote("propensity", tracking_uri=uri)
    assert decision.basis == "rescored_on_challenger_holdout"
    assert decision.holdout_digest == new.holdout_digest
    assert decision.challenger_score == pytest.approx(roc_auc_score(y2_ho, model.predict_proba(X2_ho)[:, 1]))
    assert decision.champion_score == pytest.approx(roc_auc_score(y2_ho, champion.predict_proba(X2_ho)[:, 1]))
    assert decision.promoted == (decision.challenger_score > decision.champion_score)

    # A metric that cannot be recomputed from a frame on different holdouts: refused, with why.
    T.log_training_run(
        "propensity", model, X_train=X2_tr, y_train=y2_tr, X_holdout=store["X_holdout"], y_holdout=store["y_holdout"],
        holdout_metrics={"qini": 0.1}, settings=store["settings"], tracking_uri=uri,
    )  # fmt: skip
    refused = T.promote("propensity", metric="qini", tracking_uri=uri)
    assert not refused.promoted and refused.basis == "not_comparable"
    assert "qini" in refused.reason


def test_bad_input_creates_no_run(store):
    client = mlflow.MlflowClient(store["uri"])
    before = {e.name: len(client.search_runs([e.experiment_id])) for e in client.search_experiments()}
    model = _fit(store["X_train"], store["y_train"], 5)
    with pytest.raises(ConfigError, match="target has shape"):
        _log(store, model, y_holdout=store["y_holdout"][:10])
    with pytest.raises(ConfigError, match="reserved"):
        _log(store, model, X_train=store["X_train"].assign(prediction=1.0))
    with pytest.raises(ConfigError, match="unknown model kind"):
        _log(store, model, kind="fraud")
    after = {e.name: len(client.search_runs([e.experiment_id])) for e in client.search_experiments()}
    assert after == before


def test_training_run_fails_the_run_with_its_error_and_finishes_it_otherwise(store):
    """The one lifecycle: an exception inside the block marks the run FAILED with the error, then propagates."""
    client = mlflow.MlflowClient(store["uri"])
    kw = {"tracking_uri": store["uri"], "settings": store["settings"]}
    with pytest.raises(ValueError, match="fit blew up"):
        with T.training_run("churn", run_name="doomed", **kw) as run:
            failed_id = run.run_id
            assert client.get_run(failed_id).info.status == "RUNNING"
            raise ValueError("fit blew up")
    failed = client.get_run(failed_id)
    assert failed.info.status == "FAILED" and failed.data.tags[T.TAG_ERROR] == "ValueError: fit blew up"
    assert failed.data.tags[T.TAG_KIND] == "churn" and failed.info.run_name == "doomed"

    model = _fit(store["X_train"], store["y_train"], 5)
    record, logger = T.xgboost_record(model, X_train=store["X_train"], y_train=store["y_train"],
                                      X_holdout=store["X_holdout"], y_holdout=store["y_holdout"],
                                      texts={"evaluation/note.txt": "hello"})
    with T.training_run("churn", run_name="fine", **kw) as run:
        logged = run.log(record, logger, register=False)
        run.log_texts({"evaluation/after.txt": "late"})
    done = client.get_run(logged.run_id)
    assert done.info.status == "FINISHED" and T.TAG_ERROR not in done.data.tags
    assert logged.model_version is None and done.data.tags[T.TAG_HOLDOUT_DIGEST] == record.holdout_digest
    assert {"evaluation/note.txt", "evaluation/after.txt"} <= {f.path for f in client.list_artifacts(logged.run_id, "evaluation")}


def test_run_record_is_computed_without_a_store(store):
    """The record is a value: digests, reference sample, metrics filtered to finite numbers; no MLflow call."""
    scores = np.linspace(0, 1, len(store["X_train"]))
    rec = T.run_record(X_train=store["X_train"], y_train=store["y_train"], X_holdout=store["X_holdout"],
                       y_holdout=store["y_holdout"], train_scores=scores, holdout_scores=np.zeros(len(store["X_holdout"])),
                       metrics={"a": 1.0, "b": float("nan"), "c": None}, holdout_metrics={"roc_auc": 0.7},
                       extra_train={"treatment": np.ones(len(store["X_train"]))}, reference_max_rows=50)
    assert rec.metrics == {"a": 1.0, "holdout_roc_auc": 0.7, "n_train": 600.0, "n_holdout": 300.0}
    assert list(rec.reference.columns[-3:]) == ["treatment", T.TARGET_COLUMN, T.SCORE_COLUMN] and len(rec.reference) == 50
    assert rec.training_digest == T.frame_digest(store["X_train"], store["y_train"])
    with pytest.raises(ConfigError, match="same columns"):
        T.run_record(X_train=store["X_train"], y_train=store["y_train"], X_holdout=store["X_holdout"].iloc[:, ::-1],
                     y_holdout=store["y_holdout"], train_scores=scores, holdout_scores=np.zeros(300))


def test_tracking_session_restores_global_state(store):
    before_uri = mlflow.get_tracking_uri()
    before_env = os.environ.get("MLFLOW_TRACKING_URI")
    uri = store["uri"]  # an existing store: a new SQLite file costs seconds of migrations
    with pytest.raises(RuntimeError):
        with T.tracking_session(uri):
            assert mlflow.get_tracking_uri() == uri
            raise RuntimeError("boom")
    assert mlflow.get_tracking_uri() == before_uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == before_env


def test_promote_cli(first, store):
    from telco_nbo.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["promote", "churn", "--tracking-uri", store["uri"], "--json"])
    assert result.exit_code == 0, result.output
    decision = T.PromotionDecision.model_validate_json(result.stdout)
    assert decision.model_name == "telco-churn"
    # Round trip of the result value.
    assert T.PromotionDecision.model_validate_json(decision.model_dump_json()) == decision

    result = runner.invoke(app, ["promote", "clv", "--tracking-uri", store["uri"]])
    assert result.exit_code == 2 and "no 'challenger'" in result.output
    result = runner.invoke(app, ["promote", "fraud", "--tracking-uri", store["uri"]])
    assert result.exit_code == 2 and "unknown model kind" in result.output
