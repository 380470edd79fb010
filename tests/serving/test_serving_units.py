"""Serving logic without a server: request schema vs the feature builder, prediction log, auth, readiness."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from worlds import tiny_world

from telco_nbo import contract
from telco_nbo.contract import FEATURE_COLUMNS
from telco_nbo.errors import ConfigError
from telco_nbo.features import build_account_features
from telco_nbo.nbo.rules import REQUIRED_COLUMNS
from telco_nbo.serving.app import NboApp, ServeConfig, ServingError
from telco_nbo.serving.predlog import PredictionLog, read_prediction_log
from telco_nbo.serving.schemas import OPTIONAL_KINDS, REQUIRED_KINDS, RankRequest, ScoreRequest


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_account_features(tiny_world().tables, pd.Timestamp("2025-06-30"))


def test_request_schema_covers_exactly_the_feature_builder_columns(features: pd.DataFrame) -> None:
    assert set(REQUIRED_KINDS) | set(OPTIONAL_KINDS) >= set(features.columns)
    assert set(REQUIRED_KINDS) <= set(features.columns)
    for col, kind in REQUIRED_KINDS.items():
        dtype = features[col].dtype
        if kind == "bool":
            assert dtype == bool, col
        elif kind == "count":
            assert pd.api.types.is_integer_dtype(dtype), col
        elif kind == "float_nan":
            assert pd.api.types.is_float_dtype(dtype), col
        else:
            assert dtype == object, col


def test_request_schema_is_derived_from_the_contract() -> None:
    # Required: what the rules read and what the models read; optional: every other declared
    # column; each typed and bounded as declared (no kind guessed from a name).
    schema = RankRequest.model_json_schema()["$defs"]["AccountFeatures"]
    assert set(schema["required"]) == set(REQUIRED_COLUMNS) | set(FEATURE_COLUMNS) == set(REQUIRED_KINDS)
    assert set(REQUIRED_KINDS) | set(OPTIONAL_KINDS) == set(contract.BY_NAME)
    assert set(schema["properties"]) == set(contract.BY_NAME)
    for name, prop in schema["properties"].items():
        col = contract.column(name)
        assert REQUIRED_KINDS.get(name, OPTIONAL_KINDS.get(name)) == col.kind, name
        types = [prop] if "anyOf" not in prop else [t for t in prop["anyOf"] if t.get("type") != "null"]
        (t,) = types
        if col.kind == "category":
            assert t["enum"] == list(col.categories), name
        elif col.bounds is not None:
            assert (t["minimum"], t["maximum"]) == col.bounds, name


def test_every_feature_row_is_a_valid_request(features: pd.DataFrame) -> None:
    rows = [json.loads(r.to_json()) for _, r in features.iterrows()]
    req = RankRequest.model_validate({"accounts": rows})
    assert [a.account_id for a in req.accounts] == features["account_id"].tolist()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accounts": []}, "empty"),
        ({}, "exactly one"),
        ({"account_id": "A", "account_ids": ["B"]}, "exactly one"),
        ({"account_id": "A", "top_k": 0}, "top_k"),
        ({"account_id": "A", "extra": 1}, "extra"),
        ({"account_ids": ["A"] * 1001}, "account_ids"),
    ],
)
def test_bad_requests_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        RankRequest.model_validate(body)


def test_missing_and_mistyped_feature_fields_are_named(features: pd.DataFrame) -> None:
    row = json.loads(features.iloc[0].to_json())
    del row["account_tenure_months"]
    row["account_contacts_sms_30d"] = -1
    with pytest.raises(ValidationError) as err:
        ScoreRequest.model_validate({"account": row})
    locs = {e["loc"][-1] for e in err.value.errors()}
    assert locs == {"account_tenure_months", "account_contacts_sms_30d"}


def test_prediction_log_lines_stay_whole_under_concurrent_writers(tmp_path) -> None:
    log = PredictionLog(tmp_path / "p" / "decisions.jsonl")
    big = {"payload": "x" * 5000}

    def write(k: int) -> None:
        for i in range(50):
            log.append([{"writer": k, "i": i, **big}, {"writer": k, "i": i, "second": True}])

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    records = read_prediction_log(tmp_path / "p" / "decisions.jsonl")
    assert len(records) == 8 * 50 * 2
    # Each batch lands whole: a record and its companion are adjacent.
    for a, b in zip(records[::2], records[1::2], strict=True):
        assert (a["writer"], a["i"]) == (b["writer"], b["i"]) and b["second"]


def test_prediction_log_refuses_nan_silently_turned_into_invalid_json(tmp_path) -> None:
    from telco_nbo.serving.predlog import decision_records

    d = {"account_id": "A1", "household_id": "H1", "as_of": None, "offers": [], "suppressed": [], "model_versions": {}}
    recs = decision_records([d], {"account_id": np.array(["A1"]), "x": np.array([np.nan])}, ["account_id", "x"],
                            {"churn_probability": np.array([0.1])}, np.array([[np.nan, 0.2]]), ["O1", "O2"])
    log = PredictionLog(tmp_path / "d.jsonl")
    log.append(recs)
    (back,) = read_prediction_log(tmp_path / "d.jsonl")
    assert back["features"]["x"] is None and back["scores"]["propensity"] == {"O1": None, "O2": 0.2}


@pytest.mark.slow
@pytest.mark.integration
def test_not_ready_answers_503_and_a_failed_load_says_why(tmp_path) -> None:
    app = NboApp(ServeConfig(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}"))
    with pytest.raises(ServingError) as err:
        app.rank(RankRequest(account_id="A1"))
    assert err.value.status == 503 and "loading" in err.value.message
    app._load_logged()  # no champions in an empty registry
    assert not app.ready and "telco-churn" in app.load_error
    with pytest.raises(ServingError, match="loading failed") as err:
        app.score(ScoreRequest(account_id="A1"))
    assert err.value.status == 503


def test_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="NBO_KEY"):
        NboApp(ServeConfig(api_key_env="NBO_KEY"))
    monkeypatch.setenv("NBO_KEY", "k1")
    app = NboApp(ServeConfig(api_key_env="NBO_KEY"))
    app.check_api_key({"x-api-key": "k1"})
    app.check_api_key({"authorization": "Bearer k1"})
    for headers in ({}, {"x-api-key": "k2"}, {"authorization": "Basic k1"}):
        with pytest.raises(ServingError) as err:
            app.check_api_key(headers)
        assert err.value.status == 401
    NboApp(ServeConfig()).check_api_key({})  # no key configured: open


def test_serve_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELCO_NBO_SERVE_CONFIG", json.dumps({"tracking_uri": "sqlite:///x.db", "data_dir": "/d"}))
    assert ServeConfig.from_env() == ServeConfig(tracking_uri="sqlite:///x.db", data_dir="/d")
    monkeypatch.setenv("TELCO_NBO_SERVE_CONFIG", "{nope")
    with pytest.raises(ConfigError, match="TELCO_NBO_SERVE_CONFIG"):
        ServeConfig.from_env()
    monkeypatch.delenv("TELCO_NBO_SERVE_CONFIG")
    monkeypatch.setenv("TELCO_NBO_MODEL_DIR", "build/champions")
    assert ServeConfig.from_env().model_dir == "build/champions"


@pytest.mark.slow
@pytest.mark.integration
def test_serve_cli_refuses_bad_input_before_starting(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from telco_nbo.cli import app

    run = CliRunner().invoke
    res = run(app, ["serve", "--data", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
    monkeypatch.delenv("NBO_UNSET_KEY", raising=False)
    res = run(app, ["serve", "--api-key-env", "NBO_UNSET_KEY"])
    assert res.exit_code == 2 and "NBO_UNSET_KEY" in res.output
    res = run(app, ["serve", "--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert res.exit_code == 2 and "no champion model registered for telco-churn" in " ".join(res.output.split())
    res = run(app, ["serve", "--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}", "--export-models", str(tmp_path / "x")])
    assert res.exit_code == 2 and "telco-churn" in res.output and not (tmp_path / "x" / "versions.json").exists()


def test_direct_predict_equals_xgboost_inplace_predict() -> None:
    # CompiledBooster.predict calls XGBoost's C API directly (see DirectPredict); it must give
    # exactly what Booster.inplace_predict gives, with missing values, the best-iteration range
    # of an early-stopped model, one row or many, and raise XGBoost's error on a bad shape.
    import xgboost as xgb

    from telco_nbo.scoring import CompiledBooster

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(600, 5)), columns=[f"f{i}" for i in range(5)])
    X.iloc[rng.random(600) < 0.1, 2] = np.nan
    y = (X["f0"].fillna(0) + rng.normal(size=600) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=60, max_depth=3, early_stopping_rounds=5, n_jobs=1)
    model.fit(X.iloc[:400], y.iloc[:400], eval_set=[(X.iloc[400:], y.iloc[400:])], verbose=False)
    b = CompiledBooster.compile(model)
    assert b.iteration_range[1] < 60  # early stopping happened: the range matters
    cols = {c: X[c].to_numpy() for c in X.columns}
    for n in (1, 7, 600):
        M = b.matrix({c: v[:n] for c, v in cols.items()}, n)
        got = b.predict(M)
        want = b.booster.inplace_predict(M, iteration_range=b.iteration_range)
        assert got.dtype == np.float64 and got.shape == (n,)
        np.testing.assert_array_equal(got, np.asarray(want, dtype=float))
        np.testing.assert_allclose(got, model.predict_proba(X.iloc[:n])[:, 1], rtol=1e-6)
    assert b.uses_direct_predict
    with pytest.raises(xgb.core.XGBoostError):
        b.predict(np.zeros((2, 3), dtype=np.float32))
    # Pickled (e.g. shipped to a Dask worker) after use: the ctypes handle is rebuilt, same numbers.
    import pickle

    again = pickle.loads(pickle.dumps(b))
    assert not again.uses_direct_predict
    np.testing.assert_array_equal(again.predict(M), b.predict(M))


def test_serve_without_a_store_refuses_and_creates_no_mlflow_db(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from telco_nbo.cli import app

    for var in ("TELCO_NBO_TRACKING_URI", "MLFLOW_TRACKING_URI", "TELCO_NBO_WORKDIR", "TELCO_NBO_PREDICTION_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["serve"])
    assert res.exit_code == 2 and "--tracking-uri" in res.output
    assert list(tmp_path.iterdir()) == []  # no ./mlflow.db, ./predictions or ./.bentoml left behind
