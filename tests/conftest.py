"""Shared fixtures: paths, the real IBM data (skipped when absent), isolated MLflow stores."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

# Plots are rendered off-screen in tests; set before any matplotlib import.
os.environ.setdefault("MPLBACKEND", "Agg")
# Tests never reach the internet: MLflow 3 and BentoML send usage telemetry unless told not to.
# Set here, before any import, so the servers the tests start in subprocesses inherit it too.
for _var in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "BENTOML_DO_NOT_TRACK"):
    os.environ[_var] = "true"
# The promotion gate's quality floor (telco_nbo.quality_floor) would refuse many models trained on
# the suite's 1,000-3,000-household worlds (an uplift holdout of ~150 enrolments), and the tests of
# serving, ranking and monitoring need champions, not a verdict on them. The floor's own tests
# switch it on (tests/training/test_quality_floor.py); a user's environment never sees this default.
os.environ.setdefault("TELCO_NBO_QUALITY_FLOOR", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's own copy (Apache-2.0, licence note beside it): tests never reach outside the repo.
IBM_CSV = REPO_ROOT / "src" / "telco_nbo" / "data" / "samples" / "ibm_telco_customer_churn.csv"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def ibm_csv() -> Path:
    """The public IBM Telco churn CSV carried by the project (src/telco_nbo/data/samples)."""
    if not IBM_CSV.exists():
        pytest.fail(f"IBM Telco sample missing from the repository: {IBM_CSV}")
    return IBM_CSV


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created (tables + migrations) once per test session.

    Creating MLflow's schema costs seconds; copying a finished empty store costs milliseconds.
    """
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def tracking_uri(tmp_path: Path, _mlflow_template: Path) -> str:
    """A fresh MLflow tracking store (SQLite) in the test's temporary folder."""
    dst = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_template, dst)
    # The store's Default experiment recorded an absolute artifact folder beside the template;
    # point it into this test's folder so nothing is shared between tests.
    with sqlite3.connect(dst) as con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            ((tmp_path / "mlruns" / "0").as_uri(),),
        )
    return f"sqlite:///{dst}"
