"""Point-in-time features at line, household and account grain, and churn labels.

Every public function takes the tables of a data folder (``World.tables``: table name -> frame,
columns as in :mod:`telco_nbo.data.schema`) and an ``as_of`` timestamp, and returns a new frame.
Inputs are never mutated and nothing is read from or written to disk: the same functions serve
batch training (many accounts, one or many ``as_of``) and online scoring (one account, now), which
is what keeps training and serving in parity.

Point-in-time rules (what "known at ``as_of``" means):

* **Accounts / lines** are active at ``as_of`` when ``start_date <= as_of`` and
  (``end_date`` is null or ``end_date > as_of``). Anything starting after ``as_of`` does not exist;
  an ``end_date`` after ``as_of`` is invisible.
* **Usage** rows are monthly (``month`` = first day of the month the row covers) and a row is only
  known once its month is over. A month is visible when its *last day* is ``<= as_of``'s date:
  with ``as_of`` = 2024-03-15 the last visible month is February; with ``as_of`` = 2024-03-31 it
  is March. "Last 3 months" / "last 6 months" are the 3 / 6 most recent visible months.
  Usage of a line that started after ``as_of`` is ignored even if dated earlier.
* **Tickets** count when ``opened_at <= as_of``; a ticket is *open* at ``as_of`` when
  ``resolved_at`` is null or ``> as_of`` (a later resolution is invisible).
* **Contacts** count when ``contacted_at <= as_of`` and ``contacted`` is true (holdout records are
  not contacts); an acceptance counts only when ``accepted_at <= as_of``.
* Time windows are half-open ``(as_of - N days, as_of]``.
* ``device_purchase_date`` after ``as_of`` is the date of a *later* handset, so the age at
  ``as_of`` is unknown: NaN.

Known limits (deviations from a perfect point-in-time store; stated so users can judge them):

* Attribute columns without history — plan tier, data cap, add-on flags (``has_*``),
  ``contract_end_date``, ``payment_method``, ``monthly_charges``... — are taken as they stand in the
  tables. If the tables are a *later* snapshot than ``as_of`` these columns carry the later state.
  One case is repaired because it would leak the propensity label itself: an add-on offer accepted
  *after* ``as_of`` that grants an ownership flag (its ``grants_flag`` in the built-in catalog)
  turns that flag back off at ``as_of`` for the account (eligibility never offers an owned
  product, so the flag was off before the acceptance).
* ``account_months_to_contract_end`` is signed: negative means the fixed-term contract lapsed that
  many months ago (the customer is out of contract, free to leave; ``account_out_of_contract``
  says so explicitly). A lapsed contract is *not* in the ``renewal`` stage: like month-to-month,
  it has no end coming up (the contract's wording "end within the next 90 days" taken literally).
* ``account_network_tickets_180d`` counts ``network`` *and* ``coverage`` tickets (both are network
  quality as the customer lives it); ``billing`` tickets have their own count.
* ``account_bill_change_3m`` (bill shock) = the last visible month's bill / the mean bill of the 3
  months before it (NaN when either side has no usage). Bills are summed over all of the
  account's lines that started by ``as_of`` (a line that ended still paid its bills).
* Line aggregates at account grain use the lines active at ``as_of``:
  ``line_overage_months_6m`` and ``line_roaming_days_3m`` are the max over lines (a per-line
  behaviour), ``line_intl_minutes_3m`` and ``line_dropped_calls_3m`` are sums (volumes),
  ``line_data_gb_mean_3m`` is the mean over mobile lines, ``line_data_cap_util_3m`` the mean over
  capped mobile lines of (mean data_gb / cap), ``line_device_age_months`` the min over mobile lines,
  ``line_max_plan_tier`` the max ordinal (basic=0 .. unlimited=3).
* Missing ``lines`` / ``usage_monthly`` / ``support_tickets`` / ``contacts`` / ``offers`` tables
  (e.g. data imported from the IBM sample) give zero counts and NaN means, never an error.
  A contact whose offer id is not in ``offers`` counts as promotional (the cautious side for
  contact caps).

The account frame (one row per active account, sorted by ``account_id``) holds the columns
declared in :mod:`telco_nbo.contract`, in their declared order, then the account attributes
(``account_x_*``): :data:`FEATURE_COLUMNS` are the model inputs (including the product-holding
flags and network eligibility, which drive both churn and propensity), :data:`DECISION_COLUMNS`
the identity and ranking-only columns; :func:`to_model_matrix` turns a feature frame into the
exact matrix a model sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo import contract
from telco_nbo.contract import CATEGORY_VALUES, FEATURE_COLUMNS
from telco_nbo.data import attributes
from telco_nbo.data.schema import CHANNELS, LINE_TYPES, PLAN_TIERS
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.catalog import offer_grants
from telco_nbo.vocabulary import DAYS_PER_MONTH, LIFECYCLE_STAGES

NEW_DAYS = 90
"""An account younger than this many days is in the ``new`` stage."""
EARLY_DAYS = 365
"""An account younger than this (and not new) is in the ``early`` stage."""
RENEWAL_WINDOW_DAYS = 90
"""A fixed-term contract ending within this many days puts the account in ``renewal``."""
STALE_TICKET_DAYS = 14
"""An open ticket older than this makes the account ``at_risk``."""
AT_RISK_OVERAGE_MONTHS = 2
"""This many months with overage among the last 3 make the account ``at_risk``."""
COMPLAINT_RECENT_DAYS = 30
"""A complaint opened this recently counts as active even when resolved."""

"""Every lifecycle stage; precedence is new > at_risk > renewal > early > growth."""

SERVICE_ISSUE_CATEGORIES = ("network", "coverage", "device")
"""Ticket categories that are a service issue (no promotion until fixed)."""
NETWORK_CATEGORIES = ("network", "coverage")
"""Ticket categories counted by ``account_network_tickets_180d``."""

LINE_FLAGS = ("has_device_protection", "has_travel_pack", "has_mesh_wifi", "has_online_security", "has_streaming")
"""Ownership flags carried per line."""

PLAN_TIER_RANK = {tier: i for i, tier in enumerate(PLAN_TIERS)}
"""Plan tier -> ordinal (basic=0 .. unlimited=3)."""

CATEGORICAL_FEATURES: list[str] = list(CATEGORY_VALUES)
"""Model features passed to XGBoost as pandas ``category`` (``enable_categorical=True``)."""

DECISION_COLUMNS: list[str] = [c.name for c in contract.columns(built=True) if c.role in ("id", "decision")]
"""Identity and ranking-only columns of the account frame (the rules also read model features)."""

# Columns each table must have for the features (a subset of the schema; extra columns are ignored
# so that a table with additional operator columns still works).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "households": ("household_id", "region", "household_size", "fiber_eligible", "fwa_eligible", "created_date"),
    "accounts": (
        "account_id", "household_id", "account_type", "start_date", "end_date", "contract_type",
        "contract_end_date", "payment_method", "paperless_billing", "channel_preference",
        "senior_citizen", "has_partner", "has_dependents", "has_premium_care", "monthly_charges",
    ),
    "lines": (
        "line_id", "account_id", "line_type", "start_date", "end_date", "plan_tier", "data_cap_gb",
        "monthly_price", "broadband_tech", "device_purchase_date", *LINE_FLAGS,
    ),
    "usage_monthly": (
        "line_id", "month", "data_gb", "overage_gb", "voice_minutes", "intl_minutes", "roaming_days",
        "dropped_calls", "bill_amount",
    ),
    "support_tickets": ("ticket_id", "account_id", "category", "opened_at", "resolved_at", "is_complaint"),
    "contacts": ("account_id", "household_id", "offer_id", "contacted", "channel", "contacted_at", "accepted", "accepted_at"),
    "offers": ("offer_id", "promotional"),
}
_DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": ("created_date",),
    "accounts": ("start_date", "end_date", "contract_end_date"),
    "lines": ("start_date", "end_date", "device_purchase_date"),
    "usage_monthly": ("month",),
    "support_tickets": ("opened_at", "resolved_at"),
    "contacts": ("contacted_at", "accepted_at"),
    "offers": (),
}
_NUMERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": ("household_size",),
    "accounts": ("monthly_charges",),
    "lines": ("data_cap_gb", "monthly_price"),
    "usage_monthly": _REQUIRED["usage_monthly"][2:],
}
_UNIQUE_KEYS = {"households": "household_id", "accounts": "account_id", "lines": "line_id", "offers": "offer_id"}
_DAY = np.timedelta64(1, "D")


# --------------------------------------------------------------------------------------------------
# input handling


def _as_timestamp(as_of: Any) -> pd.Timestamp:
    """Parse ``as_of`` into a naive timestamp (the tables hold naive local dates)."""
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"as_of {as_of!r} is not a date/time: {exc}") from exc
    if ts is pd.NaT:
        raise ConfigError("as_of must be a date/time, got a missing value")
    if ts.tzinfo is not None:
        raise ConfigError(f"as_of {ts} has a time zone; the tables hold naive local dates, pass a naive as_of")
    return ts.as_unit("ns")


def _table(tables: Mapping[str, pd.DataFrame], name: str, *, required: bool) -> pd.DataFrame:
    """Return a checked view of one table (date columns parsed), or an empty one if optional.

    The returned frame may share data with the input; callers only read it.
    """
    # A World is accepted for convenience: its tables are the mapping.
    tables = getattr(tables, "tables", tables)
    if not isinstance(tables, Mapping):
        raise ConfigError(f"tables must be a mapping of table name -> DataFrame, got {type(tables).__name__}")
    frame = tables.get(name)
    cols = _REQUIRED[name]
    if frame is None:
        if required:
            raise DataValidationError(name, [f"table '{name}' is missing (it is required for features)"])
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(name, [f"expected a pandas DataFrame, got {type(frame).__name__}"])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataValidationError(name, [f"missing column(s): {', '.join(missing)}"])
    if required and frame.empty:
        raise DataValidationError(name, ["table is empty"])
    key = _UNIQUE_KEYS.get(name)
    if key is not None and not frame[key].is_unique:
        dups = frame.loc[frame[key].duplicated(keep=False), key].astype(str).unique()[:5]
        raise DataValidationError(name, [f"duplicate {key}: {', '.join(dups)}"])
    parsed = {}
    for c in _DATE_COLUMNS[name]:
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            raise DataValidationError(name, [f"column {c} is time-zone aware; expected naive local dates"])
        if not pd.api.types.is_datetime64_dtype(s.dtype):
            try:
                parsed[c] = pd.to_datetime(s)
            except (TypeError, ValueError) as exc:
                raise DataValidationError(name, [f"column {c} is not a date column: {exc}"]) from exc
            if isinstance(parsed[c].dtype, pd.DatetimeTZDtype):
                raise DataValidationError(name, [f"column {c} is time-zone aware; expected naive local dates"])
        elif s.dtype != np.dtype("datetime64[ns]"):
            parsed[c] = s.astype("datetime64[ns]")
    for c in _NUMERIC_COLUMNS.get(name, ()):
        s = frame[c]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            try:
                # Object columns from CSV / JSON (None for missing) are fine if they hold numbers.
                parsed[c] = pd.to_numeric(s.where(s.notna(), np.nan), errors="raise").astype(np.float64)
            except (TypeError, ValueError):
                bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()].astype(str).unique()[:5]
                raise DataValidationError(name, [f"column {c} is not numeric (e.g. {', '.join(bad)})"]) from None
    if parsed:
        frame = frame.assign(**parsed)
    return frame


def _dates(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype="datetime64[ns]")


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    # Numeric-ness was checked by _table; nullable dtypes (Int64, Float64) map NA to NaN here.
    return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)


def _bools(frame: pd.DataFrame, col: str) -> np.ndarray:
    s = frame[col]
    if s.dtype == bool:
        return s.to_numpy()
    # Nullable / object booleans (e.g. from CSV): a missing flag means "not set".
    return s.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _codes(values: pd.Series | np.ndarray, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent), fast for categorical input."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cat_pos = index.get_indexer(values.cat.categories)
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, cat_pos[codes], -1)
    return index.get_indexer(np.asarray(values))


def _active(start: np.ndarray, end: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    # NaT compares False, so "end is null" must be tested explicitly.
    return (start <= as_of) & (np.isnat(end) | (end > as_of))


def _count(codes: np.ndarray, n: int, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``weights`` (or 1) per code in [0, n), ignoring code -1 and rows outside ``mask``."""
    keep = codes >= 0
    if mask is not None:
        keep &= mask
    if weights is None:
        return np.bincount(codes[keep], minlength=n).astype(np.int64)
    return np.bincount(codes[keep], weights=weights[keep], minlength=n)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(num), np.nan)
    ok = np.asarray(den) > 0
    np.divide(num, den, out=out, where=ok)
    return out


def usage_cutoff(as_of: Any) -> pd.Timestamp:
    """Return the first month whose usage is *not* yet known at ``as_of``.

    A usage row for month M covers the whole month, so it is known once M's last day is
    ``<= as_of``'s date. Visible months are ``month < usage_cutoff(as_of)``.

    Args:
        as_of: The point in time.

    Returns:
        First day of the first invisible month.
    """
    ts = _as_timestamp(as_of)
    return (ts.normalize() + pd.Timedelta(days=1)).to_period("M").to_timestamp().as_unit("ns")


# --------------------------------------------------------------------------------------------------
# the shared snapshot


@dataclass(frozen=True)
class _Snapshot:
    """Everything derived once per (tables, as_of) and shared by the three grains."""

    as_of: pd.Timestamp
    households: pd.DataFrame  # all households
    accounts: pd.DataFrame  # active accounts, sorted by account_id, RangeIndex
    account_index: pd.Index
    lines: pd.DataFrame  # active lines, sorted by line_id, RangeIndex, with line_* usage columns
    line_acc: np.ndarray  # account position of each active line (-1: account not active)
    acc_bill: np.ndarray  # (n_accounts, 6) bill per visible month (oldest..latest)
    acc_overage: np.ndarray  # (n_accounts, 6) overage GB per month
    acc_present: np.ndarray  # (n_accounts, 6) usage rows per month
    tickets: pd.DataFrame  # tickets opened <= as_of
    contacts: pd.DataFrame  # contacts with contacted_at <= as_of
    offers: pd.DataFrame
    attributes: pd.DataFrame | None = None  # optional account_attributes (importer passthrough)
    contacts_all: pd.DataFrame | None = None  # every contact, also those after as_of
    charges: np.ndarray | None = None  # account_monthly_charges at as_of (None: the accounts table's)


def _snapshot(tables: Mapping[str, pd.DataFrame], as_of: Any, data_as_of: Any = None) -> _Snapshot:
    ts = _as_timestamp(as_of)
    t = ts.to_datetime64()
    households = _table(tables, "households", required=True)
    accounts_all = _table(tables, "accounts", required=True)
    lines_all = _table(tables, "lines", required=False)
    usage = _table(tables, "usage_monthly", required=False)
    tickets = _table(tables, "support_tickets", required=False)
    contacts = _table(tables, "contacts", required=False)
    offers = _table(tables, "offers", required=False)

    acc_mask = _active(_dates(accounts_all, "start_date"), _dates(accounts_all, "end_date"), t)
    accounts = accounts_all.loc[acc_mask].sort_values("account_id", kind="stable").reset_index(drop=True)
    account_index = pd.Index(accounts["account_id"].to_numpy())
    n_acc = len(accounts)

    line_start = _dates(lines_all, "start_date")
    line_mask = _active(line_start, _dates(lines_all, "end_date"), t)
    started = line_start <= t

    # Usage: only visible months of lines that had started, within the 6-month window.
    cutoff = usage_cutoff(ts).to_datetime64()
    lo = (usage_cutoff(ts) - pd.DateOffset(months=6)).to_datetime64()
    month = _dates(usage, "month")
    in_win = (month >= lo) & (month < cutoff)
    u = usage.loc[in_win] if not in_win.all() else usage
    all_line_index = pd.Index(lines_all["line_id"].to_numpy())
    u_line = _codes(u["line_id"], all_line_index)
    ok = u_line >= 0
    ok[ok] = started[u_line[ok]]
    u_line = np.where(ok, u_line, -1)
    # Month position 0..5, oldest to latest visible month.
    u_month = _dates(u, "month").astype("datetime64[M]").astype(np.int64)
    u_pos = u_month - (np.datetime64(cutoff, "M").astype(np.int64) - 6)
    vals = {c: _floats(u, c) for c in _REQUIRED["usage_monthly"][2:]}

    # Per-line aggregates for every line in the table (filtered to active lines below).
    n_all = len(lines_all)
    in3 = u_pos >= 3
    over = vals["overage_gb"] > 0
    n3 = _count(u_line, n_all, in3)
    line_cols: dict[str, np.ndarray] = {
        "line_usage_months_6m": _count(u_line, n_all),
        "line_overage_months_6m": _count(u_line, n_all, over),
        "line_overage_months_3m": _count(u_line, n_all, over & in3),
        "line_data_gb_mean_3m": _safe_div(_count(u_line, n_all, in3, vals["data_gb"]), n3),
        "line_voice_minutes_3m": _count(u_line, n_all, in3, vals["voice_minutes"]),
        "line_intl_minutes_3m": _count(u_line, n_all, in3, vals["intl_minutes"]),
        "line_roaming_days_3m": _count(u_line, n_all, in3, vals["roaming_days"]),
        "line_dropped_calls_3m": _count(u_line, n_all, in3, vals["dropped_calls"]),
        "line_bill_mean_3m": _safe_div(_count(u_line, n_all, in3, vals["bill_amount"]), n3),
    }

    # Per-account-month matrices over all lines of active accounts (bills were paid by lines that
    # have since ended, too).
    line_acc_all = _codes(lines_all["account_id"], account_index)
    u_acc = np.where(u_line >= 0, line_acc_all[np.maximum(u_line, 0)], -1) if len(u_line) else u_line
    flat = np.where(u_acc >= 0, u_acc * 6 + u_pos, -1)
    acc_bill = _count(flat, n_acc * 6, weights=vals["bill_amount"]).reshape(n_acc, 6)
    acc_overage = _count(flat, n_acc * 6, weights=vals["overage_gb"]).reshape(n_acc, 6)
    acc_present = _count(flat, n_acc * 6).reshape(n_acc, 6)

    lines = lines_all.loc[line_mask].assign(**{k: v[line_mask] for k, v in line_cols.items()})
    lines = lines.sort_values("line_id", kind="stable").reset_index(drop=True)
    line_acc = _codes(lines["account_id"], account_index)

    tickets = tickets.loc[_dates(tickets, "opened_at") <= t]
    contacts_all = contacts
    contacts = contacts.loc[_dates(contacts, "contacted_at") <= t]
    extra = getattr(tables, "tables", tables).get(attributes.TABLE)
    charges = None
    if data_as_of is not None and _as_timestamp(data_as_of) > ts:
        charges = _charges_rolled_back(accounts, lines_all, t, _as_timestamp(data_as_of).to_datetime64())
    return _Snapshot(
        as_of=ts,
        households=households,
        accounts=accounts,
        account_index=account_index,
        lines=lines,
        line_acc=line_acc,
        acc_bill=acc_bill,
        acc_overage=acc_overage,
        acc_present=acc_present,
        tickets=tickets,
        contacts=contacts,
        offers=offers,
        attributes=extra,
        contacts_all=contacts_all,
        charges=charges,
    )


def _charges_rolled_back(accounts: pd.DataFrame, lines_all: pd.DataFrame, t: np.datetime64,
                         data_t: np.datetime64) -> np.ndarray:
    """``monthly_charges`` of the accounts as they were at ``t``, from the lines' list prices.

    The accounts table states the charges at the data's own date (or at the account's end): a
    line added between ``t`` and then is in them, one that ended in between is not. For a feature
    row dated ``t`` -- a training row of a contact made after ``t`` -- the first would leak the
    contact's own outcome (an accepted cross-sell's price in the bill). Each line active at the
    account's charge date but not at ``t`` is taken off, each active at ``t`` but not then put
    back, at the lines' stated prices (data without line prices is left as it is).
    """
    charges = _floats(accounts, "monthly_charges").copy()
    if lines_all is None or not len(lines_all) or "monthly_price" not in lines_all.columns:
        return charges
    acc_end = _dates(accounts, "end_date")
    # The date the stated charges describe: the data's date, or the day before an earlier end.
    day = np.timedelta64(1, "D")
    charge_day = np.where(np.isnat(acc_end) | (acc_end - day > data_t), data_t, acc_end - day)
    index = pd.Index(accounts["account_id"].to_numpy())
    pos = index.get_indexer(lines_all["account_id"].to_numpy())
    ok = pos >= 0
    start, end = _dates(lines_all, "start_date"), _dates(lines_all, "end_date")
    price = np.nan_to_num(_floats(lines_all, "monthly_price"), nan=0.0)
    cd = charge_day[np.maximum(pos, 0)]
    at_t = _active(start, end, t)
    with np.errstate(invalid="ignore"):
        at_cd = (start <= cd) & (np.isnat(end) | (end > cd))
    delta = np.where(ok & at_t & ~at_cd, price, 0.0) - np.where(ok & at_cd & ~at_t, price, 0.0)
    charges += np.bincount(np.maximum(pos, 0), weights=delta, minlength=len(accounts))
    return np.round(charges, 2)


def _flags_granted_after(snap: _Snapshot) -> dict[str, np.ndarray]:
    """Per ownership flag, which active accounts accepted an offer granting it after ``as_of``.

    Every contact counts, also one made after ``as_of``: the tables state ownership at the data's
    own date, so a flag an acceptance after ``as_of`` switched on is not yet on at ``as_of``. (Only
    the contacts made by ``as_of`` once counted here, so a propensity training row -- features the
    day before its contact -- carried its own acceptance as an owned product: a label leak.)
    """
    c = snap.contacts if snap.contacts_all is None else snap.contacts_all
    n = len(snap.accounts)
    acc = _dates(c, "accepted_at")
    later = _bools(c, "accepted") & ~np.isnat(acc) & (acc > snap.as_of.to_datetime64())
    codes = _codes(c["account_id"], snap.account_index)
    offer = c["offer_id"].to_numpy()
    out = {flag: np.zeros(n, dtype=bool) for flag in (*LINE_FLAGS, "has_premium_care")}
    # Which offer switches on which flag is catalog knowledge (each offer's grants_flag).
    for offer_id, flag in offer_grants().items():
        out[flag] = out[flag] | (_count(codes, n, later & (offer == offer_id)) > 0)
    return out


# --------------------------------------------------------------------------------------------------
# line grain


def _line_frame(snap: _Snapshot) -> pd.DataFrame:
    ln = snap.lines
    t = snap.as_of.to_datetime64()
    acc_hh = snap.accounts["household_id"].to_numpy()
    line_acc = snap.line_acc
    household = np.where(line_acc >= 0, acc_hh[np.maximum(line_acc, 0)] if len(acc_hh) else None, None)
    start = _dates(ln, "start_date")
    device = _dates(ln, "device_purchase_date")
    device_age = (t - device) / _DAY / DAYS_PER_MONTH
    # A purchase date after as_of belongs to a later handset: the age at as_of is unknown.
    device_age = np.where(np.isnat(device) | (device > t), np.nan, device_age)
    cap = _floats(ln, "data_cap_gb")
    is_mobile = ln["line_type"].to_numpy() == "mobile"
    capped = is_mobile & ~np.isnan(cap)
    tier = ln["plan_tier"].map(PLAN_TIER_RANK).to_numpy(dtype=np.float64, na_value=np.nan)

    out = pd.DataFrame(
        {
            "line_id": ln["line_id"].to_numpy(dtype=object),
            "account_id": ln["account_id"].to_numpy(dtype=object),
            "household_id": household.astype(object),
            "line_type": ln["line_type"].to_numpy(dtype=object),
            "line_plan_tier": ln["plan_tier"].to_numpy(dtype=object),
            "line_plan_tier_rank": tier,
            "line_broadband_tech": ln["broadband_tech"].to_numpy(dtype=object),
            "line_tenure_months": (t - start) / _DAY / DAYS_PER_MONTH,
            "line_monthly_price": _floats(ln, "monthly_price"),
            "line_data_cap_gb": cap,
            "line_is_capped": capped,
            "line_device_age_months": device_age,
            **{f"line_{f}": _bools(ln, f) for f in LINE_FLAGS},
            "line_usage_months_6m": ln["line_usage_months_6m"].to_numpy(),
            "line_overage_months_6m": ln["line_overage_months_6m"].to_numpy(),
            "line_overage_months_3m": ln["line_overage_months_3m"].to_numpy(),
            "line_data_gb_mean_3m": ln["line_data_gb_mean_3m"].to_numpy(),
            "line_data_cap_util_3m": np.where(capped, _safe_div(ln["line_data_gb_mean_3m"].to_numpy(), cap), np.nan),
            "line_voice_minutes_3m": ln["line_voice_minutes_3m"].to_numpy(),
            "line_intl_minutes_3m": ln["line_intl_minutes_3m"].to_numpy(),
            "line_roaming_days_3m": ln["line_roaming_days_3m"].to_numpy(),
            "line_dropped_calls_3m": ln["line_dropped_calls_3m"].to_numpy(),
            "line_bill_mean_3m": ln["line_bill_mean_3m"].to_numpy(),
        }
    )
    # Repair add-on flags switched on by an acceptance after as_of (see module docstring).
    granted = _flags_granted_after(snap)
    ok = line_acc >= 0
    for flag in LINE_FLAGS:
        if flag in granted:
            later = np.zeros(len(out), dtype=bool)
            later[ok] = granted[flag][line_acc[ok]]
            out[f"line_{flag}"] = out[f"line_{flag}"].to_numpy() & ~later
    return out


def build_line_features(tables: Mapping[str, pd.DataFrame], as_of: Any) -> pd.DataFrame:
    """Build one row per line active at ``as_of`` (see the module docstring for the rules).

    Args:
        tables: Table name -> frame (a data folder's tables; usage/tickets/contacts optional).
        as_of: The point in time (anything :class:`pandas.Timestamp` accepts, naive).

    Returns:
        Frame sorted by ``line_id`` with ``line_id``, ``account_id``, ``household_id``,
        ``line_type`` and ``line_*`` features: static attributes (plan tier and its rank, cap,
        price, tenure, device age, add-on flags) and usage over the last visible 3 / 6 months.

    Raises:
        DataValidationError: A required table or column is missing, or an id is duplicated.
        ConfigError: ``as_of`` is not a naive date/time.
    """
    return _line_frame(_snapshot(tables, as_of))


# --------------------------------------------------------------------------------------------------
# household grain


def _household_frame(snap: _Snapshot, lines: pd.DataFrame) -> pd.DataFrame:
    acc = snap.accounts
    hh_ids = np.unique(acc["household_id"].to_numpy(dtype=object).astype(str)) if len(acc) else np.array([], dtype=object)
    hh_index = pd.Index(hh_ids.astype(object))
    n = len(hh_index)
    src = snap.households
    pos = _codes(src["household_id"], hh_index)
    order = np.full(n, -1)
    order[pos[pos >= 0]] = np.nonzero(pos >= 0)[0]
    have = order >= 0
    take = np.maximum(order, 0)

    def col(name: str, fill: Any) -> np.ndarray:
        values = src[name].to_numpy()
        if len(values) == 0:
            return np.full(n, fill, dtype=object)
        return np.where(have, values[take], fill)

    acc_hh = _codes(acc["household_id"], hh_index)
    line_hh = _codes(lines["household_id"].fillna(""), hh_index)
    line_type = lines["line_type"].to_numpy()
    has_type = {lt: _count(line_hh, n, line_type == lt) > 0 for lt in LINE_TYPES}
    t = snap.as_of.to_datetime64()

    c = snap.contacts
    recent = _dates(c, "contacted_at") > t - np.timedelta64(COMPLAINT_RECENT_DAYS, "D")
    contacted = _bools(c, "contacted") & recent
    c_hh = _codes(c["household_id"], hh_index)
    promo = _promotional(c, snap.offers)

    tk = snap.tickets
    open_t = _is_open(tk, t)
    tk_acc = _codes(tk["account_id"], snap.account_index)
    tk_hh = np.where(tk_acc >= 0, acc_hh[np.maximum(tk_acc, 0)] if len(acc_hh) else -1, -1)

    created = col("created_date", np.datetime64("NaT")).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "household_id": hh_index.to_numpy(dtype=object),
            "household_region": col("region", None).astype(object),
            "household_size": col("household_size", np.nan).astype(np.float64),
            "household_fiber_eligible": col("fiber_eligible", False).astype(bool),
            "household_fwa_eligible": col("fwa_eligible", False).astype(bool),
            "household_tenure_months": (t - created) / _DAY / DAYS_PER_MONTH,
            "household_n_accounts": _count(acc_hh, n),
            "household_n_lines": _count(line_hh, n),
            "household_n_products": np.sum([has_type[lt] for lt in LINE_TYPES], axis=0).astype(np.int64)
            if n
            else np.zeros(0, dtype=np.int64),
            **{f"household_has_{lt}": has_type[lt] for lt in LINE_TYPES},
            "household_open_tickets": _count(tk_hh, n, open_t),
            "household_contacts_30d": _count(c_hh, n, contacted),
            "household_promo_contacts_30d": _count(c_hh, n, contacted & promo),
        }
    )


def build_household_features(tables: Mapping[str, pd.DataFrame], as_of: Any) -> pd.DataFrame:
    """Build one row per household with at least one account active at ``as_of``.

    Args:
        tables: Table name -> frame.
        as_of: The point in time (naive).

    Returns:
        Frame sorted by ``household_id`` with ``household_*`` features: region, size, network
        eligibility, tenure, active accounts / lines / distinct products, product holdings, open
        tickets, contacts and promotional contacts in the last 30 days.

    Raises:
        DataValidationError: A required table or column is missing, or an id is duplicated.
        ConfigError: ``as_of`` is not a naive date/time.
    """
    snap = _snapshot(tables, as_of)
    return _household_frame(snap, _line_frame(snap))


def _is_open(tickets: pd.DataFrame, t: np.datetime64) -> np.ndarray:
    resolved = _dates(tickets, "resolved_at")
    return np.isnat(resolved) | (resolved > t)


def _promotional(contacts: pd.DataFrame, offers: pd.DataFrame) -> np.ndarray:
    promo_of = pd.Series(_bools(offers, "promotional"), index=offers["offer_id"].to_numpy())
    # Unknown offers count as promotional: the cautious side for contact caps.
    # (A logged "no contact" row has no offer; it is never a contact, so ``contacted`` filters it.)
    mapped = contacts["offer_id"].map(promo_of)
    return np.where(mapped.isna().to_numpy(), True, mapped.to_numpy(dtype=object)).astype(bool)


# --------------------------------------------------------------------------------------------------
# account grain


def lifecycle_stage(
    tenure_days: Sequence[float] | np.ndarray,
    days_to_contract_end: Sequence[float] | np.ndarray,
    active_complaint: Sequence[bool] | np.ndarray,
    overage_months_3m: Sequence[float] | np.ndarray,
    open_ticket_over_14d: Sequence[bool] | np.ndarray,
) -> np.ndarray:
    """Assign each account its lifecycle stage.

    Rules (precedence new > at_risk > renewal > early > growth):

    * ``new``: tenure < 90 days.
    * ``at_risk``: an active complaint, or overage in 2+ of the last 3 months, or an open ticket
      older than 14 days.
    * ``renewal``: a fixed-term contract ending within the next 90 days (0 <= days <= 90).
      Month-to-month accounts (NaN) and lapsed contracts (negative) are never in renewal.
    * ``early``: tenure 90..364 days.
    * ``growth``: everything else.

    Args:
        tenure_days: Days since the account started.
        days_to_contract_end: Days until the contract ends (negative: ended; NaN: month-to-month).
        active_complaint: Whether a complaint is active.
        overage_months_3m: Months with overage among the last 3 visible months.
        open_ticket_over_14d: Whether a ticket has been open for more than 14 days.

    Returns:
        Object array of stage names from :data:`LIFECYCLE_STAGES`.
    """
    tenure = np.asarray(tenure_days, dtype=np.float64)
    to_end = np.asarray(days_to_contract_end, dtype=np.float64)
    at_risk = (
        np.asarray(active_complaint, dtype=bool)
        | (np.asarray(overage_months_3m, dtype=np.float64) >= AT_RISK_OVERAGE_MONTHS)
        | np.asarray(open_ticket_over_14d, dtype=bool)
    )
    with np.errstate(invalid="ignore"):
        renewal = (to_end >= 0) & (to_end <= RENEWAL_WINDOW_DAYS)  # NaN compares False
    return np.select(
        [tenure < NEW_DAYS, at_risk, renewal, tenure < EARLY_DAYS],
        ["new", "at_risk", "renewal", "early"],
        default="growth",
    ).astype(object)


def _group_reduce(codes: np.ndarray, n: int, values: np.ndarray, how: str) -> np.ndarray:
    """``how`` in {max, min, mean} of ``values`` per code (NaN ignored; NaN for empty groups)."""
    keep = (codes >= 0) & ~np.isnan(values)
    if how == "mean":
        return _safe_div(np.bincount(codes[keep], weights=values[keep], minlength=n),
                         np.bincount(codes[keep], minlength=n).astype(np.float64))
    out = np.full(n, -np.inf if how == "max" else np.inf)
    (np.maximum if how == "max" else np.minimum).at(out, codes[keep], values[keep])
    out[np.isinf(out)] = np.nan
    return out


def _account_frame(snap: _Snapshot) -> pd.DataFrame:
    acc = snap.accounts
    n = len(acc)
    t = snap.as_of.to_datetime64()
    lines = _line_frame(snap)
    households = _household_frame(snap, lines)

    # ---- lines -> account
    la = snap.line_acc
    ltype = lines["line_type"].to_numpy()
    mobile = ltype == "mobile"
    has = {lt: _count(la, n, ltype == lt) > 0 for lt in LINE_TYPES}
    flags = {f: _count(la, n, lines[f"line_{f}"].to_numpy()) > 0 for f in LINE_FLAGS}
    granted = _flags_granted_after(snap)
    premium = _bools(acc, "has_premium_care") & ~granted["has_premium_care"]

    def line_col(c: str) -> np.ndarray:
        return lines[c].to_numpy(dtype=np.float64)

    # ---- tickets
    tk = snap.tickets
    tk_acc = _codes(tk["account_id"], snap.account_index)
    opened = _dates(tk, "opened_at")
    cat = tk["category"].to_numpy()
    complaint = _bools(tk, "is_complaint")
    open_t = _is_open(tk, t)

    def since(days: int) -> np.ndarray:
        return opened > t - np.timedelta64(days, "D")

    d180 = since(180)
    active_complaint = (_count(tk_acc, n, open_t & complaint) > 0) | (
        _count(tk_acc, n, complaint & since(COMPLAINT_RECENT_DAYS)) > 0
    )
    stale = _count(tk_acc, n, open_t & (opened < t - np.timedelta64(STALE_TICKET_DAYS, "D"))) > 0

    # ---- contacts
    c = snap.contacts
    c_acc = _codes(c["account_id"], snap.account_index)
    c_at = _dates(c, "contacted_at")
    contacted = _bools(c, "contacted")
    c30 = contacted & (c_at > t - np.timedelta64(30, "D"))
    channel = c["channel"].to_numpy()
    promo = _promotional(c, snap.offers)
    accepted_at = _dates(c, "accepted_at")
    accepted = _bools(c, "accepted") & (accepted_at <= t) & (accepted_at > t - np.timedelta64(365, "D"))

    # ---- contract and tenure
    start = _dates(acc, "start_date")
    tenure_days = (t - start) / _DAY
    m2m = acc["contract_type"].to_numpy() == "month_to_month"
    to_end = (_dates(acc, "contract_end_date") - t) / _DAY
    to_end = np.where(m2m, np.nan, to_end)
    months_to_end = to_end / DAYS_PER_MONTH

    # ---- bills (month positions 0..5, 5 = latest visible month)
    bill, present = snap.acc_bill, snap.acc_present > 0
    n3 = present[:, 3:].sum(axis=1)
    bill_mean_3m = _safe_div(bill[:, 3:].sum(axis=1), n3.astype(np.float64))
    prior_mean = _safe_div(bill[:, 2:5].sum(axis=1), present[:, 2:5].sum(axis=1).astype(np.float64))
    bill_change = np.where(present[:, 5], _safe_div(bill[:, 5], prior_mean), np.nan)
    overage_months_3m = (snap.acc_overage[:, 3:] > 0).sum(axis=1).astype(np.int64)

    cap_util = line_col("line_data_cap_util_3m")
    out = pd.DataFrame(
        {
            "account_id": acc["account_id"].to_numpy(dtype=object),
            "household_id": acc["household_id"].to_numpy(dtype=object),
            "account_type": acc["account_type"].to_numpy(dtype=object),
            **{f"account_has_{lt}": has[lt] for lt in LINE_TYPES},
            "account_has_capped_mobile": _count(la, n, lines["line_is_capped"].to_numpy()) > 0,
            **{f"account_{f}": flags[f] for f in LINE_FLAGS},
            "account_has_premium_care": premium,
            "account_open_tickets": _count(tk_acc, n, open_t),
            "account_open_service_issue": _count(tk_acc, n, open_t & np.isin(cat, SERVICE_ISSUE_CATEGORIES)) > 0,
            "account_active_complaint": active_complaint,
            "account_open_ticket_over_14d": stale,
            "account_days_to_contract_end": to_end,
            "account_months_to_contract_end": months_to_end,
            "account_out_of_contract": ~m2m & (to_end < 0),
            "account_channel_preference": acc["channel_preference"].to_numpy(dtype=object),
            **{f"account_contacts_{ch}_30d": _count(c_acc, n, c30 & (channel == ch)) for ch in CHANNELS},
            "account_promo_contacts_30d": _count(c_acc, n, c30 & promo),
            "account_tenure_days": tenure_days,
            "account_tenure_months": tenure_days / DAYS_PER_MONTH,
            "account_contract_type": acc["contract_type"].to_numpy(dtype=object),
            "account_payment_method": acc["payment_method"].to_numpy(dtype=object),
            "account_paperless_billing": _bools(acc, "paperless_billing"),
            "account_senior_citizen": _bools(acc, "senior_citizen"),
            "account_has_partner": _bools(acc, "has_partner"),
            "account_has_dependents": _bools(acc, "has_dependents"),
            "account_monthly_charges": _floats(acc, "monthly_charges") if snap.charges is None else snap.charges,
            "account_tickets_90d": _count(tk_acc, n, since(90)),
            "account_complaints_180d": _count(tk_acc, n, d180 & complaint),
            "account_billing_tickets_180d": _count(tk_acc, n, d180 & (cat == "billing")),
            "account_network_tickets_180d": _count(tk_acc, n, d180 & np.isin(cat, NETWORK_CATEGORIES)),
            "account_bill_mean_3m": bill_mean_3m,
            "account_bill_change_3m": bill_change,
            "account_overage_months_3m": overage_months_3m,
            "account_n_lines": _count(la, n),
            "account_n_mobile_lines": _count(la, n, mobile),
            "account_offers_accepted_365d": _count(c_acc, n, accepted),
            "account_contacts_90d": _count(c_acc, n, contacted & (c_at > t - np.timedelta64(90, "D"))),
            "line_overage_months_6m": _group_reduce(la, n, line_col("line_overage_months_6m"), "max"),
            "line_data_gb_mean_3m": _group_reduce(la, n, np.where(mobile, line_col("line_data_gb_mean_3m"), np.nan), "mean"),
            "line_data_cap_util_3m": _group_reduce(la, n, cap_util, "mean"),
            "line_roaming_days_3m": _group_reduce(la, n, line_col("line_roaming_days_3m"), "max"),
            "line_intl_minutes_3m": _count(la, n, weights=line_col("line_intl_minutes_3m")),
            "line_dropped_calls_3m": _count(la, n, weights=line_col("line_dropped_calls_3m")),
            "line_device_age_months": _group_reduce(la, n, np.where(mobile, line_col("line_device_age_months"), np.nan), "min"),
            "line_max_plan_tier": _group_reduce(la, n, line_col("line_plan_tier_rank"), "max"),
            # Operator columns kept by an importer (account_x_<name>; none for other data).
            **attributes.to_features(snap.attributes, acc["account_id"].to_numpy(dtype=object)),
        }
    )
    # Accounts without lines have no per-line behaviour to summarise: 0 for counts of events.
    for col in ("line_overage_months_6m", "line_roaming_days_3m"):
        out[col] = out[col].fillna(0.0)
    out["account_lifecycle_stage"] = lifecycle_stage(
        tenure_days, to_end, active_complaint, overage_months_3m, stale
    )
    out = out.merge(households, on="household_id", how="left", validate="many_to_one", sort=False)
    # Households missing from the households table (orphans) get neutral values, not NaN bools.
    for col in ("household_fiber_eligible", "household_fwa_eligible"):
        out[col] = out[col].fillna(False).astype(bool)
    for col in ("household_promo_contacts_30d", "household_n_accounts", "household_n_lines", "household_n_products"):
        out[col] = out[col].fillna(0).astype(np.int64)
    # Declared columns in contract order, then the account attributes (declared by the data).
    declared = [c.name for c in contract.COLUMNS if c.name in out.columns]
    return out[[*declared, *(c for c in out.columns if c not in contract.BY_NAME)]]


def build_account_features(tables: Mapping[str, pd.DataFrame], as_of: Any, *, data_as_of: Any = None) -> pd.DataFrame:
    """Build the account-grain frame: one row per account active at ``as_of``.

    Includes the account's own features, aggregates of its active lines (``line_*``) and its
    household's features (``household_*``). Column meanings and point-in-time rules are in the
    module docstring; the columns are those of :data:`telco_nbo.contract.COLUMNS` in their
    declared order (ids, :data:`FEATURE_COLUMNS`, ranking-only and helper columns), then the
    account attributes ``account_x_*`` if the data has any.

    Args:
        tables: Table name -> frame. ``households`` and ``accounts`` are required; ``lines``,
            ``usage_monthly``, ``support_tickets``, ``contacts`` and ``offers`` may be absent.
        as_of: The point in time (naive).
        data_as_of: The date the tables' stated-now columns describe (``accounts.monthly_charges``);
            when it is after ``as_of``, the charges are rolled back to ``as_of`` from the lines'
            prices (point-in-time training rows). ``None``: taken as stated.

    Returns:
        Frame sorted by ``account_id`` with a RangeIndex.

    Raises:
        DataValidationError: A required table or column is missing, or an id is duplicated.
        ConfigError: ``as_of`` is not a naive date/time.
    """
    return _account_frame(_snapshot(tables, as_of, data_as_of))


# --------------------------------------------------------------------------------------------------
# labels and the model matrix


def make_churn_labels(
    tables: Mapping[str, pd.DataFrame],
    as_of: Any,
    horizon_days: int = 90,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Label each account active at ``as_of`` with whether it ends within the horizon.

    Labels look into the future on purpose; pair them with features built at the same ``as_of``.

    Args:
        tables: Table name -> frame (only ``accounts`` is read).
        as_of: The point in time the features describe.
        horizon_days: Length of the label window ``(as_of, as_of + horizon_days]``.
        observed_until: Last date the data covers. When given, a window reaching past it raises,
            because an account ending after it would be silently labelled as staying.

    Returns:
        Frame sorted by ``account_id`` with ``account_id`` and ``churned`` (int8 0/1), one row per
        account active at ``as_of`` (same rows and order as :func:`build_account_features`).

    Raises:
        ConfigError: ``horizon_days`` is not positive, or the window is not fully observed.
        DataValidationError: ``accounts`` is missing or malformed.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days <= 0:
        raise ConfigError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    ts = _as_timestamp(as_of)
    horizon_end = ts + pd.Timedelta(days=int(horizon_days))
    if observed_until is not None and horizon_end > _as_timestamp(observed_until):
        raise ConfigError(
            f"label window ends {horizon_end.date()} but data is observed only until "
            f"{_as_timestamp(observed_until).date()}: pick an earlier as_of or a shorter horizon"
        )
    accounts = _table(tables, "accounts", required=True)
    t = ts.to_datetime64()
    end = _dates(accounts, "end_date")
    active = _active(_dates(accounts, "start_date"), end, t)
    churned = ~np.isnat(end) & (end > t) & (end <= horizon_end.to_datetime64())
    out = pd.DataFrame(
        {"account_id": accounts["account_id"].to_numpy(dtype=object)[active], "churned": churned[active].astype(np.int8)}
    )
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


def to_model_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Return exactly the matrix a model sees: :data:`FEATURE_COLUMNS`, fixed dtypes.

    Categoricals become pandas ``category`` with the fixed category lists of
    :data:`CATEGORY_VALUES` (so one row at serving time is encoded like a million at training time,
    for XGBoost's ``enable_categorical``); every other column becomes float64 (bools 0/1, missing
    NaN), whatever dtype it arrived with.

    Args:
        features: A frame with at least :data:`FEATURE_COLUMNS` (e.g. from
            :func:`build_account_features`, or a serving payload).

    Returns:
        A new frame with the columns of :data:`FEATURE_COLUMNS`, then the frame's passthrough
        columns (:func:`passthrough_columns`, none for data without attributes), same index as
        ``features``.

    Raises:
        DataValidationError: A feature column is missing, a numeric column holds non-numbers, or a
            categorical column holds a value outside its vocabulary.
    """
    if not isinstance(features, pd.DataFrame):
        raise DataValidationError("features", [f"expected a pandas DataFrame, got {type(features).__name__}"])
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise DataValidationError("features", [f"missing feature column(s): {', '.join(missing)}"])
    problems: list[str] = []
    cols: dict[str, pd.Series] = {}
    for col in contract.columns("feature"):
        c = col.name
        s = features[c]
        if col.kind == "category":
            values = s.astype(object).where(s.notna(), None)
            bad = sorted({str(v) for v in values.dropna().unique()} - set(col.categories))
            if bad:
                problems.append(f"column {c} has unknown value(s) {bad[:5]}; allowed: {list(col.categories)}")
                continue
            cols[c] = pd.Series(pd.Categorical(values, categories=list(col.categories)), index=features.index, name=c)
        else:
            if s.dtype == bool:
                cols[c] = s.astype(np.float64)
                continue
            if s.dtype == object or isinstance(s.dtype, pd.BooleanDtype):
                s = s.astype(object).where(s.notna(), np.nan)
                s = s.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
            try:
                cols[c] = pd.to_numeric(s, errors="raise").astype(np.float64)
            except (TypeError, ValueError):
                problems.append(f"column {c} is not numeric (dtype {s.dtype})")
    for c in passthrough_columns(features):
        s = features[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cols[c] = s
        elif pd.api.types.is_numeric_dtype(s.dtype):
            cols[c] = s.astype(np.float64)
        else:
            problems.append(f"column {c} must be numeric or category (dtype {s.dtype})")
    if problems:
        raise DataValidationError("features", problems)
    return pd.DataFrame(cols, index=features.index)


def constant_columns(X: pd.DataFrame) -> list[str]:
    """Columns of a model matrix holding a single value (missing counts as a value).

    A feature that only ever holds a default (no usage table: usage features all NaN; no
    tickets: every count 0) carries no signal; the training of imported data drops these and
    says so, rather than feeding zeros that look like data.

    Args:
        X: A model matrix (or any frame).

    Returns:
        Column names, in frame order.
    """
    return [c for c in X.columns if X[c].nunique(dropna=False) <= 1]


def passthrough_columns(features: pd.DataFrame) -> list[str]:
    """The ``account_x_<name>`` columns of a feature frame (operator columns kept by an importer).

    They follow :data:`FEATURE_COLUMNS` in the model matrix, in the frame's order. Numeric ones
    are float64, categorical ones pandas ``category`` whose categories come from the data folder's
    ``account_attributes`` table (see :mod:`telco_nbo.data.attributes`).

    Args:
        features: A feature frame or model matrix.

    Returns:
        Column names, possibly empty.
    """
    return [c for c in features.columns if isinstance(c, str) and c.startswith(attributes.FEATURE_PREFIX)]


__all__ = [
    "CATEGORICAL_FEATURES",
    "CATEGORY_VALUES",
    "DECISION_COLUMNS",
    "FEATURE_COLUMNS",
    "LIFECYCLE_STAGES",
    "build_account_features",
    "build_household_features",
    "build_line_features",
    "constant_columns",
    "lifecycle_stage",
    "make_churn_labels",
    "passthrough_columns",
    "to_model_matrix",
    "usage_cutoff",
]
