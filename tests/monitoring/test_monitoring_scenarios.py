"""Scenario tests of issue 6, on generated worlds with known truth, through the real parts.

A churn champion is trained on world seed 1 and logged with its reference sample (real MLflow on
SQLite). The current windows are worlds of seed 2 (same distribution, other customers), without
and with each scenario of the generator; common random numbers make a scenario world differ from
the clean one only where the scenario says. Each world is generated once per module.

- clean window -> `telco-nbo monitor` exits 0 (no false alarm on drift, quality or uplift);
- price_rise -> drift on the price feature(s) only, exit 1;
- handset_launch -> drift on device age only;
- offer_fatigue -> uplift flagged harmful in ``account_type == 'small_business'`` (the
  generator's ``scenario_detail``) and only there;
- the Evidently workspace the CLI fills is served by `evidently ui` (checked over loopback HTTP).

Sizes: 10,000 households per drift window (~9,000 accounts: a clean window's largest normed
Wasserstein distance is ~0.03, under every threshold; the price rise moves monthly charges by
~0.10 against a 0.07 line). The fatigue world has 50,000 households: the small-business holdout
has ~800 accounts per arm, so the harmful effect (about -0.05 in retention) puts the whole 95 %
interval below 0 (upper bound ~-0.03), while consumers (~7,000 per arm, true effect ~0) do not.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.data.io import write_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.errors import ConfigError
from telco_nbo.monitoring import (
    MonitoringResult,
    load_config,
    load_reference_from_champion,
    monitor,
    retention_contact_log,
    uplift_by_segment,
    window_from_world,
)
from telco_nbo.monitoring.uplift import uplift_checks
from telco_nbo.monitoring.world_window import observed_until, window_from_prediction_log

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = REPO / "monitoring" / "thresholds.yaml"
N_DRIFT = 10_000
N_FATIGUE = 50_000
PRICE_FEATURES = {"account_monthly_charges", "account_bill_mean_3m", "account_bill_change_3m"}
DEVICE_FEATURES = {"line_device_age_months"}

# Generated worlds of 10,000-50,000 households, a trained churn model, Evidently reports, `evidently ui`.
pytestmark = [pytest.mark.slow, pytest.mark.integration]

runner = CliRunner()


@pytest.fixture(scope="module")
def cfg():
    shipped = load_config(THRESHOLDS)
    # The per-segment Evidently AUC cross-check is covered in test_monitoring.py; scikit-learn here.
    return shipped.model_copy(update={"quality": shipped.quality.model_copy(update={"evidently_per_segment": False})})


@pytest.fixture(scope="module")
def store(tmp_path_factory, _mlflow_template) -> tuple[Path, str]:
    """A module-wide MLflow store holding a churn champion trained on world seed 1."""
    from telco_nbo.config import get_settings
    from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix
    from telco_nbo.models.churn import make_churn_classifier
    from telco_nbo.training.data import household_split
    from telco_nbo.tracking import log_training_run

    root = tmp_path_factory.mktemp("scenario_store")
    db = root / "mlflow.db"
    shutil.copyfile(_mlflow_template, db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", ((root / "mlruns" / "0").as_uri(),))
    uri = f"sqlite:///{db}"
    world = generate_world(N_DRIFT, 1)
    as_of = pd.Timestamp(world.meta["as_of"])
    feats = build_account_features(world.tables, as_of)
    y = make_churn_labels(world.tables, as_of, observed_until=world.meta["world_end"])["churned"].to_numpy()
    X = to_model_matrix(feats)
    ho = household_split(feats["household_id"].to_numpy(), 0.2, seed=1)
    model = make_churn_classifier(n_estimators=80, max_depth=3, learning_rate=0.1).fit(X[~ho], y[~ho])
    log_training_run(
        "churn", model, X_train=X[~ho], y_train=y[~ho], X_holdout=X[ho], y_holdout=y[ho],
        tracking_uri=uri, settings=get_settings(workdir=root, tracking_uri=uri),
    )
    return root, uri


@pytest.fixture(scope="module")
def reference(store) -> pd.DataFrame:
    return load_reference_from_champion("churn", store[1])


@pytest.fixture(scope="module")
def worlds():
    return {name: generate_world(N_DRIFT, 2, scenario=name) for name in (None, "price_rise", "handset_launch")}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, worlds) -> dict:
    root = tmp_path_factory.mktemp("scenario_worlds")
    out = {}
    for name in (None, "price_rise"):
        out[name] = root / (name or "clean")
        write_world(worlds[name], out[name])
    return out


def _cli(folder: Path, out: Path, uri: str, *extra: str):
    return runner.invoke(
        app,
        ["monitor", "--model", "churn", "--current", str(folder), "--out", str(out), "--tracking-uri", uri,
         "--config", str(THRESHOLDS), *extra],
    )


def _summary(out: Path) -> MonitoringResult:
    return MonitoringResult.from_json((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def clean_run(store, folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean_run") / "report"
    ws = store[0] / "evidently_ws"
    res = _cli(folders[None], out, store[1], "--workspace", str(ws))
    return res, out, ws


@pytest.fixture(scope="module")
def price_run(store, folders, tmp_path_factory, clean_run):
    out = tmp_path_factory.mktemp("price_run") / "report"
    res = _cli(folders["price_rise"], out, store[1], "--workspace", str(clean_run[2]))
    return res, out


def test_clean_window_passes_no_false_alarm(clean_run):
    res, out, _ = clean_run
    assert res.exit_code == 0, res.output
    s = _summary(out)
    assert s.passed and s.drift_share == 0.0 and not s.warnings
    # The window was scored by the champion, its labels had landed (world runs to as_of + 90 d),
    # and the retention holdout gave uplift cells: every family of checks ran, and passed.
    assert {"data_drift", "prediction_drift", "quality", "uplift"} <= {c.category for c in s.checks}
    assert {c.segment for c in s.uplift} == {"consumer", "small_business"}
    assert s.kpis["churn_by_product_combination"] and s.kpis["offer_acceptance"]
    assert max(d.score / d.threshold for d in s.data_drift) < 0.7  # comfortably clean


def test_price_rise_drifts_on_price_features_only(price_run, worlds):
    res, out = price_run
    assert res.exit_code == 1, res.output
    s = _summary(out)
    drifted = set(s.drifted_columns)
    assert "account_monthly_charges" in drifted and drifted <= PRICE_FEATURES
    failed = {c.name for c in s.failed}
    assert failed == {f"drift:{c}" for c in drifted}, failed
    assert "accounts.monthly_charges" in worlds["price_rise"].meta["scenario_detail"]["changed"]
    assert "FAIL drift:account_monthly_charges" in res.output


def test_handset_launch_drifts_on_device_age(store, reference, worlds, cfg):
    win = window_from_world(worlds["handset_launch"], tracking_uri=store[1])
    r = monitor(reference, win.frame, model_name="telco-churn", config=cfg, contact_log=win.contact_log).result
    drifted = set(r.drifted_columns)
    assert drifted == DEVICE_FEATURES, drifted
    assert not r.passed and {c.category for c in r.failed} == {"data_drift"}
    age = {d.column: d.score for d in r.data_drift}["line_device_age_months"]
    assert age > 3 * cfg.data_drift.numerical.threshold  # a launch is a big move, not a borderline one


def test_offer_fatigue_flags_the_scenario_segment_and_only_it(cfg):
    world = generate_world(N_FATIGUE, 2, scenario="offer_fatigue")
    detail = world.meta["scenario_detail"]
    column, value = (p.strip().strip("'") for p in detail["segment"].split("=="))
    log = retention_contact_log(world.tables, segment_by=(column,), observed_until=observed_until(world))
    cells = uplift_by_segment(log, cfg.uplift)
    checks = uplift_checks(cells, cfg.uplift)
    failed = [c.subject for c in checks if not c.passed]
    period = log["period"].iloc[0]
    assert failed == [f"{value}@{period}"]
    by = {c.segment: c for c in cells}
    assert by[value].status == "harmful" and by[value].ci_high < 0
    assert by["consumer"].status == "ok" and by["consumer"].ci_low < 0 < by["consumer"].ci_high
    # The estimate agrees with the generator's truth for the enrolled small-business accounts.
    truth = world.truth["retention"].merge(world.tables["accounts"][["account_id", column]], on="account_id")
    true_uplift = -truth.loc[truth[column] == value, "tau"].mean()
    assert by[value].ci_low <= true_uplift <= by[value].ci_high


def test_labels_only_once_landed(store, worlds):
    world = worlds[None]
    late = pd.Timestamp(world.meta["world_end"]) - pd.Timedelta(days=30)
    win = window_from_world(world, as_of=late, tracking_uri=store[1])
    assert not win.labels_available and "churned" not in win.frame.columns
    with pytest.raises(ConfigError, match="labels"):
        window_from_world(world, as_of=late, tracking_uri=store[1], labels=True)


def test_prediction_log_window_matches_the_scoring_batch(store, reference, worlds, cfg, tmp_path):
    """A prediction log in the service's format reads as the same window as the batch."""
    from telco_nbo.features import FEATURE_COLUMNS, build_account_features

    world = worlds[None]
    batch = window_from_world(world, tracking_uri=store[1], labels=False, all_models=False).frame
    feats = build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))
    log = tmp_path / "decisions.jsonl"
    rows = feats[FEATURE_COLUMNS].astype(object).where(feats[FEATURE_COLUMNS].notna(), None).to_dict("records")
    with log.open("w") as fh:
        for i, row in enumerate(rows):
            rec = {
                "timestamp": "2026-01-02T10:00:00.000+00:00",
                "account_id": feats["account_id"].iat[i],
                "household_id": feats["household_id"].iat[i],
                "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()},
                "scores": {"churn_probability": float(batch["churn_score"].iat[i]), "clv": 100.0, "retention_uplift": 0.01,
                           "propensity": {"HOME_FIBER": 0.1, "DATA_UPSELL": 0.2}},
                "model_versions": {"telco-churn": "1"},
            }
            fh.write(json.dumps(rec) + "\n")
    win = window_from_prediction_log(log)
    assert len(win) == len(batch)
    np.testing.assert_allclose(win["churn_score"], batch["churn_score"])
    assert (win["propensity"] == 0.2).all()
    out = tmp_path / "report"
    res = runner.invoke(app, ["monitor", "--model", "churn", "--current", str(log), "--out", str(out),
                              "--tracking-uri", store[1], "--config", str(THRESHOLDS), "--no-mlflow"])
    assert res.exit_code == 0, res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_evidently_ui_serves_the_workspace_runs(clean_run, price_run):
    """`evidently ui --workspace DIR` lists the project the CLI created, with both windows' snapshots."""
    ws = clean_run[2]
    port = _free_port()
    exe = Path(sys.executable).parent / "evidently"
    proc = subprocess.Popen(
        [str(exe), "ui", "--workspace", str(ws), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        projects = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/api/projects", timeout=2)
                if r.status_code == 200:
                    projects = r.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert projects is not None, "evidently ui did not answer"
        mine = [p for p in projects if p["name"] == "telco-nbo monitoring: churn"]
        assert len(mine) == 1
        snaps = httpx.get(f"{base}/api/projects/{mine[0]['id']}/snapshots", timeout=10).json()
        # drift + quality + headline snapshot per window, two windows.
        assert len(snaps) >= 6
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
