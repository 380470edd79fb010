"""A short human summary of a ranking: who got nothing, which offers never won, what blocked most.

Pure functions of the ranking frame (:func:`telco_nbo.nbo.rank.rank_batch`'s output: one row per
account x offer with ``selected``, ``offer_id`` and, for suppressed rows, ``rule_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd


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
    """

    accounts: int
    offers_made: int
    accounts_without_offer: int
    offers_by_id: dict[str, int] = field(default_factory=dict)
    never_chosen: list[str] = field(default_factory=list)
    top_blocking_rules: list[tuple[str, int]] = field(default_factory=list)

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
    if "rule_id" in frame.columns:
        blocked = frame.loc[~selected, "rule_id"].dropna().value_counts().head(top_rules)
        rules = [(str(k), int(v)) for k, v in blocked.items()]
    return RankingSummary(accounts, len(chosen), accounts - with_offer, by_id, never, rules)


__all__ = ["RankingSummary", "summarize_ranking"]
