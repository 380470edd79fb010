"""Optuna tuning with XGBoost pruning and nested MLflow runs, on real SQLite stores."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification

from telco_nbo.errors import ConfigError
from telco_nbo.tuning import metric_direction, pruning_callback, tune

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_ROUNDS = 20


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=700, n_features=8, n_informative=4, flip_y=0.1, random_state=3)
    df = pd.DataFrame(X, columns=[f"account_x{i}" for i in range(8)])
    df["account_contract_type"] = pd.Categorical(np.random.default_rng(3).choice(["m2m", "one", "two"], len(df)))
    return df, y


def make_model(params: dict) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=N_ROUNDS, enable_categorical=True, n_jobs=1, random_state=0, **params)


def search_space(trial: optuna.Trial) -> dict:
    # A learning-rate range down to 1e-4 makes some trials hopeless early: the pruner must stop them.
    return {
        "max_depth": trial.suggest_int("max_depth", 1, 6),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 0.5, log=True),
    }


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, _mlflow_template) -> dict:
    root = tmp_path_factory.mktemp("tuning")
    shutil.copyfile(_mlflow_template, root / "mlflow.db")
    X, y = _data()
    common = {
        "X_train": X.iloc[:450],
        "y_train": y[:450],
        "X_valid": X.iloc[450:],
        "y_valid": y[450:],
        "study_name": "telco-churn-test",
        "storage": f"sqlite:///{root / 'optuna.db'}",
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "metric": "auc",
        "seed": 11,
        "report_interval": 4,
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3),
    }
    first = tune(make_model, search_space, n_trials=9, **common)
    second = tune(make_model, search_space, n_trials=3, **common)
    return {"first": first, "second": second, **common}


def test_trials_are_nested_runs_with_their_state(tuned):
    first = tuned["first"]
    assert first.n_trials == 9 and first.direction == "maximize" and first.metric == "auc"
    client = mlflow.MlflowClient(tuned["tracking_uri"])
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["telco_nbo.optuna.study"] == "telco-churn-test"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.parent_run_id}'", max_results=100
    )
    assert len(children) == 9
    states = [c.data.tags["telco_nbo.optuna.state"] for c in children]
    assert set(states) <= {"COMPLETE", "PRUNED"}
    for child in children:
        assert set(child.data.params) == {"max_depth", "learning_rate"}
        assert child.data.tags["pruned"] == str(child.data.tags["telco_nbo.optuna.state"] == "PRUNED").lower()
        assert "auc" in child.data.metrics and child.info.status == "FINISHED"
    best_child = max((c for c in children if c.data.tags["telco_nbo.optuna.state"] == "COMPLETE"), key=lambda c: c.data.metrics["auc"])
    assert best_child.data.metrics["auc"] == pytest.approx(first.best_value)
    assert parent.data.metrics["tuning_best_auc"] == pytest.approx(first.best_value)


def test_pruning_happened(tuned):
    first = tuned["first"]
    assert first.n_pruned >= 1, "a pruner with 2 startup trials on a 1e-4..0.5 learning rate must prune"
    study = optuna.load_study(study_name=first.study_name, storage=tuned["storage"])
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    # Pruned trials stopped before the last boosting round.
    assert all(max(t.intermediate_values) < N_ROUNDS - 1 for t in pruned)


def test_second_call_continues_the_same_study(tuned):
    first, second = tuned["first"], tuned["second"]
    study = optuna.load_study(study_name="telco-churn-test", storage=tuned["storage"])
    assert len(study.trials) == 12
    assert [t.number for t in study.trials] == list(range(12))
    assert second.n_trials == 3
    assert second.n_complete + second.n_pruned + second.n_failed == 12
    assert second.best_value >= first.best_value
    assert second.best_value == pytest.approx(study.best_value)
    # The best result reproduces: refit with the best params scores the recorded value.
    model = make_model(second.best_params).set_params(eval_metric="auc")
    model.fit(tuned["X_train"], tuned["y_train"], eval_set=[(tuned["X_valid"], tuned["y_valid"])], verbose=False)
    assert model.evals_result()["validation_0"]["auc"][-1] == pytest.approx(second.best_value)


def test_direction_mismatch_and_bad_metric_are_named(tuned):
    common = {k: tuned[k] for k in ("X_train", "y_train", "X_valid", "y_valid", "storage", "tracking_uri")}
    with pytest.raises(ConfigError, match="stored as maximize"):
        tune(make_model, search_space, n_trials=1, study_name="telco-churn-test", direction="minimize", **common)
    with pytest.raises(ConfigError, match="lacks 'auc'"):
        tune(
            lambda p: make_model(p).set_params(eval_metric="logloss"),
            search_space,
            n_trials=1,
            study_name="telco-churn-other",
            tracking=False,
            **{k: v for k, v in common.items() if k != "tracking_uri"},
        )
    with pytest.raises(ConfigError, match="n_trials"):
        tune(make_model, search_space, n_trials=0, study_name="x", **common)


def test_pruning_callback_reports_each_round_to_the_trial(tmp_path):
    X, y = _data()
    study = optuna.create_study(direction="minimize", storage=f"sqlite:///{tmp_path / 'o.db'}")
    trial = study.ask()
    model = xgb.XGBClassifier(n_estimators=6, n_jobs=1, enable_categorical=True, eval_metric="logloss")
    model.set_params(callbacks=[pruning_callback(trial, "logloss")])
    model.fit(X, y, eval_set=[(X, y)], verbose=False)
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == list(range(6))
    assert reported[5] == pytest.approx(model.evals_result()["validation_0"]["logloss"][5])
    assert metric_direction("auc") == "maximize" and metric_direction("logloss") == "minimize"
    assert metric_direction("ndcg@5") == "maximize"


def test_trials_nest_under_a_training_run_that_then_holds_the_model(tuned, tmp_path):
    """The pipeline shape: one run per training, tuning trials nested in it, the model logged to it."""
    from telco_nbo import tracking as T
    from telco_nbo.config import get_settings

    settings = get_settings(workdir=tmp_path)
    uri = tuned["tracking_uri"]
    run_id = T.start_run("churn", run_name="train-churn", tracking_uri=uri, settings=settings)
    result = tune(
        make_model, search_space, n_trials=2, study_name="telco-churn-nested", parent_run_id=run_id,
        **{k: tuned[k] for k in ("X_train", "y_train", "X_valid", "y_valid", "storage", "tracking_uri", "seed")},
    )  # fmt: skip
    client = mlflow.MlflowClient(uri)
    assert result.parent_run_id == run_id
    assert client.get_run(run_id).info.status == "RUNNING"  # tune does not finish a run it did not start
    children = client.search_runs([client.get_run(run_id).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == 2
    model = make_model(result.best_params).fit(tuned["X_train"], tuned["y_train"])
    logged = T.log_training_run(
        "churn", model, X_train=tuned["X_train"], y_train=tuned["y_train"], X_holdout=tuned["X_valid"],
        y_holdout=tuned["y_valid"], params={"tuning_study": result.study_name}, run_id=run_id, register=False,
        tracking_uri=uri, settings=settings,
    )  # fmt: skip
    assert logged.run_id == run_id and logged.model_version is None
    assert client.get_run(run_id).info.status == "FINISHED"
