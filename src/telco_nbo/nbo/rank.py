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
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from telco_nbo.data.schema import CHANNELS
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo import arbitration as arb
from telco_nbo.nbo.capacity import apply_capacity
from telco_nbo.nbo.catalog import Catalog, load_catalog
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rules import (
    FEATURES_TABLE,
    Rule,
    RuleContext,
    TimingRule,
    as_columns,
    blocked_matrix,
    channel_available,
    check_rules,
    default_rules,
    rule_reasons,
    validate_features,
)
from telco_nbo.nbo.schemas import AccountDecision, RankedOffer, SuppressedOffer, ValueBreakdown
from telco_nbo.nbo.scores import AlignedScores, Scores, align_scores
from telco_nbo.nbo.signals import NeedSignal, default_signals, need_reasons_arrays, signal_offer_matrix

VALUE_COLUMNS = (
    "propensity", "margin_months", "acceptance_value", "uplift", "retention_value",
    "kind_weight", "contact_cost", "expected_value", "uplift_se", "decision_value",
)
OUTPUT_COLUMNS = (
    "account_id", "household_id", "as_of", "offer_id", "kind", "promotional", "selected", "rank",
    "channel", "churn_probability", "clv", *VALUE_COLUMNS, "layer", "rule_id", "reason",
    "also_blocked_by", "value_removed", "product", "monthly_price", "term_months", "message", "reasons", "model_versions",
)
"""Columns of :func:`rank_batch`'s frame, in order."""

# Post-rule steps: id -> (layer, reason); ``{k}`` / ``{floor}`` are filled in.
_VALUE_STEPS = {
    "VAL_NO_CHANNEL": ("value", "no channel of this offer is open for this account"),
    "VAL_BELOW_FLOOR": ("value", "expected value is not above the configured floor ({floor})"),
    "VAL_BELOW_BOUND": ("value", "the lower confidence bound of its value ({z} standard errors of its effect) "
                                 "is not above the configured margin ({floor})"),
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


@dataclass(frozen=True)
class Policy:
    """Catalog, config and rules compiled once into the vectors and matrices the ranking reads.

    Everything here depends on the offers only, never on accounts, so a long-running service builds
    it at start and each request only does the accounts x offers arithmetic.

    Attributes:
        catalog: The offer catalog.
        config: The policy config.
        rules: The rules, in reporting order.
        timing_rule: Optional A/B-derived timing rule.
        signals: Need signals for the reasons.
        offers: Catalog vectors.
        rule_reasons: ``(n_rules, m)`` reason texts.
        rule_ids: ``(n_rules + 1,)`` rule ids, last entry ``""`` (index -1 = no rule).
        rule_layers: Same for layers.
        conflict: ``(m, m)`` conflict matrix; ``conflict_why`` its texts.
        offer_pos: ``(m,)`` position of each offer in offer-id order.
        product, monthly_price, term_months, message: ``(m,)`` catalog columns.
        signal_offers: ``(n_signals, m)`` which need signal can explain which offer.
    """

    catalog: Catalog
    config: NboConfig
    rules: tuple[Rule, ...]
    timing_rule: TimingRule | None
    signals: list[NeedSignal]
    offers: arb.OfferTable
    rule_reasons: np.ndarray
    rule_ids: np.ndarray
    rule_layers: np.ndarray
    conflict: np.ndarray
    conflict_why: np.ndarray
    offer_pos: np.ndarray
    product: np.ndarray
    monthly_price: np.ndarray
    term_months: np.ndarray
    message: np.ndarray
    signal_offers: np.ndarray

    @classmethod
    def build(
        cls,
        catalog: Catalog | None = None,
        config: NboConfig | None = None,
        rules: Sequence[Rule] | None = None,
        timing_rule: TimingRule | None = None,
        signals: list[NeedSignal] | None = None,
    ) -> Policy:
        """Compile a policy (defaults: built-in catalog, default config, rules and signals).

        Raises:
            ConfigError: Duplicate rule ids, or a conflict naming an unknown offer.
        """
        catalog = catalog or load_catalog()
        config = config or NboConfig()
        rules_t = check_rules(default_rules() if rules is None else rules)
        offers = arb.OfferTable.from_catalog(catalog)
        # The catalog's conflicts (between named offers) and the config's (by kind) together.
        conflict, why = arb.conflict_matrix(
            offers, config.model_copy(update={"conflicts": config.household_conflicts(catalog)}))
        m = len(offers)
        pos = np.empty(m, dtype=np.int64)
        pos[np.argsort(offers.ids.astype(str), kind="stable")] = np.arange(m)
        signals = default_signals(catalog) if signals is None else signals
        return cls(
            catalog=catalog, config=config, rules=rules_t, timing_rule=timing_rule,
            signals=signals, offers=offers, signal_offers=signal_offer_matrix(signals, offers.ids, offers.kind),
            rule_reasons=rule_reasons(rules_t, offers),
            rule_ids=np.array([r.rule_id for r in rules_t] + [""], dtype=object),
            rule_layers=np.array([r.layer for r in rules_t] + [""], dtype=object),
            conflict=conflict, conflict_why=why, offer_pos=pos,
            product=np.array([o.product for o in offers.offers], dtype=object),
            monthly_price=np.array([o.monthly_price for o in offers.offers], dtype=float),
            term_months=np.array([o.term_months for o in offers.offers], dtype=np.int64),
            message=np.array([o.render_message() for o in offers.offers], dtype=object),
        )


@dataclass(frozen=True)
class RankCore:
    """The ranking of a batch as ``(n, m)`` arrays: what both output shapes are built from.

    Attributes:
        policy: The compiled policy.
        columns: The feature columns (name -> ``(n,)`` array).
        account_ids: ``(n,)`` account ids (str); ``household_ids`` likewise.
        aligned: Scores aligned to rows and catalog order.
        channel: ``(n, m)`` channel index (-1: none).
        parts: Expected value and its parts.
        selection: The household step's outcome.
        selected: ``(n, m)`` offers made.
        scored: ``(n, m)`` pairs that passed the rules (value parts are shown only for these).
        layer, rule_id, reason, also_blocked_by: ``(n, m)`` object arrays (None on selected pairs).
        top_k: As requested.
        prior_used: ``(n, m)`` pairs whose propensity is the catalog's ``acceptance_prior`` (no
            model scored the offer), or ``None`` if there are none.
        value_removed: ``(n, m)`` decision value a suppressed pair would have had (>= 0; its
            channel ignoring contact caps where none was open), NaN on offers made and where
            unscored: what the rule or step that removed it cost, as the policy estimates it.
    """

    policy: Policy
    columns: dict[str, np.ndarray]
    account_ids: np.ndarray
    household_ids: np.ndarray
    aligned: AlignedScores
    channel: np.ndarray
    parts: arb.ValueParts
    selection: arb.Selection
    selected: np.ndarray
    scored: np.ndarray
    layer: np.ndarray
    rule_id: np.ndarray
    reason: np.ndarray
    also_blocked_by: np.ndarray
    top_k: int | None
    prior_used: np.ndarray | None = None
    value_removed: np.ndarray | None = None


def rank_core(
    policy: Policy,
    columns: dict[str, np.ndarray],
    aligned: AlignedScores,
    top_k: int | None = 3,
    *,
    groups: np.ndarray | None = None,
) -> RankCore:
    """Rank already validated, aligned inputs: numpy only (the service's per-request path).

    Args:
        policy: The compiled policy.
        columns: Feature columns (name -> ``(n,)`` array), at least
            :data:`~telco_nbo.nbo.rules.REQUIRED_COLUMNS`, validated by the caller (see
            :func:`~telco_nbo.nbo.rules.validate_features` or the API's request schema).
        aligned: Scores aligned to the rows and the catalog order.
        top_k: Offers returned per account at most; ``None`` for every offer that survives.
        groups: ``(n,)`` keys of the household step (one promotional offer per household, no
            conflicting offers) if not the household ids. The service ranks several requests in
            one call and keys each request's households apart, so that requests batched together
            decide exactly as they would alone.

    Returns:
        The :class:`RankCore`.

    Raises:
        DataValidationError: A pair that passes the rules has no propensity score and its offer
            states no ``acceptance_prior``.
        ConfigError: Bad ``top_k`` or timing arm.
    """
    _check_top_k(top_k)
    config = policy.config
    offers = policy.offers
    ctx = RuleContext(columns, offers, config, policy.timing_rule)
    n, m = ctx.n, len(offers)
    account_ids = np.asarray(columns["account_id"]).astype(str).astype(object)
    household_ids = np.asarray(columns["household_id"]).astype(str).astype(object)
    blocked = blocked_matrix(ctx, policy.rules)
    r = len(policy.rules)
    if r:
        any_block = blocked.any(axis=0)
        passed = ~any_block
        first = np.where(any_block, blocked.argmax(axis=0), -1)
    else:
        passed = np.ones((n, m), dtype=bool)
        first = np.full((n, m), -1, dtype=np.int64)

    unscored = passed & np.isnan(aligned.propensity)
    prior_used = None
    if unscored.any():
        # An offer no model has scored (a new one) may carry the business's acceptance prior.
        aligned, prior_used = _with_acceptance_priors(aligned, policy)
        unscored = passed & np.isnan(aligned.propensity)
    if unscored.any():
        i, j = np.nonzero(unscored)
        pairs = [(account_ids[a], offers.ids[o]) for a, o in zip(i[:5], j[:5], strict=True)]
        raise DataValidationError("scores.offers", [f"no propensity for {int(unscored.sum())} account x offer pairs "
                                                     f"that pass the rules, e.g. {pairs}"])

    channel = arb.choose_channels(
        np.asarray(ctx.col("account_channel_preference")).astype(str), channel_available(ctx), offers, config
    )
    parts = arb.value_parts(aligned.propensity, aligned.churn, aligned.clv, aligned.retention_uplift,
                            aligned.offer_uplift, channel, offers, config, aligned.retention_uplift_se,
                            aligned.offer_uplift_se)
    ev = parts.decision  # the expected value, or its lower bound under risk: lcb
    no_channel = passed & (channel < 0)
    below = passed & ~no_channel & ~(ev > config.min_expected_value)
    candidate = passed & ~no_channel & ~below
    if groups is not None and len(groups) != n:
        raise ConfigError(f"groups has {len(groups)} keys for {n} accounts")
    selection = arb.select_offers(
        candidate, np.where(candidate, ev, 0.0), household_ids if groups is None else np.asarray(groups, dtype=object),
        account_ids, offers, config,
        ctx.col("account_promo_contacts_30d"), ctx.col("household_promo_contacts_30d"), top_k,
        conflict=policy.conflict,
    )
    selected = selection.status == arb.KEPT

    # ---- suppression columns -------------------------------------------------------------------
    layer = policy.rule_layers[first]
    rule_id = policy.rule_ids[first]
    reason = np.full((n, m), None, dtype=object)
    blocked_rows, blocked_cols = np.nonzero(first >= 0)
    reason[blocked_rows, blocked_cols] = policy.rule_reasons[first[blocked_rows, blocked_cols], blocked_cols]
    also = _also_blocked(blocked, policy.rule_ids[:-1], first)

    below_key = "VAL_BELOW_BOUND" if config.risk == "lcb" else "VAL_BELOW_FLOOR"
    for mask, key in ((no_channel, "VAL_NO_CHANNEL"), (below, below_key)):
        if not mask.any():
            continue
        lay, text = _VALUE_STEPS[key]
        layer[mask], rule_id[mask] = lay, key
        reason[mask] = text.format(floor=config.min_expected_value, z=config.lcb_z)
    for code, (rid, lay, text) in _SELECTION_STEPS.items():
        mask = selection.status == code
        if not mask.any():
            continue
        layer[mask], rule_id[mask] = lay, rid
        reason[mask] = text.format(k=top_k)
    if (selection.status == arb.HH_CONFLICT).any():
        a, o = np.nonzero(selection.status == arb.HH_CONFLICT)
        bo, ba = selection.blocker_offer[a, o], selection.blocker_account[a, o]
        reason[a, o] = [
            f"{policy.conflict_why[oo, b]}: the household already gets {offers.ids[b]}"
            + ("" if acc == aa else f" (account {account_ids[acc]})")
            for aa, oo, b, acc in zip(a, o, bo, ba, strict=True)
        ]
    layer[selected] = None
    rule_id[selected] = None
    reason[selected] = None
    removed = _value_removed(ctx, parts, channel, aligned, selected)
    return RankCore(policy, columns, account_ids, household_ids, aligned, channel, parts, selection, selected,
                    first < 0, layer, rule_id, reason, also, top_k, prior_used, removed)


def _value_removed(ctx: RuleContext, parts: arb.ValueParts, channel: np.ndarray, aligned: AlignedScores,
                   selected: np.ndarray) -> np.ndarray:
    """The decision value each suppressed pair would have had, floored at 0 (NaN where unknown or made).

    A pair a rule removed before a channel was open for it is valued on the channel it would get
    with every channel open: what the rule held back is the offer, not the contact cap.
    """
    config, offers = ctx.config, ctx.offers
    value = parts.decision
    if (channel < 0).any():
        open_channel = arb.choose_channels(np.asarray(ctx.col("account_channel_preference")).astype(str),
                                           np.ones((ctx.n, len(CHANNELS)), dtype=bool), offers, config)
        costs = np.array([config.contact_costs[c] for c in CHANNELS] + [np.nan])
        risk = 0.0 if parts.uplift_se is None else \
            config.lcb_z * parts.kind_weight * parts.uplift_se * np.abs(aligned.clv)[:, None]
        gross = parts.kind_weight * (parts.acceptance_value + parts.retention_value)
        no_cap_value = gross - costs[open_channel] - np.nan_to_num(risk, nan=0.0)
        value = np.where(channel >= 0, value, no_cap_value)
    out = np.maximum(value, 0.0)
    out[selected | np.isnan(aligned.propensity)] = np.nan
    return out


def _with_acceptance_priors(aligned: AlignedScores, policy: Policy) -> tuple[AlignedScores, np.ndarray | None]:
    """Fill unscored propensities of offers whose catalog entry states an ``acceptance_prior``.

    Returns:
        The scores (a copy when anything was filled) and the ``(n, m)`` mask of filled pairs
        (``None`` when nothing was).
    """
    prior = np.array([np.nan if o.acceptance_prior is None else o.acceptance_prior for o in policy.offers.offers])
    filled = np.isnan(aligned.propensity) & ~np.isnan(prior)[None, :]
    if not filled.any():
        return aligned, None
    return replace(aligned, propensity=np.where(filled, prior[None, :], aligned.propensity)), filled


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
    policy: Policy | None = None,
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
        policy: A compiled :class:`Policy` (wins over catalog / config / rules / timing_rule /
            signals; saves compiling it on every call).

    Returns:
        One row per account x offer with :data:`OUTPUT_COLUMNS`, sorted by account id, then
        returned offers by rank, then suppressed offers by offer id. With a campaign capacity in
        the config (``capacity``), the contacts are fitted to it (:mod:`telco_nbo.nbo.capacity`)
        and ``frame.attrs["capacity"]`` holds the step's report (limits, shadow prices, binding).

    Raises:
        DataValidationError: Features or scores break their contract, or a pair that passes the
            rules has no propensity score.
        ConfigError: Bad ``top_k``, rule set, timing arm or conflict table.
    """
    _check_top_k(top_k)
    policy = policy or Policy.build(catalog, config, rules, timing_rule, signals)
    validate_features(features)
    columns = as_columns(features)
    aligned = align_scores(scores, columns["account_id"].astype(str), policy.offers.ids)
    frame = core_frame(rank_core(policy, columns, aligned, top_k), as_of)
    if policy.config.capacity.limited:
        # A campaign's budget and channel capacities bind across accounts: solved over the batch.
        frame, report = apply_capacity(frame, policy.config.capacity)
        frame.attrs["capacity"] = report.to_dict()
    return frame


def core_frame(core: RankCore, as_of: dt.date | str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Turn a :class:`RankCore` into the long frame (one row per account x offer, see :func:`rank_batch`)."""
    policy, offers, aligned = core.policy, core.policy.offers, core.aligned
    n, m = core.selected.shape
    account_ids = core.account_ids
    # Row order: account id, then returned offers by rank, then suppressed offers by offer id.
    # Sort keys are integer positions so the permutation is computed once, on small arrays.
    acc_pos = np.empty(n, dtype=np.int64)
    acc_pos[np.argsort(account_ids.astype(str), kind="stable")] = np.arange(n)
    rank_key = np.where(core.selected, core.selection.rank, m + 1 + policy.offer_pos[None, :])
    order = np.lexsort((rank_key.ravel(), np.repeat(acc_pos, m)))
    acc_idx = order // m
    off_idx = order % m
    sel = core.selected.ravel()[order]
    scored = core.scored.ravel()[order]
    chan = np.where(sel, core.channel.ravel()[order], -1)
    channel_names = np.array(list(CHANNELS) + [None], dtype=object)
    as_of_ts = np.datetime64("NaT", "ns") if as_of is None else pd.Timestamp(as_of).normalize().to_datetime64()
    rank_vals = pd.array(core.selection.rank.ravel()[order], dtype="Int64")
    rank_vals[~sel] = pd.NA
    cols: dict[str, object] = {
        "account_id": account_ids[acc_idx],
        "household_id": core.household_ids[acc_idx],
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
        vals = _value_column(core, col)
        cols[col] = np.where(scored, np.asarray(vals, dtype=float).ravel()[order], np.nan)
    cols["layer"] = core.layer.ravel()[order]
    cols["rule_id"] = core.rule_id.ravel()[order]
    cols["reason"] = core.reason.ravel()[order]
    cols["also_blocked_by"] = core.also_blocked_by.ravel()[order]
    cols["value_removed"] = (np.full(n * m, np.nan) if core.value_removed is None
                             else core.value_removed.ravel()[order])
    cols["product"] = policy.product[off_idx]
    cols["monthly_price"] = policy.monthly_price[off_idx]
    cols["term_months"] = policy.term_months[off_idx]
    cols["message"] = policy.message[off_idx]
    reasons = np.full(n * m, None, dtype=object)
    rows_sel = np.flatnonzero(sel)
    reasons[rows_sel] = _reasons(core, acc_idx[rows_sel], off_idx[rows_sel])
    cols["reasons"] = reasons
    cols["model_versions"] = np.full(n * m, json.dumps(dict(sorted(aligned.model_versions.items()))), dtype=object)
    return pd.DataFrame(cols, columns=list(OUTPUT_COLUMNS))


def _value_column(core: RankCore, col: str) -> np.ndarray:
    """One ``(n, m)`` value column of the output (the risk columns filled in when risk-neutral)."""
    if col == "propensity":
        return core.aligned.propensity
    if col == "uplift_se":
        return np.zeros_like(core.parts.expected_value) if core.parts.uplift_se is None else core.parts.uplift_se
    if col == "decision_value":
        return core.parts.decision
    return getattr(core.parts, col)


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


def _reasons(core: RankCore, acc: np.ndarray, off: np.ndarray) -> list[list[str]]:
    """Need signals then model reason codes for returned pairs ``(acc[k], off[k])``."""
    # Suppressed rows say why in 'reason'; 'reasons' (why this offer) is for returned ones.
    if len(acc) == 0:
        return []
    policy = core.policy
    wanted = {c for s in policy.signals for c in s.columns} & set(core.columns)
    cols = {c: np.asarray(core.columns[c])[acc] for c in wanted}
    cols["churn_probability"] = core.aligned.churn[acc]
    cols["uplift"] = core.parts.uplift[acc, off]
    offer_ids = policy.offers.ids[off]
    texts = need_reasons_arrays(cols, offer_ids, policy.offers.kind[off], policy.signals,
                                policy.signal_offers[:, off])
    if core.aligned.reasons:
        for k, (a, oid) in enumerate(zip(acc.tolist(), offer_ids.tolist(), strict=True)):
            extra = core.aligned.reasons.get(int(a))
            if extra:
                texts[k] = texts[k] + [r for o, r in extra if o is None or o == oid]
    # The audit trail says when an offer meant to keep customers has no evidence of doing so.
    unproven = _unproven_retention(policy)[off]
    no_offer_uplift = np.isnan(core.aligned.offer_uplift[acc, off]) if core.aligned.offer_uplift.size else \
        np.ones(len(off), bool)
    for k in np.flatnonzero(unproven & no_offer_uplift):
        texts[k] = texts[k] + [UNPROVEN_REASON]
    # An offer valued on its own effect (e.g. from logged randomized contacts) says what it counted.
    for k in np.flatnonzero(~no_offer_uplift):
        u = float(core.aligned.offer_uplift[acc[k], off[k]])
        se = core.aligned.offer_uplift_se
        e = 0.0 if se is None or np.isnan(se[acc[k], off[k]]) else float(se[acc[k], off[k]])
        texts[k] = texts[k] + [OFFER_EFFECT_REASON.format(u=100 * u, e=100 * e) if (u != 0 or e != 0)
                               else NO_OFFER_EFFECT_REASON]
    if core.prior_used is not None:
        # Say so when the acceptance is a stated belief rather than a model's score.
        for k in np.flatnonzero(core.prior_used[acc, off]):
            texts[k] = texts[k] + [PRIOR_REASON.format(p=float(core.aligned.propensity[acc[k], off[k]]))]
    return texts


UNPROVEN_REASON = ("no randomized evidence of its effect on churn yet: valued on acceptance x margin only "
                   "(a candidate for exploration)")
"""Reason added to a retention or service-recovery offer whose effect on churn nobody measured."""

OFFER_EFFECT_REASON = "its own measured effect on churn: {u:+.1f} points of churn risk removed (standard error {e:.1f})"
"""Reason added to an offer valued on its own effect estimate (per offer, e.g. from logged randomized contacts)."""

NO_OFFER_EFFECT_REASON = ("its effect on churn was measured on randomized contacts and does not stand out from "
                          "noise: valued on acceptance x margin only")
"""Reason added to an offer whose measured effect on churn was shrunk to none."""

PRIOR_REASON = ("acceptance {p:.0%} is the catalog's prior for a new offer, not a model score (no model has "
                "seen it accepted or declined yet: a candidate for exploration)")
"""Reason added to an offer valued on its catalog ``acceptance_prior`` (no propensity score)."""


def _unproven_retention(policy: Policy) -> np.ndarray:
    """``(m,)``: retention / service-recovery offers without evidence from the uplift model's experiment."""
    exp = policy.config.uplift_experiment
    return np.array([o.kind in ("retention", "service_recovery") and exp not in o.effect_evidence
                     for o in policy.offers.offers], dtype=bool)


def core_decisions(core: RankCore, as_of: dt.date | str | pd.Timestamp | None = None) -> list[dict]:
    """Turn a :class:`RankCore` into one JSON-ready decision dict per account (row order).

    The dicts have the shape of :class:`~telco_nbo.nbo.schemas.AccountDecision` (validate with
    ``AccountDecision.model_validate``); building dicts rather than models keeps the per-request
    cost of the API low.
    """
    policy, offers, aligned, parts = core.policy, core.policy.offers, core.aligned, core.parts
    n, m = core.selected.shape
    as_of_s = None if as_of is None else pd.Timestamp(as_of).date().isoformat()
    versions = dict(sorted(aligned.model_versions.items()))
    sel_a, sel_o = np.nonzero(core.selected)
    texts = _reasons(core, sel_a, sel_o)
    reasons_of = {(int(a), int(o)): t for a, o, t in zip(sel_a.tolist(), sel_o.tolist(), texts, strict=True)}
    ids = offers.ids.tolist()
    kinds = offers.kind.tolist()
    promo = offers.promotional.tolist()
    prices = policy.monthly_price.tolist()
    terms = policy.term_months.tolist()
    products = policy.product.tolist()
    messages = policy.message.tolist()
    pos = policy.offer_pos.tolist()
    # Python lists of the (n, m) arrays, read once: a request has a few accounts, and indexing
    # numpy element by element would cost more than the values.
    prop = aligned.propensity.tolist()
    value_names = ("margin_months", "acceptance_value", "uplift", "retention_value", "kind_weight", "contact_cost",
                   "expected_value")
    vals = {k: getattr(parts, k).tolist() for k in value_names}
    se = None if parts.uplift_se is None else parts.uplift_se.tolist()
    decision = None if parts.decision_value is None else parts.decision_value.tolist()
    removed = None if core.value_removed is None else core.value_removed.tolist()
    rank = core.selection.rank.tolist()
    channel = core.channel.tolist()
    selected = core.selected.tolist()
    layer, rule_id, reason, also_by = (core.layer.tolist(), core.rule_id.tolist(), core.reason.tolist(),
                                       core.also_blocked_by.tolist())
    churn, clv = aligned.churn.tolist(), aligned.clv.tolist()
    out = []
    for i in range(n):
        offers_i, suppressed = [], []
        sel_i = selected[i]
        for j in sorted((j for j in range(m) if sel_i[j]), key=rank[i].__getitem__):
            value = {
                "propensity": float(prop[i][j]), "margin_months": float(vals["margin_months"][i][j]),
                "acceptance_value": float(vals["acceptance_value"][i][j]), "uplift": float(vals["uplift"][i][j]),
                "clv": float(clv[i]), "retention_value": float(vals["retention_value"][i][j]),
                "kind_weight": float(vals["kind_weight"][i][j]), "contact_cost": float(vals["contact_cost"][i][j]),
                "expected_value": float(vals["expected_value"][i][j]),
                "uplift_se": 0.0 if se is None else float(se[i][j]),
                "decision_value": float(vals["expected_value"][i][j] if decision is None else decision[i][j]),
            }
            offers_i.append({
                "rank": int(rank[i][j]), "offer_id": ids[j], "kind": kinds[j],
                "product": products[j], "promotional": promo[j], "channel": CHANNELS[int(channel[i][j])],
                "score": value["propensity"], "expected_value": value["expected_value"], "value": value,
                "monthly_price": prices[j], "term_months": terms[j], "message": messages[j],
                "reasons": reasons_of[(i, j)],
            })
        for j in sorted((j for j in range(m) if not sel_i[j]), key=pos.__getitem__):
            also = also_by[i][j]
            lost = None if removed is None else removed[i][j]
            suppressed.append({
                "offer_id": ids[j], "layer": layer[i][j], "rule_id": rule_id[i][j],
                "reason": reason[i][j], "also_blocked_by": [x for x in (also or "").split(",") if x],
                "value_removed": None if lost is None or lost != lost else float(lost),  # NaN -> None
            })
        out.append({
            "account_id": core.account_ids[i], "household_id": core.household_ids[i], "as_of": as_of_s,
            "churn_probability": float(churn[i]), "clv": float(clv[i]),
            "offers": offers_i, "suppressed": suppressed, "model_versions": versions,
        })
    return out


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
                    uplift_se=_optional(getattr(row, "uplift_se", None)),
                    decision_value=_optional(getattr(row, "decision_value", None)),
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
                    value_removed=_optional(getattr(row, "value_removed", None)),
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


def _optional(v: object) -> float | None:
    """A float, or ``None`` for a missing value (absent column, None, NaN)."""
    return None if v is None or pd.isna(v) else float(v)  # type: ignore[arg-type]


def rank_accounts(
    features: pd.DataFrame,
    scores: Scores,
    catalog: Catalog | None = None,
    config: NboConfig | None = None,
    top_k: int | None = 3,
    *,
    as_of: dt.date | str | pd.Timestamp | None = None,
    policy: Policy | None = None,
    **kwargs,
) -> list[AccountDecision]:
    """Rank and return typed decisions, in feature-row order (same arguments as :func:`rank_batch`).

    Each account is decided as the service decides it: a campaign capacity in the config (which
    binds across a whole batch) is not applied here; :func:`rank_batch` applies it.
    """
    _check_top_k(top_k)
    policy = policy or Policy.build(catalog, config, **kwargs)
    validate_features(features)
    columns = as_columns(features)
    aligned = align_scores(scores, columns["account_id"].astype(str), policy.offers.ids)
    core = rank_core(policy, columns, aligned, top_k)
    return [AccountDecision.model_validate(d) for d in core_decisions(core, as_of)]


__all__ = ["rank_batch", "rank_accounts", "rank_core", "core_frame", "core_decisions", "Policy", "RankCore",
           "decisions_from_frame", "OUTPUT_COLUMNS", "FEATURES_TABLE"]
