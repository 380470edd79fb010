"""The service as production runs it, over real HTTP: a supervised engine, bounded input, drain, reload.

The real BentoML server (``telco-nbo serve``) on a free loopback port, champions from a real MLflow
registry trained by the real pipeline on a small generated world (once per module).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serving_support import Server, trained_store

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KEY = {"X-API-Key": "test-key"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trained_store(tmp_path_factory.mktemp("supervised"), households=900, seed=17)


@pytest.fixture(scope="module")
def features(store: dict) -> pd.DataFrame:
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features

    world = load_world(store["data"])
    return build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))


@pytest.fixture(scope="module")
def server(store: dict, tmp_path_factory: pytest.TempPathFactory):
    # Liveness grace 0: /livez fails for as long as the engine is down (restarts still happen).
    tmp = tmp_path_factory.mktemp("supervised-server")
    srv = Server.cli(store, tmp, extra=["--liveness-grace", "0"])
    srv.tmp = tmp
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _payload(row: pd.Series) -> dict:
    return json.loads(pd.Series(row).to_json())


def post(server: Server, route: str, body=None, headers=KEY, timeout: float = 30, **kw) -> httpx.Response:
    return httpx.post(server.url + route, json=body, headers=headers, timeout=timeout, **kw)


def _status(server: Server) -> dict:
    return post(server, "/status", {}).json()


def test_a_poison_request_gets_its_4xx_and_the_next_request_succeeds(server: Server, features: pd.DataFrame) -> None:
    pid = _status(server)["engine_pid"]
    row = _payload(features.iloc[0])
    for route, change, extra in [("/rank", {"account_tickets_90d": 2**63}, {}),
                                 ("/rank", {"account_monthly_charges": 1e39}, {"model_reasons": True}),
                                 ("/explain", {"account_monthly_charges": 1e39}, {})]:
        r = post(server, route, {"account": {**row, **change}, **extra})
        assert 400 <= r.status_code < 500, (route, change, r.status_code, r.text[:300])
        assert len(r.content) < 2000
        ok = post(server, "/rank", {"account": row})
        assert ok.status_code == 200, ok.text[:300]
    st = _status(server)
    assert st["engine_pid"] == pid and st["engine_restarts"] == 0


def test_a_killed_engine_is_restarted_and_readiness_and_liveness_say_so(server: Server,
                                                                        features: pd.DataFrame) -> None:
    before = _status(server)
    account = str(features["account_id"].iloc[3])
    os.kill(before["engine_pid"], signal.SIGKILL)
    t0 = time.monotonic()
    seen_ready, seen_live, answers = set(), set(), set()
    back = None
    while time.monotonic() - t0 < 90:
        seen_ready.add(httpx.get(server.url + "/readyz", timeout=5).status_code)
        seen_live.add(httpx.get(server.url + "/livez", timeout=5).status_code)
        r = post(server, "/rank", {"account_id": account})
        answers.add(r.status_code)
        if r.status_code == 200 and 503 in seen_ready:
            back = time.monotonic() - t0
            break
        time.sleep(0.1)
    assert back is not None, f"never recovered: readyz {seen_ready}, livez {seen_live}, rank {answers}"
    # While it was down: not ready, not live (grace 0), scoring answered 503 (never a hang, never 500).
    assert 503 in seen_ready and 503 in seen_live and answers <= {200, 503}
    assert back < 60
    after = _status(server)
    assert after["engine_restarts"] == before["engine_restarts"] + 1 and after["engine_pid"] != before["engine_pid"]
    assert httpx.get(server.url + "/readyz").status_code == 200 and httpx.get(server.url + "/livez").status_code == 200
    print(f"engine back {back:.1f} s after SIGKILL")


# ---- bounds and the contract ------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "extra", "field"), [
    ({"account_has_mobile": "yes"}, {}, "account_has_mobile"),  # booleans are strict
    ({"account_has_mobile": 1}, {}, "account_has_mobile"),
    ({"account_monthly_charges": -1e6}, {}, "account_monthly_charges"),  # below its range
    ({"account_monthly_charges": 1e39}, {}, "account_monthly_charges"),  # above (float32 would be inf)
    ({"account_tenure_months": 1e39}, {}, "account_tenure_months"),
    ({"account_tickets_90d": 2**63}, {}, "account_tickets_90d"),
    ({"account_tickets_90d": -1}, {}, "account_tickets_90d"),
    ({"account_id": "x" * 65}, {}, "account_id"),
    ({}, {"model_reasons": "yes"}, "model_reasons"),
])
def test_every_field_is_bounded_and_typed_strictly(server: Server, features: pd.DataFrame, change, extra,
                                                   field) -> None:
    row = _payload(features.iloc[0])
    for route in ("/rank", "/score"):
        if route == "/score" and extra:
            continue
        r = post(server, route, {"account": {**row, **change}, **extra})
        assert r.status_code == 400 and field in r.text, (route, r.status_code, r.text[:300])
        assert isinstance(r.json()["detail"], list)


def test_infinities_and_overflowing_numbers_in_the_json_text_are_refused(server: Server, features: pd.DataFrame) -> None:
    body = json.dumps({"account": {**_payload(features.iloc[0]), "account_monthly_charges": 123456.789}})
    for token in ("1e400", "-1e400", "Infinity", "NaN"):
        raw = body.replace("123456.789", token, 1)
        r = httpx.post(server.url + "/score", content=raw, headers={**KEY, "content-type": "application/json"}, timeout=30)
        assert r.status_code == 400 and "account_monthly_charges" in r.text, (token, r.text[:300])


def test_huge_ids_get_a_short_answer(server: Server) -> None:
    big = "A" * 5_000_000
    for body in ({"account_id": big}, {"account_ids": [big]}, {"account_id": "A1", "offer_ids": [big]}):
        r = post(server, "/score", body)
        assert r.status_code == 400 and len(r.content) < 1000, (r.status_code, len(r.content))


def test_the_key_is_checked_before_the_body_is_read_and_bodies_are_capped(server: Server) -> None:
    big = b"{" + b" " * 30_000_000 + b"}"
    r = httpx.post(server.url + "/rank", content=big, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 401
    r = httpx.post(server.url + "/rank", content=big, headers={**KEY, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "too large" in r.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 1_000_000

    r = httpx.post(server.url + "/rank", content=chunks(), headers={**KEY, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413


@pytest.mark.parametrize("route", ["/rank", "/score", "/explain", "/status"])
def test_a_body_that_is_not_json_is_a_415_not_a_500(server: Server, route: str) -> None:
    for ctype in ("multipart/form-data", "application/x-www-form-urlencoded", "text/plain"):
        r = httpx.post(server.url + route, content=b"x=1", headers={**KEY, "content-type": ctype}, timeout=30)
        assert r.status_code == 415, (ctype, r.status_code, r.text[:200])


def test_status_is_behind_the_key(server: Server) -> None:
    assert post(server, "/status", {}, headers={}).status_code == 401
    st = post(server, "/status", {}).json()
    assert st["ready"] and "engine_pid" in st


def test_the_openapi_document_tells_the_truth(server: Server) -> None:
    doc = httpx.get(server.url + "/docs.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorResponse"]["properties"]["detail"]["anyOf"][0]["type"] == "array"
    for route in ("/rank", "/score", "/explain"):
        op = doc["paths"][route]["post"]
        assert {"200", "400", "401", "404", "413", "415", "422", "500", "503"} <= set(op["responses"])
        for code in ("400", "401", "422", "503"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        body = op["requestBody"]["content"]["application/json"]["schema"]
        body = schemas[body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
        assert [b["required"] for b in body["oneOf"]] == [["account_id"], ["account_ids"], ["account"], ["accounts"]]
    assert "401" in doc["paths"]["/status"]["post"]["responses"]
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]
    account = schemas["AccountFeatures"]["properties"]
    charges = next(a for a in account["account_monthly_charges"]["anyOf"] if a.get("type") == "number")
    assert charges["minimum"] == 0 and charges["maximum"] > 0
    assert account["account_has_mobile"]["type"] == "boolean"


def test_refusals_are_one_line_each_in_the_log(server: Server, features: pd.DataFrame) -> None:
    before = server.log.read_text()
    row = _payload(features.iloc[0])
    for _ in range(3):
        post(server, "/rank", {"account": {**row, "account_has_mobile": "yes"}})
        post(server, "/rank", {"account_id": "A1"}, headers={})
    time.sleep(0.5)
    new = server.log.read_text()[len(before):]
    assert "Traceback" not in new and new.count("refused") >= 6, new[-2000:]
    assert "yes" not in new  # no input values


# ---- graceful drain ------------------------------------------------------------------------------------


def _load(url: str, bodies: list[dict], threads: int, stop, results: list, lock) -> list:
    import threading

    def worker(k: int) -> None:
        with httpx.Client(timeout=60) as c:
            i = k
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.post(url + "/rank", json=bodies[i % len(bodies)], headers=KEY)
                    out = (r.status_code, r.json() if r.status_code == 200 else r.text[:200])
                except httpx.HTTPError as exc:
                    out = (type(exc).__name__, None)
                with lock:
                    results.append((t0, time.monotonic(), *out))
                i += threads

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    return ts


def test_sigterm_under_load_finishes_every_request_in_flight_and_flushes_the_log(
        store: dict, features: pd.DataFrame, tmp_path: Path) -> None:
    import threading

    from telco_nbo.serving.predlog import read_prediction_log

    srv = Server.cli(store, tmp_path, extra=["--drain-timeout", "20"])
    try:
        srv.wait_ready()
        engine_pid = post(srv, "/status", {}).json()["engine_pid"]
        rows = [_payload(r) for _, r in features.head(40).iterrows()]
        # Heavy enough (20 accounts, reasons) that requests are in flight when the signal lands.
        bodies = [{"accounts": rows[k:k + 20], "model_reasons": True} for k in (0, 20)]
        results: list = []
        stop, lock = threading.Event(), threading.Lock()
        threads = _load(srv.url, bodies, 12, stop, results, lock)
        time.sleep(3)
        t_term = time.monotonic()
        # The whole process group, as systemd (and Server.stop) does: the engine gets it too.
        os.killpg(srv.proc.pid, signal.SIGTERM)
        code = srv.proc.wait(40)
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        srv.stop()
    before = [r for r in results if r[0] < t_term]
    in_flight = [r for r in before if r[1] > t_term]
    assert len(before) > 20 and in_flight, "no request was in flight: the test proves nothing"
    assert [r[2] for r in before if r[2] != 200] == [], [r[2:] for r in before if r[2] != 200][:5]
    # After the signal: answered or refused at the door, never a 5xx.
    assert all(r[2] == 200 or isinstance(r[2], str) for r in results), {r[2] for r in results}
    assert code == 0
    # Every answered decision is in the log, whole; nothing else.
    answered = sum(len(r[3]["decisions"]) for r in results if r[2] == 200)
    logged = read_prediction_log(tmp_path / "decisions.jsonl")
    assert len(logged) == answered
    with pytest.raises(ProcessLookupError):
        os.kill(engine_pid, 0)  # the engine exited with the server
    print(f"drain: {len(before)} sent before SIGTERM ({len(in_flight)} in flight), all 200; {answered} lines logged")


# ---- hot reload ----------------------------------------------------------------------------------------


def _new_champion(uri: str, name: str) -> str:
    """Register the champion's model again as a new version and move @champion to it."""
    from telco_nbo.tracking import tracking_session

    with tracking_session(uri) as client:  # the source (models:/m-...) resolves against this store
        cur = client.get_model_version_by_alias(name, "champion")
        new = client.create_model_version(name, source=cur.source, run_id=cur.run_id)
        client.set_registered_model_alias(name, "champion", new.version)
    return str(new.version)


def _wait_for_version(srv: Server, name: str, version: str, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if post(srv, "/status", {}).json()["model_versions"][name] == version:
            return time.monotonic()
        time.sleep(0.3)
    raise AssertionError(f"{name} never switched to v{version}")


def test_a_champion_swap_under_load_loses_nothing_and_later_answers_name_the_new_version(
        store: dict, features: pd.DataFrame, tmp_path: Path) -> None:
    import shutil
    import threading

    # A copy of the registry (the artifacts stay where they are): the module's store is untouched.
    shutil.copyfile(store["root"] / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    srv = Server.cli({**store, "uri": uri}, tmp_path, extra=["--reload-every", "2"])
    results: list = []
    stop, lock = threading.Event(), threading.Lock()
    threads: list = []
    try:
        srv.wait_ready()
        v0 = post(srv, "/status", {}).json()["model_versions"]
        assert post(srv, "/admin/reload", {}, headers={}).status_code == 401
        rows = [_payload(r) for _, r in features.head(8).iterrows()]
        bodies = [{"accounts": rows[k:k + 4]} for k in (0, 4)] + [{"account_id": str(features["account_id"].iloc[9])}]
        threads = _load(srv.url, bodies, 4, stop, results, lock)
        time.sleep(2)
        # 1. POST /admin/reload after moving the churn champion (the poller may get there first).
        churn_v = _new_champion(uri, "telco-churn")
        r = post(srv, "/admin/reload", {}, timeout=60)
        # 200 once switched; 202 when loading beside the load takes longer than the route waits.
        assert r.status_code in (200, 202), r.text
        t_switched = _wait_for_version(srv, "telco-churn", churn_v)
        # 2. The registry poll alone picks up the next change.
        prop_v = _new_champion(uri, "telco-propensity")
        t_polled = _wait_for_version(srv, "telco-propensity", prop_v)
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        srv.stop()
    assert [r[2] for r in results if r[2] != 200] == [], [r[2:] for r in results if r[2] != 200][:5]
    versions = [(r[0], r[3]["model_versions"]) for r in results]
    assert {v["telco-churn"] for _, v in versions} == {v0["telco-churn"], churn_v}
    # Every answer is wholly old or wholly new; sent after the switch, it names the new version.
    assert all(v["telco-churn"] == churn_v for t, v in versions if t > t_switched)
    assert all(v["telco-propensity"] == prop_v for t, v in versions if t > t_polled)
    assert all(d["model_versions"] == body["model_versions"] for r in results for body in [r[3]]
               for d in body["decisions"])
    print(f"reload under load: {len(results)} answers, all 200")


# ---- heavy /explain beside /rank -----------------------------------------------------------------------


def test_a_long_explain_does_not_hold_up_rank_and_explain_has_a_cost_cap(server: Server, features: pd.DataFrame) -> None:
    import threading

    from telco_nbo.nbo.catalog import load_catalog

    offers = [o.offer_id for o in load_catalog().offers]
    ids = features["account_id"].astype(str).tolist()[:1000]
    deadline = time.monotonic() + 90
    while not (st := _status(server))["explain_engine_alive"] and time.monotonic() < deadline:
        time.sleep(0.3)  # it loads after the main engine (/explain goes to the main one meanwhile)
    assert st["explain_engine_alive"] and st["explain_engine_pid"] != st["engine_pid"]
    # The cap: accounts x (churn + each offer) explanations, refused before any work.
    too_many = max(1, 5000 // (1 + len(offers)) + 1)
    r = post(server, "/explain", {"account_ids": (ids * 10)[:too_many] if len(ids) >= too_many else ids,
                                  "offer_ids": offers})
    if len(ids) >= too_many:
        assert r.status_code == 422 and "at most 5000" in r.json()["error"]
    heavy = {"account_ids": ids[: 5000 // (1 + len(offers[:3]))], "offer_ids": offers[:3], "k": 20}
    lat: list[float] = []
    stop = threading.Event()

    def ranks() -> None:
        with httpx.Client(timeout=60) as c:
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                rr = c.post(server.url + "/rank", json={"account_id": ids[i % len(ids)]}, headers=KEY)
                lat.append(time.perf_counter() - t)
                assert rr.status_code == 200
                i += 1

    th = threading.Thread(target=ranks)
    th.start()
    time.sleep(0.5)
    lat.clear()
    t0 = time.perf_counter()
    r = post(server, "/explain", heavy, timeout=120)
    took = time.perf_counter() - t0
    stop.set()
    th.join(60)
    assert r.status_code == 200 and len(r.json()["explanations"]) == len(heavy["account_ids"])
    # /rank kept answering while the explanation ran: no answer waited for it.
    assert len(lat) >= 3 and max(lat) < 0.5 * took, (len(lat), max(lat), took)
    print(f"/explain of {len(heavy['account_ids'])} accounts x 4 models: {took:.2f} s; /rank meanwhile: "
          f"{len(lat)} answers, max {1000 * max(lat):.0f} ms")


# ---- nothing written outside the configured folders ------------------------------------------------------


def test_nothing_is_written_outside_the_configured_folders(store: dict, features: pd.DataFrame, tmp_path: Path) -> None:
    home, cwd, state = tmp_path / "home", tmp_path / "cwd", tmp_path / "state"
    home.mkdir()
    cwd.mkdir()
    srv = Server.cli(store, tmp_path, extra=["--state-dir", str(state)], cwd=cwd,
                     env={"HOME": str(home), "TELCO_NBO_PREDICTION_LOG": str(tmp_path / "log" / "decisions.jsonl")})
    try:
        srv.wait_ready()
        assert post(srv, "/rank", {"account_id": str(features["account_id"].iloc[0])}).status_code == 200
        assert post(srv, "/rank", {"account_id": "NOPE"}).status_code == 404
    finally:
        srv.stop()
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []  # no ~/bentoml, ./mlflow.db, ./predictions
    assert (tmp_path / "log" / "decisions.jsonl").exists() and any(state.iterdir())
    log = srv.log.read_text()
    assert "Traceback" not in log and "refused POST /rank: 404" in log
