"""Value a decision table: truth, fair baselines and off-policy estimates in one typed result.

:func:`evaluate_decisions` is what ``telco-nbo evaluate`` runs (pure: tables and frames in, a
:class:`PolicyEvaluation` out); :func:`~telco_nbo.evaluation.report.to_html` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError
from telco_nbo.evaluation.baselines import baselines, paired_difference
from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS, Economics
from telco_nbo.evaluation.ope import NONE, logged_outcomes, ope_estimates, outcome_model
from telco_nbo.evaluation.value import TRUTH_TABLE, normalize_decisions, true_value


@dataclass(frozen=True)
class PolicyEvaluation:
    """Everything ``telco-nbo evaluate`` reports (``to_dict`` is ``policy_value.json``)."""

    as_of: str
    active_accounts: int
    contacts: int
    true_value: dict | None
    unknown_decisions: int
    baselines: dict | None
    differences: dict | None
    share_of_oracle: float | None
    ope: dict | None
    ope_note: str
    notes: list[str] = field(default_factory=list)
    rules: dict | None = None
    predicted_vs_true: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "as_of": self.as_of, "active_accounts": self.active_accounts, "contacts": self.contacts,
            "true_value": self.true_value, "unknown_decisions": self.unknown_decisions,
            "baselines": self.baselines, "differences": self.differences, "share_of_oracle": self.share_of_oracle,
            "ope": self.ope, "ope_note": self.ope_note, "notes": list(self.notes),
            "rules": self.rules, "predicted_vs_true": self.predicted_vs_true,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyEvaluation:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d.get(k) for k in ("as_of", "active_accounts", "contacts", "true_value", "unknown_decisions",
                                             "baselines", "differences", "share_of_oracle", "ope", "ope_note")},
                   notes=list(d.get("notes") or []), rules=d.get("rules"),
                   predicted_vs_true=d.get("predicted_vs_true"))


def _active_accounts(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.Index:
    acc = tables["accounts"]
    ok = (acc["start_date"] <= as_of) & (acc["end_date"].isna() | (acc["end_date"] > as_of))
    return pd.Index(acc.loc[ok, "account_id"].astype(str))


def rule_values(ranking: pd.DataFrame, offer_effects: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """What each rule and step removed, as the policy estimated it and as the truth knows it.

    Each suppressed (account, offer) pair counts under the first rule or step that removed it:
    ``estimated`` sums the ranking's ``value_removed``; ``true`` sums the pair's true value on its
    best channel, floored at 0 (the value an oracle allowed to ignore that rule alone could have
    taken from the pair; a household or budget step would still have kept one offer).

    Args:
        ranking: A ``rank`` output with ``rule_id``, ``layer`` and ``value_removed``.
        offer_effects: ``truth/offer_effects``.

    Returns:
        ``rule_id -> {layer, offers, estimated, true}``, most true value first.
    """
    if not {"rule_id", "value_removed", "selected"} <= set(ranking.columns):
        return {}
    sup = ranking.loc[~ranking["selected"].fillna(False).astype(bool) & ranking["rule_id"].notna(),
                      ["account_id", "offer_id", "rule_id", "layer", "value_removed"]]
    best = offer_effects.groupby(["account_id", "offer_id"], sort=False, observed=True)["true_value"].max().clip(lower=0.0)
    key = pd.MultiIndex.from_arrays([sup["account_id"].astype(str), sup["offer_id"].astype(str)])
    best.index = pd.MultiIndex.from_arrays([best.index.get_level_values(0).astype(str),
                                            best.index.get_level_values(1).astype(str)])
    sup = sup.assign(true=best.reindex(key).fillna(0.0).to_numpy())
    g = sup.groupby("rule_id").agg(layer=("layer", "first"), offers=("true", "size"),
                                   estimated=("value_removed", "sum"), true=("true", "sum"))
    g = g.sort_values("true", ascending=False)
    return {str(k): {"layer": str(r["layer"]), "offers": int(r["offers"]), "estimated": float(r["estimated"]),
                     "true": float(r["true"])} for k, r in g.iterrows()}


def predicted_vs_true(ranking: pd.DataFrame, offer_effects: pd.DataFrame) -> dict[str, Any]:
    """On the accounts the policy contacts: its predicted value and effect against the truth.

    Returns:
        ``contacts``, ``mean_predicted_value`` / ``mean_true_value`` (per contact) and their
        ``value_ratio``; for contacts whose value counts an effect on churn (``uplift`` != 0),
        ``effect_contacts``, ``mean_predicted_effect`` (the churn probability the offer removes)
        and ``mean_true_effect`` (``-delta_churn`` on the chosen channel) and ``effect_ratio``; and
        over every contact, ``mean_predicted_effect_all`` / ``mean_true_effect_all`` (an offer
        valued without an effect predicts none: what the policy leaves uncounted shows here).
    """
    sel = ranking["selected"].fillna(False).astype(bool) & (pd.to_numeric(ranking["rank"], errors="coerce") == 1)
    c = ranking.loc[sel, ["account_id", "offer_id", "channel", "expected_value", "uplift"]].astype(
        {"account_id": str, "offer_id": str, "channel": str})
    t = offer_effects[["account_id", "offer_id", "channel", "true_value", "delta_churn"]].astype(
        {"account_id": str, "offer_id": str, "channel": str})
    m = c.merge(t, on=["account_id", "offer_id", "channel"], how="inner")
    out: dict[str, Any] = {"contacts": int(len(m))}
    if len(m):
        pv, tv = float(m["expected_value"].mean()), float(m["true_value"].mean())
        out.update(mean_predicted_value=pv, mean_true_value=tv, value_ratio=pv / tv if tv else None,
                   mean_predicted_effect_all=float(m["uplift"].fillna(0.0).mean()),
                   mean_true_effect_all=float(-m["delta_churn"].mean()))
    eff = m[m["uplift"].fillna(0.0) != 0.0]
    out["effect_contacts"] = int(len(eff))
    if len(eff):
        pe, te = float(eff["uplift"].mean()), float(-eff["delta_churn"].mean())
        out.update(mean_predicted_effect=pe, mean_true_effect=te, effect_ratio=pe / te if te else None)
    return out


def evaluate_decisions(tables: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame] | None,
                       decisions: pd.DataFrame, as_of: str | pd.Timestamp, *, ranking: pd.DataFrame | None = None,
                       economics: Economics = DEFAULT_ECONOMICS, retention_offer: str | None = None,
                       promo_per_household: int = 1, n_resamples: int = 1000, seed: int = 0) -> PolicyEvaluation:
    """Value a decision table on the truth (when the folder has one) and on the logs.

    Args:
        tables: The data folder's tables.
        truth: Its truth frames (``None`` or without ``offer_effects`` for real data).
        decisions: The decision table (a ranking is reduced to its first choices).
        as_of: The date the decisions were made at.
        ranking: The ``rank`` output the decisions came from, for the baselines' rules and
            predicted churn (optional).
        economics: Valuation constants for the logged rewards.
        retention_offer: The offer the top-churn baseline sends; ``None`` for the built-in
            catalog's retention offer with its own experiment evidence.
        promo_per_household: The household promotional cap the baselines keep (with a ranking).
        n_resamples: Bootstrap resamples.
        seed: Seed of bootstraps and cross-fitting.

    Returns:
        The :class:`PolicyEvaluation`.

    Raises:
        DataValidationError: A decision the truth does not know, a malformed table, or a
            decision for an account that is not active at ``as_of`` (folders without truth).
    """
    as_of = pd.Timestamp(as_of)
    d = normalize_decisions(decisions)
    active = _active_accounts(tables, as_of)
    notes: list[str] = []
    oe = (truth or {}).get(TRUTH_TABLE)
    tv = base = diffs = share = None
    if oe is not None:
        pv = true_value(d, oe, n_resamples=n_resamples, seed=seed)
        tv = pv.to_dict()
        acc = tables["accounts"]
        household_of = pd.Series(acc["household_id"].astype(str).to_numpy(), index=acc["account_id"].astype(str))
        offers = tables["offers"]
        promotional = pd.Series((offers["kind"] != "service_recovery").to_numpy(), index=offers["offer_id"].astype(str))
        base_obj = baselines(oe, truth["accounts"], len(d), ranking=ranking, retention_offer=retention_offer,
                             household_of=household_of, promotional=promotional,
                             promo_per_household=promo_per_household, n_resamples=n_resamples, seed=seed)
        base = base_obj.to_dict()
        pol = pd.Series(pv.rows["true_value"].to_numpy(), index=pv.rows["account_id"].astype(str).to_numpy())
        n = pv.accounts
        diffs = {}
        for name in ("oracle", "top_churn"):
            diff, ci = paired_difference(pol, base_obj.per_account[name], n, n_resamples=n_resamples, seed=seed)
            diffs[f"policy_minus_{name}"] = {"difference": diff, "ci95": ci}
        diff, ci = paired_difference(pol, base_obj.per_account["top_churn_at_policy_budget"], n,
                                     n_resamples=n_resamples, seed=seed)
        diffs["policy_minus_top_churn_at_policy_budget"] = {"difference": diff, "ci95": ci}
        # Random, exact expectation: every allowed account's mean offer value, times budget / accounts.
        rnd = base_obj.per_account["random_mean_per_account"]
        frac = min(len(d), len(rnd)) / len(rnd) if len(rnd) else 0.0
        diff, ci = paired_difference(pol, rnd * frac, n, n_resamples=n_resamples, seed=seed)
        diffs["policy_minus_random_at_policy_budget"] = {"difference": diff, "ci95": ci}
        oracle_total = base["oracle"]["total"]
        share = tv["total"] / oracle_total if oracle_total > 0 else None
        unknown = 0
    else:
        unknown = int(len(d))
        notes.append("This folder has no truth/offer_effects (real or imported data): only the off-policy "
                     "estimates below value the decisions.")
        not_active = ~d["account_id"].astype(str).isin(active)
        if not_active.any():
            raise DataValidationError("decisions", [
                f"{int(not_active.sum())} decisions name accounts not active at {as_of.date()}: "
                + ", ".join(map(repr, d.loc[not_active, "account_id"].astype(str).head(5)))])
    logs = logged_outcomes(tables, as_of, economics=economics)
    ope = None
    if len(logs) == 0:
        ope_note = (f"no logged randomized contact after {as_of.date()} (contacts with policy_id and propensity): "
                    "no off-policy estimate")
    else:
        target_of = pd.Series(d["offer_id"].astype(str).to_numpy(), index=d["account_id"].astype(str).to_numpy())
        target = target_of.reindex(logs["account_id"].astype(str)).fillna(NONE).to_numpy(object)
        churn = None
        if ranking is not None and "churn_probability" in ranking.columns:
            cp = ranking.groupby(ranking["account_id"].astype(str))["churn_probability"].first()
            churn = cp.reindex(logs["account_id"].astype(str)).to_numpy(float)
            if np.isnan(churn).any():
                churn = None
        actions = sorted(set(logs["action"]) | set(target))
        q = outcome_model(logs, actions, tables["offers"], churn_probability=churn, economics=economics, seed=seed)
        res = ope_estimates(logs["action"].to_numpy(object), logs["propensity"].to_numpy(float),
                            logs["reward"].to_numpy(float), target, q=q, scale=float(len(active)),
                            n_resamples=n_resamples, seed=seed)
        ope = res.to_dict()
        ope_note = (f"{len(logs):,} logged randomized choices after {as_of.date()} "
                    f"({', '.join(sorted(set(map(str, logs['policy_id']))))}); the policy's offer matches the "
                    f"logged one on {res.dr.matched:,}; estimates are totals over {len(active):,} active accounts. "
                    "The logs chose offers, not channels: a decision on another channel is estimated as if on "
                    "the logged one.")
    rules = pvt = None
    if oe is not None and ranking is not None and {"selected", "rank", "channel"} <= set(ranking.columns):
        rules = rule_values(ranking, oe) or None
        if {"expected_value", "uplift"} <= set(ranking.columns):
            pvt = predicted_vs_true(ranking, oe)
    return PolicyEvaluation(as_of=str(as_of.date()), active_accounts=int(len(active)), contacts=int(len(d)),
                            true_value=tv, unknown_decisions=unknown, baselines=base, differences=diffs,
                            share_of_oracle=share, ope=ope, ope_note=ope_note, notes=notes, rules=rules,
                            predicted_vs_true=pvt)
