"""The NBO service over real HTTP: the real BentoML server on a loopback port, champions from a real
MLflow registry trained by the real pipeline on a small generated world (once per module)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_support import Server, trained_store

from telco_nbo.nbo.catalog import load_catalog

# Every test needs the trained champions (and most the running server).
pytestmark = [pytest.mark.slow, pytest.mark.integration]

KEY = {"X-API-Key": "test-key"}
OFFER_IDS = [o.offer_id for o in load_catalog().offers]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trained_store(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def features(store: dict) -> pd.DataFrame:
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features

    world = load_world(store["data"])
    return build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))


@pytest.fixture(scope="module")
def server(store: dict, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("server")
    srv = Server.cli(store, tmp)
    srv.tmp = tmp
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _payload(row: pd.Series) -> dict:
    """One feature row as JSON (NaN -> null, numpy -> Python)."""
    return json.loads(pd.Series(row).to_json())


def post(server: Server, route: str, body, headers=KEY, raw: bytes | None = None) -> httpx.Response:
    if raw is not None:
        return httpx.post(server.url + route, content=raw, headers={**headers, "content-type": "application/json"},
                          timeout=30)
    return httpx.post(server.url + route, json=body, headers=headers, timeout=30)


def test_ready_only_after_models_load_and_health_routes_are_open(server: Server) -> None:
    # The server answered /readyz 503 while loading, then 200; health routes need no key.
    assert 503 in server.ready_statuses and server.ready_statuses[-1] == 200
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert httpx.get(server.url + "/livez").status_code == 200
    assert post(server, "/status", {}, headers={}).status_code == 401  # behind the key
    status = post(server, "/status", {}).json()
    assert status["ready"] and set(status["model_versions"]) == {"telco-churn", "telco-propensity", "telco-uplift", "telco-clv"}


def test_rank_one_account_by_id_carries_the_audit_trail(server: Server, features: pd.DataFrame, store: dict) -> None:
    account = str(features["account_id"].iloc[0])
    r = post(server, "/rank", {"account_id": account, "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    (d,) = body["decisions"]
    assert d["account_id"] == account and d["as_of"] == str(pd.Timestamp(json.loads(
        (store["data"] / "meta.json").read_text())["as_of"]).date())
    # Every catalog offer is either made or suppressed with the rule that removed it.
    assert sorted([o["offer_id"] for o in d["offers"]] + [s["offer_id"] for s in d["suppressed"]]) == sorted(OFFER_IDS)
    assert all(s["rule_id"] and s["reason"] and s["layer"] for s in d["suppressed"])
    for rank, o in enumerate(d["offers"], start=1):
        assert o["rank"] == rank and o["channel"] in load_catalog().get(o["offer_id"]).channels
        v = o["value"]
        assert v["expected_value"] == pytest.approx(
            v["kind_weight"] * (v["acceptance_value"] + v["retention_value"]) - v["contact_cost"])
        # The message states the price in plain words (a discount as the amount off: abs).
        assert f"{abs(load_catalog().get(o['offer_id']).monthly_price):.2f}" in o["message"] and o["reasons"]
    evs = [o["expected_value"] for o in d["offers"]]
    assert evs == sorted(evs, reverse=True)
    versions = {k: str(r.model_version) for k, r in store["results"].items()}
    assert d["model_versions"] == {f"telco-{k}": v for k, v in versions.items()} == body["model_versions"]


def test_rank_from_features_matches_rank_by_id_and_the_batch_ranking(server: Server, features: pd.DataFrame, store: dict) -> None:
    from telco_nbo.nbo.rank import rank_accounts
    from telco_nbo.scoring import ChampionScoreProvider

    # Single-account households, so household rules see the same accounts either way.
    sizes = features.groupby("household_id")["account_id"].transform("size")
    rows = features[sizes == 1].head(5)
    by_features = post(server, "/rank", {"accounts": [_payload(r) for _, r in rows.iterrows()],
                                         "model_reasons": True}).json()["decisions"]
    by_id = post(server, "/rank", {"account_ids": rows["account_id"].tolist(), "model_reasons": True}).json()["decisions"]
    for a, b in zip(by_features, by_id, strict=True):
        assert a["offers"] == b["offers"] and a["suppressed"] == b["suppressed"]
    # The in-process batch path with the MLflow score provider gives the same decisions.
    catalog = load_catalog()
    batch = rank_accounts(rows, ChampionScoreProvider(store["uri"]).score(rows, catalog), catalog, top_k=3)
    for api, ref in zip(by_features, batch, strict=True):
        assert [o["offer_id"] for o in api["offers"]] == [o.offer_id for o in ref.offers]
        for o, ro in zip(api["offers"], ref.offers, strict=True):
            assert o["expected_value"] == pytest.approx(ro.expected_value, rel=1e-9, abs=1e-9)
            assert o["reasons"] == ro.reasons
        assert [s["rule_id"] for s in api["suppressed"]] == [s.rule_id for s in ref.suppressed]


def test_household_rules_hold_across_a_household_when_ranking_by_id(server: Server, features: pd.DataFrame) -> None:
    sizes = features.groupby("household_id")["account_id"].transform("size")
    multi = features[sizes >= 2]
    hh = multi["household_id"].iloc[0]
    ids = multi.loc[multi["household_id"] == hh, "account_id"].tolist()
    one_by_one = [post(server, "/rank", {"account_id": a}).json()["decisions"][0] for a in ids]
    together = post(server, "/rank", {"account_ids": ids}).json()["decisions"]
    assert [d["offers"] for d in one_by_one] == [d["offers"] for d in together]
    promos = sum(o["promotional"] for d in together for o in d["offers"])
    assert promos <= 1  # one promotional offer per household per window (default cap)


def test_score_and_explain(server: Server, features: pd.DataFrame) -> None:
    a = str(features["account_id"].iloc[1])
    s = post(server, "/score", {"account_id": a, "offer_ids": ["HOME_FIBER", "DATA_UPSELL"]})
    assert s.status_code == 200, s.text
    sc = s.json()["scores"][0]
    assert 0 <= sc["churn_probability"] <= 1 and sc["clv"] > 0 and set(sc["propensity"]) == {"HOME_FIBER", "DATA_UPSELL"}
    full = post(server, "/score", {"account_id": a}).json()["scores"][0]
    assert set(full["propensity"]) == set(OFFER_IDS)
    e = post(server, "/explain", {"account_id": a, "k": 2, "offer_ids": ["DATA_UPSELL"]})
    assert e.status_code == 200, e.text
    ex = e.json()["explanations"][0]
    assert 1 <= len(ex["churn"]) <= 2 and all(r["sentence"].endswith("churn risk") for r in ex["churn"])
    assert set(ex["propensity"]) == {"DATA_UPSELL"}


def test_concurrent_requests_get_the_answers_they_get_alone(server: Server, features: pd.DataFrame) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"account": _payload(r)} for _, r in features.iloc[100:112].iterrows()]
    bodies += [{"account_id": str(a)} for a in features["account_id"].iloc[100:112]]
    alone = [post(server, "/rank", b).json()["decisions"] for b in bodies]
    before = post(server, "/status", {}).json()
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda b: post(server, "/rank", b), bodies))
    assert [r.status_code for r in together] == [200] * len(bodies)
    assert [r.json()["decisions"] for r in together] == alone
    after = post(server, "/status", {}).json()
    assert after["engine"] == "process" and after["requests_batched"] - before["requests_batched"] == len(bodies)


def test_batch_and_prediction_log(server: Server, features: pd.DataFrame) -> None:
    from telco_nbo.serving.predlog import read_prediction_log

    ids = features["account_id"].iloc[10:60].tolist()
    before = len(read_prediction_log(server.tmp / "decisions.jsonl"))
    r = post(server, "/rank", {"account_ids": ids, "top_k": 2})
    assert r.status_code == 200 and [d["account_id"] for d in r.json()["decisions"]] == ids
    assert all(len(d["offers"]) <= 2 for d in r.json()["decisions"])
    records = read_prediction_log(server.tmp / "decisions.jsonl")[before:]
    assert [x["account_id"] for x in records] == ids
    rec = records[0]
    assert {"timestamp", "account_id", "features", "scores", "offers", "suppressed", "model_versions"} <= set(rec)
    assert 0 <= rec["scores"]["churn_probability"] <= 1 and set(rec["scores"]["propensity"]) == set(OFFER_IDS)
    assert "account_tenure_months" in rec["features"]


@pytest.mark.parametrize(
    ("route", "body", "raw", "status", "names"),
    [
        ("/rank", {"account": {"account_id": "A1"}}, None, 400, "household_id"),  # missing fields
        ("/rank", {"account_id": "A0000001", "top_k": "many"}, None, 400, "top_k"),  # wrong type
        ("/rank", {"accounts": []}, None, 400, "empty"),
        ("/rank", {}, None, 400, "exactly one"),
        ("/rank", {"account_id": "A0000001", "colour": "red"}, None, 400, "colour"),  # unknown field
        ("/rank", None, b'{"account_id": ', 400, "json"),  # malformed JSON
        ("/rank", {"account_id": "NOPE"}, None, 404, "NOPE"),
        ("/score", {"account_id": "A0000001", "offer_ids": ["GIFT"]}, None, 400, "GIFT"),
        ("/explain", {"account_id": "A0000001", "offer_ids": ["GIFT"]}, None, 400, "GIFT"),
        ("/rank", {"account_ids": ["A0000001", "A0000001"]}, None, 400, "duplicate"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(server: Server, features: pd.DataFrame, route, body, raw, status,
                                                   names) -> None:
    real = str(features["account_id"].iloc[0])
    if body is not None:
        body = json.loads(json.dumps(body).replace("A0000001", real))
    r = post(server, route, body, raw=raw)
    assert r.status_code == status, r.text
    assert names.lower() in r.text.lower()


def test_wrong_type_in_features_names_the_field(server: Server, features: pd.DataFrame) -> None:
    row = _payload(features.iloc[0])
    row["account_has_mobile"] = "maybe"
    r = post(server, "/rank", {"account": row})
    assert r.status_code == 400 and "account_has_mobile" in r.text
    row = _payload(features.iloc[0])
    row["account_lifecycle_stage"] = "teenager"
    r = post(server, "/score", {"accounts": [row]})
    assert r.status_code == 400 and "account_lifecycle_stage" in r.text


@pytest.mark.parametrize("route", ["/rank", "/score", "/explain"])
def test_api_key_is_required_on_scoring_routes(server: Server, features: pd.DataFrame, route: str) -> None:
    body = {"account_id": str(features["account_id"].iloc[0])}
    assert post(server, route, body, headers={}).status_code == 401
    assert post(server, route, body, headers={"X-API-Key": "nope"}).status_code == 401
    assert post(server, route, body, headers={"Authorization": "Bearer test-key"}).status_code == 200


def test_metrics_are_prometheus(server: Server, features: pd.DataFrame) -> None:
    assert post(server, "/rank", {"account_id": str(features["account_id"].iloc[0])}).status_code == 200
    m = httpx.get(server.url + "/metrics")
    assert m.status_code == 200 and "text/plain" in m.headers["content-type"]
    assert 'bentoml_service_request_total' in m.text and 'endpoint="/rank"' in m.text


def test_bento_builds_offline_with_the_champions_inside(store: dict, features: pd.DataFrame, tmp_path: Path,
                                                        repo_root: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    from telco_nbo.nbo.rank import Policy
    from telco_nbo.nbo.rules import as_columns
    from telco_nbo.scoring import ChampionModels, FastScorer, export_champions

    ctx = tmp_path / "ctx"
    for part in ("serving", "src"):
        shutil.copytree(repo_root / part, ctx / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(repo_root / "requirements.lock", ctx / "requirements.lock")
    versions = export_champions(store["uri"], ctx / "build" / "champions")
    # The exported models score exactly like the registry's.
    policy = Policy.build()
    cols = as_columns(features.head(20))
    a = FastScorer(ChampionModels.load(store["uri"]), policy).score(cols)
    b = FastScorer(ChampionModels.load_dir(ctx / "build" / "champions"), policy).score(cols)
    np.testing.assert_array_equal(a.propensity, b.propensity)
    np.testing.assert_array_equal(a.clv, b.clv)
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "NO_PROXY": "*", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", "serving/bentofile.yaml", "."], cwd=ctx,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (bento,) = (tmp_path / "bentoml" / "bentos" / "telco_nbo").glob("*/bento.yaml")
    inside = bento.parent / "src" / "build" / "champions"
    assert json.loads((inside / "versions.json").read_text()) == versions
    assert (inside / "telco-churn" / "MLmodel").exists() and (bento.parent / "src" / "src" / "telco_nbo" / "nbo" / "catalog.yaml").exists()


def test_demo_policy_comparison_on_the_truth(store: dict, tmp_path) -> None:
    # The demo's "true value" table (and benchmarks/bench_policy.py) must count what it says: the
    # policy's first choices valued on the truth, the same figures `telco-nbo evaluate` reports on
    # the ranking, and a report written beside the demo's other outputs.
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from telco_nbo.evaluation.value import true_value
    from telco_nbo.nbo.rank import core_frame
    from telco_nbo.serving.demo import demo_step, rank_world

    buf = io.StringIO()
    result = demo_step(SimpleNamespace(data_dir=store["data"], tracking_uri=store["uri"], out=tmp_path, seed=0,
                                       console=Console(file=buf, width=200)))
    assert "True value of the decisions" in buf.getvalue()
    assert (tmp_path / "evaluate" / "policy_value.html").exists()
    ranked = rank_world(store["data"], store["uri"])
    frame = core_frame(ranked.core, ranked.world.meta["as_of"])
    first = frame[frame["selected"] & (frame["rank"] == 1)]
    assert result["contacts"] == len(first) > 0
    pv = true_value(first, ranked.world.truth["offer_effects"], n_resamples=100)
    assert result["policy_true_value"] == pytest.approx(pv.total.total)
    assert set(result["by_offer"]) == set(first["offer_id"])
    b = result["baselines"]
    assert b["oracle"]["total"] >= max(b["top_churn"]["total"], b["random"]["total"], 0.0)
