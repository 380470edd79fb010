"""Fair baselines for a policy: the oracle, top predicted churn, random and contact nobody.

Each baseline contacts accounts under the same rules as the policy -- the (account, offer) pairs
its ranking let through eligibility, applicability and suitability (a pair removed only by the
value floor or the household / top-k selection steps still counts as allowed) -- and is valued on
the same truth. Each is reported at its own best budget and at the policy's budget:

* **oracle**: every account's best allowed (offer, channel) by true value, contacted when that
  value is positive, keeping the household rule (one promotional offer per household: the most
  valuable; the household's other accounts fall back to their best non-promotional offer); at
  the policy's budget, the best ``B`` of those;
* **top_churn**: the retention offer (the catalog's retention offer with its own experiment
  evidence, unless told) to the accounts with
  the highest predicted churn (the ranking's ``churn_probability``), on the account's preferred
  channel when allowed, one per household; its best budget is the prefix of that ordering with
  the highest value;
* **random**: a random allowed offer to random accounts (exact expectation); its best budget is
  everyone allowed if the mean is positive, else nobody;
* **contact_nobody**: 0.

The per-account value vectors are kept so that differences can be given paired intervals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from telco_nbo.evaluation.value import bootstrap_total, default_channel_rows
from telco_nbo.nbo.catalog import evidenced_retention_offer

RULE_LAYERS = ("eligibility", "applicability", "suitability")


@dataclass(frozen=True)
class Baseline:
    """A baseline's value at its own best budget and at the policy's.

    Attributes:
        total: Value at its own best budget.
        contacts: Contacts at its own best budget.
        ci95: Bootstrap interval of ``total`` over accounts.
        at_policy_budget: Value with the policy's number of contacts.
        contacts_at_policy_budget: Its contacts then.
        by_offer: Offer -> value at the own best budget.
    """

    total: float
    contacts: int
    ci95: tuple[float, float]
    at_policy_budget: float
    contacts_at_policy_budget: int
    by_offer: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def allowed_pairs(ranking: pd.DataFrame | None, truth: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The (account, offer) pairs the rules allow, and a phrase saying which rules.

    Args:
        ranking: A ``rank`` output (one row per account x offer, with ``layer`` and ``rule_id``), or
            ``None``.
        truth: ``truth/offer_effects``.

    Returns:
        ``(pairs, rules)``: ``pairs`` has ``account_id``, ``offer_id`` (strings); ``rules`` tells
        whether they are the ranking's rules or only what the world can deliver.
    """
    if ranking is not None and {"layer", "offer_id", "account_id"} <= set(ranking.columns):
        rid = ranking["rule_id"] if "rule_id" in ranking.columns else pd.Series(None, index=ranking.index)
        ok = ~ranking["layer"].isin(RULE_LAYERS) & (rid.fillna("") != "VAL_NO_CHANNEL")
        pairs = ranking.loc[ok, ["account_id", "offer_id"]].astype(str).drop_duplicates()
        return pairs.reset_index(drop=True), "the ranking's eligibility, applicability and suitability rules"
    best = truth[truth["p_accept"] > 0][["account_id", "offer_id"]].astype(str).drop_duplicates()
    return best.reset_index(drop=True), "offers the world can deliver (no ranking given: no policy rules)"


def _best_channel_rows(truth: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per allowed pair, the truth row on the preferred channel if allowed, else the cheapest."""
    accounts = pairs["account_id"].unique()
    t = truth[truth["account_id"].isin(accounts)]
    t = t.assign(account_id=t["account_id"].astype(str), offer_id=t["offer_id"].astype(str),
                 channel=t["channel"].astype(str))
    t = t.merge(pairs, on=["account_id", "offer_id"], how="inner")
    return default_channel_rows(t, ["account_id", "offer_id"]).reset_index(drop=True)


def _summ(values: np.ndarray, offers: np.ndarray, n_accounts: int, budget_values: np.ndarray,
          n_resamples: int, seed: int) -> Baseline:
    by = pd.Series(values).groupby(pd.Series(offers)).sum().to_dict() if len(values) else {}
    return Baseline(total=float(values.sum()), contacts=int(len(values)),
                    ci95=bootstrap_total(values, n_accounts, n_resamples=n_resamples, seed=seed),
                    at_policy_budget=float(budget_values.sum()), contacts_at_policy_budget=int(len(budget_values)),
                    by_offer={str(k): float(v) for k, v in by.items()})


@dataclass(frozen=True)
class Baselines:
    """The four baselines and their per-account values (own best budget) for paired intervals."""

    oracle: Baseline
    top_churn: Baseline
    random: Baseline
    contact_nobody: Baseline
    rules: str
    churn_source: str
    per_account: dict[str, pd.Series] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        out = {k: getattr(self, k).to_dict() for k in ("oracle", "top_churn", "random", "contact_nobody")}
        out["rules"] = self.rules
        out["top_churn"]["churn_source"] = self.churn_source
        return out


def _household_cap(picks: pd.DataFrame, household_of: pd.Series, promotional: pd.Series, cap: int) -> pd.DataFrame:
    """Keep at most ``cap`` promotional picks per household, the most valuable first (picks in value order)."""
    hh = household_of.reindex(picks["account_id"]).to_numpy()
    promo = promotional.reindex(picks["offer_id"]).fillna(True).to_numpy(bool)
    rank_in_hh = pd.Series(promo.astype(int)).groupby(hh).cumsum().to_numpy()
    return picks[~promo | (rank_in_hh <= cap)]


def baselines(truth: pd.DataFrame, accounts_truth: pd.DataFrame, policy_budget: int, *,
              ranking: pd.DataFrame | None = None, retention_offer: str | None = None,
              household_of: pd.Series | None = None, promotional: pd.Series | None = None,
              promo_per_household: int = 1, n_resamples: int = 1000, seed: int = 0) -> Baselines:
    """Compute the baselines (module docstring).

    Args:
        truth: ``truth/offer_effects``.
        accounts_truth: ``truth/accounts`` (``p_churn_90d`` is the churn order when the ranking
            has no ``churn_probability``).
        policy_budget: The policy's number of contacts.
        ranking: The policy's ``rank`` output (rules and predicted churn), or ``None``.
        retention_offer: The offer top-churn targeting sends; ``None`` for the built-in catalog's
            retention offer with its own experiment evidence (:func:`evidenced_retention_offer`).
        household_of: Account id -> household id; with ``promotional`` (offer id -> bool) and a
            ranking, the oracle and top churn keep the household rule too: at most
            ``promo_per_household`` promotional offers per household (the most valuable; an
            account that loses its pick falls back to its best non-promotional offer).
        promotional: Offer id -> whether the household promotional cap applies to it.
        promo_per_household: The cap.
        n_resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        The :class:`Baselines`.
    """
    n_acc = int(truth["account_id"].nunique())
    pairs, rules = allowed_pairs(ranking, truth)
    rows = _best_channel_rows(truth, pairs)
    B = int(policy_budget)
    # Oracle: best allowed offer per account, if positive.
    household_rule = ranking is not None and household_of is not None and promotional is not None
    if household_rule:
        rules += f"; at most {promo_per_household} promotional offer(s) per household"
    positive = rows[rows["true_value"] > 0].sort_values("true_value", ascending=False)
    if household_rule:
        # Greedy, like the engine's household step: the household's best promotional pick stays;
        # its other accounts keep their best non-promotional offer if they have one.
        best = positive.drop_duplicates("account_id")
        kept = _household_cap(best, household_of, promotional, promo_per_household)
        dropped = best[~best["account_id"].isin(kept["account_id"])]
        non_promo = positive[~promotional.reindex(positive["offer_id"]).fillna(True).to_numpy(bool)]
        fallback = non_promo[non_promo["account_id"].isin(dropped["account_id"])].drop_duplicates("account_id")
        pos = pd.concat([kept, fallback]).sort_values("true_value", ascending=False)
    else:
        pos = positive.drop_duplicates("account_id")
    oracle = _summ(pos["true_value"].to_numpy(), pos["offer_id"].to_numpy(), n_acc,
                   pos["true_value"].to_numpy()[:B], n_resamples, seed)
    # Top predicted churn with the retention offer, where the rules allow it.
    if ranking is not None and "churn_probability" in ranking.columns:
        churn = ranking.groupby(ranking["account_id"].astype(str))["churn_probability"].first()
        source = "the ranking's churn_probability (the churn champion)"
    else:
        churn = accounts_truth.set_index(accounts_truth["account_id"].astype(str))["p_churn_90d"]
        source = "the true churn probability (no ranking given: a stronger baseline than a model)"
    if retention_offer is None:
        retention_offer = evidenced_retention_offer()
    ret = rows[rows["offer_id"] == retention_offer].copy()
    ret["churn"] = churn.reindex(ret["account_id"]).to_numpy()
    ret = ret.sort_values(["churn", "account_id"], ascending=[False, True])
    if household_rule:
        ret = _household_cap(ret, household_of, promotional, promo_per_household)
    v = ret["true_value"].to_numpy()
    cum = np.r_[0.0, np.cumsum(v)]
    k = int(np.argmax(cum))
    top = _summ(v[:k], ret["offer_id"].to_numpy()[:k], n_acc, v[:B], n_resamples, seed)
    # Random allowed offer to random accounts: exact expectation.
    per_acc = rows.groupby("account_id")["true_value"].mean()
    mean = float(per_acc.mean()) if len(per_acc) else 0.0
    everyone = len(per_acc) if mean > 0 else 0
    rand = Baseline(total=mean * everyone if everyone else 0.0, contacts=everyone,
                    ci95=bootstrap_total(per_acc.to_numpy(), n_acc, n_resamples=n_resamples, seed=seed)
                    if everyone else (0.0, 0.0),
                    at_policy_budget=mean * min(B, len(per_acc)), contacts_at_policy_budget=min(B, len(per_acc)))
    nobody = Baseline(total=0.0, contacts=0, ci95=(0.0, 0.0), at_policy_budget=0.0, contacts_at_policy_budget=0)
    per_account = {
        "oracle": pd.Series(pos["true_value"].to_numpy(), index=pos["account_id"].to_numpy()),
        "top_churn": pd.Series(v[:k], index=ret["account_id"].to_numpy()[:k]),
        "top_churn_at_policy_budget": pd.Series(v[:B], index=ret["account_id"].to_numpy()[:B]),
        "random_mean_per_account": per_acc,
    }
    return Baselines(oracle=oracle, top_churn=top, random=rand, contact_nobody=nobody, rules=rules,
                     churn_source=source, per_account=per_account)


def paired_difference(a: pd.Series, b: pd.Series, n_accounts: int, *, n_resamples: int = 1000,
                      seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Difference of two targetings' totals with a paired bootstrap interval over accounts.

    Args:
        a: Per-account true value of the first targeting (contacted accounts only).
        b: The same for the second.
        n_accounts: All accounts (the rest count 0 in both).

    Returns:
        ``(difference, ci95)``.
    """
    idx = a.index.union(b.index)
    d = a.reindex(idx, fill_value=0.0).to_numpy() - b.reindex(idx, fill_value=0.0).to_numpy()
    return float(d.sum()), bootstrap_total(d, n_accounts, n_resamples=n_resamples, seed=seed)
