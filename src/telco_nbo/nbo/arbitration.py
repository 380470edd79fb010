"""Arbitration: channel per offer, expected value and its parts, and the household selection step.

Expected value of offering ``j`` to account ``i`` on channel ``c``::

    months      = min(term_j, H)                      if the offer has a term
                = min(E[months retained over H], no_commitment_months)   otherwise
    acceptance  = P(accept)_ij x monthly_margin_j x months
    retention   = uplift_ij x CLV_i                   (offers with evidence only, or a per-offer uplift)
    value       = w_kind(j) x (acceptance + retention)
    EV          = value - contact_cost(c)
    decision    = EV                                  risk: neutral
                = EV - z x w_kind(j) x se(uplift_ij) x |CLV_i|  risk: lcb (a lower confidence bound)

``E[months retained over H]`` turns the churn probability over the churn window (W months) into a
constant monthly hazard ``h = 1 - (1 - p)^(1/W)`` and sums the survival curve over the horizon:
``sum_{t=0}^{H-1} (1-h)^t = (1 - (1-h)^H) / h``. The kind weight scales value, not cost: a lever
that favours retention must not make contacts look cheaper than they are.

The household step then walks every household's surviving offers in value order (ties: offer id,
then account id) and keeps an offer only if the account's list is not full (top-k), the household
and account still have promotional room, and it does not conflict with an offer already kept in
the household. It is a greedy pass, vectorized across households: round ``r`` looks at the r-th
best candidate of every household at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.data.schema import CHANNELS
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rules import OfferTable

CHANNEL_ARRAY = np.array(CHANNELS, dtype=object)


def _per_catalog(offers: OfferTable, config: NboConfig, name: str, build: Callable[[], Any]) -> Any:
    """``build()``, computed once per catalog and config (kept in the offer table's cache).

    These vectors depend on the offers and the config only; the API ranks one account per request,
    where rebuilding them in Python loops would cost more than the arithmetic. The cache holds the
    config itself, so an entry is only reused for that very (frozen) config object.
    """
    key = (name, id(config))
    hit = offers._where_cache.get(key)
    if hit is not None and hit[0] is config:
        return hit[1]
    value = build()
    for v in value if isinstance(value, tuple) else (value,):
        v.flags.writeable = False  # shared between calls: nobody may change it
    offers._where_cache[key] = (config, value)
    return value


def choose_channels(
    preference: np.ndarray, available: np.ndarray, offers: OfferTable, config: NboConfig
) -> np.ndarray:
    """Pick a channel for every account x offer.

    The account's preferred channel wins when the offer may go out on it and it is below its cap;
    otherwise the first allowed, available channel in the fallback order for the offer's complexity
    (high complexity -> call center / retail first; low -> app / SMS / email first).

    Args:
        preference: ``(n,)`` preferred channel names.
        available: ``(n, n_channels)`` channel below its cap.
        offers: Catalog vectors.
        config: Policy config (fallback orders).

    Returns:
        ``(n, m)`` channel index into :data:`CHANNELS`, ``-1`` where no channel is possible.
    """
    def build_prio() -> np.ndarray:
        # Priority of channel c for offer j: its position in the fallback order (lower = better).
        prio = np.empty((len(offers), len(CHANNELS)), dtype=float)
        for j, cx in enumerate(offers.complexity):
            order = config.channel_fallback[cx]
            prio[j] = [order.index(c) for c in CHANNELS]
        return prio

    prio = _per_catalog(offers, config, "channel_priority", build_prio)
    pref_idx = np.full(len(preference), -1, dtype=np.int64)
    for k, c in enumerate(CHANNELS):
        pref_idx[preference == c] = k
    score = np.broadcast_to(prio, (len(preference), *prio.shape)).copy()  # (n, m, c)
    rows = np.flatnonzero(pref_idx >= 0)
    score[rows, :, pref_idx[rows]] = -1.0
    ok = available[:, None, :] & offers.channel_mask[None, :, :]
    score[~ok] = np.inf
    best = score.argmin(axis=2)
    return np.where(np.isfinite(score.min(axis=2)), best, -1)


def expected_months(churn: np.ndarray, config: NboConfig) -> np.ndarray:
    """Expected months an account stays over the horizon, from its churn probability.

    Args:
        churn: ``(n,)`` probability of churn within ``config.churn_window_months``.
        config: Policy config.

    Returns:
        ``(n,)`` expected months in ``[1, horizon]``.
    """
    horizon = config.horizon_months
    p = np.clip(churn, 0.0, 1.0)
    # h = 1 - (1-p)^(1/W); 1-h survives a month.
    keep = np.power(1.0 - p, 1.0 / config.churn_window_months)
    h = 1.0 - keep
    with np.errstate(divide="ignore", invalid="ignore"):
        months = np.where(h > 1e-12, (1.0 - np.power(keep, horizon)) / np.where(h > 1e-12, h, 1.0), horizon)
    return months


@dataclass(frozen=True)
class ValueParts:
    """Expected value and its parts, each ``(n, m)``."""

    margin_months: np.ndarray
    acceptance_value: np.ndarray
    uplift: np.ndarray
    retention_value: np.ndarray
    kind_weight: np.ndarray
    contact_cost: np.ndarray
    expected_value: np.ndarray
    uplift_se: np.ndarray | None = None
    decision_value: np.ndarray | None = None

    @property
    def decision(self) -> np.ndarray:
        """What the policy decides on: the lower bound under ``risk: lcb``, else the expected value."""
        return self.expected_value if self.decision_value is None else self.decision_value


def value_parts(
    propensity: np.ndarray,
    churn: np.ndarray,
    clv: np.ndarray,
    retention_uplift: np.ndarray,
    offer_uplift: np.ndarray,
    channel: np.ndarray,
    offers: OfferTable,
    config: NboConfig,
    retention_uplift_se: np.ndarray | None = None,
    offer_uplift_se: np.ndarray | None = None,
) -> ValueParts:
    """Compute expected value and each of its parts for every account x offer.

    Args:
        propensity: ``(n, m)`` P(accept | contacted); NaN where unscored.
        churn: ``(n,)`` churn probability.
        clv: ``(n,)`` CLV.
        retention_uplift: ``(n,)`` account-level uplift (for offers whose ``effect_evidence`` names
            ``config.uplift_experiment``; never lent to another offer).
        offer_uplift: ``(n, m)`` per-offer uplift; NaN -> the account-level rule.
        channel: ``(n, m)`` chosen channel index, -1 for none (cost NaN).
        offers: Catalog vectors.
        config: Policy config.
        retention_uplift_se: ``(n,)`` standard error of ``retention_uplift`` (NaN or ``None``:
            unknown, counted as 0). Only read under ``risk: lcb``.
        offer_uplift_se: ``(n, m)`` standard error of ``offer_uplift`` (same convention).

    Returns:
        The parts; NaN propagates where a pair was unscored or has no channel. ``decision_value``
        is set under ``risk: lcb`` only (see :attr:`ValueParts.decision`).
    """
    n, m = propensity.shape
    horizon = config.horizon_months
    term, margin, uplift_kind, kind_weight, costs = _per_catalog(offers, config, "value", lambda: (
        np.array([o.term_months for o in offers.offers], dtype=float),
        np.array([o.monthly_margin for o in offers.offers], dtype=float),
        # Only offers with randomized evidence from the uplift model's experiment get its effect.
        np.array([config.uplift_experiment in o.effect_evidence for o in offers.offers], dtype=bool),
        np.array([config.kind_weight(k) for k in offers.kind], dtype=float),
        np.array([config.contact_costs[c] for c in CHANNELS] + [np.nan]),  # index -1 -> NaN
    ))
    no_term_months = np.minimum(expected_months(churn, config), config.no_commitment_months)  # (n,)
    months = np.where(term[None, :] > 0, np.minimum(term, horizon)[None, :], no_term_months[:, None])
    acceptance = propensity * margin[None, :] * months

    uplift = np.where(
        np.isnan(offer_uplift),
        np.where(uplift_kind[None, :], retention_uplift[:, None], 0.0),
        offer_uplift,
    )
    retention = uplift * clv[:, None]
    weight = np.broadcast_to(kind_weight[None, :], (n, m))
    cost = costs[channel]
    ev = weight * (acceptance + retention) - cost
    if config.risk != "lcb":
        return ValueParts(months, acceptance, uplift, retention, np.array(weight), cost, ev)
    # The bound subtracts the effect's sampling error where the value rests on the account-level
    # effect estimate (and on a per-offer one with its error, under lcb_per_offer); per-offer
    # uplifts otherwise, and acceptance x margin, count at their estimate.
    se = np.zeros(n) if retention_uplift_se is None else np.nan_to_num(np.asarray(retention_uplift_se, float), nan=0.0)
    offer_se = np.zeros((n, m)) if offer_uplift_se is None or not config.lcb_per_offer else \
        np.nan_to_num(np.asarray(offer_uplift_se, float), nan=0.0)
    given = ~np.isnan(offer_uplift)
    uplift_se = np.where(given, offer_se, np.where(uplift_kind[None, :], se[:, None], 0.0))
    decision = ev - config.lcb_z * weight * uplift_se * np.abs(clv)[:, None]
    return ValueParts(months, acceptance, uplift, retention, np.array(weight), cost, ev, uplift_se, decision)


def conflict_matrix(offers: OfferTable, config: NboConfig) -> tuple[np.ndarray, np.ndarray]:
    """Expand the config's conflict table over the catalog.

    Args:
        offers: Catalog vectors.
        config: Policy config.

    Returns:
        ``(m, m)`` symmetric bool matrix and ``(m, m)`` object matrix of "why" texts.

    Raises:
        ConfigError: A conflict names an offer id the catalog lacks.
    """
    m = len(offers)
    conflict = np.zeros((m, m), dtype=bool)
    why = np.full((m, m), "", dtype=object)
    ids = list(offers.ids)

    def select(sel: str) -> np.ndarray:
        if sel.startswith("kind:"):
            return offers.kind == sel[5:]
        if sel not in ids:
            raise ConfigError(f"conflict table names unknown offer_id '{sel}'; catalog: {ids}")
        return offers.ids == sel

    for c in config.conflicts:
        pair = np.logical_and.outer(select(c.a), select(c.b))
        pair = pair | pair.T
        why[pair & ~conflict] = c.why
        conflict |= pair
    return conflict, why


SMALL_SELECTION = 64
"""Up to this many candidate pairs the household step runs as a plain loop (same result): the
vectorized rounds cost a few hundred microseconds of numpy calls, which dominates one API request."""

# Selection outcomes (codes in the status matrix).
KEPT = 0
SEL_TOP_K = 1
HH_ONE_PROMO = 2
SEL_ACCOUNT_PROMO = 3
HH_CONFLICT = 4
NOT_CANDIDATE = -1


@dataclass(frozen=True)
class Selection:
    """Outcome of the household step.

    Attributes:
        status: ``(n, m)`` code: KEPT, SEL_TOP_K, HH_ONE_PROMO, SEL_ACCOUNT_PROMO, HH_CONFLICT, or
            NOT_CANDIDATE for pairs that were not candidates.
        rank: ``(n, m)`` 1-based rank within the account's list, 0 where not kept.
        blocker_offer: ``(n, m)`` index of the kept offer a conflict lost to, -1 otherwise.
        blocker_account: ``(n, m)`` row of the account holding that offer, -1 otherwise.
    """

    status: np.ndarray
    rank: np.ndarray
    blocker_offer: np.ndarray
    blocker_account: np.ndarray


def select_offers(
    candidate: np.ndarray,
    ev: np.ndarray,
    household: np.ndarray,
    account_key: np.ndarray,
    offers: OfferTable,
    config: NboConfig,
    account_promo_used: np.ndarray,
    household_promo_used: np.ndarray,
    top_k: int | None,
    conflict: np.ndarray | None = None,
) -> Selection:
    """Greedy household selection over candidate pairs, in expected-value order.

    Args:
        candidate: ``(n, m)`` pairs that passed every rule and the value floor.
        ev: ``(n, m)`` expected value (finite on candidates).
        household: ``(n,)`` household ids.
        account_key: ``(n,)`` account ids (the last tie-breaker).
        offers: Catalog vectors.
        config: Policy config (caps, conflicts).
        account_promo_used: ``(n,)`` promotional contacts already made to the account in the window.
        household_promo_used: ``(n,)`` same for the account's household.
        top_k: Maximum offers per account; ``None`` for no limit.
        conflict: The ``(m, m)`` conflict matrix if already built (see :func:`conflict_matrix`).

    Returns:
        The selection.
    """
    n, m = candidate.shape
    status = np.full((n, m), NOT_CANDIDATE, dtype=np.int8)
    rank = np.zeros((n, m), dtype=np.int32)
    blk_o = np.full((n, m), -1, dtype=np.int32)
    blk_a = np.full((n, m), -1, dtype=np.int64)
    ii, jj = np.nonzero(candidate)
    if len(ii) == 0:
        return Selection(status, rank, blk_o, blk_a)

    k = np.iinfo(np.int64).max if top_k is None else int(top_k)
    if conflict is None:
        conflict, _ = conflict_matrix(offers, config)
    if len(ii) <= SMALL_SELECTION:
        _select_small(ii, jj, ev, household, account_key, offers, config, account_promo_used,
                      household_promo_used, k, conflict, status, rank, blk_o, blk_a)
        return Selection(status, rank, blk_o, blk_a)

    hh_codes, hh_idx = np.unique(household.astype(str), return_inverse=True)
    n_hh = len(hh_codes)
    acc_rank = pd.Index(account_key.astype(str)).argsort(kind="stable")
    acc_order = np.empty(n, dtype=np.int64)
    acc_order[acc_rank] = np.arange(n)  # position of each account in id order
    offer_order = np.argsort(offers.ids.astype(str), kind="stable")
    offer_pos = np.empty(m, dtype=np.int64)
    offer_pos[offer_order] = np.arange(m)

    h = hh_idx[ii]
    # Sort: household, EV desc, offer id, account id (last key in lexsort is primary).
    order = np.lexsort((acc_order[ii], offer_pos[jj], -ev[ii, jj], h))
    ii, jj, h = ii[order], jj[order], h[order]
    starts = np.r_[0, np.flatnonzero(np.diff(h)) + 1]
    counts = np.diff(np.r_[starts, len(h)])
    pos_in_hh = np.arange(len(h)) - np.repeat(starts, counts)

    caps = config.caps
    acc_promo_left = np.maximum(caps.promo_per_account - account_promo_used.astype(np.int64), 0)
    hh_used = np.zeros(n_hh, dtype=np.int64)
    np.maximum.at(hh_used, hh_idx, household_promo_used.astype(np.int64))
    hh_promo_left = np.maximum(caps.promo_per_household - hh_used, 0)
    acc_count = np.zeros(n, dtype=np.int64)
    hh_has = np.zeros((n_hh, m), dtype=bool)
    hh_owner = np.full((n_hh, m), -1, dtype=np.int64)

    by_round = np.argsort(pos_in_hh, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(pos_in_hh))]
    for r in range(len(bounds) - 1):
        sel = by_round[bounds[r]:bounds[r + 1]]  # at most one pair per household
        a, o, g = ii[sel], jj[sel], h[sel]
        promo = offers.promotional[o]
        full = acc_count[a] >= k
        no_hh_promo = ~full & promo & (hh_promo_left[g] <= 0)
        no_acc_promo = ~full & ~no_hh_promo & promo & (acc_promo_left[a] <= 0)
        hits = hh_has[g] & conflict[o]  # (len, m)
        clash = ~full & ~no_hh_promo & ~no_acc_promo & hits.any(axis=1)
        keep = ~(full | no_hh_promo | no_acc_promo | clash)
        code = np.select([full, no_hh_promo, no_acc_promo, clash], [SEL_TOP_K, HH_ONE_PROMO, SEL_ACCOUNT_PROMO,
                                                                     HH_CONFLICT], KEPT)
        status[a, o] = code
        if clash.any():
            jc = hits[clash].argmax(axis=1)
            blk_o[a[clash], o[clash]] = jc
            blk_a[a[clash], o[clash]] = hh_owner[g[clash], jc]
        ak, ok_, gk = a[keep], o[keep], g[keep]
        acc_count[ak] += 1
        rank[ak, ok_] = acc_count[ak]
        pk = offers.promotional[ok_]
        hh_promo_left[gk[pk]] -= 1
        acc_promo_left[ak[pk]] -= 1
        hh_has[gk, ok_] = True
        hh_owner[gk, ok_] = ak
    return Selection(status, rank, blk_o, blk_a)


def _select_small(ii, jj, ev, household, account_key, offers, config, account_promo_used, household_promo_used,
                  k, conflict, status, rank, blk_o, blk_a) -> None:
    """The greedy household step as a scalar loop, filling the output arrays in place.

    Same order and decisions as the vectorized rounds of :func:`select_offers` (households are
    independent, so walking them one after another equals walking them in lock step).
    """
    hh = [str(h) for h in household.tolist()]
    acc = [str(a) for a in account_key.tolist()]
    oid = [str(o) for o in offers.ids.tolist()]
    promotional = offers.promotional.tolist()
    caps = config.caps
    hh_used: dict[str, int] = {}
    for a, g in enumerate(hh):
        hh_used[g] = max(hh_used.get(g, 0), int(household_promo_used[a]))
    hh_left = {g: max(caps.promo_per_household - u, 0) for g, u in hh_used.items()}
    acc_left: dict[int, int] = {}
    acc_count: dict[int, int] = {}
    owner: dict[str, dict[int, int]] = {}  # household -> kept offer -> account holding it
    pairs = sorted(zip(ii.tolist(), jj.tolist(), strict=True),
                   key=lambda p: (hh[p[0]], -float(ev[p[0], p[1]]), oid[p[1]], acc[p[0]]))
    for a, o in pairs:
        g = hh[a]
        promo = promotional[o]
        if acc_count.get(a, 0) >= k:
            status[a, o] = SEL_TOP_K
            continue
        if promo and hh_left[g] <= 0:
            status[a, o] = HH_ONE_PROMO
            continue
        left = acc_left.setdefault(a, max(caps.promo_per_account - int(account_promo_used[a]), 0))
        if promo and left <= 0:
            status[a, o] = SEL_ACCOUNT_PROMO
            continue
        kept = owner.setdefault(g, {})
        clash = [b for b in kept if conflict[o, b]]
        if clash:
            b = min(clash)
            status[a, o] = HH_CONFLICT
            blk_o[a, o] = b
            blk_a[a, o] = kept[b]
            continue
        status[a, o] = KEPT
        acc_count[a] = acc_count.get(a, 0) + 1
        rank[a, o] = acc_count[a]
        if promo:
            hh_left[g] -= 1
            acc_left[a] = left - 1
        kept[o] = a
