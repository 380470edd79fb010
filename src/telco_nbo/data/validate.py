"""Validation of data folders against the contract in :mod:`telco_nbo.data.schema`.

Two levels:

* :func:`validate_table` checks one table on its own: columns present and no others, dtypes, nulls,
  the pandera checks of :data:`~telco_nbo.data.schema.SCHEMAS` (vocabularies, id prefixes, ranges),
  unique keys, and the date order inside a row (``end_date >= start_date`` ...).
* :func:`validate_world` checks every table, then the rules *between* tables: ids nest (no orphan
  account, line, usage row, ticket or contact), a ticket's line belongs to the ticket's account, a
  contact's household is its account's household, contacts name known offers and experiments and an
  arm of that experiment, and usage never starts before its line.

Every problem becomes one human line naming the table, the column or id, and example rows, e.g.
``column 'tenure': expected int64, got text in rows 3, 17 (values 'abc', 'x')``. Rows are 0-based
positions in the table (for a CSV file written with a header, the file line is row + 2). All
problems found are reported at once in a :class:`~telco_nbo.errors.DataValidationError`.

Speed: a data folder of 100k households holds about 10M usage rows, so everything here is
vectorized. Text columns are factorized once and their pandera checks run on the *distinct* values
(exact, because every check in the contract is elementwise), then failures are mapped back to rows;
numeric and date columns are checked by pandera on the full column; uniqueness uses the factorized
codes instead of hashing strings twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
from pandera.pandas import Column

from telco_nbo.data import attributes
from telco_nbo.data.schema import ID_COLUMNS, OPTIONAL_COLUMNS, SCHEMAS, TABLES
from telco_nbo.errors import DataValidationError

MAX_EXAMPLES = 5
"""How many example rows / values a problem line shows before summarising the rest."""

# Date order inside one row: (table, later column, earlier column). Nulls are not compared.
DATE_ORDER: tuple[tuple[str, str, str], ...] = (
    ("accounts", "end_date", "start_date"),
    ("accounts", "contract_end_date", "start_date"),
    ("lines", "end_date", "start_date"),
    ("support_tickets", "resolved_at", "opened_at"),
    ("contacts", "accepted_at", "contacted_at"),
    ("contacts", "cancelled_at", "accepted_at"),
    ("experiments", "end_date", "start_date"),
)


# Elementwise versions of the contract's whole-column checks, to name the failing rows.
_ROW_LOCATORS = {
    "month": lambda s: (s.dt.day != 1) | (s != s.dt.normalize()),
}


# ----------------------------------------------------------------------------------------------
# Formatting helpers
# ----------------------------------------------------------------------------------------------


def format_rows(positions: Iterable[int]) -> str:
    """Return row positions as a short list for a message (``3, 17, 40 (+12 more)``)."""
    pos = [int(p) for p in positions]
    shown = ", ".join(str(p) for p in pos[:MAX_EXAMPLES])
    more = f" (+{len(pos) - MAX_EXAMPLES:,} more)" if len(pos) > MAX_EXAMPLES else ""
    return f"row{'s' if len(pos) != 1 else ''} {shown}{more}"


def _fmt_value(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return "<empty>"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d") if v == v.normalize() else v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v) if isinstance(v, str) else str(v)


def format_values(values: Iterable[object]) -> str:
    """Return the distinct values as a short quoted list for a message, each value cut short."""
    seen: list[str] = []
    for v in values:
        s = _fmt_value(v)
        if s not in seen:
            seen.append(s)
        if len(seen) > MAX_EXAMPLES:
            break
    more = ", ..." if len(seen) > MAX_EXAMPLES else ""
    return ", ".join(seen[:MAX_EXAMPLES]) + more


def _type_word(v: object) -> str:
    """A person's word for the type of a stray value."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return "empty"
    if isinstance(v, (bool, np.bool_)):
        return "true/false"
    if isinstance(v, str):
        return "text"
    if isinstance(v, (int, np.integer)):
        return "integer"
    if isinstance(v, (float, np.floating)):
        return "decimal number"
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return "date"
    return type(v).__name__


def _positional(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with index labels equal to row positions (a view-cheap no-op if already so)."""
    idx = df.index
    if isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1:
        return df
    return df.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Per-table checks
# ----------------------------------------------------------------------------------------------


def _value_fits(v: object, expected: str) -> bool:
    """Whether one python value is acceptable in a column of the ``expected`` dtype."""
    if expected == "str":
        return isinstance(v, str)
    if expected == "bool":
        return isinstance(v, (bool, np.bool_))
    if expected == "int64":
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if expected == "float64":
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if expected.startswith("datetime64"):
        return isinstance(v, (pd.Timestamp, np.datetime64)) and v is not pd.NaT
    return True


def _dtype_problem(col: str, s: pd.Series, expected: str, nullable: bool) -> str | None:
    """Return a problem line if ``s`` does not have the ``expected`` dtype, else ``None``.

    For object columns the offending rows and values are named (text in a number column is the
    usual culprit, from a CSV or a spreadsheet export).
    """
    dt = s.dtype
    if expected == "str":
        if dt == object:
            return None  # element types are checked on distinct values by the caller
        return f"column '{col}': expected text, got {dt}"
    if str(dt) == expected:
        return None
    head = f"column '{col}': expected {expected}, got {dt}"
    if dt == object:
        bad = ~s.map(lambda v: _value_fits(v, expected) or (nullable and pd.isna(v))).to_numpy(bool)
        pos = np.flatnonzero(bad)
        if len(pos):
            vals = s.iloc[pos]
            words = sorted({_type_word(v) for v in vals})
            return (
                f"column '{col}': expected {expected}, got {'/'.join(words)} in {format_rows(pos)} "
                f"(values {format_values(vals)})"
            )
        return f"{head} (values are right but stored as python objects; convert the column)"
    if expected == "int64" and pd.api.types.is_float_dtype(dt):
        nonint = s.isna() | (s != np.floor(s))
        pos = np.flatnonzero(nonint.to_numpy(bool))
        if len(pos):
            return f"{head}: not a whole number in {format_rows(pos)} (values {format_values(s.iloc[pos])})"
    return head


def _describe_check(check: pa.Check) -> str:
    name = check.name or ""
    st = check.statistics or {}
    if name == "isin":
        return "value not allowed (allowed: " + ", ".join(map(str, st.get("allowed_values", []))) + ")"
    if name == "greater_than_or_equal_to":
        return f"must be >= {st.get('min_value')}"
    if name == "in_range":
        return f"must be between {st.get('min_value')} and {st.get('max_value')}"
    if name == "str_startswith":
        return f"must start with '{st.get('string')}'"
    return f"fails check '{check.error or name}'"


def _fast_check(check: pa.Check, vals: pd.Series) -> object:
    """Run one check; the two text checks of the contract go through C/Arrow kernels.

    ``Series.str.startswith`` loops in Python (5 s on 10M ids); pyarrow's ``starts_with`` and a
    hash ``isin`` give the same answer in a fraction of that. Anything else is pandera's own check.
    """
    st = check.statistics or {}
    if check.name == "str_startswith" and vals.dtype == object and "string" in st:
        arr = pa_arrow.array(vals.to_numpy(object), type=pa_arrow.string(), from_pandas=True)
        return pd.Series(pc.starts_with(arr, st["string"]).to_numpy(zero_copy_only=False), index=vals.index)
    if check.name == "isin" and "allowed_values" in st:
        return vals.isin(list(st["allowed_values"]))
    return check(vals).check_output


def _run_checks(
    col: str,
    values: pd.Series,
    column: Column,
    to_rows: np.ndarray | None,
) -> list[str]:
    """Run ``column``'s pandera checks on ``values``; map failures to table rows.

    The :class:`pandera.Check` objects of the contract are called on the Series directly: going
    through ``DataFrameSchema.validate`` would copy (and consolidate) the whole table once per
    call, which dominated the time on 10M usage rows.

    Args:
        col: Column name.
        values: The table's column, or the column's distinct non-null values.
        column: The contract's column (its checks are used; dtype/null/unique are checked elsewhere).
        to_rows: For distinct values: the factorize codes of the table's column, to map a failing
            distinct value back to every row holding it. ``None`` when ``values`` is the column.
    """
    if not column.checks:
        return []
    # Checks ignore nulls (nullability is its own rule), like pandera does.
    na = values.isna().to_numpy(bool)
    keep = np.flatnonzero(~na) if na.any() else None
    vals = values.iloc[keep] if keep is not None else values
    problems = []
    for check in column.checks:
        what = _describe_check(check)
        try:
            out = _fast_check(check, vals)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is itself a finding
            problems.append(f"column '{col}': {what}: check could not run ({exc!r})")
            continue
        if isinstance(out, pd.DataFrame):
            out = out.all(axis=1)
        if isinstance(out, pd.Series) and len(out) == len(vals):
            failing = np.flatnonzero(~out.to_numpy(bool))
        elif bool(out):
            continue
        else:
            # A whole-column check failed; name the rows when we know the elementwise rule.
            locate = _ROW_LOCATORS.get(col)
            if locate is None:
                problems.append(f"column '{col}': {what}")
                continue
            failing = np.flatnonzero(locate(vals).to_numpy(bool))
        if not len(failing):
            continue
        idx = keep[failing] if keep is not None else failing
        if to_rows is not None:
            rows = np.flatnonzero(np.isin(to_rows, idx))
        else:
            rows = idx
        problems.append(f"column '{col}': {what}, got {format_values(values.iloc[idx])} in {format_rows(rows)}")
    return problems


def _duplicates(label: str, keys: Sequence[pd.Series], codes: np.ndarray, n_codes: int) -> list[str]:
    """Name duplicated keys and their rows, given one int64 code in ``[0, n_codes)`` per row.

    Code -1 is a null key (never a duplicate). Counting with ``bincount`` is several times faster
    than hashing when the code space is not much larger than the table.
    """
    valid = codes >= 0
    if n_codes <= 4 * len(codes) + 1_000_000:
        counts = np.bincount(codes[valid], minlength=n_codes)
        if counts.size == 0 or counts.max() <= 1:
            return []
        dup = valid & (counts[np.maximum(codes, 0)] > 1)
    else:
        dup = pd.Series(codes).duplicated(keep=False).to_numpy() & valid
    if not dup.any():
        return []
    pos = np.flatnonzero(dup)
    # Group rows by key, report the first few keys.
    first_codes = pd.unique(codes[pos])
    problems = []
    for c in first_codes[:MAX_EXAMPLES]:
        rows = pos[codes[pos] == c]
        key = ", ".join(_fmt_value(k.iloc[rows[0]]) for k in keys)
        problems.append(f"duplicate {label} {key} in {format_rows(rows)}")
    if len(first_codes) > MAX_EXAMPLES:
        problems.append(f"... and {len(first_codes) - MAX_EXAMPLES:,} more duplicated {label} values")
    return problems


def _date_order_problems(name: str, df: pd.DataFrame) -> list[str]:
    problems = []
    for table, later, earlier in DATE_ORDER:
        if table != name:
            continue
        a, b = df[later], df[earlier]
        bad = (a < b).to_numpy(bool)  # NaT compares False: open intervals pass
        if bad.any():
            pos = np.flatnonzero(bad)
            ex = ", ".join(
                f"{_fmt_value(a.iloc[p])} < {_fmt_value(b.iloc[p])}" for p in pos[:3]
            )
            problems.append(f"dates out of order: {later} before {earlier} in {format_rows(pos)} ({ex})")
    return problems


def _row_rules(name: str, df: pd.DataFrame) -> list[str]:
    """Rules inside a row beyond the column checks: date order and consistent flags."""
    problems = _date_order_problems(name, df)
    if name == "contacts":
        bad = (df["accepted_at"].notna() & ~df["accepted"].astype(bool)).to_numpy(bool)
        if bad.any():
            problems.append(f"accepted_at set on a contact that was not accepted in {format_rows(np.flatnonzero(bad))}")
        bad = (df["arm"].notna() & df["experiment_id"].isna()).to_numpy(bool)
        if bad.any():
            problems.append(f"arm set without an experiment_id in {format_rows(np.flatnonzero(bad))}")
        # A row without an offer is a logged "no contact" choice: never contacted, and logged
        # by a policy (otherwise nobody could say what it was).
        no_offer = df["offer_id"].isna().to_numpy(bool)
        policy = df["policy_id"] if "policy_id" in df.columns else pd.Series([None] * len(df), index=df.index)
        prop = df["propensity"] if "propensity" in df.columns else pd.Series([None] * len(df), index=df.index)
        bad = no_offer & (df["contacted"].astype(bool).to_numpy(bool) | policy.isna().to_numpy(bool))
        if bad.any():
            problems.append(
                "offer_id missing on a row that was contacted or has no policy_id (only a policy's logged "
                f"'no contact' choice may have no offer) in {format_rows(np.flatnonzero(bad))}")
        bad = (policy.notna() != prop.notna()).to_numpy(bool)
        if bad.any():
            problems.append(f"policy_id and propensity must be set together in {format_rows(np.flatnonzero(bad))}")
    if name == "experiments":
        arms = df["arms"].str.split(",")
        bad = np.array([c not in [x.strip() for x in a] for c, a in zip(df["control_arm"], arms)], dtype=bool)
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.append(
                f"control_arm not among arms in {format_rows(pos)} "
                f"(e.g. experiment {_fmt_value(df['experiment_id'].iloc[pos[0]])}: "
                f"control {_fmt_value(df['control_arm'].iloc[pos[0]])}, arms {_fmt_value(df['arms'].iloc[pos[0]])})"
            )
    return problems


Factorized = dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
"""(table, column) -> ``pd.factorize`` result, shared by the checks of one validation run."""


def _factorize(cache: Factorized | None, table: str, col: str, s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    key = (table, col)
    if cache is not None and key in cache:
        return cache[key]
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if cache is not None:
        cache[key] = (codes, uniques)
    return codes, uniques


def table_problems(name: str, df: pd.DataFrame, _cache: Factorized | None = None) -> list[str]:
    """Return every contract problem of one table (empty list when valid).

    Args:
        name: A table of :data:`~telco_nbo.data.schema.TABLES`.
        df: The frame.

    Returns:
        One human line per problem.
    """
    if name not in SCHEMAS:
        raise DataValidationError(name, [f"unknown table '{name}'; tables are: {', '.join(TABLES)}"])
    if not isinstance(df, pd.DataFrame):
        return [f"expected a pandas DataFrame, got {type(df).__name__}"]
    schema = SCHEMAS[name]
    df = _positional(df)
    problems: list[str] = []

    wanted = list(schema.columns)
    dup_cols = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    problems += [f"column '{c}' appears more than once" for c in dup_cols]
    optional = OPTIONAL_COLUMNS.get(name, ())
    problems += [f"missing column '{c}'" for c in wanted if c not in df.columns and c not in optional]
    problems += [f"unexpected column '{c}'" for c in df.columns if c not in schema.columns]
    if dup_cols:
        return problems

    codes_of: dict[str, np.ndarray] = {}
    # Key columns are factorized up front (their codes serve the duplicate check too) and, like
    # text columns, checked on their distinct values: 24 months instead of 10M rows.
    key_cols = set(schema.unique or []) | {c for c in wanted if schema.columns[c].unique}
    dtype_ok: dict[str, bool] = {}
    plain_cols: dict[str, Column] = {}
    for col in wanted:
        if col not in df.columns:
            continue
        spec: Column = schema.columns[col]
        expected = str(spec.dtype)
        s = df[col]
        p = _dtype_problem(col, s, expected, spec.nullable)
        dtype_ok[col] = p is None
        if p is not None:
            problems.append(p)
            continue
        if expected != "str" and col in key_cols:
            codes, uniques = _factorize(_cache, name, col, s)
            codes_of[col] = codes
            null_rows = np.flatnonzero(codes < 0)
            problems += _run_checks(col, pd.Series(uniques), spec, codes)
        elif expected == "str":
            codes, uniques = _factorize(_cache, name, col, s)
            codes_of[col] = codes
            uniq = pd.Series(uniques, dtype=object)
            # infer_dtype runs in C; only when it finds non-text do we look value by value.
            if pd.api.types.infer_dtype(uniq, skipna=True) in ("string", "empty"):
                bad_u = np.zeros(len(uniq), dtype=bool)
            else:
                bad_u = ~uniq.map(lambda v: isinstance(v, str)).to_numpy(bool)
            if bad_u.any():
                rows = np.flatnonzero(np.isin(codes, np.flatnonzero(bad_u)))
                words = sorted({_type_word(v) for v in uniq[bad_u]})
                problems.append(
                    f"column '{col}': expected text, got {'/'.join(words)} in {format_rows(rows)} "
                    f"(values {format_values(uniq[bad_u])})"
                )
                continue
            null_rows = np.flatnonzero(codes < 0)
            problems += _run_checks(col, uniq, spec, codes)
        else:
            null_rows = np.flatnonzero(s.isna().to_numpy(bool))
            plain_cols[col] = spec
        if len(null_rows) and not spec.nullable:
            problems.append(f"column '{col}': empty (null) in {format_rows(null_rows)}")
    for col, spec in plain_cols.items():
        problems += _run_checks(col, df[col], spec, None)

    # Unique keys: single columns, then the table-level combination (usage: line_id + month).
    for col in wanted:
        if schema.columns[col].unique and dtype_ok.get(col):
            codes = codes_of.get(col)
            if codes is None:
                codes = pd.factorize(df[col], use_na_sentinel=True)[0]
            n_keys = int(codes.max(initial=-1)) + 1
            # factorize already counted distinct values: equal to non-null rows means no duplicate.
            if n_keys != int((codes >= 0).sum()):
                problems += _duplicates(col, [df[col]], codes.astype(np.int64), n_keys)
    if schema.unique and all(dtype_ok.get(c) for c in schema.unique):
        key = np.zeros(len(df), dtype=np.int64)
        size = 1
        any_null = np.zeros(len(df), dtype=bool)
        for col in schema.unique:
            codes = codes_of.get(col)
            if codes is None:
                codes = pd.factorize(df[col], use_na_sentinel=True)[0]
            any_null |= codes < 0
            width = int(codes.max(initial=-1)) + 1
            key = key * width + np.maximum(codes, 0).astype(np.int64)
            size *= max(width, 1)
        key[any_null] = -1
        problems += _duplicates(
            "(" + ", ".join(schema.unique) + ")", [df[c] for c in schema.unique], key, size
        )

    if not problems:
        problems += _row_rules(name, df)
    return problems


def validate_table(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Validate one table against its contract.

    Args:
        name: A table of :data:`~telco_nbo.data.schema.TABLES`.
        df: The frame (not modified).

    Returns:
        ``df`` itself, so calls chain.

    Raises:
        DataValidationError: Naming the table and listing every problem found.
    """
    problems = table_problems(name, df)
    if problems:
        raise DataValidationError(name, problems)
    return df


# ----------------------------------------------------------------------------------------------
# Cross-table checks
# ----------------------------------------------------------------------------------------------


def _orphans(
    child: str,
    child_df: pd.DataFrame,
    fk: str,
    parent: str,
    parent_ids: pd.Index,
    cache: Factorized | None = None,
) -> list[str]:
    """Rows of ``child_df`` whose non-null ``fk`` is not in ``parent_ids``.

    ``cache`` holds the factorized columns of this validation run (hashing 10M ids once).
    """
    s = child_df[fk]
    codes, uniques = _factorize(cache, child, fk, s)
    missing_u = ~pd.Index(uniques).isin(parent_ids)
    if not missing_u.any():
        return []
    rows = np.flatnonzero(np.isin(codes, np.flatnonzero(missing_u)))
    child_word = child.rstrip("s") if child != "usage_monthly" else "usage row"
    parent_word = parent.rstrip("s")
    id_col = {"usage_monthly": "line_id"}.get(child) or _id_col(child)
    examples = []
    for p in rows[:3]:
        who = f"{child_word} {_fmt_value(child_df[id_col].iloc[p])}" if id_col else f"row {p}"
        if child == "usage_monthly":
            who += f" month {_fmt_value(child_df['month'].iloc[p])}"
        examples.append(f"{who} refers to {parent_word} {_fmt_value(s.iloc[p])}")
    n_missing = int(missing_u.sum())
    return [
        f"orphan {child_word}: {'; '.join(examples)} which does not exist in '{parent}' "
        f"({len(rows):,} row{'s' if len(rows) != 1 else ''} with {n_missing:,} unknown {fk} value{'s' if n_missing != 1 else ''}: "
        f"{format_values(pd.Index(uniques)[missing_u])}; {format_rows(rows)})"
    ]


def _id_col(table: str) -> str | None:
    return ID_COLUMNS.get(table)


def cross_table_problems(
    tables: Mapping[str, pd.DataFrame], _cache: Factorized | None = None
) -> dict[str, list[str]]:
    """Return problems between tables, keyed by the table holding the offending rows.

    Assumes every table already passed :func:`validate_table`.

    Args:
        tables: Table name -> frame, for every table.

    Returns:
        Table -> problem lines (only tables with problems appear).
    """
    t = {n: _positional(df) for n, df in tables.items()}
    out: dict[str, list[str]] = {}

    def add(table: str, probs: list[str]) -> None:
        if probs:
            out.setdefault(table, []).extend(probs)

    hh_ids = pd.Index(t["households"]["household_id"])
    acc = t["accounts"]
    acc_ids = pd.Index(acc["account_id"])
    lines = t["lines"]
    line_ids = pd.Index(lines["line_id"])

    add("accounts", _orphans("accounts", acc, "household_id", "households", hh_ids, _cache))
    add("lines", _orphans("lines", lines, "account_id", "accounts", acc_ids, _cache))

    # Usage: the line exists, and the month is not before the line's first month.
    usage = t["usage_monthly"]
    u_codes, u_uniques = _factorize(_cache, "usage_monthly", "line_id", usage["line_id"])
    orph = _orphans("usage_monthly", usage, "line_id", "lines", line_ids, _cache)
    add("usage_monthly", orph)
    if not orph and len(usage):
        pos = line_ids.get_indexer(u_uniques)[u_codes]
        # Floor the (few) line starts to their month, then compare int64 nanoseconds: months are
        # already validated to be the 1st, and converting 10M values to datetime64[M] is slow.
        line_month = lines["start_date"].to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
        bad = usage["month"].to_numpy() < line_month[pos]
        if bad.any():
            rows = np.flatnonzero(bad)
            p = rows[0]
            add("usage_monthly", [
                f"usage before the line started: line {_fmt_value(usage['line_id'].iloc[p])} has month "
                f"{_fmt_value(usage['month'].iloc[p])} but starts {_fmt_value(lines['start_date'].iloc[pos[p]])} "
                f"({len(rows):,} rows: {format_rows(rows)})"
            ])

    # Tickets: account exists; line (if set) exists and belongs to that account.
    tk = t["support_tickets"]
    add("support_tickets", _orphans("support_tickets", tk, "account_id", "accounts", acc_ids, _cache))
    orph = _orphans("support_tickets", tk, "line_id", "lines", line_ids, _cache)
    add("support_tickets", orph)
    if not orph and len(tk):
        has_line = tk["line_id"].notna().to_numpy(bool)
        pos = line_ids.get_indexer(tk["line_id"].where(has_line, None))
        owner = np.where(has_line, lines["account_id"].to_numpy(object)[np.maximum(pos, 0)], None)
        bad = has_line & (owner != tk["account_id"].to_numpy(object))
        if bad.any():
            rows = np.flatnonzero(bad)
            p = rows[0]
            add("support_tickets", [
                f"ticket line belongs to another account: ticket {_fmt_value(tk['ticket_id'].iloc[p])} is on "
                f"account {_fmt_value(tk['account_id'].iloc[p])} but line {_fmt_value(tk['line_id'].iloc[p])} "
                f"belongs to account {_fmt_value(owner[p])} ({format_rows(rows)})"
            ])

    # Contacts: account, household, offer, experiment and arm.
    ct = t["contacts"]
    o_acc = _orphans("contacts", ct, "account_id", "accounts", acc_ids, _cache)
    o_hh = _orphans("contacts", ct, "household_id", "households", hh_ids, _cache)
    add("contacts", o_acc + o_hh)
    if not o_acc and not o_hh and len(ct):
        pos = acc_ids.get_indexer(ct["account_id"])
        acc_hh = acc["household_id"].to_numpy(object)[pos]
        bad = acc_hh != ct["household_id"].to_numpy(object)
        if bad.any():
            rows = np.flatnonzero(bad)
            p = rows[0]
            add("contacts", [
                f"contact household does not match its account: contact {_fmt_value(ct['contact_id'].iloc[p])} "
                f"has household {_fmt_value(ct['household_id'].iloc[p])} but account "
                f"{_fmt_value(ct['account_id'].iloc[p])} is in household {_fmt_value(acc_hh[p])} ({format_rows(rows)})"
            ])
    add("contacts", _orphans("contacts", ct, "offer_id", "offers", pd.Index(t["offers"]["offer_id"]), _cache))
    ex = t["experiments"]
    o_ex = _orphans("contacts", ct, "experiment_id", "experiments", pd.Index(ex["experiment_id"]), _cache)
    add("contacts", o_ex)
    if not o_ex and len(ct):
        in_exp = ct["experiment_id"].notna().to_numpy(bool)
        if in_exp.any():
            allowed = {
                (e, arm.strip())
                for e, arms in zip(ex["experiment_id"], ex["arms"])
                for arm in str(arms).split(",")
            }
            sub = ct.loc[in_exp, ["experiment_id", "arm"]]
            ok = np.fromiter(
                ((e, a) in allowed for e, a in zip(sub["experiment_id"], sub["arm"])), bool, len(sub)
            )
            if not ok.all():
                rows = np.flatnonzero(in_exp)[~ok]
                p = rows[0]
                e = ct["experiment_id"].iloc[p]
                arms = ex.loc[ex["experiment_id"] == e, "arms"].iloc[0]
                add("contacts", [
                    f"unknown arm: contact {_fmt_value(ct['contact_id'].iloc[p])} is in arm "
                    f"{_fmt_value(ct['arm'].iloc[p])} of experiment {_fmt_value(e)}, whose arms are "
                    f"{_fmt_value(arms)} ({format_rows(rows)})"
                ])
    return out


def _raise(problems: dict[str, list[str]]) -> None:
    """Raise one error for the first bad table (load order), listing other tables' problems too."""
    if not problems:
        return
    order = [n for n in TABLES if n in problems] + [n for n in problems if n not in TABLES]
    first = order[0]
    lines = list(problems[first])
    for other in order[1:]:
        lines += [f"table '{other}': {p}" for p in problems[other]]
    raise DataValidationError(first, lines)


def validate_world(tables: Mapping[str, pd.DataFrame]) -> Mapping[str, pd.DataFrame]:
    """Validate every table and the rules between them.

    Args:
        tables: Table name -> frame for every table of :data:`~telco_nbo.data.schema.TABLES`
            (not modified).

    Returns:
        ``tables`` itself, so calls chain.

    Raises:
        DataValidationError: For the first invalid table (in load order); the message lists every
            problem of every table.
    """
    problems: dict[str, list[str]] = {}
    cache: Factorized = {}
    for name in tables:
        if name not in SCHEMAS and name != attributes.TABLE:
            problems.setdefault(name, []).append(f"unknown table '{name}'; tables are: {', '.join(TABLES)}")
    for name in TABLES:
        if name not in tables:
            problems.setdefault(name, []).append(f"missing table '{name}'")
            continue
        p = table_problems(name, tables[name], cache)
        if p:
            problems[name] = p
    # The optional account attributes (operator columns kept as features by the importers).
    if attributes.TABLE in tables and "accounts" in tables and not problems:
        p = attributes.problems(tables[attributes.TABLE], pd.Index(tables["accounts"]["account_id"]))
        if p:
            problems[attributes.TABLE] = p
    _raise(problems)
    _raise(cross_table_problems(tables, cache))
    return tables


__all__ = [
    "DATE_ORDER",
    "cross_table_problems",
    "table_problems",
    "validate_table",
    "validate_world",
]
