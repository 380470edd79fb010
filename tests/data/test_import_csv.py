"""Importing the flat IBM Telco churn table (and renamed copies of it) through the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.data.importers import import_flat_csv, load_mapping
from telco_nbo.data.io import load_world
from telco_nbo.data.schema import CONTRACT_MONTHS, TABLES
from telco_nbo.errors import ConfigError

IBM_CSV = Path(__file__).resolve().parents[2] / "src/telco_nbo/data/samples/ibm_telco_customer_churn.csv"
EXAMPLE_MAPPING = Path(__file__).resolve().parents[2] / "src/telco_nbo/data/example_mapping.yaml"


@pytest.fixture(scope="module")
def ibm_path() -> Path:
    if not IBM_CSV.exists():
        pytest.skip(f"IBM Telco data not found at {IBM_CSV} (only present beside the project in CI/dev)")
    return IBM_CSV


@pytest.fixture(scope="module")
def ibm_text(ibm_path: Path) -> pd.DataFrame:
    return pd.read_csv(ibm_path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def ibm_world(ibm_path: Path):
    return import_flat_csv(ibm_path, "ibm")


@pytest.fixture()
def sample_csv(ibm_text: pd.DataFrame, tmp_path: Path) -> Path:
    """40 real rows, including tenure-0 customers whose TotalCharges is blank."""
    rows = pd.concat([ibm_text.head(30), ibm_text[ibm_text["TotalCharges"].str.strip() == ""].head(10)])
    path = tmp_path / "sample.csv"
    rows.to_csv(path, index=False)
    return path


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_ibm_import_reproduces_the_source(ibm_world, ibm_text: pd.DataFrame) -> None:
    acc, lines, hh = ibm_world["accounts"], ibm_world["lines"], ibm_world["households"]
    as_of = pd.Timestamp(ibm_world.meta["as_of"])
    assert as_of == pd.Timestamp("2025-12-01")
    assert len(acc) == len(hh) == 7043
    assert ibm_world.meta["source"] == "csv:ibm" and ibm_world.meta["mapping"]["name"] == "ibm"

    # Churn = account ended within 90 days after as_of, row for row.
    churned = (acc["end_date"] > as_of) & (acc["end_date"] <= as_of + pd.Timedelta(days=90))
    assert churned.sum() == 1869 and round(churned.mean(), 3) == 0.265
    np.testing.assert_array_equal(churned.to_numpy(), (ibm_text["Churn"] == "Yes").to_numpy())
    assert acc["account_id"].tolist() == ("A" + ibm_text["customerID"]).tolist()

    # Dates from tenure; tenure-0 customers (blank TotalCharges) import and start at as_of.
    tenure = ibm_text["tenure"].astype(int).to_numpy()
    months_active = (as_of.year - acc["start_date"].dt.year) * 12 + (as_of.month - acc["start_date"].dt.month)
    np.testing.assert_array_equal(months_active.to_numpy(), tenure)
    assert (acc.loc[tenure == 0, "start_date"] == as_of).sum() == 11
    # Contract end: after as_of, a whole number of contract terms after the start.
    fixed = acc[acc["contract_type"] != "month_to_month"]
    assert fixed["contract_end_date"].gt(as_of).all()
    assert acc.loc[acc["contract_type"] == "month_to_month", "contract_end_date"].isna().all()
    span = (fixed["contract_end_date"].dt.year - fixed["start_date"].dt.year) * 12 + (
        fixed["contract_end_date"].dt.month - fixed["start_date"].dt.month
    )
    term = fixed["contract_type"].map(CONTRACT_MONTHS)
    assert (span % term == 0).all() and (span - term <= months_active[fixed.index]).all()

    # Lines and flags.
    counts = lines["line_type"].value_counts()
    assert counts["mobile"] == (ibm_text["PhoneService"] == "Yes").sum() + (ibm_text["MultipleLines"] == "Yes").sum()
    assert counts["broadband"] == (ibm_text["InternetService"] != "No").sum()
    assert lines["broadband_tech"].value_counts().to_dict() == {"fiber": 3096, "dsl": 2421}
    assert acc["has_premium_care"].sum() == (ibm_text["TechSupport"] == "Yes").sum()
    assert lines["has_online_security"].sum() == (ibm_text["OnlineSecurity"] == "Yes").sum()
    streaming = (ibm_text["StreamingTV"] == "Yes") | (ibm_text["StreamingMovies"] == "Yes")
    assert lines["has_streaming"].sum() == streaming.sum()
    assert hh["fiber_eligible"].sum() == 3096 and not hh["fwa_eligible"].any()
    # Line prices add up to the account's charge.
    per_acc = lines.groupby("account_id")["monthly_price"].sum().reindex(acc["account_id"]).fillna(0)
    np.testing.assert_allclose(per_acc.to_numpy(), acc["monthly_charges"].to_numpy(), atol=1e-9)
    # No usage in a flat table: usage and the other tables are empty but typed.
    for name in ("usage_monthly", "support_tickets", "offers", "contacts", "experiments"):
        assert ibm_world[name].empty


def test_import_csv_command_writes_a_valid_deterministic_folder(sample_csv: Path, tmp_path: Path) -> None:
    code, out = _run(["data", "import-csv", str(sample_csv), "--mapping", "ibm", "--out", str(tmp_path / "a")])
    assert code == 0, out
    assert "imported 40 accounts" in out
    world = load_world(tmp_path / "a")
    assert len(world["accounts"]) == 40
    code, _ = _run(["data", "import-csv", str(sample_csv), "--out", str(tmp_path / "b")])
    assert code == 0
    for name in TABLES:
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()
    code, out = _run(["data", "validate", str(tmp_path / "a")])
    assert code == 0 and "csv:ibm" in out


def test_as_of_option(sample_csv: Path, tmp_path: Path) -> None:
    code, out = _run(["data", "import-csv", str(sample_csv), "--out", str(tmp_path / "w"), "--as-of", "2024-03-31"])
    assert code == 0, out
    world = load_world(tmp_path / "w")
    assert world.meta["as_of"] == "2024-03-31"
    assert world["accounts"]["start_date"].max() == pd.Timestamp("2024-03-31")
    code, out = _run(["data", "import-csv", str(sample_csv), "--out", str(tmp_path / "x"), "--as-of", "soon"])
    assert code == 2 and "as_of" in out and not (tmp_path / "x").exists()


def _bad_csv(sample: pd.DataFrame, case: str) -> pd.DataFrame:
    df = sample.copy()
    if case == "missing column":
        return df.drop(columns=["MonthlyCharges"])
    if case == "duplicate id":
        df.loc[5, "customerID"] = df.loc[2, "customerID"]
        return df
    if case == "text in numeric column":
        df.loc[3, "MonthlyCharges"] = "abc"
        df.loc[7, "tenure"] = "x"
        return df
    if case == "unknown category":
        df.loc[4, "Contract"] = "Three year"
        return df
    raise AssertionError(case)


BAD_CSV_EXPECT = {
    "missing column": ["missing column 'MonthlyCharges'"],
    "duplicate id": ["duplicate customerID", "rows 2, 5"],
    "text in numeric column": [
        "column 'MonthlyCharges': expected a number, got text in row 3 (values 'abc')",
        "column 'tenure': expected a number, got text in row 7 (values 'x')",
    ],
    "unknown category": ["column 'Contract': unknown value 'Three year' in row 4", "'Month-to-month'"],
}


@pytest.mark.parametrize("case", list(BAD_CSV_EXPECT))
def test_bad_csv_exits_2_names_the_problem_and_writes_nothing(
    sample_csv: Path, tmp_path: Path, case: str
) -> None:
    sample = pd.read_csv(sample_csv, dtype=str, keep_default_na=False)
    bad = tmp_path / "bad.csv"
    _bad_csv(sample, case).to_csv(bad, index=False)
    out_dir = tmp_path / "out"
    code, out = _run(["data", "import-csv", str(bad), "--mapping", "ibm", "--out", str(out_dir)])
    assert code == 2, out
    for fragment in BAD_CSV_EXPECT[case]:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "sample.csv"]


def test_empty_and_header_only_files(tmp_path: Path, ibm_text: pd.DataFrame) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out = _run(["data", "import-csv", str(empty), "--out", str(tmp_path / "o")])
    assert code == 2 and "empty" in out
    header = tmp_path / "header.csv"
    header.write_text(",".join(ibm_text.columns) + "\n")
    code, out = _run(["data", "import-csv", str(header), "--out", str(tmp_path / "o")])
    assert code == 2 and "no data rows" in out
    assert not (tmp_path / "o").exists()


def test_existing_output_is_left_alone(sample_csv: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "precious.txt").write_text("keep me")
    code, out = _run(["data", "import-csv", str(sample_csv), "--out", str(out_dir)])
    assert code == 2 and "not empty" in out
    assert [p.name for p in out_dir.iterdir()] == ["precious.txt"]
    code, out = _run(["data", "import-csv", str(sample_csv), "--out", str(out_dir), "--overwrite"])
    assert code == 0, out
    assert not (out_dir / "precious.txt").exists()


def test_example_mapping_imports_a_renamed_recoded_copy(sample_csv: Path, tmp_path: Path) -> None:
    ibm = pd.read_csv(sample_csv, dtype=str, keep_default_na=False)
    spec = load_mapping(EXAMPLE_MAPPING)
    ibm_spec = load_mapping("ibm")
    # Rename the columns and recode the values the way the example mapping expects.
    yes_no = {"Yes": "Y", "No": "N", "No internet service": "-", "No phone service": "-"}
    recode = {
        "SeniorCitizen": {"1": "Y", "0": "N"},
        "Contract": {"Month-to-month": "M2M", "One year": "12M", "Two year": "24M"},
        "PaymentMethod": {
            "Electronic check": "e-check", "Mailed check": "cheque",
            "Bank transfer (automatic)": "direct debit", "Credit card (automatic)": "card",
        },
        "InternetService": {"DSL": "ADSL", "Fiber optic": "FTTH", "No": "none"},
    }
    acme = pd.DataFrame()
    for field, acme_col in spec.columns.items():
        if field == "region":
            acme[acme_col] = np.where(np.arange(len(ibm)) % 2 == 0, "city", "countryside")
            continue
        src = ibm[ibm_spec.columns[field]]
        mapping = recode.get(ibm_spec.columns[field])
        if mapping is None and src.isin(list(yes_no)).all():
            mapping = yes_no
        acme[acme_col] = src.map(mapping) if mapping else src
    path = tmp_path / "acme.csv"
    acme.to_csv(path, index=False)

    code, out = _run(["data", "import-csv", str(path), "--mapping", str(EXAMPLE_MAPPING), "--out", str(tmp_path / "w")])
    assert code == 0, out
    mine = load_world(tmp_path / "w")
    ref = import_flat_csv(sample_csv, "ibm")
    assert mine.meta["source"] == "csv:acme"
    assert mine["households"]["region"].tolist()[:2] == ["urban", "rural"]
    for name in TABLES:
        a, b = mine[name], ref[name]
        if name == "households":
            a, b = a.drop(columns="region"), b.drop(columns="region")
        if name == "accounts":
            assert (a["channel_preference"] == "app").all()
            a, b = a.drop(columns="channel_preference"), b.drop(columns="channel_preference")
        pd.testing.assert_frame_equal(a, b, obj=name)


def test_bad_mapping_files(tmp_path: Path, sample_csv: Path) -> None:
    with pytest.raises(ConfigError, match="neither a built-in mapping"):
        load_mapping("nokia")
    unquoted = tmp_path / "m.yaml"
    text = EXAMPLE_MAPPING.read_text().replace('{"Y": true, "N": false}', "{Yes: true, No: false}")
    unquoted.write_text(text)
    with pytest.raises(ConfigError, match="quote it"):
        load_mapping(unquoted)
    missing = tmp_path / "m2.yaml"
    missing.write_text("name: x\ncolumns: {customer_id: id}\n")
    with pytest.raises(ConfigError, match="required field"):
        load_mapping(missing)
    code, out = _run(["data", "import-csv", str(sample_csv), "--mapping", str(missing), "--out", str(tmp_path / "o")])
    assert code == 2 and "required field" in out and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_ibm_churn_keeps_its_cross_validated_auc(ibm_world) -> None:
    """5-fold CV ROC AUC of the churn model on the imported IBM sample stays >= 0.845."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from telco_nbo.models.churn import make_churn_classifier
    from telco_nbo.training.data import prepare_churn

    frame = prepare_churn(ibm_world.tables, pd.Timestamp(ibm_world.meta["as_of"]), 90,
                          drop_constant=bool(ibm_world.meta["drop_constant_features"]))
    # Usage and ticket features are constant for this table (it has none): left out, not zeros.
    assert "account_bill_mean_3m" in frame.dropped_features and "account_tenure_months" in frame.X.columns
    params = dict(n_estimators=300, learning_rate=0.03, max_depth=3, min_child_weight=5.0, subsample=0.8,
                  colsample_bytree=0.8, reg_lambda=5.0, random_state=0)
    aucs = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(frame.X, frame.y):
        model = make_churn_classifier(**params).fit(frame.X.iloc[tr], frame.y[tr])
        aucs.append(roc_auc_score(frame.y[te], model.predict_proba(frame.X.iloc[te])[:, 1]))
    assert np.mean(aucs) >= 0.845, aucs


def test_suggested_mapping_of_the_ibm_sample_matches_the_built_in_one(ibm_path: Path, ibm_world, tmp_path: Path) -> None:
    mapping = tmp_path / "ibm_suggested.yaml"
    code, out = _run(["data", "suggest-mapping", str(ibm_path), "--target", "Churn", "--out", str(mapping)])
    assert code == 0, out
    assert "21 column(s) mapped to fields, 0 passed through, 0 dropped" in out
    suggested = load_mapping(mapping)
    assert suggested.columns == load_mapping("ibm").columns
    mine = import_flat_csv(ibm_path, suggested)
    for name in TABLES:
        pd.testing.assert_frame_equal(mine[name], ibm_world[name], obj=name)
