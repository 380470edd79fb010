"""Need signals: the plain-words "why this offer" read off an account's features.

These follow the cross-sell playbook (mobile-only at a fiber address -> home internet; repeated
overage -> bigger plan; roaming -> travel pack; new handset -> protection; more people than lines ->
extra line; coverage tickets -> mesh Wi-Fi / premium care; contract end -> retention). Each signal
is a vectorized numpy predicate plus a text built with numpy string ufuncs, evaluated only on the
offers actually returned (no pandas: the scoring API explains one account per request and pandas'
per-call overhead would dominate). A signal whose feature column is absent is skipped (an imported
data set may lack usage), never an error. Model reason codes (SHAP) are appended after these by the
ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from numpy.dtypes import StringDType
from telco_nbo.vocabulary import DAYS_PER_MONTH

_STR = StringDType()


@dataclass(frozen=True)
class NeedSignal:
    """One need signal.

    Attributes:
        offers: Offer ids or ``kind:<kind>`` selectors it explains.
        columns: Columns it reads (from the features, or the score columns ``churn_probability``,
            ``uplift``); missing -> skipped.
        when: Rows (a namespace of equal-length numpy arrays, one per column) -> bool array: the
            signal is present (NaN comparisons are False, so a missing value never fires).
        text: Rows (the same namespace, restricted to the rows that fire) -> array of str.
    """

    offers: tuple[str, ...]
    columns: tuple[str, ...]
    when: Callable[[SimpleNamespace], np.ndarray]
    text: Callable[[SimpleNamespace], np.ndarray]


def _f(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _b(x: np.ndarray) -> np.ndarray:
    # Nullable / object bools: a missing flag is "no".
    x = np.asarray(x)
    if x.dtype == bool:
        return x
    return np.asarray(pd.array(x, dtype="boolean").fillna(False), dtype=bool)


def _int(x: np.ndarray) -> np.ndarray:
    return np.round(_f(x)).astype(np.int64).astype(_STR)


def _pct(x: np.ndarray) -> np.ndarray:
    return _int(_f(x) * 100) + "%"


def _const(text: str) -> Callable[[SimpleNamespace], np.ndarray]:
    def render(d: SimpleNamespace) -> np.ndarray:
        n = len(next(iter(vars(d).values())))
        return np.full(n, text, dtype=_STR)

    return render


def default_signals() -> list[NeedSignal]:
    """Return the built-in need signals, most telling first."""
    home = ("HOME_FIBER", "HOME_FWA")
    return [
        NeedSignal(("HOME_FIBER",), ("account_has_mobile", "account_has_broadband", "household_fiber_eligible"),
                   lambda d: _b(d.account_has_mobile) & ~_b(d.account_has_broadband) & _b(d.household_fiber_eligible),
                   _const("mobile-only account at a fiber-ready address")),
        NeedSignal(("HOME_FWA",), ("account_has_mobile", "account_has_broadband", "household_fwa_eligible"),
                   lambda d: _b(d.account_has_mobile) & ~_b(d.account_has_broadband) & _b(d.household_fwa_eligible),
                   _const("mobile-only account at an address with 5G home internet")),
        NeedSignal(home, ("household_size",), lambda d: _f(d.household_size) >= 3,
                   lambda d: _int(d.household_size) + " people in the household"),
        NeedSignal(("DATA_UPSELL",), ("line_overage_months_6m",), lambda d: _f(d.line_overage_months_6m) >= 1,
                   lambda d: _int(d.line_overage_months_6m) + " months with data overage in the last 6"),
        NeedSignal(("DATA_UPSELL",), ("line_data_cap_util_3m",), lambda d: _f(d.line_data_cap_util_3m) >= 0.8,
                   lambda d: "uses " + _pct(d.line_data_cap_util_3m) + " of the data allowance (3-month mean)"),
        NeedSignal(("DATA_UPSELL", "PLAN_REVIEW"), ("account_bill_change_3m",),
                   lambda d: _f(d.account_bill_change_3m) >= 1.2,
                   lambda d: "bill up " + _pct(_f(d.account_bill_change_3m) - 1) + " on its 3-month average"),
        NeedSignal(("TRAVEL_PACK",), ("line_roaming_days_3m",), lambda d: _f(d.line_roaming_days_3m) >= 1,
                   lambda d: _int(d.line_roaming_days_3m) + " roaming days in the last 3 months"),
        NeedSignal(("TRAVEL_PACK",), ("line_intl_minutes_3m",), lambda d: _f(d.line_intl_minutes_3m) >= 60,
                   lambda d: _int(d.line_intl_minutes_3m) + " international minutes in the last 3 months"),
        NeedSignal(("DEVICE_PROTECTION",), ("line_device_age_months",), lambda d: _f(d.line_device_age_months) <= 3,
                   lambda d: "new handset (" + _int(d.line_device_age_months) + " months old)"),
        NeedSignal(("EXTRA_LINE",), ("household_size", "account_n_mobile_lines"),
                   lambda d: _f(d.household_size) > _f(d.account_n_mobile_lines),
                   lambda d: _int(d.household_size) + " people in the household, "
                   + _int(d.account_n_mobile_lines) + " mobile lines"),
        NeedSignal(("TV_STREAMING",), ("account_has_broadband", "account_has_tv"),
                   lambda d: _b(d.account_has_broadband) & ~_b(d.account_has_tv),
                   _const("home broadband without TV")),
        NeedSignal(("kind:retention",), ("account_months_to_contract_end",),
                   lambda d: (_f(d.account_months_to_contract_end) >= 0) & (_f(d.account_months_to_contract_end) <= 3),
                   lambda d: "contract ends in " + _int(_f(d.account_months_to_contract_end) * DAYS_PER_MONTH) + " days"),
        NeedSignal(("kind:retention",), ("account_lifecycle_stage",),
                   lambda d: np.asarray(d.account_lifecycle_stage, dtype=object) == "at_risk",
                   _const("at risk (complaint, repeated overage or a long-open ticket)")),
        NeedSignal(("kind:retention",), ("churn_probability",), lambda d: _f(d.churn_probability) >= 0.2,
                   lambda d: "churn risk " + _pct(d.churn_probability) + " in the next 3 months"),
        NeedSignal(("kind:retention",), ("uplift",), lambda d: _f(d.uplift) >= 0.01,
                   lambda d: "an offer is expected to cut churn risk by "
                   + np.char.mod("%.1f", np.round(_f(d.uplift) * 100, 1)).astype(_STR) + " points"),
        NeedSignal(("MESH_WIFI", "PREMIUM_CARE"), ("account_network_tickets_180d",),
                   lambda d: _f(d.account_network_tickets_180d) >= 1,
                   lambda d: _int(d.account_network_tickets_180d) + " network or coverage tickets in 6 months"),
        NeedSignal(("MESH_WIFI", "PREMIUM_CARE"), ("account_open_service_issue",),
                   lambda d: _b(d.account_open_service_issue),
                   _const("a service issue is open right now")),
        NeedSignal(("PREMIUM_CARE",), ("line_dropped_calls_3m",), lambda d: _f(d.line_dropped_calls_3m) >= 5,
                   lambda d: _int(d.line_dropped_calls_3m) + " dropped calls in the last 3 months"),
        NeedSignal(("kind:win_back",), ("account_is_active",), lambda d: ~_b(d.account_is_active),
                   _const("former customer")),
    ]


def signal_offer_matrix(signals: list[NeedSignal], offer_id: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """``(n_signals, k)`` bool: which signal explains which row's offer (computed once per catalog)."""
    offer_id = np.asarray(offer_id, dtype=object)
    kind = np.asarray(kind, dtype=object)
    out = np.zeros((len(signals), len(offer_id)), dtype=bool)
    for s, sig in enumerate(signals):
        for sel in sig.offers:
            out[s] |= (kind == sel[5:]) if sel.startswith("kind:") else (offer_id == sel)
    return out


def need_reasons_arrays(
    columns: Mapping[str, np.ndarray], offer_id: np.ndarray, kind: np.ndarray,
    signals: list[NeedSignal] | None = None, applies: np.ndarray | None = None,
) -> list[list[str]]:
    """Return the need-signal texts for each row (one row = one returned account x offer).

    Args:
        columns: Column name -> ``(k,)`` array for the rows (features and score columns).
        offer_id: ``(k,)`` offer id per row.
        kind: ``(k,)`` offer kind per row.
        signals: Signals to use; :func:`default_signals` if ``None``.
        applies: ``(n_signals, k)`` :func:`signal_offer_matrix` of the rows if the caller has it
            (the ranking takes it from the catalog's matrix); computed here otherwise.

    Returns:
        One list of strings per row, in signal order.
    """
    signals = default_signals() if signals is None else signals
    k = len(offer_id)
    out: list[list[str]] = [[] for _ in range(k)]
    if k == 0:
        return out
    if applies is None:
        applies = signal_offer_matrix(signals, offer_id, kind)
    hit_rows: list[np.ndarray] = []
    hit_texts: list[np.ndarray] = []
    arrays: dict[str, np.ndarray] = {}
    for s in np.flatnonzero(applies.any(axis=1)).tolist():
        sig = signals[s]
        if any(c not in columns for c in sig.columns):
            continue
        rows = np.flatnonzero(applies[s])
        for c in sig.columns:
            if c not in arrays:
                arrays[c] = np.asarray(columns[c])
        sub = SimpleNamespace(**{c: arrays[c][rows] for c in sig.columns})
        with np.errstate(invalid="ignore"):
            hit = np.asarray(sig.when(sub), dtype=bool)
        if not hit.any():
            continue
        if not hit.all():
            sub = SimpleNamespace(**{c: v[hit] for c, v in vars(sub).items()})
            rows = rows[hit]
        hit_rows.append(rows)
        hit_texts.append(np.asarray(sig.text(sub)).astype(object))
    if not hit_rows:
        return out
    # Signals are visited in order, so appending keeps each row's texts in signal order.
    for rows, texts in zip(hit_rows, hit_texts, strict=True):
        for r, t in zip(rows.tolist(), texts.tolist(), strict=True):
            out[r].append(t)
    return out


def need_reasons(rows: pd.DataFrame, signals: list[NeedSignal] | None = None) -> pd.Series:
    """Return the need-signal texts for each row of a frame (see :func:`need_reasons_arrays`).

    Args:
        rows: Frame with ``offer_id``, ``kind`` and the feature / score columns the signals read.
        signals: Signals to use; :func:`default_signals` if ``None``.

    Returns:
        A Series (same index) of lists of strings, in signal order.
    """
    cols = {c: rows[c].to_numpy() for c in rows.columns if c not in ("offer_id", "kind")}
    texts = need_reasons_arrays(cols, rows["offer_id"].to_numpy(), rows["kind"].to_numpy(), signals)
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return pd.Series(out, index=rows.index, dtype=object)
