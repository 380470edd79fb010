"""`telco-nbo monitor` end to end: champion reference from MLflow (SQLite), exit codes, no output on
bad input, MLflow run and Evidently workspace written; the scheduled job wrapper."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from monitoring_support import make_contact_log, make_window
from typer.testing import CliRunner

from telco_nbo.cli import app

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = REPO / "monitoring" / "thresholds.yaml"
NUMERIC = [
    "account_tenure_months",
    "account_monthly_charges",
    "account_bill_mean_3m",
    "line_data_gb_mean_3m",
    "account_open_tickets",
    "household_n_lines",
]

runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, frame in {
        "reference": make_window(5000, seed=1).drop(columns="churned"),
        "clean": make_window(5000, seed=2),
        "drifted": make_window(5000, seed=5, drift=True),
    }.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name])
    paths["contact_log"] = tmp_path / "contact_log.csv"
    make_contact_log(3, harmful_segment="single").to_csv(paths["contact_log"], index=False)
    return paths


@pytest.mark.slow
@pytest.mark.integration
def test_drifted_window_against_the_champion_reference_exits_1(tmp_path, files, tracking_uri):
    """No --reference: the champion's reference artifact is read from MLflow (tracking module)."""
    import mlflow
    import pandas as pd
    from xgboost import XGBClassifier

    from telco_nbo.config import get_settings
    from telco_nbo.tracking import log_training_run

    train = make_window(1500, seed=30)
    model = XGBClassifier(n_estimators=10, max_depth=2).fit(train[NUMERIC], train["churned"])
    log_training_run(
        "churn",
        model,
        X_train=train[NUMERIC],
        y_train=train["churned"],
        X_holdout=train[NUMERIC].head(300),
        y_holdout=train["churned"].head(300),
        tracking_uri=tracking_uri,
        settings=get_settings(workdir=tmp_path, tracking_uri=tracking_uri),
    )
    # The window carries the champion's own scores, as a scoring batch would.
    # Labels have not landed yet for this window (quality is covered in test_monitoring.py).
    drifted = pd.read_parquet(files["drifted"]).drop(columns="churned")
    drifted["churn_score"] = model.predict_proba(drifted[NUMERIC])[:, 1]
    drifted.to_parquet(files["drifted"])

    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "monitor", "--model", "churn", "--current", str(files["drifted"]), "--out", str(out),
            "--config", str(THRESHOLDS), "--tracking-uri", tracking_uri, "--workspace", str(tmp_path / "ws"),
            "--contact-log", str(files["contact_log"]),
        ],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    summary = json.loads((out / "summary.json").read_text())
    failed = {c["name"] for c in summary["checks"] if not c["passed"] and c["severity"] == "fail"}
    assert {"drift:account_monthly_charges", "drift:line_data_gb_mean_3m", "uplift:single@2024-05"} <= failed
    # Only the champion's features were compared (it was trained on the numeric ones).
    assert {d["column"] for d in summary["data_drift"]} == set(NUMERIC)
    assert (out / "summary.html").is_file() and (out / "evidently_drift.html").is_file()

    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("telco-monitoring")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["telco_nbo.passed"] == "false"
    assert run.data.metrics["drift_share"] == pytest.approx(summary["drift_share"])
    assert "uplift__single" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "monitoring")}
    assert "monitoring/summary.json" in arts and "monitoring/evidently_drift.html" in arts
    assert any((tmp_path / "ws").iterdir())


@pytest.mark.integration
def test_clean_window_exits_0(tmp_path, files):
    import pandas as pd

    out = tmp_path / "report"
    current = tmp_path / "window"  # a folder of daily files, as the prediction log is kept
    current.mkdir()
    clean = pd.read_parquet(files["clean"]).drop(columns="churned")
    clean.iloc[:1500].to_parquet(current / "2024-06-01.parquet")
    clean.iloc[1500:].to_parquet(current / "2024-06-02.parquet")
    res = runner.invoke(
        app,
        ["monitor", "--model", "churn", "--current", str(current), "--reference", str(files["reference"]),
         "--out", str(out), "--config", str(THRESHOLDS), "--no-mlflow"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["drift_share"] == 0.0 and summary["current_rows"] == 5000


def test_malformed_window_exits_2_and_writes_nothing(tmp_path, files):
    import pandas as pd

    bad = pd.read_parquet(files["clean"]).drop(columns=["account_monthly_charges"])
    bad["household_n_lines"] = "three"
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        ["monitor", "--model", "churn", "--current", str(bad_path), "--reference", str(files["reference"]),
         "--out", str(out), "--no-mlflow"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "account_monthly_charges" in res.output and "household_n_lines" in res.output
    assert not out.exists()
    bad_cfg = tmp_path / "t.yaml"
    bad_cfg.write_text("quality: {min_roc_auc: 2}\n")
    res = runner.invoke(
        app,
        ["monitor", "--model", "churn", "--current", str(files["clean"]), "--reference", str(files["reference"]),
         "--out", str(out), "--config", str(bad_cfg), "--no-mlflow"],
    )  # fmt: skip
    assert res.exit_code == 2 and "min_roc_auc" in res.output and not out.exists()


def test_scheduled_job_returns_the_exit_code(tmp_path, files, capsys):
    spec = importlib.util.spec_from_file_location("run_monitoring", REPO / "monitoring" / "run_monitoring.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(
        ["--model", "churn", "--current", str(tmp_path / "missing.parquet"), "--reference", str(files["reference"]),
         "--out-root", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 2
    assert "window not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
