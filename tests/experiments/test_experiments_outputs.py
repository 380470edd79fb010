"""Rendering, MLflow logging, the CLI, and the power calculator."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize
from typer.testing import CliRunner

from telco_nbo.errors import ConfigError
from telco_nbo.experiments import power
from telco_nbo.experiments.models import MetricSpec, Readout
from telco_nbo.experiments.readout import run_readout
from telco_nbo.experiments.render import to_html, to_markdown


def _frame(n: int = 3000, control_share: float = 1 / 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    arm = np.where(u < control_share, "control", np.where(u < control_share + (1 - control_share) / 2, "day30", "pre_end60"))
    pre = rng.gamma(4.0, 20.0, n)
    return pd.DataFrame({
        "unit_id": [f"H{i}" for i in range(n)], "arm": arm,
        "churned": rng.random(n) < 0.15, "revenue": 12 * pre + rng.normal(0, 100, n), "pre_revenue": pre,
        "product_mix": rng.choice(["mobile_only", "bundle", "home_only"], n, p=[0.6, 0.38, 0.02]),
    })


def _readout(frame: pd.DataFrame) -> Readout:
    return run_readout(
        frame, experiment_id="EXP-TIMING-1", arms=["control", "day30", "pre_end60"], control_arm="control",
        metrics=[MetricSpec(name="churned", kind="binary", higher_is_better=False),
                 MetricSpec(name="revenue", kind="continuous", covariate="pre_revenue")],
        segments=["product_mix"], sequential=True,
    )


def test_markdown_and_html_show_numbers_too_small_and_plots() -> None:
    r = _readout(_frame())
    md = to_markdown(r)
    assert md.startswith("# A/B readout: EXP-TIMING-1") and "UNTRUSTWORTHY" not in md
    assert "| home_only | day30 vs control |" in md and "too small" in md
    assert "CUPED" in md and "variance reduction" in md and "always-valid CI" in md
    c = r.comparison("revenue", "day30")
    assert f"{c.abs_lift:+,.2f}" in md
    html = to_html(r)
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in imgs)
    assert "Sample ratio check passed" in html and "too small" in html


def test_untrustworthy_readout_is_shown_first() -> None:
    r = _readout(_frame(20_000, control_share=0.30))  # designed as equal thirds
    assert not r.trustworthy
    md = to_markdown(r)
    assert md.splitlines()[2].startswith("> **UNTRUSTWORTHY")
    html = to_html(r, plots=False)
    assert html.index("class='banner'") < html.index("<h2>")


@pytest.mark.slow
@pytest.mark.integration
def test_log_readout_to_mlflow_real_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    from telco_nbo.experiments.tracking import log_readout_to_mlflow

    monkeypatch.chdir(tmp_path)  # anything written to the cwd would land here, not in the repo
    before = mlflow.get_tracking_uri()
    uri = tracking_uri
    r = _readout(_frame())
    run_id = log_readout_to_mlflow(r, uri)
    assert mlflow.get_tracking_uri() == before  # no global state touched
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["experiment_id"] == "EXP-TIMING-1" and run.data.params["sequential"] == "true"
    assert run.data.tags["telco_nbo.trustworthy"] == "true"
    c = r.comparison("revenue", "day30")
    assert run.data.metrics["revenue.cuped.day30.abs_lift"] == pytest.approx(c.abs_lift)
    assert run.data.metrics["churned.day30.p_value"] == pytest.approx(r.metric("churned").comparisons[0].p_value)
    arts = {a.path for a in client.list_artifacts(run_id, "readout")}
    assert arts == {"readout/readout.html", "readout/readout.md", "readout/readout.json"}
    local = client.download_artifacts(run_id, "readout/readout.json", str(tmp_path / "dl"))
    assert Readout.model_validate_json(Path(local).read_text()) == r
    assert (tmp_path / "mlartifacts").is_dir() and not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_cli_readout_end_to_end(tmp_path: Path) -> None:
    from telco_nbo.cli import app
    from telco_nbo.data.io import write_world
    from telco_nbo.data.synthetic import generate_world

    data = tmp_path / "data"
    write_world(generate_world(2500, seed=3), data)
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["readout", "--data", str(data), "--experiment", "EXP-TIMING-1", "--out", str(out),
                              "--metric", "churned", "--metric", "accepted", "--segments", "product_mix,region",
                              "--sequential", "--min-segment-units", "10"])
    assert res.exit_code == 0, res.output
    r = Readout.model_validate_json((out / "readout.json").read_text())
    assert [m.spec.name for m in r.metrics] == ["churned", "accepted"] and r.sequential is not None
    assert r.segment_columns == ["product_mix", "region"]
    rule = json.loads((out / "timing_rule.json").read_text())
    assert rule["segment_column"] == "product_mix" and rule["metric"] == "churned"
    assert (out / "readout.html").read_text().startswith("<!doctype html>") and (out / "readout.md").exists()
    # Bad input: exit 2, a message naming the problem, nothing written.
    bad = tmp_path / "bad"
    res = runner.invoke(app, ["readout", "--data", str(data), "--experiment", "EXP-NOPE", "--out", str(bad)])
    assert res.exit_code == 2 and "EXP-NOPE" in res.output and not bad.exists()
    res = runner.invoke(app, ["readout", "--data", str(data), "--experiment", "EXP-TIMING-1", "--out", str(bad), "--metric", "arpu"])
    assert res.exit_code == 2 and "unknown metric" in res.output and not bad.exists()
    res = runner.invoke(app, ["readout", "--data", str(data), "--experiment", "EXP-TIMING-1", "--out", str(bad), "--segments", "nope"])
    assert res.exit_code == 2 and "nope" in res.output and not bad.exists()


def test_power_matches_statsmodels_and_round_trips() -> None:
    plan = power.sample_size_proportions(0.20, -0.03, alpha=0.05, power=0.8)
    h = abs(proportion_effectsize(0.17, 0.20))
    assert plan.n_control == int(np.ceil(NormalIndPower().solve_power(h, alpha=0.05, power=0.8)))
    # MDE at that size is (just below) the planned effect; more comparisons need more units.
    back = power.mde_proportions(0.20, plan.n_control, direction="decrease")
    assert back.mde_abs == pytest.approx(-0.03, abs=5e-4) and back.mde_abs >= -0.03
    assert power.sample_size_proportions(0.20, -0.03, comparisons=2).n_control > plan.n_control
    m = power.sample_size_means(300.0, 20.0, ratio=2.0)
    assert m.n_treatment == pytest.approx(2 * m.n_control, abs=2)
    n_t = TTestIndPower().solve_power(20 / 300, alpha=0.05, power=0.8, ratio=0.5)
    assert m.n_treatment == pytest.approx(n_t, abs=2)
    assert power.mde_means(300.0, m.n_control, ratio=2.0).mde_abs == pytest.approx(20.0, rel=2e-3)
    with pytest.raises(ConfigError):
        power.sample_size_proportions(0.95, 0.1)
    with pytest.raises(ConfigError):
        power.mde_means(0.0, 100)
