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


def post(server: Server, route: str, body=None, headers=KEY, **kw) -> httpx.Response:
    return httpx.post(server.url + route, json=body, headers=headers, timeout=30, **kw)


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
