"""Data folder I/O and validation: round trips, determinism, atomic writes, every bad input."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from worlds import tiny_world

from telco_nbo.cli import app
from telco_nbo.data.io import TRUTH_SUMMARY_KEY, empty_table, load_world, write_world
from telco_nbo.data.schema import TABLES
from telco_nbo.data.validate import table_problems, validate_table, validate_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError


def _assert_same_tables(a: World, b: World) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True, obj=name)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tiny_world_is_valid_and_empty_tables_are_valid() -> None:
    tables = tiny_world().tables
    assert validate_world(tables) is tables  # no error, and the tables come back as given
    assert all(len(tables[name]) > 0 for name in ("households", "accounts", "lines", "contacts"))
    for name in TABLES:
        empty = empty_table(name)
        assert len(empty) == 0
        assert table_problems(name, empty) == []
        assert validate_table(name, empty) is empty


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    world = tiny_world()
    out = write_world(world, tmp_path / "w", fmt=fmt)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.{fmt}" for t in TABLES] + ["meta.json"])
    back = load_world(out)
    _assert_same_tables(world, back)
    assert back.meta == world.meta
    assert back.truth == {}


def test_parquet_is_deterministic(tmp_path: Path) -> None:
    a = write_world(tiny_world(), tmp_path / "a")
    b = write_world(tiny_world(), tmp_path / "b")
    snap_a, snap_b = _snapshot(a), _snapshot(b)
    assert snap_a.keys() == snap_b.keys()
    for name in snap_a:
        assert snap_a[name] == snap_b[name], f"{name} differs between two writes of the same world"
    # Column order in memory does not change the bytes: the contract fixes it.
    w = tiny_world()
    w.tables["accounts"] = w.tables["accounts"][list(reversed(w.tables["accounts"].columns))]
    c = write_world(w, tmp_path / "c")
    assert (c / "accounts.parquet").read_bytes() == snap_a["accounts.parquet"]


def test_truth_is_written_apart_and_loaded_only_on_request(tmp_path: Path) -> None:
    world = tiny_world()
    truth = pd.DataFrame({"account_id": ["A0000001", "A0000002"], "true_uplift": [0.1, -0.02]})
    world.truth = {"uplift": truth}
    world.meta[TRUTH_SUMMARY_KEY] = {"ate": 0.04, "n": 2}
    out = write_world(world, tmp_path / "w")
    assert (out / "truth" / "uplift.parquet").exists()
    assert "truth_summary" not in (out / "meta.json").read_text()

    plain = load_world(out)
    assert plain.truth == {} and TRUTH_SUMMARY_KEY not in plain.meta
    full = load_world(out, with_truth=True)
    pd.testing.assert_frame_equal(full.truth["uplift"], truth)
    assert full.meta[TRUTH_SUMMARY_KEY] == {"ate": 0.04, "n": 2}


def test_load_converts_foreign_parquet_dtypes(tmp_path: Path) -> None:
    """Parquet from another tool (int32, microsecond timestamps) loads into contract dtypes."""
    world = tiny_world()
    out = write_world(world, tmp_path / "w")
    hh = world.tables["households"].copy()
    hh["household_size"] = hh["household_size"].astype("int32")
    hh["created_date"] = hh["created_date"].astype("datetime64[us]")
    os.remove(out / "households.parquet")
    pq.write_table(pa.Table.from_pandas(hh, preserve_index=False), out / "households.parquet")
    _assert_same_tables(world, load_world(out))


def _setter(table: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[dict], None]:
    def apply(tables: dict) -> None:
        tables[table] = fn(tables[table].copy())

    return apply


def _set(table: str, row: int, col: str, value: object) -> Callable[[dict], None]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        if isinstance(value, str) and df[col].dtype != object:
            df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df

    return _setter(table, fn)


BAD_INPUTS = {
    "missing column": (
        _setter("accounts", lambda d: d.drop(columns=["monthly_charges"])),
        "accounts", ["missing column 'monthly_charges'"],
    ),
    "extra column": (
        _setter("lines", lambda d: d.assign(foo=1)),
        "lines", ["unexpected column 'foo'"],
    ),
    "wrong type": (
        _set("households", 1, "household_size", "abc"),
        "households", ["column 'household_size'", "expected int64", "text", "row 1", "'abc'"],
    ),
    "duplicate id": (
        _set("accounts", 2, "account_id", "A0000001"),
        "accounts", ["duplicate account_id 'A0000001'", "rows 0, 2"],
    ),
    "orphan line": (
        _set("lines", 4, "account_id", "A0000999"),
        "lines", ["orphan line", "'L0000005'", "account 'A0000999'", "does not exist"],
    ),
    "orphan account": (
        _set("accounts", 3, "household_id", "H0000999"),
        "accounts", ["orphan account", "'A0000004'", "household 'H0000999'"],
    ),
    "orphan usage": (
        _set("usage_monthly", 0, "line_id", "L0000999"),
        "usage_monthly", ["orphan usage row", "'L0000999'"],
    ),
    "contact with unknown offer": (
        _set("contacts", 2, "offer_id", "NO_SUCH_OFFER"),
        "contacts", ["offer 'NO_SUCH_OFFER'", "does not exist in 'offers'"],
    ),
    "contact with unknown arm": (
        _set("contacts", 0, "arm", "middle"),
        "contacts", ["unknown arm", "'middle'", "EXP_RENEWAL_TIMING"],
    ),
    "ticket on another account's line": (
        _set("support_tickets", 0, "line_id", "L0000005"),
        "support_tickets", ["belongs to account 'A0000003'", "ticket 'T0000001'"],
    ),
    "contact household mismatch": (
        _set("contacts", 1, "household_id", "H0000002"),
        "contacts", ["household does not match", "'C0000002'"],
    ),
    "dates out of order": (
        _set("support_tickets", 0, "resolved_at", pd.Timestamp("2025-01-01")),
        "support_tickets", ["dates out of order: resolved_at before opened_at", "row 0"],
    ),
    "accepted before contacted": (
        _set("contacts", 0, "accepted_at", pd.Timestamp("2025-01-01")),
        "contacts", ["accepted_at before contacted_at"],
    ),
    "usage before line start": (
        _set("usage_monthly", 12, "month", pd.Timestamp("2025-01-01")),
        "usage_monthly", ["usage before the line started", "'L0000005'"],
    ),
    "month not the first": (
        _set("usage_monthly", 3, "month", pd.Timestamp("2025-09-05")),
        "usage_monthly", ["column 'month'", "month must be the 1st", "row 3"],
    ),
    "value outside vocabulary": (
        _set("households", 0, "region", "mars"),
        "households", ["column 'region'", "not allowed", "'mars'", "row 0"],
    ),
    "negative amount": (
        _set("usage_monthly", 2, "data_gb", -1.5),
        "usage_monthly", ["column 'data_gb'", ">= 0", "-1.5", "row 2"],
    ),
    "null in required column": (
        _set("accounts", 1, "payment_method", None),
        "accounts", ["column 'payment_method'", "null", "row 1"],
    ),
    "id without prefix": (
        _set("households", 2, "household_id", "X0000003"),
        "households", ["column 'household_id'", "start with 'H'", "'X0000003'"],
    ),
    "duplicate usage month": (
        _set("usage_monthly", 1, "month", pd.Timestamp("2025-06-01")),
        "usage_monthly", ["duplicate (line_id, month) 'L0000001', 2025-06-01", "rows 0, 1"],
    ),
    "missing table": (
        lambda t: t.pop("experiments"),
        "experiments", ["missing table 'experiments'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_named_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    breaker, table, fragments = BAD_INPUTS[case]
    world = tiny_world()
    breaker(world.tables)
    before = {n: df.copy() for n, df in world.tables.items()}
    with pytest.raises(DataValidationError) as info:
        validate_world(world.tables)
    msg = str(info.value)
    assert info.value.table == table, msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in:\n{msg}"
    for n, df in before.items():  # validation never mutates its input
        pd.testing.assert_frame_equal(world.tables[n], df)

    # write_world validates first: nothing is created.
    with pytest.raises(DataValidationError):
        write_world(world, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_invalid_world_leaves_an_existing_folder_untouched(tmp_path: Path) -> None:
    existing = write_world(tiny_world(), tmp_path / "existing")
    snap = _snapshot(existing)
    for case in ("wrong type", "orphan line", "dates out of order"):
        world = tiny_world()
        BAD_INPUTS[case][0](world.tables)
        with pytest.raises(DataValidationError):
            write_world(world, existing, overwrite=True)
        assert _snapshot(existing) == snap
        assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"], "temporary folder left behind"


def test_problems_of_several_tables_are_all_listed() -> None:
    world = tiny_world()
    _set("households", 0, "region", "mars")(world.tables)
    _set("offers", 0, "kind", "bribe")(world.tables)
    with pytest.raises(DataValidationError) as info:
        validate_world(world.tables)
    assert info.value.table == "households"
    assert any("table 'offers'" in p and "'bribe'" in p for p in info.value.problems)


def test_overwrite_rules(tmp_path: Path) -> None:
    target = tmp_path / "w"
    target.mkdir()
    write_world(tiny_world(), target)  # an existing empty folder is fine
    (target / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        write_world(tiny_world(), target)
    assert (target / "keep.txt").exists()
    w = tiny_world()
    w.meta["seed"] = 99
    write_world(w, target, overwrite=True)
    assert not (target / "keep.txt").exists()
    assert load_world(target).meta["seed"] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_world(tiny_world(), tmp_path / "file")


def test_meta_that_is_not_json_is_refused_before_writing(tmp_path: Path) -> None:
    w = tiny_world()
    w.meta["bad"] = object()
    with pytest.raises(ConfigError, match="JSON"):
        write_world(w, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_csv_folder_errors_name_column_rows_and_file(tmp_path: Path) -> None:
    out = write_world(tiny_world(), tmp_path / "w", fmt="csv")
    acc = pd.read_csv(out / "accounts.csv", dtype=str)
    acc.loc[1, "monthly_charges"] = "abc"
    acc.loc[3, "monthly_charges"] = "x"
    acc.loc[2, "senior_citizen"] = "maybe"
    acc.to_csv(out / "accounts.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        load_world(out)
    msg = str(info.value)
    assert "column 'monthly_charges': expected float64, got text in rows 1, 3 (values 'abc', 'x')" in msg
    assert "column 'senior_citizen'" in msg and "'maybe'" in msg
    assert "accounts.csv" in msg


def test_missing_table_file_and_missing_folder(tmp_path: Path) -> None:
    out = write_world(tiny_world(), tmp_path / "w")
    os.remove(out / "lines.parquet")
    with pytest.raises(DataValidationError, match=r"missing file lines\.parquet"):
        load_world(out)
    with pytest.raises(ConfigError, match="does not exist"):
        load_world(tmp_path / "nowhere")


def test_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    out = write_world(tiny_world(), tmp_path / "w")
    ok = runner.invoke(app, ["data", "validate", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "usage_monthly" in ok.output and "valid" in ok.output
    n_usage = len(tiny_world().tables["usage_monthly"])
    usage_row = next(line for line in ok.output.splitlines() if "usage_monthly" in line)
    assert str(n_usage) in usage_row

    lines = pd.read_parquet(out / "lines.parquet")
    lines.loc[0, "account_id"] = "A0000999"
    pq.write_table(pa.Table.from_pandas(lines, preserve_index=False), out / "lines.parquet")
    bad = runner.invoke(app, ["data", "validate", str(out)])
    assert bad.exit_code == 2
    text = bad.output
    assert "orphan line" in text and "A0000999" in text


def test_validation_is_vectorized_enough() -> None:
    """200k usage rows validate well under a second of work (10M rows take ~4 s of CPU)."""
    import time

    world = tiny_world()
    rng = np.random.default_rng(0)
    n_lines, months = 10_000, 20
    lines = world.tables["lines"]
    extra = pd.DataFrame({c: np.repeat(lines[c].iloc[[0]].to_numpy(), n_lines) for c in lines.columns})
    extra["line_id"] = [f"L1{i:07d}" for i in range(n_lines)]
    extra = extra.astype(lines.dtypes.to_dict())
    world.tables["lines"] = pd.concat([lines, extra], ignore_index=True)
    n = n_lines * months
    usage = pd.DataFrame(
        {
            "line_id": np.repeat(extra["line_id"].to_numpy(), months),
            "month": np.tile(pd.date_range("2024-01-01", periods=months, freq="MS").values, n_lines),
            "data_gb": rng.random(n), "overage_gb": rng.random(n), "voice_minutes": rng.random(n),
            "intl_minutes": rng.random(n), "roaming_days": rng.integers(0, 5, n),
            "dropped_calls": rng.integers(0, 5, n), "bill_amount": rng.random(n),
        }
    )
    world.tables["usage_monthly"] = pd.concat([world.tables["usage_monthly"], usage], ignore_index=True)
    started = time.process_time()
    validate_world(world.tables)
    assert time.process_time() - started < 3.0
