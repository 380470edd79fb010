"""Batch next-best-offer ranking: rules -> value -> household selection -> decisions.

:func:`rank_batch` is the one entry point the CLI, the service and notebooks share. It is pure
(frames in, frame out) and vectorized: rules are accounts x offers matrices, value parts are array
arithmetic, and the household step is a greedy pass vectorized across households.

The output is long: one row per account x catalog offer, so an account's returned offers and its
suppressed offers together are always exactly the catalog — the audit trail monitoring reads.
``selected`` rows carry a rank, a channel, the value parts, the message and the reasons;
suppressed rows carry the layer and rule that removed them, its plain-words reason and every other
rule that would have removed them too. :func:`decisions_from_frame` turns it into typed
:class:`~telco_nbo.nbo.schemas.AccountDecision` objects.

Note on monotonicity: adding a rule never adds an offer to the set that passes the rules and the
value floor. The two selection steps (top-k, one promotional offer per household) pick the best of
that set, so when a new rule removes the best offer the next best can take its place — that is
what they are for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from telco_nbo.data.schema import CHANNELS
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo import arbitration as arb
from telco_nbo.nbo.catalog import Catalog, load_catalog
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rules import (
    FEATURES_TABLE,
    Rule,
    RuleContext,
    TimingRule,
    channel_available,
    evaluate_rules,
)
from telco_nbo.nbo.schemas import AccountDecision, RankedOffer, SuppressedOffer, ValueBreakdown
from telco_nbo.nbo.scores import Scores, align_scores
from telco_nbo.nbo.signals import NeedSignal, default_signals, need_reasons

VALUE_COLUMNS = (
    "propensity", "margin_months", "acceptance_value", "uplift", "retention_value",
    "kind_weight", "contact_cost", "expected_value",
)
OUTPUT_COLUMNS = (
    "account_id", "household_id", "as_of", "offer_id", "kind", "promotional", "selected", "rank",
    "channel", "churn_probability", "clv", *VALUE_COLUMNS, "layer", "rule_id", "reason",
    "also_blocked_by", "product", "monthly_price", "term_months", "message", "reasons", "model_versions",
)
"""Columns of :func:`rank_batch`'s frame, in order."""

# Post-rule steps: id -> (layer, reason); ``{k}`` / ``{floor}`` are filled in.
_VALUE_STEPS = {
    "VAL_NO_CHANNEL": ("value", "no channel of this offer is open for this account"),
    "VAL_BELOW_FLOOR": ("value", "expected value is not above the configured floor ({floor})"),
}
# Selection codes -> (rule id, layer, reason); the conflict reason is built per row.
_SELECTION_STEPS = {
    arb.SEL_TOP_K: ("SEL_TOP_K", "selection", "ranked below the top {k} offers of this account"),
    arb.HH_ONE_PROMO: ("HH_ONE_PROMO", "household",
                       "the household already gets a promotional offer of higher value in this window"),
    arb.SEL_ACCOUNT_PROMO: ("SEL_ACCOUNT_PROMO", "selection",
                            "the account already gets its promotional offer for this window"),
    arb.HH_CONFLICT: ("HH_CONFLICT", "household", ""),
}


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ConfigError(f"top_k must be a positive integer or None, got {top_k!r}")


def rank_batch(
    features: pd.DataFrame,
    scores: Scores,
    catalog: Catalog | None = None,
    config: NboConfig | None = None,
    top_k: int | None = 3,
    *,
    rules: Sequence[Rule] | None = None,
    timing_rule: TimingRule | None = None,
    as_of: dt.date | str | pd.Timestamp | None = None,
    signals: list[NeedSignal] | None = None,
) -> pd.DataFrame:
    """Rank offers for every account of a feature frame.

    Args:
        features: Account feature frame (the feature contract; one row per account).
        scores: Model scores for those accounts (see :class:`~telco_nbo.nbo.scores.Scores`).
        catalog: Offer catalog; the built-in one if ``None``.
        config: Policy config; defaults if ``None``.
        top_k: Offers returned per account at most; ``None`` for every offer that survives.
        rules: Rule set; :func:`~telco_nbo.nbo.rules.default_rules` if ``None``.
        timing_rule: Optional A/B-derived timing rule (``arm_for(segment)``).
        as_of: The date the features describe (recorded on every row).
        signals: Need signals for the reasons; the built-in ones if ``None``.

    Returns:
        One row per account x offer with :data:`OUTPUT_COLUMNS`, sorted by account id, then
        returned offers by rank, then suppressed offers by offer id.

    Raises:
        DataValidationError: Features or scores break their contract, or a pair that passes the
            rules has no propensity score.
        ConfigError: Bad ``top_k``, rule set, timing arm or conflict table.
    """
    _check_top_k(top_k)
    catalog = catalog or load_catalog()
    config = config or NboConfig()
    evaluation = evaluate_rules(features, catalog, config, rules, timing_rule)  # validates features
    feats = features.reset_index(drop=True)
    ctx = RuleContext(feats, arb.OfferTable.from_catalog(catalog), config, timing_rule)
    offers = ctx.offers
    n, m = ctx.n, len(offers)
    account_ids = feats["account_id"].astype(str).to_numpy()
    aligned = align_scores(scores, account_ids, offers.ids)

    passed = evaluation.passed
    unscored = passed & np.isnan(aligned.propensity)
    if unscored.any():
        i, j = np.nonzero(unscored)
        pairs = [(account_ids[a], offers.ids[o]) for a, o in zip(i[:5], j[:5], strict=True)]
        raise DataValidationError("scores.offers", [f"no propensity for {int(unscored.sum())} account x offer pairs "
                                                     f"that pass the rules, e.g. {pairs}"])

    channel = arb.choose_channels(
        ctx.col("account_channel_preference").astype(str), channel_available(ctx), offers, config
    )
    parts = arb.value_parts(aligned.propensity, aligned.churn, aligned.clv, aligned.retention_uplift,
                            aligned.offer_uplift, channel, offers, config)
    ev = parts.expected_value
    no_channel = passed & (channel < 0)
    below = passed & ~no_channel & ~(ev > config.min_expected_value)
    candidate = passed & ~no_channel & ~below
    selection = arb.select_offers(
        candidate, np.where(candidate, ev, 0.0), feats["household_id"].astype(str).to_numpy(), account_ids,
        offers, config, ctx.col("account_promo_contacts_30d"), ctx.col("household_promo_contacts_30d"), top_k,
    )
    selected = selection.status == arb.KEPT

    # ---- suppression columns -------------------------------------------------------------------
    rule_ids = np.array([r.rule_id for r in evaluation.rules] + [""], dtype=object)
    rule_layers = np.array([r.layer for r in evaluation.rules] + [""], dtype=object)
    first = evaluation.first_rule()  # -1 -> "" via the sentinel
    layer = rule_layers[first].astype(object)
    rule_id = rule_ids[first].astype(object)
    reason = np.empty((n, m), dtype=object)
    blocked_rows, blocked_cols = np.nonzero(first >= 0)
    reason[blocked_rows, blocked_cols] = evaluation.reasons[first[blocked_rows, blocked_cols], blocked_cols]
    also = _also_blocked(evaluation.blocked, rule_ids[:-1], first)

    for mask, key in ((no_channel, "VAL_NO_CHANNEL"), (below, "VAL_BELOW_FLOOR")):
        lay, text = _VALUE_STEPS[key]
        layer[mask], rule_id[mask] = lay, key
        reason[mask] = text.format(floor=config.min_expected_value)
    for code, (rid, lay, text) in _SELECTION_STEPS.items():
        mask = selection.status == code
        if not mask.any():
            continue
        layer[mask], rule_id[mask] = lay, rid
        reason[mask] = text.format(k=top_k)
    if (selection.status == arb.HH_CONFLICT).any():
        _, why = arb.conflict_matrix(offers, config)
        a, o = np.nonzero(selection.status == arb.HH_CONFLICT)
        bo, ba = selection.blocker_offer[a, o], selection.blocker_account[a, o]
        reason[a, o] = [
            f"{why[oo, b]}: the household already gets {offers.ids[b]}"
            + ("" if acc == aa else f" (account {account_ids[acc]})")
            for aa, oo, b, acc in zip(a, o, bo, ba, strict=True)
        ]
    layer[selected] = None
    rule_id[selected] = None
    reason[selected] = None

    # ---- long frame ----------------------------------------------------------------------------
    # Row order: account id, then returned offers by rank, then suppressed offers by offer id.
    # Sort keys are integer positions so the permutation is computed once, on small arrays.
    acc_pos = np.empty(n, dtype=np.int64)
    acc_pos[np.argsort(account_ids, kind="stable")] = np.arange(n)
    off_pos = np.empty(m, dtype=np.int64)
    off_pos[np.argsort(offers.ids.astype(str), kind="stable")] = np.arange(m)
    rank_key = np.where(selected, selection.rank, m + 1 + off_pos[None, :])
    order = np.lexsort((rank_key.ravel(), np.repeat(acc_pos, m)))
    acc_idx = np.repeat(np.arange(n), m)[order]
    off_idx = np.tile(np.arange(m), n)[order]
    sel = selected.ravel()[order]
    scored = (first < 0).ravel()[order]  # value parts only where the rules let the offer through
    chan = np.where(sel, channel.ravel()[order], -1)
    channel_names = np.array(list(CHANNELS) + [None], dtype=object)
    product = np.array([o.product for o in offers.offers], dtype=object)
    price = np.array([o.monthly_price for o in offers.offers], dtype=float)
    term = np.array([o.term_months for o in offers.offers], dtype=np.int64)
    message = np.array([o.render_message() for o in offers.offers], dtype=object)
    as_of_ts = np.datetime64("NaT", "ns") if as_of is None else pd.Timestamp(as_of).normalize().to_datetime64()
    rank_vals = pd.array(selection.rank.ravel()[order], dtype="Int64")
    rank_vals[~sel] = pd.NA
    cols: dict[str, object] = {
        "account_id": account_ids[acc_idx],
        "household_id": feats["household_id"].astype(str).to_numpy()[acc_idx],
        "as_of": np.full(n * m, as_of_ts, dtype="datetime64[ns]"),
        "offer_id": offers.ids[off_idx],
        "kind": offers.kind[off_idx],
        "promotional": offers.promotional[off_idx],
        "selected": sel,
        "rank": rank_vals,
        "channel": channel_names[chan],
        "churn_probability": aligned.churn[acc_idx],
        "clv": aligned.clv[acc_idx],
    }
    for col in VALUE_COLUMNS:
        vals = aligned.propensity if col == "propensity" else getattr(parts, col)
        cols[col] = np.where(scored, np.asarray(vals, dtype=float).ravel()[order], np.nan)
    cols["layer"] = layer.ravel()[order]
    cols["rule_id"] = rule_id.ravel()[order]
    cols["reason"] = reason.ravel()[order]
    cols["also_blocked_by"] = also.ravel()[order]
    cols["product"] = product[off_idx]
    cols["monthly_price"] = price[off_idx]
    cols["term_months"] = term[off_idx]
    cols["message"] = message[off_idx]
    cols["reasons"] = _reasons(sel, acc_idx, off_idx, cols, feats, offers, aligned, signals)
    cols["model_versions"] = np.full(n * m, json.dumps(dict(sorted(aligned.model_versions.items()))), dtype=object)
    return pd.DataFrame(cols, columns=list(OUTPUT_COLUMNS))


def _also_blocked(blocked: np.ndarray, rule_ids: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Comma-joined ids of every rule but the first that removes each pair ('' if none)."""
    r, n, m = blocked.shape
    out = np.full((n, m), "", dtype=object)
    multi = blocked.sum(axis=0) > 1 if r else np.zeros((n, m), dtype=bool)
    if not multi.any():
        return out
    a, o = np.nonzero(multi)
    sets = blocked[:, a, o]  # (r, k)
    sets[first[a, o], np.arange(len(a))] = False  # the first rule is reported on its own
    if r <= 62:
        # Each pair's set of other rules as a bit mask, so equal sets share one joined string.
        keys = (sets.astype(np.int64) << np.arange(r, dtype=np.int64)[:, None]).sum(axis=0)
        uniq, inverse = np.unique(keys, return_inverse=True)
        texts = np.array([",".join(rule_ids[b] for b in range(r) if (int(u) >> b) & 1) for u in uniq], dtype=object)
        out[a, o] = texts[inverse]
    else:  # pragma: no cover - more rules than bits: join per pair
        out[a, o] = [",".join(rule_ids[np.flatnonzero(sets[:, k])]) for k in range(len(a))]
    return out


def _reasons(sel: np.ndarray, acc_idx: np.ndarray, off_idx: np.ndarray, cols: dict, feats: pd.DataFrame,
             offers: arb.OfferTable, aligned, signals: list[NeedSignal] | None) -> np.ndarray:
    """Need signals then model reason codes for the returned rows; None on suppressed rows."""
    # Suppressed rows say why in 'reason'; 'reasons' (why this offer) is for returned ones.
    reasons = np.full(len(sel), None, dtype=object)
    rows_sel = np.flatnonzero(sel)
    if len(rows_sel) == 0:
        return reasons
    signals = default_signals() if signals is None else signals
    wanted = sorted({c for s in signals for c in s.columns} & set(feats.columns))
    rows = feats.iloc[acc_idx[rows_sel]][wanted].reset_index(drop=True)
    rows["offer_id"] = offers.ids[off_idx[rows_sel]]
    rows["kind"] = offers.kind[off_idx[rows_sel]]
    rows["churn_probability"] = cols["churn_probability"][rows_sel]
    rows["uplift"] = cols["uplift"][rows_sel]
    texts = need_reasons(rows, signals).to_numpy()
    if aligned.reasons:
        for k, (a, oid) in enumerate(zip(acc_idx[rows_sel], rows["offer_id"].to_numpy(), strict=True)):
            extra = aligned.reasons.get(int(a))
            if extra:
                texts[k] = list(texts[k]) + [r for o, r in extra if o is None or o == oid]
    reasons[rows_sel] = texts
    return reasons


def decisions_from_frame(frame: pd.DataFrame) -> list[AccountDecision]:
    """Turn :func:`rank_batch`'s frame into typed decisions (one per account, frame order).

    Args:
        frame: The ranking frame (or a subset of its accounts, all rows of each).

    Returns:
        The decisions.

    Raises:
        DataValidationError: Columns are missing.
    """
    missing = [c for c in OUTPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError("ranking", [f"missing columns: {missing}"])
    decisions = []
    for account_id, g in frame.groupby("account_id", sort=False):
        first = g.iloc[0]
        offers, suppressed = [], []
        for row in g.itertuples(index=False):
            if row.selected:
                value = ValueBreakdown(
                    propensity=row.propensity, margin_months=row.margin_months,
                    acceptance_value=row.acceptance_value, uplift=row.uplift, clv=row.clv,
                    retention_value=row.retention_value, kind_weight=row.kind_weight,
                    contact_cost=row.contact_cost, expected_value=row.expected_value,
                )
                offers.append(RankedOffer(
                    rank=int(row.rank), offer_id=row.offer_id, kind=row.kind, product=row.product,
                    promotional=bool(row.promotional), channel=row.channel, score=row.propensity,
                    expected_value=row.expected_value, value=value, monthly_price=row.monthly_price,
                    term_months=int(row.term_months), message=row.message, reasons=list(row.reasons),
                ))
            else:
                suppressed.append(SuppressedOffer(
                    offer_id=row.offer_id, layer=row.layer, rule_id=row.rule_id, reason=row.reason,
                    also_blocked_by=[x for x in str(row.also_blocked_by or "").split(",") if x],
                ))
        as_of = first["as_of"]
        decisions.append(AccountDecision(
            account_id=str(account_id), household_id=str(first["household_id"]),
            as_of=None if pd.isna(as_of) else pd.Timestamp(as_of).date(),
            churn_probability=float(first["churn_probability"]), clv=float(first["clv"]),
            offers=sorted(offers, key=lambda o: o.rank), suppressed=suppressed,
            model_versions=json.loads(first["model_versions"]),
        ))
    return decisions


def rank_accounts(
    features: pd.DataFrame,
    scores: Scores,
    catalog: Catalog | None = None,
    config: NboConfig | None = None,
    top_k: int | None = 3,
    **kwargs,
) -> list[AccountDecision]:
    """Rank and return typed decisions (for the service and notebooks; same arguments as rank_batch)."""
    return decisions_from_frame(rank_batch(features, scores, catalog, config, top_k, **kwargs))


__all__ = ["rank_batch", "rank_accounts", "decisions_from_frame", "OUTPUT_COLUMNS", "FEATURES_TABLE"]
