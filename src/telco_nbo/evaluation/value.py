"""The true value of a decision table, from the world's offer truth.

A *decision table* has one row per contact: ``account_id``, ``offer_id`` and, optionally,
``channel``. :func:`read_decisions` turns what the platform writes into one: a ``rank`` output
(its first choices: ``selected`` rows of rank 1), the service's prediction log (JSONL: the last
decision per account, its first offer) or a hand-made CSV / Parquet list.

:func:`true_value` values it on ``truth/offer_effects`` with no substitution: each contact is
valued as the very offer on the very channel it names. A decision the truth does not know (an
account that is not active at as_of, an offer not in the catalog, a channel the offer does not
allow) is an error, never a silent zero. A contact without a channel is valued on the account's
preferred channel when the offer allows it, else the offer's cheapest channel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from telco_nbo.errors import DataValidationError

TRUTH_TABLE = "offer_effects"


@dataclass(frozen=True)
class ValueSummary:
    """True value of a set of contacts.

    Attributes:
        total: Sum of the contacts' true values (incremental over no contact).
        contacts: Number of contacts.
        per_contact: ``total / contacts`` (0 without contacts).
        ci95: 95 % percentile bootstrap interval of ``total`` over the accounts.
    """

    total: float
    contacts: int
    per_contact: float
    ci95: tuple[float, float]


@dataclass(frozen=True)
class PolicyValue:
    """The true value of a decision table, in total and per offer.

    Attributes:
        total: The whole table.
        by_offer: Offer id -> its contacts' summary.
        accounts: Active accounts the interval resamples (non-contacted ones count 0).
        values: Per-contact true values aligned with ``rows`` (for paired comparisons).
        rows: The valued decisions (``account_id``, ``offer_id``, ``channel``, ``true_value``,
            ``delta_churn``, ``delta_margin``, ``p_accept``).
    """

    total: ValueSummary
    by_offer: dict[str, ValueSummary]
    accounts: int
    rows: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready form (the rows are left out)."""
        return {**asdict(self.total), "by_offer": {k: asdict(v) for k, v in self.by_offer.items()},
                "accounts": self.accounts}


def _examples(values: pd.Series | np.ndarray, n: int = 5) -> str:
    vals = list(pd.unique(pd.Series(values).astype(str)))
    more = f" and {len(vals) - n} more" if len(vals) > n else ""
    return ", ".join(repr(v) for v in vals[:n]) + more


def read_decisions(path: str | Path) -> pd.DataFrame:
    """Read a decision table from a file (Parquet, CSV or the service's JSONL prediction log).

    Args:
        path: The file.

    Returns:
        One row per contact: ``account_id``, ``offer_id``, ``channel`` (may be null).

    Raises:
        DataValidationError: Unreadable file, missing columns, duplicates (named with examples).
    """
    p = Path(path)
    if not p.is_file():
        raise DataValidationError("decisions", [f"no such file: {p}"])
    try:
        if p.suffix in (".jsonl", ".json"):
            rows = []
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataValidationError("decisions", [f"{p.name} line {i} is not JSON: {exc.msg}"]) from None
                if not isinstance(d, dict) or "account_id" not in d:
                    raise DataValidationError("decisions", [f"{p.name} line {i} has no account_id"])
                offers = sorted(d.get("offers") or [], key=lambda o: o.get("rank") or 0)
                first = offers[0] if offers else {}
                rows.append({"account_id": d["account_id"], "offer_id": first.get("offer_id"),
                             "channel": first.get("channel"), "_line": i})
            frame = pd.DataFrame(rows, columns=["account_id", "offer_id", "channel", "_line"])
            # A log holds every request: the latest decision per account is the one that stands.
            frame = frame.sort_values("_line").drop_duplicates("account_id", keep="last").drop(columns="_line")
        elif p.suffix == ".parquet":
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_csv(p, dtype=str, keep_default_na=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataValidationError("decisions", [f"cannot read {p}: {exc}"]) from None
    return normalize_decisions(frame)


def normalize_decisions(frame: pd.DataFrame) -> pd.DataFrame:
    """Reduce a ranking or list to one row per contact (``account_id``, ``offer_id``, ``channel``).

    A ranking (a ``rank`` column, and ``selected`` if present) contributes its first choices;
    rows without an offer mean "no contact" and are dropped.

    Raises:
        DataValidationError: Missing columns, or an account named twice.
    """
    missing = [c for c in ("account_id", "offer_id") if c not in frame.columns]
    if missing:
        raise DataValidationError("decisions", [f"missing column(s) {missing}; a decision table needs "
                                                "account_id and offer_id (channel optional)"])
    f = frame
    if "selected" in f.columns:
        f = f[f["selected"].fillna(False).astype(bool)]
    if "rank" in f.columns:
        f = f[pd.to_numeric(f["rank"], errors="coerce") == 1]
    chan = f["channel"] if "channel" in f.columns else pd.Series([None] * len(f), index=f.index)
    out = pd.DataFrame({"account_id": f["account_id"].astype(object), "offer_id": f["offer_id"].astype(object),
                        "channel": chan.astype(object)}).reset_index(drop=True)
    out = out[out["offer_id"].notna() & (out["offer_id"].astype(str) != "")].reset_index(drop=True)
    out["channel"] = out["channel"].where(out["channel"].notna() & (out["channel"].astype(str) != ""), None)
    dup = out["account_id"].duplicated(keep=False)
    if dup.any():
        raise DataValidationError("decisions", [
            f"{int(dup.sum())} rows name an account more than once (e.g. {_examples(out.loc[dup, 'account_id'])}); "
            "a decision table holds one contact per account (a ranking: its rank-1 offers)"])
    return out


def default_channel_rows(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One truth row per ``keys`` group: the account's preferred channel when the offer allows it
    (acceptance is highest there), else the cheapest allowed channel."""
    ordered = rows.sort_values([*keys, "p_accept", "contact_cost"], ascending=[*([True] * len(keys)), False, True])
    return ordered.drop_duplicates(keys, keep="first")


def _known(s: pd.Series) -> pd.Index:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return pd.Index(s.cat.categories.astype(str))
    return pd.Index(s.astype(str).unique())


def resolve(decisions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Join decisions to their truth rows (no substitution; unknown decisions are errors).

    Args:
        decisions: From :func:`normalize_decisions`.
        truth: ``truth/offer_effects``.

    Returns:
        The truth rows of the decisions, in decision order.

    Raises:
        DataValidationError: Unknown accounts, offers or channels, named with examples.
    """
    t = truth
    acc_known = _known(t["account_id"])
    off_known = _known(t["offer_id"])
    d = decisions.assign(account_id=decisions["account_id"].astype(str), offer_id=decisions["offer_id"].astype(str))
    problems = []
    bad_acc = ~d["account_id"].isin(acc_known)
    if bad_acc.any():
        problems.append(f"{int(bad_acc.sum())} decisions name accounts the truth does not know (not active at "
                        f"as_of, or not in this world): {_examples(d.loc[bad_acc, 'account_id'])}")
    bad_off = ~d["offer_id"].isin(off_known)
    if bad_off.any():
        problems.append(f"{int(bad_off.sum())} decisions name offers not in the catalog: "
                        f"{_examples(d.loc[bad_off, 'offer_id'])}; known: {sorted(off_known)}")
    if problems:
        raise DataValidationError("decisions", problems)
    # Only the decided accounts' rows are turned into strings (the truth has millions of rows).
    t = t[t["account_id"].astype(str).isin(set(d["account_id"])) if not isinstance(t["account_id"].dtype, pd.CategoricalDtype)
          else t["account_id"].isin(d["account_id"].unique())]
    keyed = t.assign(account_id=t["account_id"].astype(str), offer_id=t["offer_id"].astype(str),
                     channel=t["channel"].astype(str))
    no_chan = d["channel"].isna()
    picked = []
    if (~no_chan).any():
        dc = d[~no_chan].assign(channel=d.loc[~no_chan, "channel"].astype(str), _pos=np.flatnonzero(~no_chan))
        m = dc.merge(keyed, on=["account_id", "offer_id", "channel"], how="left", indicator=True)
        bad = m["_merge"] != "both"
        if bad.any():
            ex = m.loc[bad, ["offer_id", "channel"]].drop_duplicates().head(5)
            raise DataValidationError("decisions", [
                f"{int(bad.sum())} decisions use a channel their offer does not allow: "
                + ", ".join(f"{o} on {c}" for o, c in ex.itertuples(index=False))])
        picked.append(m.drop(columns="_merge"))
    if no_chan.any():
        dn = d[no_chan].drop(columns="channel").assign(_pos=np.flatnonzero(no_chan))
        m = dn.merge(keyed, on=["account_id", "offer_id"], how="left")
        picked.append(default_channel_rows(m, ["_pos"]))
    out = pd.concat(picked, ignore_index=True).sort_values("_pos").drop(columns="_pos").reset_index(drop=True)
    return out


def bootstrap_total(values: np.ndarray, n_accounts: int, *, n_resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a total over ``n_accounts`` (those not in ``values`` count 0).

    The interval says how much the figure depends on which accounts the world happened to have.
    """
    v = np.asarray(values, float)
    if n_accounts <= 0:
        return (0.0, 0.0)
    if len(v) == 0:
        return (0.0, 0.0)
    nz = v[v != 0]
    n = max(n_accounts, len(v))
    if 0 < len(nz) <= n // 2:
        return _sparse_bootstrap_total(nz, n, n_resamples=n_resamples, seed=seed)
    full = np.zeros(n)
    full[: len(v)] = v
    if np.all(full == full[0]):
        return (float(full.sum()), float(full.sum()))
    res = bootstrap((full,), np.mean, n_resamples=n_resamples, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True, batch=max(1, 2_000_000 // len(full)))
    return float(res.confidence_interval.low * len(full)), float(res.confidence_interval.high * len(full))


def _sparse_bootstrap_total(nonzero: np.ndarray, n: int, *, n_resamples: int, seed: int,
                            batch_draws: int = 4_000_000) -> tuple[float, float]:
    """The percentile bootstrap of a total over ``n`` accounts of which only ``nonzero`` are not 0.

    The same distribution as resampling all ``n`` values (what :func:`scipy.stats.bootstrap` does,
    and what the test compares with): of the ``n`` draws of one resample, ``m ~ Binomial(n, k/n)``
    land on the ``k`` non-zero values, each uniformly. Drawing only those ``m`` makes a policy that
    contacts a few thousand of a hundred thousand accounts cost a few thousand draws a resample.
    """
    rng = np.random.default_rng(seed)
    k = len(nonzero)
    m = rng.binomial(n, k / n, size=n_resamples)
    totals = np.empty(n_resamples)
    # Resamples in batches whose draws stay within a few million.
    cm = np.cumsum(m)
    cuts = np.unique(np.r_[0, np.searchsorted(cm, np.arange(batch_draws, cm[-1], batch_draws), side="right"),
                            n_resamples])
    for start, stop in zip(cuts[:-1], cuts[1:]):
        if stop <= start:
            continue
        draws = nonzero[rng.integers(0, k, int(m[start:stop].sum()))]
        bounds = np.r_[0, np.cumsum(m[start:stop])]
        csum = np.r_[0.0, np.cumsum(draws)]
        totals[start:stop] = csum[bounds[1:]] - csum[bounds[:-1]]
    lo, hi = np.percentile(totals, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(values: np.ndarray, n_accounts: int, *, n_resamples: int = 1000, seed: int = 0) -> ValueSummary:
    """:class:`ValueSummary` of contacts with these true values among ``n_accounts`` accounts."""
    v = np.asarray(values, float)
    total = float(v.sum())
    return ValueSummary(total=total, contacts=int(len(v)), per_contact=total / len(v) if len(v) else 0.0,
                        ci95=bootstrap_total(v, n_accounts, n_resamples=n_resamples, seed=seed))


def true_value(decisions: pd.DataFrame, truth: pd.DataFrame, *, n_accounts: int | None = None,
               n_resamples: int = 1000, seed: int = 0) -> PolicyValue:
    """Value any decision table on the world's truth, in total and per offer.

    Args:
        decisions: One row per contact (see :func:`normalize_decisions`; a ranking is reduced to
            its first choices).
        truth: ``truth/offer_effects`` of the world the decisions were made for.
        n_accounts: Accounts the bootstrap resamples; default: the active accounts in the truth.
        n_resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        The :class:`PolicyValue`.

    Raises:
        DataValidationError: A decision the truth does not know, or a malformed table.
    """
    d = normalize_decisions(decisions)
    rows = resolve(d, truth) if len(d) else truth.iloc[:0].copy()
    n = n_accounts if n_accounts is not None else int(truth["account_id"].nunique())
    by_offer = {}
    for oid, g in rows.groupby(rows["offer_id"].astype(str), sort=True):
        by_offer[str(oid)] = summarize(g["true_value"].to_numpy(), n, n_resamples=n_resamples, seed=seed)
    keep = ["account_id", "offer_id", "channel", "p_accept", "delta_churn", "delta_margin", "true_value"]
    return PolicyValue(total=summarize(rows["true_value"].to_numpy(), n, n_resamples=n_resamples, seed=seed),
                       by_offer=by_offer, accounts=n, rows=rows[keep].reset_index(drop=True))
