"""Reading and writing data folders (the on-disk form of a :class:`~telco_nbo.data.world.World`).

Layout (see :mod:`telco_nbo.data.world`)::

    DIR/<table>.parquet      one per table of schema.TABLES (or DIR/<table>.csv on load)
    DIR/meta.json            World.meta, keys sorted
    DIR/truth/<name>.parquet World.truth (synthetic worlds only)
    DIR/truth/summary.json   World.meta["truth_summary"], kept out of meta.json so that nothing
                             reading a data folder for features sees the truth by accident

Writing is all-or-nothing: the world is validated first (nothing is written if it is invalid),
every file is written into a hidden temporary folder beside ``DIR`` and that folder is renamed
into place. Parquet files are deterministic: the same frames give byte-identical files (fixed
Arrow schema from the contract, no pandas index or pandas metadata, fixed codec and settings).

Reading converts each table to the contract's dtypes without loss (CSV text, narrower integers,
other timestamp units, pandas' nullable dtypes); anything that cannot be converted (text in a
number column, an unparseable date) is reported with the column, rows and values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from telco_nbo.data import attributes
from telco_nbo.data.schema import OPTIONAL_COLUMNS, SCHEMAS, TABLES
from telco_nbo.data.validate import format_rows, format_values, validate_world
from telco_nbo.data.world import META_FILE, TRUTH_DIR, World
from telco_nbo.errors import ConfigError, DataValidationError

TRUTH_SUMMARY_KEY = "truth_summary"
"""``World.meta`` key stored as ``truth/summary.json`` instead of inside ``meta.json``."""

TRUTH_SUMMARY_FILE = "summary.json"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "datetime64[ns]": pa.timestamp("ns"),
}

# Fixed writer settings: part of the determinism promise, change only on purpose.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
}

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _expected_dtypes(table: str) -> dict[str, str]:
    return {c: str(col.dtype) for c, col in SCHEMAS[table].columns.items()}


def arrow_schema(table: str) -> pa.Schema:
    """Return the fixed Arrow schema of ``table`` (contract column order, contract types).

    Args:
        table: One of :data:`~telco_nbo.data.schema.TABLES`.

    Returns:
        The schema used to write ``<table>.parquet``.
    """
    return pa.schema(
        [
            pa.field(c, _ARROW_TYPES[t], nullable=SCHEMAS[table].columns[c].nullable)
            for c, t in _expected_dtypes(table).items()
        ]
    )


def empty_table(table: str) -> pd.DataFrame:
    """Return a zero-row frame with the contract's columns and dtypes.

    Args:
        table: One of :data:`~telco_nbo.data.schema.TABLES`.

    Returns:
        An empty frame that passes :func:`~telco_nbo.data.validate.validate_table`.
    """
    if table not in SCHEMAS:
        raise DataValidationError(table, [f"unknown table '{table}'; tables are: {', '.join(TABLES)}"])
    return pd.DataFrame(
        {c: pd.Series([], dtype=object if t == "str" else t) for c, t in _expected_dtypes(table).items()}
    )


# ----------------------------------------------------------------------------------------------
# Lossless conversion to the contract's dtypes
# ----------------------------------------------------------------------------------------------


def _text_problem(col: str, expected: str, s: pd.Series, bad: np.ndarray, what: str = "text") -> str:
    pos = np.flatnonzero(bad)
    return f"column '{col}': expected {expected}, got {what} in {format_rows(pos)} (values {format_values(s.iloc[pos])})"


def _conform_column(
    col: str, s: pd.Series, expected: str, nullable: bool, normalize_nulls: bool = True
) -> tuple[pd.Series, list[str]]:
    """Convert one column to ``expected`` without loss; return it and any problems."""
    problems: list[str] = []
    if expected != "str" and str(s.dtype) == expected:
        return s, problems  # already right: no copy (nulls in it are validation's business)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype if expected != "str" else object)
    if expected == "str":
        if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            if s.dtype != object:
                s = s.astype(object)
            if normalize_nulls:  # CSV gives NaN for an empty cell; Arrow already gives None
                na = s.isna()
                if na.any():
                    s = s.where(~na, None)
        # A non-text id column stays as it is: validation names it (ids never join silently).
        return s, problems

    is_text = s.dtype == object or isinstance(s.dtype, pd.StringDtype)
    if is_text:
        s = s.astype(object)
        na = s.isna().to_numpy(bool)
        stripped = s.map(lambda v: v.strip() if isinstance(v, str) else v)
        blank = stripped.map(lambda v: isinstance(v, str) and v == "").to_numpy(bool)
        na |= blank
        stripped = stripped.where(~na, None)
    else:
        na = s.isna().to_numpy(bool)

    if na.any() and not nullable:
        problems.append(f"column '{col}': empty (null) in {format_rows(np.flatnonzero(na))}")

    if expected in ("int64", "float64"):
        if is_text:
            num = pd.to_numeric(stripped, errors="coerce")
            bad = ~na & num.isna().to_numpy(bool)
            if bad.any():
                problems.append(_text_problem(col, expected, s, bad))
                return s, problems
        elif pd.api.types.is_bool_dtype(s.dtype):
            problems.append(f"column '{col}': expected {expected}, got true/false values")
            return s, problems
        elif pd.api.types.is_numeric_dtype(s.dtype):
            num = s.astype("float64") if expected == "float64" or na.any() else s
        else:
            problems.append(f"column '{col}': expected {expected}, got {s.dtype}")
            return s, problems
        if expected == "float64":
            return num.astype("float64", copy=False), problems
        if problems:
            return s, problems
        f = num.astype("float64") if not pd.api.types.is_integer_dtype(num.dtype) else None
        if f is not None:
            frac = (f != np.floor(f)).to_numpy(bool)
            if frac.any():
                problems.append(_text_problem(col, expected, s, frac, "a decimal number"))
                return s, problems
        return num.astype("int64", copy=False), problems

    if expected == "bool":
        if pd.api.types.is_bool_dtype(s.dtype) and not na.any():
            return s.astype(bool), problems
        if is_text or s.dtype == object or isinstance(s.dtype, pd.BooleanDtype):
            def to_bool(v: object) -> object:
                if isinstance(v, (bool, np.bool_)):
                    return bool(v)
                if isinstance(v, str):
                    low = v.strip().lower()
                    if low in _TRUE:
                        return True
                    if low in _FALSE:
                        return False
                if isinstance(v, (int, np.integer)) and v in (0, 1):
                    return bool(v)
                return None

            src = stripped if is_text else s.astype(object)
            conv = src.map(to_bool)
            bad = ~na & conv.isna().to_numpy(bool)
            if bad.any():
                problems.append(_text_problem(col, "true/false", s, bad, "other values"))
            if problems:
                return s, problems
            return conv.astype(bool), problems
        if pd.api.types.is_integer_dtype(s.dtype):
            bad = ~s.isin([0, 1]).to_numpy(bool)
            if bad.any():
                problems.append(_text_problem(col, "true/false (0/1)", s, bad, "other numbers"))
                return s, problems
            return s.astype(bool), problems
        problems.append(f"column '{col}': expected true/false, got {s.dtype}")
        return s, problems

    if expected.startswith("datetime64"):
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            problems.append(
                f"column '{col}': dates must be naive (local calendar), got time zone {s.dtype.tz}"
            )
            return s, problems
        if pd.api.types.is_datetime64_dtype(s.dtype):
            return s.astype("datetime64[ns]"), problems
        if is_text or s.dtype == object:
            src = stripped if is_text else s
            try:
                conv = pd.to_datetime(src, errors="coerce", format="ISO8601")
            except (ValueError, TypeError):
                conv = pd.to_datetime(src, errors="coerce", format="mixed")
            if isinstance(conv.dtype, pd.DatetimeTZDtype):
                problems.append(f"column '{col}': dates must be naive (local calendar), got time zones")
                return s, problems
            bad = ~na & conv.isna().to_numpy(bool)
            if bad.any():
                problems.append(_text_problem(col, "a date (YYYY-MM-DD)", s, bad, "other text"))
                return s, problems
            return conv.astype("datetime64[ns]"), problems
        problems.append(f"column '{col}': expected a date, got {s.dtype}")
        return s, problems
    return s, problems  # pragma: no cover - the contract has no other dtypes


def conform_table(table: str, df: pd.DataFrame, *, normalize_nulls: bool = True) -> pd.DataFrame:
    """Convert ``df``'s contract columns to the contract's dtypes without loss.

    Text from CSV becomes numbers, booleans (true/false, yes/no, 1/0) and dates (ISO 8601);
    narrower numbers and other timestamp units are widened. Columns are put in contract order;
    unknown columns are kept at the end (validation names them) and missing ones stay missing.

    Args:
        table: One of :data:`~telco_nbo.data.schema.TABLES`.
        df: The frame (not modified).
        normalize_nulls: Turn NaN in text columns into ``None`` (skip for Arrow input, which
            has ``None`` already, to save a pass over 10M ids).

    Returns:
        A new frame (columns already in the right dtype are shared with ``df``, not copied).

    Raises:
        DataValidationError: Values that cannot be converted, naming column, rows and values.
    """
    if table not in SCHEMAS:
        raise DataValidationError(table, [f"unknown table '{table}'; tables are: {', '.join(TABLES)}"])
    expected = _expected_dtypes(table)
    out: dict[str, pd.Series] = {}
    problems: list[str] = []
    idx = df.index
    positional = isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1
    src = df if positional else df.reset_index(drop=True)
    missing_optional = [c for c in OPTIONAL_COLUMNS.get(table, ()) if c not in src.columns]
    if missing_optional:
        # A folder written before these columns existed: they are unknown, not wrong.
        src = src.assign(**{c: pd.Series([None] * len(src), index=src.index, dtype=object) for c in missing_optional})
    for col, t in expected.items():
        if col in src.columns and isinstance(src[col], pd.Series):
            out[col], p = _conform_column(
                col, src[col], t, SCHEMAS[table].columns[col].nullable, normalize_nulls
            )
            problems += p
    if problems:
        raise DataValidationError(table, problems)
    ordered = pd.DataFrame(out, index=src.index, copy=False)
    extra = [c for c in src.columns if c not in expected]
    if extra:
        ordered = pd.concat([ordered, src[extra]], axis=1)
    return ordered


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _json_default(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d") if v == v.normalize() else v.isoformat()
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def dump_json(obj: Any, what: str) -> str:
    """Return ``obj`` as sorted, indented JSON text; ``what`` names it in the error if it is not serialisable."""
    try:
        return json.dumps(obj, sort_keys=True, indent=2, default=_json_default, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} cannot be written as JSON: {exc}") from exc


def with_optional_columns(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the table's optional columns (:data:`OPTIONAL_COLUMNS`) added as null if absent."""
    missing = [c for c in OPTIONAL_COLUMNS.get(table, ()) if c not in df.columns]
    if not missing:
        return df
    return df.assign(**{c: pd.Series([None] * len(df), index=df.index, dtype=object) for c in missing})


def _write_parquet_table(table: str, df: pd.DataFrame, path: Path) -> None:
    frame = with_optional_columns(table, df)[list(SCHEMAS[table].columns)]
    arrow = pa.Table.from_pandas(frame, schema=arrow_schema(table), preserve_index=False)
    # Drop the pandas metadata: it would tie the bytes to the pandas version; dtypes come back
    # from the contract on load anyway.
    arrow = arrow.replace_schema_metadata(None)
    pq.write_table(arrow, path, **PARQUET_OPTIONS)


def _write_truth_frame(df: pd.DataFrame, path: Path) -> None:
    keep_index = not (
        isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    )
    arrow = pa.Table.from_pandas(df, preserve_index=keep_index)
    pq.write_table(arrow, path, **PARQUET_OPTIONS)


def check_output_folder(out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse a data-folder destination that is a file, or a non-empty folder without ``overwrite``.

    Callers that spend minutes producing a world (``data generate``) call it first, so the user
    learns about the folder before the work, not after.

    Returns:
        The destination as a path.

    Raises:
        ConfigError: Names the folder and the way out (``--overwrite``).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another folder, or replace it with --overwrite "
                          "(overwrite=True in Python; the old content goes only once the new folder is complete)")
    return out


def write_world(
    world: World,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    fmt: Literal["parquet", "csv"] = "parquet",
) -> Path:
    """Validate ``world`` and write it as a data folder, all or nothing.

    Args:
        world: The tables (all of :data:`~telco_nbo.data.schema.TABLES`), truth and meta.
        out_dir: The data folder to create. May exist only if empty, unless ``overwrite``.
        overwrite: Replace an existing non-empty folder (its old content is removed only after
            the new folder is complete).
        fmt: ``"parquet"`` (default, deterministic bytes) or ``"csv"`` (for people and
            spreadsheets; loads back to the same frames).

    Returns:
        The path of the data folder.

    Raises:
        DataValidationError: The world breaks the contract; nothing is written.
        ConfigError: ``out_dir`` exists and is not empty (without ``overwrite``), is a file, or the
            meta is not JSON-serialisable; nothing is written.
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"unknown data folder format '{fmt}'; use 'parquet' or 'csv'")
    validate_world(world.tables)
    for name, frame in world.truth.items():
        if not isinstance(frame, pd.DataFrame) or not name or "/" in name or name.startswith("."):
            raise ConfigError(f"truth entry '{name}' must be a DataFrame with a plain file name")
    meta = dict(world.meta)
    if attributes.TABLE in world.tables:
        # Types of the attribute columns, so that a CSV copy of the folder loads back the same.
        meta[attributes.META_KEY] = attributes.attribute_kinds(world.tables[attributes.TABLE])
    summary = meta.pop(TRUTH_SUMMARY_KEY, None)
    meta_text = dump_json(meta, "World.meta")
    summary_text = dump_json(summary, "truth summary") if summary is not None else None

    out = check_output_folder(out_dir, overwrite=overwrite)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for name in TABLES:
            frame = world.tables[name]
            if fmt == "parquet":
                _write_parquet_table(name, frame, tmp / f"{name}.parquet")
            else:
                with_optional_columns(name, frame)[list(SCHEMAS[name].columns)].to_csv(
                    tmp / f"{name}.csv", index=False, lineterminator="\n")
        if attributes.TABLE in world.tables:
            attributes.write(world.tables[attributes.TABLE], tmp / f"{attributes.TABLE}.{fmt}", fmt)
        (tmp / META_FILE).write_text(meta_text, encoding="utf-8")
        if world.truth or summary_text is not None:
            (tmp / TRUTH_DIR).mkdir()
            for name, frame in sorted(world.truth.items()):
                _write_truth_frame(frame, tmp / TRUTH_DIR / f"{name}.parquet")
            if summary_text is not None:
                (tmp / TRUTH_DIR / TRUTH_SUMMARY_FILE).write_text(summary_text, encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a data folder is meant to be shared
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` folder to ``out``, replacing an old ``out`` if present."""
    if not out.exists():
        os.rename(tmp, out)
        return
    if not any(out.iterdir()):
        os.rmdir(out)
        os.rename(tmp, out)
        return
    # POSIX has no portable atomic swap of two folders: move the old one aside, move the new one
    # in, then delete the old one. If the second rename fails, put the old one back.
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_csv_text(path: str | os.PathLike[str], table: str) -> pd.DataFrame:
    """Read a CSV file with every cell as text (only empty cells are null).

    Args:
        path: The file.
        table: The table name, for error messages.

    Returns:
        A frame of ``object`` columns.

    Raises:
        DataValidationError: The file is empty or not parseable as CSV.
    """
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataValidationError(table, [f"file {path} is empty (no header row)"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataValidationError(table, [f"cannot parse {path} as CSV: {exc}"]) from None


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    pq_path, csv_path = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq_path.exists() and csv_path.exists():
        raise DataValidationError(
            name, [f"both {pq_path.name} and {csv_path.name} exist in {folder}; keep one"]
        )
    if pq_path.exists():
        try:
            # split_blocks: one block per column, so pandas does not copy 10M rows to consolidate.
            df = pq.read_table(pq_path).to_pandas(split_blocks=True)
        except (pa.ArrowException, OSError) as exc:
            raise DataValidationError(name, [f"cannot read {pq_path}: {exc}"]) from None
        return conform_table(name, df, normalize_nulls=False)
    if csv_path.exists():
        df = read_csv_text(csv_path, name)
        try:
            return conform_table(name, df)
        except DataValidationError as exc:
            raise DataValidationError(
                name, exc.problems + [f"(in {csv_path.name}, row r is file line r + 2)"]
            ) from None
    raise DataValidationError(name, [f"missing file {name}.parquet (or {name}.csv) in {folder}"])


def load_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``meta.json`` of a data folder (``{}`` when absent).

    Raises:
        ConfigError: The file is not valid JSON or not an object.
    """
    f = Path(path) / META_FILE
    if not f.exists():
        return {}
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {f}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"{f} must hold a JSON object, got {type(meta).__name__}")
    return meta


def table_files(path: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Return, per table, the file a load would read (``None`` when missing)."""
    folder = Path(path)
    found: dict[str, Path | None] = {}
    for name in TABLES:
        pq_path, csv_path = folder / f"{name}.parquet", folder / f"{name}.csv"
        found[name] = pq_path if pq_path.exists() else csv_path if csv_path.exists() else None
    return found


def load_world(
    path: str | os.PathLike[str],
    *,
    validate: bool = True,
    with_truth: bool = False,
) -> World:
    """Load a data folder.

    Args:
        path: The data folder (``<table>.parquet`` or ``<table>.csv`` for every table).
        validate: Check the contract and the cross-table rules (recommended; skip only for data
            you just validated).
        with_truth: Also load ``truth/*.parquet`` and ``truth/summary.json`` (into
            ``meta["truth_summary"]``). Off by default so features cannot read the truth.

    Returns:
        The world, tables in contract dtypes and column order.

    Raises:
        ConfigError: The folder does not exist or meta.json is malformed.
        DataValidationError: A table is missing, unreadable or breaks the contract.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"data folder {folder} does not exist (or is not a folder)")
    meta = load_meta(folder)
    problems: dict[str, list[str]] = {}
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        try:
            tables[name] = _read_table(folder, name)
        except DataValidationError as exc:
            problems[name] = exc.problems
    if problems:
        first = next(iter(problems))
        lines = list(problems[first])
        for other, p in list(problems.items())[1:]:
            lines += [f"table '{other}': {x}" for x in p]
        raise DataValidationError(first, lines)
    try:
        extra = attributes.read(folder, meta.get(attributes.META_KEY))
    except DataValidationError as exc:
        raise DataValidationError(attributes.TABLE, exc.problems) from None
    if extra is not None:
        tables[attributes.TABLE] = extra
    if validate:
        validate_world(tables)
    truth: dict[str, pd.DataFrame] = {}
    if with_truth:
        tdir = folder / TRUTH_DIR
        if tdir.is_dir():
            for f in sorted(tdir.glob("*.parquet")):
                truth[f.stem] = pq.read_table(f).to_pandas()
            s = tdir / TRUTH_SUMMARY_FILE
            if s.exists():
                try:
                    meta[TRUTH_SUMMARY_KEY] = json.loads(s.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"cannot read {s}: {exc}") from exc
    return World(tables=tables, truth=truth, meta=meta)


def row_counts(tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Return table -> number of rows, in contract order."""
    return {name: len(tables[name]) for name in TABLES if name in tables}


__all__ = [
    "check_output_folder",
    "TRUTH_SUMMARY_KEY",
    "arrow_schema",
    "conform_table",
    "empty_table",
    "load_meta",
    "load_world",
    "read_csv_text",
    "row_counts",
    "table_files",
    "write_world",
]
