"""A short human summary of a ranking: who got nothing, which offers never won, what blocked most.

Pure functions of the ranking frame (:func:`telco_nbo.nbo.rank.rank_batch`'s output: one row per
account x offer with ``selected``, ``offer_id`` and, for suppressed rows, ``rule_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from telco_nbo.nbo.capacity import report_from_dict


@dataclass(frozen=True)
class RankingSummary:
    """What a person wants to know after a batch ranking.

    Attributes:
        accounts: Accounts ranked.
        offers_made: Offers selected, over all accounts.
        accounts_without_offer: Accounts with no selected offer.
        offers_by_id: Selected offers per offer id, most frequent first.
        never_chosen: Catalog offers selected for no account (catalog order).
        top_blocking_rules: The rules that suppressed most offers, ``(rule_id, count)``.
        value_by_rule: Per rule or step past eligibility, the estimated value of the offers it
            suppressed first (the sum of their ``value_removed``), ``(rule_id, offers, value)``,
            most valuable first.
        capacity: The capacity step's report lines (empty without campaign limits).
    """

    accounts: int
    offers_made: int
    accounts_without_offer: int
    offers_by_id: dict[str, int] = field(default_factory=dict)
    never_chosen: list[str] = field(default_factory=list)
    top_blocking_rules: list[tuple[str, int]] = field(default_factory=list)
    value_by_rule: list[tuple[str, int, float]] = field(default_factory=list)
    capacity: list[str] = field(default_factory=list)

    @property
    def share_without_offer(self) -> float:
        """Share of accounts with no offer (0 when nothing was ranked)."""
        return self.accounts_without_offer / self.accounts if self.accounts else 0.0

    def lines(self) -> list[str]:
        """The summary as a few sentences."""
        out = [f"{self.accounts:,} accounts ranked: {self.offers_made:,} offers made; "
               f"{self.accounts_without_offer:,} accounts ({self.share_without_offer:.0%}) got no offer."]
        if self.offers_by_id:
            top = ", ".join(f"{k} {v:,}" for k, v in list(self.offers_by_id.items())[:5])
            out.append(f"Most chosen: {top}.")
        if self.never_chosen:
            out.append(f"Never chosen ({len(self.never_chosen)}): {', '.join(self.never_chosen)}.")
        else:
            out.append("Every catalog offer was chosen at least once.")
        if self.top_blocking_rules:
            rules = ", ".join(f"{r} {n:,}" for r, n in self.top_blocking_rules)
            out.append(f"Rules that removed most offers: {rules}.")
        held = [(r, n, v) for r, n, v in self.value_by_rule if v > 0]
        if held:
            text = ", ".join(f"{r} {v:,.0f} ({n:,} offers)" for r, n, v in held[:5])
            out.append(f"Estimated value the policy's rules and steps held back (each offer counted once, under the "
                       f"first rule that removed it): {text}.")
        out.extend(self.capacity)
        return out


def summarize_ranking(frame: pd.DataFrame, catalog_ids: Iterable[str], top_rules: int = 3) -> RankingSummary:
    """Summarize a ranking frame.

    Args:
        frame: One row per account x offer, with ``account_id``, ``offer_id``, ``selected`` and
            (optional) ``rule_id`` of the rule that suppressed the row.
        catalog_ids: Every offer of the catalog, in its order (for "never chosen").
        top_rules: How many blocking rules to name.

    Returns:
        The summary.
    """
    selected = frame["selected"].fillna(False).astype(bool)
    chosen = frame.loc[selected]
    accounts = int(frame["account_id"].nunique())
    with_offer = int(chosen["account_id"].nunique())
    counts = chosen["offer_id"].value_counts()
    by_id = {str(k): int(v) for k, v in counts.items()}
    never = [str(o) for o in catalog_ids if str(o) not in by_id]
    rules: list[tuple[str, int]] = []
    value_by_rule: list[tuple[str, int, float]] = []
    if "rule_id" in frame.columns:
        blocked = frame.loc[~selected, "rule_id"].dropna().value_counts().head(top_rules)
        rules = [(str(k), int(v)) for k, v in blocked.items()]
        if "value_removed" in frame.columns:
            # Eligibility rules state what cannot be sold (no network, wrong account); a model's
            # score for such an offer is no value anyone could take, so they are left out here.
            policy_rows = ~selected & (frame["layer"] != "eligibility") if "layer" in frame.columns else ~selected
            g = frame.loc[policy_rows].groupby("rule_id")["value_removed"].agg(["size", "sum"])
            value_by_rule = sorted(((str(k), int(r["size"]), float(r["sum"])) for k, r in g.iterrows()),
                                   key=lambda t: (-t[2], t[0]))
    capacity = frame.attrs.get("capacity")
    cap_lines: list[str] = []
    if capacity:
        cap_lines = report_from_dict(capacity).lines()
    return RankingSummary(accounts, len(chosen), accounts - with_offer, by_id, never, rules, value_by_rule,
                          cap_lines)


__all__ = ["RankingSummary", "summarize_ranking"]
