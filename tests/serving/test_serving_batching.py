"""Micro-batching and the engine process: batched answers equal answers alone, errors stay per request.

The unit tests drive :class:`MicroBatcher` with events, so batch formation is deterministic. The
app tests use real champions trained by the real pipeline into a real MLflow registry (one small
world per module) and compare :meth:`NboApp.rank_many` on a mixed batch with each request alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import uvloop
from serving_support import trained_store

from telco_nbo.serving.app import NboApp, ServeConfig, ServingError
from telco_nbo.serving.batching import MicroBatcher
from telco_nbo.serving.schemas import RankRequest, ScoreRequest

# ---- MicroBatcher -----------------------------------------------------------------------------------


def _blocking_compute(release: threading.Event, seen: list[list]):
    def compute(items: list) -> list:
        seen.append(list(items))
        if len(seen) == 1:
            release.wait(10)  # hold the first batch so the next items queue up behind it
        return [ValueError(f"bad {x}") if x == "bad" else x * 2 for x in items]

    return compute


def test_items_waiting_behind_a_batch_are_computed_together_in_order() -> None:
    release, seen = threading.Event(), []
    b = MicroBatcher(_blocking_compute(release, seen), max_items=10)
    first = b.submit(1)
    while not seen:
        time.sleep(0.001)
    later = [b.submit(x) for x in (2, 3, "bad", 4)]
    release.set()
    assert first.result(5) == 2
    assert [f.result(5) for f in later if f is not later[2]] == [4, 6, 8]
    with pytest.raises(ValueError, match="bad bad"):
        later[2].result(5)  # an item's error reaches that item's caller only
    assert seen == [[1], [2, 3, "bad", 4]] and (b.batches, b.items) == (2, 5)
    b.close()


def test_batches_stop_at_max_items_and_max_weight_and_a_big_item_runs_alone() -> None:
    release, seen = threading.Event(), []
    b = MicroBatcher(_blocking_compute(release, seen), max_items=3, size=lambda x: x, max_weight=10)
    b.submit(1)
    while not seen:
        time.sleep(0.001)
    futs = [b.submit(x) for x in (1, 1, 1, 1, 4, 6, 50, 2)]
    release.set()
    assert [f.result(5) for f in futs] == [2, 2, 2, 2, 8, 12, 100, 4]
    # 3 items at most; then weight 1+4 (adding 6 would pass 10); 6 alone (50 would); 50 alone.
    assert seen[1:] == [[1, 1, 1], [1, 4], [6], [50], [2]]
    b.close()


def test_a_failing_compute_fails_every_item_of_its_batch_and_the_batcher_goes_on() -> None:
    calls = []

    def compute(items: list) -> list:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return items

    b = MicroBatcher(compute)
    with pytest.raises(RuntimeError, match="boom"):
        b.submit("x").result(5)
    assert b.submit("y").result(5) == "y"
    with pytest.raises(ValueError):
        MicroBatcher(compute, max_items=0)
    b.close()


# ---- NboApp.rank_many / answer on real champions -------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trained_store(tmp_path_factory.mktemp("batching"), households=900, seed=11)


@pytest.fixture(scope="module")
def features(store: dict) -> pd.DataFrame:
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features

    world = load_world(store["data"])
    return build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))


@pytest.fixture(scope="module")
def app(store: dict, tmp_path_factory: pytest.TempPathFactory) -> NboApp:
    log = tmp_path_factory.mktemp("batching-log") / "decisions.jsonl"
    a = NboApp(ServeConfig(tracking_uri=store["uri"], data_dir=str(store["data"]), prediction_log=str(log)))
    a.load()
    return a


def _payload(row: pd.Series) -> dict:
    return json.loads(pd.Series(row).to_json())


def _requests(features: pd.DataFrame) -> list[tuple[RankRequest, str]]:
    sizes = features.groupby("household_id")["account_id"].transform("size")
    multi = features[sizes >= 2]
    hh = multi["household_id"].iloc[0]
    pair = multi.loc[multi["household_id"] == hh]
    assert len(pair) >= 2
    rows = [r for _, r in features.head(12).iterrows()]
    reqs = [
        # The same household in several requests: by id (the folder adds the household) and as
        # features, one account each: batched, each request must still decide on its own.
        RankRequest(account_id=str(pair["account_id"].iloc[0])),
        RankRequest(account_id=str(pair["account_id"].iloc[1])),
        RankRequest(account=_payload(pair.iloc[0])),
        RankRequest(account=_payload(pair.iloc[1])),
        RankRequest(accounts=[_payload(r) for _, r in pair.iterrows()]),
        RankRequest(account_ids=[str(a) for a in features["account_id"].iloc[20:26]], top_k=1),
        RankRequest(account_id="NO-SUCH-ACCOUNT"),
        RankRequest(account_ids=[str(features["account_id"].iloc[30])] * 2),  # duplicate id -> 400
        RankRequest(account=_payload(rows[3]), model_reasons=True),
    ] + [RankRequest(account=_payload(r)) for r in rows] + [RankRequest(account_id=str(r["account_id"]), top_k=2)
                                                          for r in rows[:6]]
    return [(r, f"req-{k}") for k, r in enumerate(reqs)]


def _decisions(res):
    return ("error", res.status, res.message) if isinstance(res, ServingError) else res


@pytest.mark.slow
@pytest.mark.integration
def test_a_mixed_batch_answers_exactly_what_each_request_gets_alone(app: NboApp, features: pd.DataFrame) -> None:
    items = _requests(features)
    together = app.rank_many(items)
    alone = [app.rank_many([it])[0] for it in items]
    assert [_decisions(r) for r in together] == [_decisions(r) for r in alone]
    assert isinstance(together[6], ServingError) and together[6].status == 404
    assert isinstance(together[7], ServingError) and together[7].status == 400
    ok = [r for r in together if not isinstance(r, ServingError)]
    assert len(ok) == len(items) - 2 and all(r["decisions"] for r in ok)
    # Household step per request: the two-account request holds at most one promotional offer.
    promos = sum(o["promotional"] for d in together[4]["decisions"] for o in d["offers"])
    assert promos <= 1


@pytest.mark.slow
@pytest.mark.integration
def test_answer_serializes_each_request_and_logs_each_decision_once(app: NboApp, features: pd.DataFrame) -> None:
    from telco_nbo.serving.predlog import read_prediction_log

    items = [("rank", r, rid) for r, rid in _requests(features)[:6]]
    items.insert(2, ("score", ScoreRequest(account_id=str(features["account_id"].iloc[5]), offer_ids=["NOPE"]), None))
    before = len(read_prediction_log(app.config.prediction_log))
    out = app.answer(items)
    logged = read_prediction_log(app.config.prediction_log)[before:]
    assert [s for s, _ in out] == [200, 200, 400, 200, 200, 200, 200]
    assert b"NOPE" in out[2][1]
    assert json.loads(out[0][1]) == app.rank(*_requests(features)[0])
    # Request 4 names two accounts, request 5 six; each decision is logged once, with its request id.
    assert Counter(x["request_id"] for x in logged) == {"req-0": 1, "req-1": 1, "req-2": 1, "req-3": 1, "req-4": 2,
                                                        "req-5": 6}


@pytest.mark.slow
@pytest.mark.integration
def test_a_mixed_batch_of_contract_and_month_to_month_accounts_is_fine(app: NboApp, features: pd.DataFrame) -> None:
    # account_days_to_contract_end is null for month-to-month accounts: a batch mixing both kinds
    # used to be refused (400, "given for some accounts but not all").
    m2m = features[features["account_days_to_contract_end"].isna()].head(2)
    contract = features[features["account_days_to_contract_end"].notna()].head(2)
    assert len(m2m) == 2 and len(contract) == 2
    rows = pd.concat([m2m, contract])
    res = app.rank(RankRequest(accounts=[_payload(r) for _, r in rows.iterrows()]))
    assert [d["account_id"] for d in res["decisions"]] == rows["account_id"].astype(str).tolist()


@pytest.mark.slow
@pytest.mark.integration
def test_the_engine_process_answers_like_the_thread_and_its_death_makes_the_service_unready(
        store: dict, features: pd.DataFrame, app: NboApp, tmp_path: Path) -> None:
    eng = NboApp(ServeConfig(tracking_uri=store["uri"], data_dir=str(store["data"]),
                             prediction_log=str(tmp_path / "d.jsonl"), engine="process"))
    try:
        eng.load()
        assert eng.ready and eng.status()["model_versions"] == app.status()["model_versions"]
        reqs = _requests(features)[:9]

        big = RankRequest(accounts=[_payload(r) for _, r in features.head(300).iterrows()])

        async def burst() -> list:
            # Sent together from one event loop, as the HTTP worker does: they travel in batches.
            return await asyncio.gather(*(eng.answer_async("rank", r, rid) for r, rid in reqs),
                                        eng.answer_async("rank", big, "big"))

        # On uvloop, as in the BentoML worker (libuv makes a watched fd non-blocking), with
        # messages far larger than the pipe's buffer both ways (the 300-account request).
        got = uvloop.run(burst())
        assert [s for s, _ in got] == [200] * 6 + [404, 400, 200, 200]
        assert [json.loads(b) for _, b in got[:6]] == [app.rank(r, rid) for r, rid in reqs[:6]]
        assert len(got[-1][1]) > 500_000 and len(json.loads(got[-1][1])["decisions"]) == 300
        st = eng.status()
        assert st["requests_batched"] == 10 and st["batches"] < 10  # the first went alone, the rest together
        os.kill(st["engine_pid"], signal.SIGKILL)
        status, body = asyncio.run(eng.answer_async("rank", *reqs[0]))
        assert status == 503 and b"engine" in body
        assert not eng.ready and eng.alive  # being restarted, within the liveness grace
        # The supervisor restarts it (backoff 0.5 s, then the models load again).
        deadline = time.monotonic() + 90
        while not eng.ready and time.monotonic() < deadline:
            time.sleep(0.2)
        assert eng.ready and eng.status()["engine_pid"] != st["engine_pid"] and eng.engine_restarts == 1
        status, body = asyncio.run(eng.answer_async("rank", *reqs[0]))
        assert status == 200 and json.loads(body) == app.rank(*reqs[0])
    finally:
        eng.close()


@pytest.mark.slow
@pytest.mark.integration
def test_a_poison_request_is_refused_alone_and_the_engine_lives_on(store: dict, features: pd.DataFrame,
                                                                    tmp_path: Path) -> None:
    # Requests built past the schema (model_construct), as a schema gap would let them through:
    # an integer past 64 bits (OverflowError) and infinities XGBoost refuses (model_reasons and
    # /explain run TreeSHAP on a DMatrix, which checks for them).
    eng = NboApp(ServeConfig(tracking_uri=store["uri"], data_dir=str(store["data"]),
                             prediction_log=str(tmp_path / "d.jsonl"), engine="process"))
    try:
        eng.load()
        pid = eng.status()["engine_pid"]
        row = _payload(features.iloc[0])
        huge = RankRequest.model_construct(**RankRequest(account=row).__dict__ | {
            "account": RankRequest(account=row).account.model_copy(update={"account_tickets_90d": 2**63})})
        inf_acc = RankRequest(account=row).account.model_copy(update={"account_monthly_charges": float("inf")})
        inf_rank = RankRequest.model_construct(**RankRequest(account=row, model_reasons=True).__dict__ | {"account": inf_acc})
        from telco_nbo.serving.schemas import ExplainRequest

        inf_explain = ExplainRequest.model_construct(**ExplainRequest(account=row).__dict__ | {"account": inf_acc})
        good = RankRequest(account=row)

        async def burst() -> list:
            return await asyncio.gather(eng.answer_async("rank", huge), eng.answer_async("rank", inf_rank),
                                        eng.answer_async("explain", inf_explain), eng.answer_async("rank", good))

        got = uvloop.run(burst())
        assert [s for s, _ in got] == [422, 422, 422, 200]
        assert b"OverflowError" in got[0][1] and all(len(b) < 400 for _, b in got[:3])
        status, _ = asyncio.run(eng.answer_async("rank", good))
        assert status == 200 and eng.status()["engine_pid"] == pid and eng.engine_restarts == 0
    finally:
        eng.close()


@pytest.mark.slow
@pytest.mark.integration
def test_a_prediction_log_that_cannot_be_written_refuses_decisions_until_it_can(
        store: dict, features: pd.DataFrame, tmp_path: Path) -> None:
    from telco_nbo.serving.predlog import read_prediction_log

    # The log is a symlink: first to /dev/full (every write fails, ENOSPC), then to a real file.
    link, real = tmp_path / "decisions.jsonl", tmp_path / "real.jsonl"
    link.symlink_to("/dev/full")
    a = NboApp(ServeConfig(tracking_uri=store["uri"], data_dir=str(store["data"]), prediction_log=str(link)))
    a.load()
    ids = [str(x) for x in features["account_id"].iloc[:3]]
    out = a.answer([("rank", RankRequest(account_id=ids[0]), "r0"), ("score", ScoreRequest(account_id=ids[1]), None)])
    assert [s for s, _ in out] == [503, 200] and b"prediction log" in out[0][1]
    link.unlink()
    link.symlink_to(real)
    out = a.answer([("rank", RankRequest(account_id=ids[2]), "r1")])
    assert out[0][0] == 200 and [r["request_id"] for r in read_prediction_log(real)] == ["r1"]


@pytest.mark.slow
@pytest.mark.integration
def test_an_engine_that_cannot_load_reports_why(tmp_path: Path) -> None:
    eng = NboApp(ServeConfig(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}", engine="process"))
    eng._load_logged()
    assert not eng.ready and "telco-churn" in eng.load_error
    status, body = asyncio.run(eng.answer_async("rank", RankRequest(account_id="A1")))
    assert status == 503 and b"telco-churn" in body
    with pytest.raises(Exception, match="engine"):
        ServeConfig(engine="gpu")
