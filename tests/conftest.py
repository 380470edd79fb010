"""Shared fixtures: paths, the real IBM data (skipped when absent), isolated MLflow stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Plots are rendered off-screen in tests; set before any matplotlib import.
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
IBM_CSV = REPO_ROOT.parent / "shared" / "data" / "ibm_telco_customer_churn.csv"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def ibm_csv() -> Path:
    """The public IBM Telco churn CSV from ../shared/data, or skip with the reason."""
    if not IBM_CSV.exists():
        pytest.skip(f"IBM Telco data not found at {IBM_CSV} (only present beside the project in CI/dev)")
    return IBM_CSV


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> str:
    """A fresh MLflow tracking store (SQLite) in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
