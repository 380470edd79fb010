"""Flat and multi-table import through the real CLI: fields, defaults, passthrough, accounting, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.data import attributes
from telco_nbo.data.importers import flat_to_world, load_mapping
from telco_nbo.data.io import load_world, write_world
from telco_nbo.data.mapping import FIELDS, FlatMapping, fields_frame
from telco_nbo.errors import ConfigError
from telco_nbo.features import build_account_features, passthrough_columns, to_model_matrix
from telco_nbo.training.data import prepare_churn


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def _usage_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small public-dataset-shaped table: usage, service calls, plans, state; no id column."""
    rng = np.random.default_rng(seed)
    day = rng.gamma(6.0, 30.0, n).round(1)
    calls = rng.poisson(1.5, n)
    plan = rng.choice(["yes", "no"], n, p=[0.1, 0.9])
    logit = -4 + 0.012 * day + 0.6 * calls + 1.5 * (plan == "yes")
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({
        "State": rng.choice(["KS", "OH", "NJ", "TX"], n),
        "Day Mins": day,
        "Intl Mins": rng.gamma(4.0, 2.5, n).round(1),
        "Intl Plan": plan,
        "CustServ Calls": calls,
        "Phone": [f"{rng.integers(300, 999)}-{i:05d}" for i in range(n)],
        "Carrier": "acme",
        "Notes": "",
        "Churn": np.where(churn, "True.", "False."),
    })


@pytest.fixture()
def usage_csv(tmp_path: Path) -> Path:
    path = tmp_path / "calls.csv"
    _usage_table().to_csv(path, index=False)
    return path


def test_fields_command_lists_every_field_with_table_unit_and_default() -> None:
    code, out = _run(["data", "fields"])
    assert code == 0, out
    for name in FIELDS:
        assert name in out
    assert "usage_monthly" in out and "minutes/month" in out and "support_tickets" in out
    frame = fields_frame()
    # Every field but the key and the target may take a default.
    no_default = frame.loc[frame["required_or_default"].str.startswith(("key", "required")), "field"].tolist()
    assert sorted(no_default) == ["churn", "customer_id"]
    # The five fields that used to be required now default (no CSV editing).
    spec = FlatMapping.model_validate({"name": "x", "columns": {"churn": "c"}})
    assert spec.columns == {"churn": "c"}
    for f in ("contract", "payment_method", "paperless_billing", "phone_service", "internet_service"):
        assert FIELDS[f].default is not None


def test_defaults_for_key_or_target_and_bad_defaults_are_refused() -> None:
    for bad, msg in (
        ({"churn": True}, "the target cannot take a default"),
        ({"customer_id": "1"}, "the key cannot take a default"),
        ({"contract": "forever"}, "must be one of"),
        ({"tenure_months": -3}, "number >= 0"),
        ({"nope": 1}, "unknown field"),
    ):
        with pytest.raises(ValueError, match=msg):
            FlatMapping.model_validate({"name": "x", "columns": {"churn": "c"}, "defaults": bad})


def test_suggested_mapping_imports_as_is_and_accounts_for_every_column(usage_csv: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    code, out = _run(["data", "suggest-mapping", str(usage_csv), "--target", "Churn", "--out", str(mapping)])
    assert code == 0, out
    assert "no id column" in out
    draft = yaml.safe_load(mapping.read_text())
    assert draft["columns"] == {"churn": "Churn", "intl_minutes": "Intl Mins", "support_calls": "CustServ Calls"}
    assert draft["values"]["churn"] == {"True.": True, "False.": False}
    assert draft["passthrough"] == {"State": "category", "Day Mins": "numeric", "Intl Plan": "category"}
    assert set(draft["drop"]) == {"Phone", "Carrier", "Notes"}

    code, out = _run(["data", "import-csv", str(usage_csv), "--mapping", str(mapping), "--out", str(tmp_path / "d")])
    assert code == 0, out
    # The printed accounting: every input column once, with what became of it.
    assert "9 input columns: 3 mapped, 3 passed through, 3 dropped" in out
    assert "no id column: accounts are numbered by row, A1..A400" in out
    for fragment in ("account_x_day_mins (numeric", "account_x_state (category", "field support_calls",
                     "identifier (400 distinct texts", "constant ('acme')", "empty"):
        assert fragment in out, fragment
    assert "constant (left out of training)" in out and "account_contract_type" in out

    world = load_world(tmp_path / "d")
    assert len(world["usage_monthly"]) == 400 and len(world["support_tickets"]) == int(_usage_table()["CustServ Calls"].sum())
    feats = build_account_features(world.tables, world.meta["as_of"])
    X = to_model_matrix(feats)
    assert passthrough_columns(X) == ["account_x_state", "account_x_day_mins", "account_x_intl_plan"]
    assert isinstance(X["account_x_state"].dtype, pd.CategoricalDtype)
    assert list(X["account_x_state"].cat.categories) == ["KS", "NJ", "OH", "TX"]
    assert X["account_x_day_mins"].dtype == np.float64
    # Row-number ids: account A<k> is file row k - 1.
    src = _usage_table()
    row = feats["account_id"].str[1:].astype(int).to_numpy() - 1
    np.testing.assert_allclose(feats["account_x_day_mins"].to_numpy(), src["Day Mins"].to_numpy()[row])
    np.testing.assert_allclose(feats["account_tickets_90d"].to_numpy(), src["CustServ Calls"].to_numpy()[row])
    np.testing.assert_allclose(feats["line_intl_minutes_3m"].to_numpy(), src["Intl Mins"].to_numpy()[row])
    frame = prepare_churn(world.tables, pd.Timestamp(world.meta["as_of"]), drop_constant=True)
    assert "account_contract_type" in frame.dropped_features
    assert frame.X.nunique(dropna=False).min() > 1


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_attributes_survive_a_write_and_load(usage_csv: Path, tmp_path: Path, fmt: str) -> None:
    from telco_nbo.data.importers import import_flat_csv
    from telco_nbo.data.suggest import suggest_mapping
    from telco_nbo.data.importers import read_flat_file

    draft = suggest_mapping(read_flat_file(usage_csv), "Churn")
    spec = FlatMapping.model_validate({k: v for k, v in draft.items() if k != "_notes"})
    world = import_flat_csv(usage_csv, spec)
    write_world(world, tmp_path / "w", fmt=fmt)
    back = load_world(tmp_path / "w")
    pd.testing.assert_frame_equal(back[attributes.TABLE], world[attributes.TABLE])


def test_wide_monthly_usage_layout(tmp_path: Path) -> None:
    n = 30
    rng = np.random.default_rng(1)
    flat = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "left": rng.choice(["yes", "no"], n),
                         "tenure": rng.integers(6, 60, n).astype(str)})
    for m in (1, 2, 3, 4):
        flat[f"bill_m{m}"] = (40 + 10 * m + rng.random(n)).round(2).astype(str)
        flat[f"gb_m{m}"] = (rng.random(n) * 2048).round(0).astype(str)
    spec = FlatMapping.model_validate({
        "name": "wide", "usage_months": 4,
        "columns": {"customer_id": "id", "churn": "left", "tenure_months": "tenure",
                    "bill_amount": "bill_m{m}", "data_gb": "gb_m{m}"},
        "units": {"data_gb": "mb"},
    })
    world = flat_to_world(flat.astype(object), spec)
    usage = world["usage_monthly"]
    assert len(usage) == 4 * n and usage["month"].nunique() == 4
    latest = usage.loc[usage["month"] == usage["month"].max()].set_index("line_id")
    np.testing.assert_allclose(latest.loc["Lc0-M1", "bill_amount"], float(flat.loc[0, "bill_m1"]))
    np.testing.assert_allclose(latest.loc["Lc0-M1", "data_gb"], float(flat.loc[0, "gb_m1"]) / 1024)
    feats = build_account_features(world.tables, world.meta["as_of"])
    # Month 1 is the latest: the bill change compares it with the mean of months 2..4.
    first = feats.set_index("account_id").loc["Ac0"]
    prior = np.mean([float(flat.loc[0, f"bill_m{m}"]) for m in (2, 3, 4)])
    assert first["account_bill_change_3m"] == pytest.approx(float(flat.loc[0, "bill_m1"]) / prior)
    with pytest.raises(ValueError, match="template"):
        FlatMapping.model_validate({"name": "w", "usage_months": 3, "columns": {"churn": "c", "data_gb": "gb"}})


def _bad_flat(usage_csv: Path, tmp_path: Path, case: str) -> tuple[Path, Path]:
    df = pd.read_csv(usage_csv, dtype=str, keep_default_na=False)
    mapping = {"name": "bad", "columns": {"churn": "Churn", "support_calls": "CustServ Calls",
                                          "intl_minutes": "Intl Mins"},
               "values": {"churn": {"True.": True, "False.": False}}}
    if case == "text in a usage column":
        df.loc[[4, 9], "Intl Mins"] = "n/a"
    elif case == "ticket count out of range":
        df.loc[7, "CustServ Calls"] = "5000"
    elif case == "passthrough numeric holds text":
        mapping["passthrough"] = {"State": "numeric"}
    elif case == "roaming days over a month":
        df["Roam"] = "0"
        df.loc[11, "Roam"] = "45"
        mapping["columns"]["roaming_days"] = "Roam"
    elif case == "mapped column missing":
        df = df.drop(columns=["Intl Mins"])
    elif case == "unknown churn value":
        df.loc[3, "Churn"] = "maybe"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    mpath = tmp_path / "bad.yaml"
    mpath.write_text(yaml.safe_dump(mapping))
    return path, mpath


BAD_FLAT = {
    "text in a usage column": ["table 'bad.csv'", "column 'Intl Mins': expected a number, got text in rows 4, 9",
                               "'n/a'"],
    "ticket count out of range": ["column 'CustServ Calls': more than 1000 tickets in row 7", "'5000'"],
    "passthrough numeric holds text": ["column 'State': passthrough numeric, got text in rows 0, 1, 2"],
    "roaming days over a month": ["column 'Roam': more than 31 roaming days in a month in row 11", "'45'"],
    "mapped column missing": ["missing column 'Intl Mins' (mapped, field intl_minutes)", "columns of the file:"],
    "unknown churn value": ["column 'Churn': unknown value 'maybe' in row 3"],
}


@pytest.mark.parametrize("case", list(BAD_FLAT))
def test_bad_flat_input_exits_2_names_table_column_rows_and_writes_nothing(
    usage_csv: Path, tmp_path: Path, case: str
) -> None:
    path, mapping = _bad_flat(usage_csv, tmp_path, case)
    out_dir = tmp_path / "out"
    code, out = _run(["data", "import-csv", str(path), "--mapping", str(mapping), "--out", str(out_dir)])
    assert code == 2, out
    for fragment in BAD_FLAT[case]:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    assert not out_dir.exists()


def test_bad_suggest_mapping_input(usage_csv: Path, tmp_path: Path) -> None:
    code, out = _run(["data", "suggest-mapping", str(usage_csv), "--target", "Quit", "--out", str(tmp_path / "m.yaml")])
    assert code == 2 and "no column 'Quit'" in out and not (tmp_path / "m.yaml").exists()
    code, out = _run(["data", "suggest-mapping", str(usage_csv), "--target", "State", "--out", str(tmp_path / "m.yaml")])
    assert code == 2 and "must hold two values" in out and "'KS'" in out
    (tmp_path / "m.yaml").write_text("keep")
    code, out = _run(["data", "suggest-mapping", str(usage_csv), "--target", "Churn", "--out", str(tmp_path / "m.yaml")])
    assert code == 2 and "exists" in out and (tmp_path / "m.yaml").read_text() == "keep"


# ----------------------------------------------------------------------------------------------
# Multi-table import


def _folder(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / "cdp"
    d.mkdir()
    pd.DataFrame({
        "cust": ["1", "2", "3", "4"], "start": ["2023-01-05", "2024-06-01", "2020-02-02", "2025-03-03"],
        "left": ["no", "yes", "no", "no"], "plan": ["M2M", "12M", "M2M", "24M"], "mrc": ["5000", "7550", "3000", "9900"],
        "segment": ["gold", "silver", "gold", "bronze"], "email": ["a@x", "b@x", "c@x", "d@x"],
    }).to_csv(d / "customers.csv", index=False)
    pd.DataFrame({"msisdn": ["1a", "2a", "3a", "4a"], "cust": ["1", "2", "3", "4"],
                  "since": ["2023-01-05", "2024-06-01", "2020-02-02", "2025-03-03"]}).to_csv(d / "lines.csv", index=False)
    mapping = {
        "name": "cdp", "as_of": "2025-09-30",
        "tables": {
            "accounts": {"file": "customers.csv", "columns": {"account_id": "cust", "start_date": "start",
                                                               "contract_type": "plan", "monthly_charges": "mrc"},
                         "churn": "left", "units": {"monthly_charges": "cents"},
                         "values": {"contract_type": {"M2M": "month_to_month", "12M": "one_year", "24M": "two_year"}}},
            "lines": {"file": "lines.csv", "columns": {"line_id": "msisdn", "account_id": "cust", "start_date": "since"}},
        },
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping))
    return d, mapping


def test_multi_table_import_with_missing_tables(tmp_path: Path) -> None:
    d, _ = _folder(tmp_path)
    code, out = _run(["data", "import", str(d), "--mapping", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o")])
    assert code == 0, out
    assert "no households table: one household per account" in out
    assert "no usage_monthly table: written empty (no usage features)" in out
    assert "account_x_segment (category" in out and "identifier" in out  # email: one distinct text per row
    world = load_world(tmp_path / "o")
    assert world["households"]["household_id"].tolist() == ["H1", "H2", "H3", "H4"]
    assert world["accounts"]["monthly_charges"].tolist() == [50.0, 75.5, 30.0, 99.0]
    assert world["accounts"]["end_date"].notna().tolist() == [False, True, False, False]
    assert world["lines"]["account_id"].tolist() == ["A1", "A2", "A3", "A4"]
    assert world["usage_monthly"].empty


BAD_FOLDER = {
    "missing file": ("lines", "file", "gone.csv", ["table 'lines'", "file gone.csv not found"]),
    "text in a number column": ("accounts", "mrc", "n/a", ["table 'accounts'", "column 'mrc': expected a number",
                                                           "row 2"]),
    "orphan line": ("lines", "cust", "9", ["table 'lines'", "A9"]),
    "unknown code": ("accounts", "plan", "36M", ["table 'accounts'", "column 'plan' (accounts.contract_type)",
                                                  "'36M' in row 2"]),
    "bad date": ("accounts", "start", "yesterday", ["table 'accounts'", "column 'start' (accounts.start_date)",
                                                    "row 2", "'yesterday'", "customers.csv"]),
    "unknown table": ("mapping", "tables", "billing", ["unknown table(s) ['billing']"]),
}


@pytest.mark.parametrize("case", list(BAD_FOLDER))
def test_bad_folder_input_exits_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    d, mapping = _folder(tmp_path)
    where, col, value, expect = BAD_FOLDER[case]
    if case == "missing file":
        mapping["tables"]["lines"]["file"] = value
    elif case == "unknown table":
        mapping["tables"][value] = {"file": "x.csv"}
    else:
        file = d / ("customers.csv" if where == "accounts" else "lines.csv")
        df = pd.read_csv(file, dtype=str)
        df.loc[2, col] = value
        df.to_csv(file, index=False)
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping))
    code, out = _run(["data", "import", str(d), "--mapping", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o")])
    assert code == 2, out
    for fragment in expect:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    assert not (tmp_path / "o").exists()


def test_builtin_mappings_still_load() -> None:
    assert load_mapping("ibm").columns["churn"] == "Churn"
    with pytest.raises(ConfigError, match="neither a built-in"):
        load_mapping("nope")


@pytest.mark.slow
def test_training_on_an_imported_flat_table_has_no_all_nan_warning(usage_csv: Path, tmp_path: Path) -> None:
    from telco_nbo.training.pipeline import load_config, train_churn

    mapping = tmp_path / "m.yaml"
    assert _run(["data", "suggest-mapping", str(usage_csv), "--target", "Churn", "--out", str(mapping)])[0] == 0
    assert _run(["data", "import-csv", str(usage_csv), "--mapping", str(mapping), "--out", str(tmp_path / "d")])[0] == 0
    cfg = load_config("churn").model_copy(update={
        "trials": 0, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "register_model": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_churn(tmp_path / "d", cfg)
    assert not [w for w in caught if "All-NaN" in str(w.message)]
    assert result.holdout_metrics["roc_auc"] > 0.6
    assert "account_x_day_mins" in result.details["model"].get_booster().feature_names


@pytest.mark.slow
def test_passthrough_features_reach_churn_propensity_and_uplift() -> None:
    from telco_nbo.data.synthetic import generate_world
    from telco_nbo.data.validate import validate_world
    from telco_nbo.models.propensity import ownership_dataset
    from telco_nbo.training.data import prepare_offers, prepare_uplift

    world = generate_world(600, 3)
    ids = world["accounts"]["account_id"]
    rng = np.random.default_rng(0)
    tables = dict(world.tables)
    tables[attributes.TABLE] = pd.DataFrame({
        "account_id": ids.to_numpy(),
        "x_loyalty_points": rng.integers(0, 500, len(ids)).astype(float),
        "x_segment": attributes.make_categorical(pd.Series(rng.choice(["gold", "silver"], len(ids)))).array,
    })
    validate_world(tables)
    as_of = pd.Timestamp(world.meta["as_of"])
    churn = prepare_churn(tables, as_of, 90, world.meta.get("world_end"))
    expected = ["account_x_loyalty_points", "account_x_segment"]
    assert passthrough_columns(churn.X) == expected
    assert isinstance(churn.X["account_x_segment"].dtype, pd.CategoricalDtype)
    points = churn.features.set_index("account_id")["account_x_loyalty_points"]
    src = tables[attributes.TABLE].set_index("account_id")["x_loyalty_points"]
    np.testing.assert_array_equal(points.to_numpy(), src.reindex(points.index).to_numpy())
    assert passthrough_columns(prepare_uplift(tables, world.truth).X) == expected
    offers = prepare_offers(tables, as_of)
    assert set(expected) <= set(offers.X.columns)
    ds = ownership_dataset(build_account_features(tables, as_of), "device_protection")
    assert set(expected) <= set(ds.X.columns)


EXAMPLES = Path(__file__).resolve().parents[2] / "src/telco_nbo/data"


def test_example_usage_mapping_imports_a_matching_extract(tmp_path: Path) -> None:
    n = 50
    rng = np.random.default_rng(5)
    flat = pd.DataFrame({
        "subscriber_id": [f"S{i:03d}" for i in range(n)], "msisdn": [f"06{i:08d}" for i in range(n)],
        "email": [f"u{i}@x.org" for i in range(n)], "churned": rng.choice(["Y", "N"], n),
        "tenure_days": rng.integers(0, 2000, n), "plan_fee": rng.uniform(10, 80, n).round(2),
        "contract_term": rng.choice(["prepaid", "12m", "24m"], n), "home_broadband": rng.choice(["none", "fibre", "adsl"], n),
        "care_calls_90d": rng.poisson(1, n), "complaints_90d": rng.poisson(0.2, n),
        "handset_brand": rng.choice(["A", "B", "C"], n), "loyalty_points": rng.integers(0, 900, n),
    })
    for m in (1, 2, 3):
        flat[f"voice_min_m{m}"] = rng.gamma(3, 100, n).round(1)
        flat[f"intl_min_m{m}"] = rng.gamma(1, 5, n).round(1)
        flat[f"data_mb_m{m}"] = rng.integers(0, 20000, n)
        flat[f"bill_m{m}"] = rng.uniform(10, 90, n).round(2)
    path = tmp_path / "extract.csv"
    flat.to_csv(path, index=False)
    mapping = EXAMPLES / "example_usage_mapping.yaml"
    code, out = _run(["data", "import-csv", str(path), "--mapping", str(mapping), "--out", str(tmp_path / "d")])
    assert code == 0, out
    assert f"{flat.shape[1]} input columns: 20 mapped, 2 passed through, 2 dropped" in out
    assert "personal data, never a feature" in out
    world = load_world(tmp_path / "d")
    assert world["usage_monthly"]["month"].nunique() == 3
    tickets = world["support_tickets"]
    assert (tickets["category"] == "network").all()
    assert (~tickets["is_complaint"]).sum() == int(flat["care_calls_90d"].sum())
    assert tickets["is_complaint"].sum() == int(flat["complaints_90d"].sum())
    assert set(world["accounts"]["payment_method"]) == {"credit_card"}


def test_example_folder_mapping_imports_a_matching_export(tmp_path: Path) -> None:
    d = tmp_path / "cdp"
    d.mkdir()
    pd.DataFrame({"customer_no": ["1", "2", "3"], "address_id": ["10", "10", "11"], "churn_flag": ["0", "1", "0"],
                  "activation_date": ["2022-01-01", "2023-05-05", "2024-02-02"], "term": ["M2M", "12M", "24M"],
                  "mrc_cents": ["4500", "6000", "3000"], "email": ["a@x", "b@x", "c@x"],
                  "nps": ["7", "3", "9"]}).to_csv(d / "customers.csv", index=False)
    pd.DataFrame({"address_id": ["10", "11"], "ftth_ready": ["yes", "no"]}).to_csv(d / "addresses.csv", index=False)
    pd.DataFrame({"msisdn": ["m1", "m2", "m3"], "customer_no": ["1", "2", "3"], "product": ["MOB", "BB", "MOB"],
                  "activation_date": ["2022-01-01", "2023-05-05", "2024-02-02"]}).to_csv(d / "subscriptions.csv", index=False)
    pd.DataFrame({"msisdn": ["m1", "m1", "m3"], "bill_month": pd.to_datetime(["2025-10-01", "2025-11-01", "2025-11-01"]),
                  "data_mb": [2048.0, 1024.0, 512.0]}).to_parquet(d / "usage.parquet", index=False)
    code, out = _run(["data", "import", str(d), "--mapping", str(EXAMPLES / "example_folder_mapping.yaml"),
                      "--out", str(tmp_path / "o")])
    assert code == 0, out
    assert "account_x_nps (numeric" in out and "personal data" in out
    world = load_world(tmp_path / "o")
    assert world["households"]["fiber_eligible"].tolist() == [True, False]
    assert world["households"]["created_date"].tolist() == [pd.Timestamp("2022-01-01"), pd.Timestamp("2024-02-02")]
    assert world["usage_monthly"]["data_gb"].tolist() == [2.0, 1.0, 0.5]
    assert world["accounts"]["end_date"].notna().tolist() == [False, True, False]


def test_fields_of_a_folder_mapping() -> None:
    code, out = _run(["data", "fields", "--folder"])
    assert code == 0, out
    for fragment in ("usage_monthly", "data_gb", "also mb", "default: 'month_to_month'", "or a churn flag", "key"):
        assert fragment in out, fragment
