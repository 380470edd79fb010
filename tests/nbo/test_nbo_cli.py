"""``telco-nbo rank``: refuses to invent scores, names bad arguments, writes nothing on error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from telco_nbo.cli import app

# Both tests open a real MLflow store (SQLite).
pytestmark = pytest.mark.integration

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["rank", *args])


def test_rank_without_champion_models_fails_clearly(tmp_path: Path, tracking_uri: str):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "ranking.parquet"
    res = _run("--data", str(data), "--out", str(out), "--tracking-uri", tracking_uri)
    assert res.exit_code == 2
    assert "no champion model registered for telco-churn; run telco-nbo train first" in " ".join(res.output.split())
    assert not out.exists()


def test_rank_names_bad_arguments(tmp_path: Path, tracking_uri: str):
    res = _run("--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r.parquet"), "--tracking-uri", tracking_uri)
    assert res.exit_code == 2 and "does not exist" in res.output
    res = _run("--data", str(tmp_path), "--out", str(tmp_path / "r.csv"), "--tracking-uri", tracking_uri)
    assert res.exit_code == 2 and ".parquet" in res.output
    res = _run("--data", str(tmp_path), "--out", str(tmp_path / "r.parquet"), "--top-k", "0")
    assert res.exit_code != 0
    bad = tmp_path / "nbo.yaml"
    bad.write_text("horizon_months: -3\n")
    res = _run("--data", str(tmp_path), "--out", str(tmp_path / "r.parquet"), "--config", str(bad))
    assert res.exit_code == 2 and "horizon_months" in res.output
    assert not list(tmp_path.glob("*.parquet"))
