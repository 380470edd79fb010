"""The promotion gate's absolute quality floor (issue 19): weak models are refused, loudly.

Unit checks of :func:`telco_nbo.quality_floor.check_floor` on holdouts with a known answer, and the
gate through a real MLflow store: a first version no better than a base-rate model is not made
champion, ``promote`` refuses it with the figures, ``promote --force --reason`` overrides and
records who-said-why as version tags.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.quality_floor import AUC_MARGIN, check_floor

runner = CliRunner()


def _binary(n: int, signal: float, seed: int, rate: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + signal * x)))
    y = rng.binomial(1, p)
    return pd.DataFrame({"target": y, "prediction": p if signal else np.full(n, rate) + rng.normal(0, 0.01, n)})


@pytest.mark.slow
def test_churn_floor_refuses_a_base_rate_model_and_passes_a_real_one():
    weak = check_floor("churn", _binary(3000, 0.0, 1))
    assert not weak.passed and weak.metric == "roc_auc" and weak.low < 0.5 < weak.high
    assert "0.5" in weak.detail and "base-rate" in weak.detail
    good = check_floor("churn", _binary(3000, 1.0, 2))
    h = _binary(3000, 1.0, 2)
    assert good.passed and good.value == pytest.approx(roc_auc_score(h["target"], h["prediction"]))
    assert good.low > 0.5 + AUC_MARGIN / 2 and good.low < good.value < good.high
    # Deterministic: the same holdout gives the same interval.
    assert check_floor("churn", h) == good


@pytest.mark.slow
def test_churn_floor_refuses_a_ranking_model_with_useless_probabilities():
    """AUC alone is not enough: probabilities worse than predicting the base rate are refused."""
    h = _binary(3000, 1.0, 3)
    h["prediction"] = np.where(h["prediction"] > 0.2, 0.99, 0.01)  # ranks, but absurdly overconfident
    res = check_floor("churn", h)
    assert res.value > 0.6 and not res.passed and "log loss" in res.detail


def _uplift(n: int, heterogeneous: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=n)
    t = rng.binomial(1, 0.5, n)
    tau = (0.3 * x) if heterogeneous else np.zeros(n)  # drop in churn probability when treated
    y = rng.binomial(1, np.clip(0.4 - t * tau, 0, 1))
    # The stored prediction is the learner's effect on churn (negative = treatment lowers churn).
    return pd.DataFrame({"target": y, "treatment": t, "prediction": -x if heterogeneous else rng.uniform(size=n)})


@pytest.mark.slow
def test_uplift_floor_refuses_a_qini_at_or_below_zero_and_reports_its_interval():
    from telco_nbo.models.uplift import evaluate_uplift, qini_auc_score

    good_h = _uplift(6000, True, 4)
    good = check_floor("uplift", good_h)
    assert good.passed and good.low > 0
    assert good.value == pytest.approx(qini_auc_score(1 - good_h["target"], -good_h["prediction"], good_h["treatment"]))
    assert good.value == pytest.approx(evaluate_uplift(good_h["target"], good_h["treatment"], good_h["prediction"],
                                                       negative_outcome=True).qini_coefficient)
    assert "with its whole interval" in good.detail
    weak = check_floor("uplift", _uplift(6000, False, 5))
    assert weak.low <= 0 <= weak.high
    assert weak.passed == (weak.value > 0)
    assert ("not yet distinguishable" in weak.detail) if weak.passed else ("no better than random" in weak.detail)
    # Worse than random (the ranking reversed): refused.
    bad_h = _uplift(6000, True, 4).assign(prediction=lambda d: -d["prediction"])
    bad = check_floor("uplift", bad_h)
    assert not bad.passed and bad.high < 0 and "not above" in bad.detail


def test_clv_floor_against_a_naive_clv():
    """With the truth: correlation with true CLV; without: the hazard's ranking of churners."""
    from telco_nbo.quality_floor import CLV_MIN_CORRELATION, check_clv_floor

    good = check_floor("clv", pd.DataFrame(), metrics={"holdout_truth_clv_pearson": 0.96, "holdout_roc_auc": 0.6})
    assert good.passed and good.metric == "truth_clv_pearson" and "naive" in good.detail
    weak = check_clv_floor({"holdout_truth_clv_pearson": CLV_MIN_CORRELATION / 2, "holdout_roc_auc": 0.7})
    assert not weak.passed and "below" in weak.detail
    assert check_clv_floor({"holdout_roc_auc": 0.7}).passed  # real data: no truth, the hazard decides
    assert not check_clv_floor({"holdout_roc_auc": 0.505}).passed
    assert not check_clv_floor({}).passed


@pytest.mark.slow
@pytest.mark.integration
def test_gate_refuses_a_weak_first_version_and_force_needs_a_reason(tracking_uri, monkeypatch):
    """Through a real MLflow store: refusal with figures, then a recorded forced promotion."""
    from mlflow import MlflowClient

    from telco_nbo import tracking as T

    monkeypatch.setenv("TELCO_NBO_QUALITY_FLOOR", "true")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200)})
    y = rng.binomial(1, 0.15, 1200)  # labels independent of the features: nothing to learn
    model = xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, random_state=0).fit(X[:800], y[:800])
    run = T.log_training_run("churn", model, X_train=X[:800], y_train=y[:800], X_holdout=X[800:], y_holdout=y[800:],
                             holdout_metrics={"roc_auc": 0.5}, tracking_uri=tracking_uri)
    assert run.aliases == ("challenger",)
    client = MlflowClient(tracking_uri)
    tags = client.get_model_version("telco-churn", "1").tags
    assert tags["telco_nbo.promotion.decision"] == "refused"
    assert "below the quality floor" in tags["telco_nbo.promotion.reason"] and "AUC" in tags["telco_nbo.promotion.quality_floor"]

    res = runner.invoke(app, ["promote", "churn", "--tracking-uri", tracking_uri, "--fail-if-refused"])
    assert res.exit_code == 1 and "below the quality floor" in res.output and "--force --reason" in res.output
    res = runner.invoke(app, ["promote", "churn", "--tracking-uri", tracking_uri, "--force"])
    assert res.exit_code == 2 and "--reason" in res.output
    res = runner.invoke(app, ["promote", "churn", "--tracking-uri", tracking_uri, "--force", "--reason", "pilot on purpose"])
    assert res.exit_code == 0, res.output
    mv = client.get_model_version_by_alias("telco-churn", "champion")
    assert str(mv.version) == "1"
    assert mv.tags["telco_nbo.promotion.forced"] == "true"
    assert mv.tags["telco_nbo.promotion.forced_reason"] == "pilot on purpose"
    assert "NOT passed" in mv.tags["telco_nbo.promotion.reason"]
