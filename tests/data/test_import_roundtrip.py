"""Round trips: a synthetic world exported the way operators export data, imported back, churn trained.

Flat path: the world flattened to one row per account (usage aggregated into columns, ticket counts,
plans), a mapping drafted by suggest-mapping and used untouched, the import, churn trained.
Multi-table path: the world's tables written as CSV files with the operator's own column names and
codes, imported with a folder mapping. Both are compared with churn trained on the original tables,
on the same holdout households with the same model settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from import_support import flatten_world, to_text
from telco_nbo.cli import app
from telco_nbo.data.io import load_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.models.churn import make_churn_classifier
from telco_nbo.training.data import household_split, prepare_churn

pytestmark = pytest.mark.slow

N_HOUSEHOLDS, SEED = 3000, 7


@pytest.fixture(scope="module")
def world():
    return generate_world(N_HOUSEHOLDS, SEED)


@pytest.fixture(scope="module")
def original(world):
    as_of = pd.Timestamp(world.meta["as_of"])
    return prepare_churn(world.tables, as_of, 90, world.meta.get("world_end"))


def _holdout_auc(frame, holdout: np.ndarray) -> float:
    """Mean holdout ROC AUC of three seeds (the seed's own spread is ~0.003 at this size)."""
    aucs = []
    for seed in range(3):
        model = make_churn_classifier(n_estimators=300, random_state=seed).fit(frame.X[~holdout], frame.y[~holdout])
        aucs.append(roc_auc_score(frame.y[holdout], model.predict_proba(frame.X[holdout])[:, 1]))
    return float(np.mean(aucs))


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_flat_export_with_suggested_mapping_keeps_churn_signal(world, original, tmp_path: Path) -> None:
    as_of = pd.Timestamp(world.meta["as_of"])
    flat = flatten_world(world.tables, as_of)
    csv = tmp_path / "export.csv"
    flat.to_csv(csv, index=False)
    mapping = tmp_path / "m.yaml"
    code, out = _run(["data", "suggest-mapping", str(csv), "--target", "churn", "--out", str(mapping)])
    assert code == 0, out
    drafted = yaml.safe_load(mapping.read_text())
    # The draft found the usage and ticket columns a flat export carries.
    assert drafted["columns"]["data_gb"] == "data_gb_3m_avg"
    assert drafted["columns"]["support_calls"] == "support_calls_90d"
    code, out = _run(["data", "import-csv", str(csv), "--mapping", str(mapping), "--out", str(tmp_path / "d"),
                      "--as-of", str(as_of.date())])
    assert code == 0, out
    imported = load_world(tmp_path / "d")
    assert len(imported["usage_monthly"]) > 0 and len(imported["support_tickets"]) > 0
    frame = prepare_churn(imported.tables, as_of, 90, drop_constant=True)
    np.testing.assert_array_equal(frame.y, original.y)
    assert any(c.startswith("account_x_") for c in frame.X.columns)
    holdout = household_split(original.household_ids, 0.3, SEED)
    auc_orig, auc_flat = _holdout_auc(original, holdout), _holdout_auc(frame, holdout)
    assert abs(auc_flat - auc_orig) <= 0.01, (auc_orig, auc_flat)


def _write_operator_folder(world, folder: Path) -> dict:
    """The world's tables as an operator's CSV export: own file and column names, own codes."""
    folder.mkdir()
    t = world.tables
    accounts = t["accounts"].rename(columns={"account_id": "acct", "household_id": "hh", "contract_type": "term",
                                             "monthly_charges": "mrc_cents"})
    accounts["mrc_cents"] = (accounts["mrc_cents"] * 100).round().astype(int)
    accounts["term"] = accounts["term"].map({"month_to_month": "M2M", "one_year": "12M", "two_year": "24M"})
    accounts["acct"] = accounts["acct"].str[1:]  # ids without the contract's prefix
    accounts.to_csv(folder / "customers.csv", index=False)
    t["households"].rename(columns={"household_id": "hh"}).to_csv(folder / "homes.csv", index=False)
    lines = t["lines"].rename(columns={"line_id": "msisdn", "account_id": "acct"})
    lines["acct"] = lines["acct"].str[1:]
    lines.to_csv(folder / "lines.csv", index=False)
    usage = t["usage_monthly"].rename(columns={"line_id": "msisdn", "data_gb": "data_mb"})
    usage["data_mb"] = usage["data_mb"] * 1024
    usage.to_parquet(folder / "usage.parquet", index=False)
    tickets = t["support_tickets"].rename(columns={"account_id": "acct"})
    tickets["acct"] = tickets["acct"].str[1:]
    tickets.to_csv(folder / "tickets.csv", index=False)
    # Contact history too (a CDP export carries it): without it, an add-on accepted after as_of
    # could not be told apart from one owned before (see telco_nbo.features, known limits).
    contacts = t["contacts"].rename(columns={"account_id": "acct"})
    contacts["acct"] = contacts["acct"].str[1:]
    contacts.to_csv(folder / "contacts.csv", index=False)
    t["offers"].to_csv(folder / "offers.csv", index=False)
    t["experiments"].to_csv(folder / "experiments.csv", index=False)
    return {
        "name": "operator", "as_of": str(pd.Timestamp(world.meta["as_of"]).date()),
        "tables": {
            "accounts": {"file": "customers.csv", "columns": {"account_id": "acct", "household_id": "hh",
                                                               "contract_type": "term", "monthly_charges": "mrc_cents"},
                         "values": {"contract_type": {"M2M": "month_to_month", "12M": "one_year", "24M": "two_year"}},
                         "units": {"monthly_charges": "cents"}},
            "households": {"file": "homes.csv", "columns": {"household_id": "hh"}},
            "lines": {"file": "lines.csv", "columns": {"line_id": "msisdn", "account_id": "acct"}},
            "usage_monthly": {"file": "usage.parquet", "columns": {"line_id": "msisdn", "data_gb": "data_mb"},
                              "units": {"data_gb": "mb"}},
            "support_tickets": {"file": "tickets.csv", "columns": {"account_id": "acct"}},
            "contacts": {"file": "contacts.csv", "columns": {"account_id": "acct"}},
            "offers": {"file": "offers.csv"},
            "experiments": {"file": "experiments.csv"},
        },
    }


def test_multi_table_csv_folder_gives_the_same_churn_model(world, original, tmp_path: Path) -> None:
    spec = _write_operator_folder(world, tmp_path / "export")
    mapping = tmp_path / "folder.yaml"
    mapping.write_text(yaml.safe_dump(spec))
    code, out = _run(["data", "import", str(tmp_path / "export"), "--mapping", str(mapping), "--out", str(tmp_path / "d")])
    assert code == 0, out
    assert "no contacts table" not in out  # contacts are not listed as a missing usage table
    imported = load_world(tmp_path / "d")
    as_of = pd.Timestamp(world.meta["as_of"])
    frame = prepare_churn(imported.tables, as_of, 90)
    np.testing.assert_array_equal(frame.y, original.y)
    # The same tables under other names and codes: the same model matrix.
    pd.testing.assert_frame_equal(frame.X, original.X, check_exact=False, rtol=1e-9, atol=1e-9)
    holdout = household_split(original.household_ids, 0.3, SEED)
    auc_orig, auc_folder = _holdout_auc(original, holdout), _holdout_auc(frame, holdout)
    assert abs(auc_folder - auc_orig) <= 0.01, (auc_orig, auc_folder)
    # Usage came through the unit conversion: the same GB as the original.
    np.testing.assert_allclose(
        imported["usage_monthly"]["data_gb"].sum(), world["usage_monthly"]["data_gb"].sum(), rtol=1e-9)


def test_uplift_and_propensity_train_on_a_folder_import_with_a_passthrough_column(world, tmp_path: Path) -> None:
    from telco_nbo.data.folder_import import FolderMapping, import_folder
    from telco_nbo.data.io import write_world
    from telco_nbo.training.pipeline import load_config, train_propensity, train_uplift

    spec = _write_operator_folder(world, tmp_path / "export")
    customers = pd.read_csv(tmp_path / "export" / "customers.csv", dtype=str)
    customers["nps"] = np.random.default_rng(0).integers(0, 11, len(customers)).astype(str)
    customers.to_csv(tmp_path / "export" / "customers.csv", index=False)
    write_world(import_folder(tmp_path / "export", FolderMapping.model_validate(spec)), tmp_path / "d")

    def cfg(kind: str):
        return load_config(kind).model_copy(update={"trials": 0, "tracking_uri": f"sqlite:///{tmp_path / 'ml.db'}",
                                                    "register_model": False})

    uplift = train_uplift(tmp_path / "d", cfg("uplift"))
    names = list(uplift.details["learner"].feature_names_in_)
    assert "account_x_nps" in names
    from telco_nbo.training.data import prepare_uplift

    # Features constant among the enrolments (imported data) are left out, not fed as zeros.
    frame = prepare_uplift(load_world(tmp_path / "d").tables, drop_constant=True)
    assert names == list(frame.X.columns) and frame.X.nunique(dropna=False).min() > 1
    propensity = train_propensity(tmp_path / "d", cfg("propensity"))
    assert "account_x_nps" in propensity.details["model"].get_booster().feature_names
    assert propensity.holdout_metrics["roc_auc"] > 0.6
