"""Need signals: the plain-words "why this offer" read off an account's features.

The signals are declared in the offer catalog (each offer's ``needs`` and the catalog's
``kind_needs``; see :class:`~telco_nbo.nbo.catalog.Need`), following the cross-sell playbook
(mobile-only at a fiber address -> home internet; repeated overage -> bigger plan; roaming -> travel
pack; new handset -> protection; more people than lines -> extra line; coverage tickets -> mesh
Wi-Fi / premium care; contract end -> retention). :func:`compile_need` turns each declaration into
a vectorized numpy predicate plus a text built with numpy string ufuncs, evaluated only on the
offers actually returned (no pandas: the scoring API explains one account per request and pandas'
per-call overhead would dominate). A signal whose feature column is absent is skipped (an imported
data set may lack usage), never an error. Model reason codes (SHAP) are appended after these by the
ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from numpy.dtypes import StringDType

from telco_nbo.nbo.catalog import Catalog, Need, NeedCondition, builtin_catalog
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


_COMPARE: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    ">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less,
    "==": np.equal, "!=": np.not_equal,
}

_FORMAT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "": lambda x: np.asarray(x).astype(str).astype(_STR),
    "int": _int,
    "pct": _pct,
    "change_pct": lambda x: _pct(_f(x) - 1),
    "days": lambda x: _int(_f(x) * DAYS_PER_MONTH),
    "points": lambda x: np.char.mod("%.1f", np.round(_f(x) * 100, 1)).astype(_STR),
}


def _condition(cond: NeedCondition) -> Callable[[SimpleNamespace], np.ndarray]:
    """Compile one declared condition into a predicate over the rows' columns."""
    if cond.op in ("true", "false"):
        want = cond.op == "true"
        return lambda d: _b(getattr(d, cond.feature)) if want else ~_b(getattr(d, cond.feature))
    compare = _COMPARE[cond.op]
    if isinstance(cond.value, str):
        # A category, compared as objects; a missing category satisfies neither == nor !=.
        def category(d: SimpleNamespace) -> np.ndarray:
            x = np.asarray(getattr(d, cond.feature), dtype=object)
            return np.asarray(compare(x, cond.value), dtype=bool) & ~pd.isna(x)

        return category

    def number(d: SimpleNamespace) -> np.ndarray:
        x = _f(getattr(d, cond.feature))
        y = _f(getattr(d, cond.other)) if cond.other is not None else float(cond.value)  # type: ignore[arg-type]
        # NaN already fails every comparison but "!=": a missing number never satisfies one.
        return compare(x, y) & ~np.isnan(x) & ~np.isnan(y)

    return number


def _predicate(need: Need) -> Callable[[SimpleNamespace], np.ndarray]:
    tests = [_condition(c) for c in need.when]

    def when(d: SimpleNamespace) -> np.ndarray:
        hit = tests[0](d)
        for t in tests[1:]:
            hit = hit & t(d)
        return hit

    return when


def _renderer(need: Need) -> Callable[[SimpleNamespace], np.ndarray]:
    pieces = need.fields()

    def render(d: SimpleNamespace) -> np.ndarray:
        n = len(next(iter(vars(d).values())))
        out = np.full(n, "", dtype=_STR)
        for literal, column, fmt in pieces:
            if literal:
                out = out + literal
            if column:
                out = out + _FORMAT[fmt](getattr(d, column))
        return out

    return render


def compile_need(need: Need, offers: tuple[str, ...]) -> NeedSignal:
    """Turn a declared :class:`~telco_nbo.nbo.catalog.Need` into a :class:`NeedSignal`.

    Args:
        need: The declaration (conditions and text template).
        offers: Offer ids or ``kind:<kind>`` selectors it explains.

    Returns:
        The signal, reading exactly the columns the need names.
    """
    return NeedSignal(offers, need.columns(), _predicate(need), _renderer(need))


def default_signals(catalog: Catalog | None = None) -> list[NeedSignal]:
    """Return the need signals a catalog declares: each offer's own, then those of its kind.

    Args:
        catalog: A loaded catalog; ``None`` for the built-in one.

    Returns:
        Signals in catalog order (an offer's own needs in their order, then the kinds' needs), so
        every returned offer lists its own reasons before the ones its kind shares.
    """
    catalog = catalog or builtin_catalog()
    own = [compile_need(need, (o.offer_id,)) for o in catalog.offers for need in o.needs]
    shared = [compile_need(need, (f"kind:{kind}",)) for kind, needs in catalog.kind_needs.items() for need in needs]
    return own + shared


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
        signals: Signals to use; the built-in catalog's (:func:`default_signals`) if ``None``.
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

