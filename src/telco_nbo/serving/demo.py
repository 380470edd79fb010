"""Demo step: rank the demo world with the champion models and judge the policy against the truth.

Called by ``telco-nbo demo`` after the training step (``demo_step(ctx)``; ``ctx`` has ``data_dir``,
``tracking_uri``, ``seed``, ``console`` and ``out``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

RETENTION_KINDS = ("retention",)


def _true_effect(p: np.ndarray, segment: np.ndarray, fatigued: np.ndarray) -> np.ndarray:
    """True change in 90-day churn probability a retention contact causes, at churn probability ``p``.

    The generator's segment rules (``telco_nbo.data.synthetic``): persuadable ``p1 = 0.30 p``,
    sure thing ``0.95 p``, lost cause ``p``, sleeping dog ``min(0.95, p + 0.06 + 0.6 p)``,
    fatigued ``min(1, p + 0.05)``.
    """
    p1 = np.select(
        [segment == "persuadable", segment == "sure_thing", segment == "lost_cause", segment == "sleeping_dog"],
        [0.30 * p, 0.95 * p, p, np.minimum(0.95, p + 0.06 + 0.6 * p)], p,
    )
    p1 = np.where(fatigued, np.minimum(1.0, p + 0.05), p1)
    return p1 - p


def true_retention_value(frame: pd.DataFrame, truth: dict[str, pd.DataFrame], margin: float, months: float,
                         cost: np.ndarray) -> pd.DataFrame:
    """Per account of ``frame`` (``account_id``): the TRUE value of sending it a retention offer.

    ``value = -effect x CLV_36m + P(accept) x offer margin x months - contact cost`` where
    ``effect`` is :func:`_true_effect` at the account's true 90-day churn probability at ``as_of``
    (``truth["accounts"].p_churn_90d``) with the account's true uplift segment
    (``truth["retention"]``), CLV is the true 36-month value (``truth["clv"]``), ``P(accept)`` the
    segment's true acceptance rate, the margin the offer's monthly margin (negative for a discount)
    counted over its term (capped at the policy horizon), the cost that of the channel the policy
    picks for the account. Only accounts whose segment the truth knows (enrolled in the retention
    experiment) are returned.
    """
    ret = truth["retention"].set_index("account_id")
    acc = truth["accounts"].set_index("account_id")
    clv = truth["clv"].set_index("account_id")["clv_36m"] if "clv" in truth else acc["clv_36m"]
    ids = frame["account_id"].astype(str)
    known = ids.isin(ret.index) & ids.isin(acc.index)
    ids = ids[known]
    seg = ret.loc[ids, "segment"].to_numpy(dtype=object)
    fat = ret.loc[ids, "fatigued"].to_numpy(dtype=bool) if "fatigued" in ret else np.zeros(len(ids), bool)
    p = acc.loc[ids, "p_churn_90d"].to_numpy(dtype=float)
    effect = _true_effect(p, seg, fat)
    p_acc = ret.loc[ids, "p_accept_if_treated"].to_numpy(dtype=float)
    value = -effect * clv.reindex(ids).to_numpy(dtype=float) + p_acc * margin * months - np.asarray(cost)[known.to_numpy()]
    return pd.DataFrame({"account_id": ids.to_numpy(), "segment": seg, "true_effect": effect, "true_value": value})


@dataclass
class RetentionTargeting:
    """Three retention targetings on the same budget, judged on the generator's truth.

    Attributes:
        frame: Per account with a known uplift segment: ``account_id``, ``segment``,
            ``true_effect``, ``true_value`` (see :func:`true_retention_value`).
        value: ``true_value`` as an array (frame order).
        chosen: Whether the NBO policy gives the account a retention offer.
        churn: Predicted churn probability.
        top: Frame positions by predicted churn, highest first (stable).
        budget: Retention offers the policy makes among these accounts.
        decile: Size of the top churn decile.
        summary: JSON-ready figures (true values, segments of each targeting).
    """

    frame: pd.DataFrame
    value: np.ndarray
    chosen: np.ndarray
    churn: np.ndarray
    top: np.ndarray
    budget: int
    decile: int
    summary: dict[str, Any]


def retention_targeting(policy: Any, core: Any, aligned: Any, truth: dict[str, pd.DataFrame]) -> RetentionTargeting:
    """Judge the policy's retention offers against top-churn and random targeting on the truth.

    Args:
        policy: The :class:`~telco_nbo.nbo.rank.Policy` the ranking used.
        core: Its :class:`~telco_nbo.nbo.rank.RankCore` over the whole world.
        aligned: The scores it ranked.
        truth: The world's ground truth (``load_world(..., with_truth=True).truth``).

    Returns:
        The comparison (see :func:`demo_step` for the three targetings).
    """
    offers = policy.offers
    j = int(np.flatnonzero(offers.ids == "RETENTION_DISCOUNT")[0])
    offer = policy.catalog.get("RETENTION_DISCOUNT")
    costs = np.array([policy.config.contact_costs[c] for c in ("app", "email", "sms", "call_center", "retail")] + [np.nan])
    cost = costs[core.channel[:, j]]
    cost = np.where(np.isnan(cost), np.nanmax(costs), cost)
    months = min(offer.term_months or policy.config.no_commitment_months, policy.config.horizon_months)
    tv = true_retention_value(pd.DataFrame({"account_id": core.account_ids}), truth, offer.monthly_margin, months, cost)
    pos = pd.Series(np.arange(len(core.account_ids)), index=core.account_ids.astype(str))
    rows = pos.reindex(tv["account_id"]).to_numpy()
    retention_cols = np.isin(offers.kind, RETENTION_KINDS)
    chosen = core.selected[rows][:, retention_cols].any(axis=1)
    budget = int(chosen.sum())
    churn = aligned.churn[rows]
    value = tv["true_value"].to_numpy()
    top = np.argsort(-churn, kind="stable")
    decile = max(1, len(rows) // 10)
    summary = {
        "accounts_with_truth": len(rows),
        "budget": budget,
        "policy_true_value": float(value[chosen].sum()),
        "top_churn_true_value": float(value[top[:budget]].sum()),
        "random_true_value": float(value.mean() * budget),
        "top_decile_size": decile,
        "top_decile_true_value": float(value[top[:decile]].sum()),
        "policy_segments": tv.loc[chosen, "segment"].value_counts().to_dict(),
        "top_churn_segments": tv.iloc[top[:budget]]["segment"].value_counts().to_dict(),
    }
    return RetentionTargeting(tv, value, chosen, churn, top, budget, decile, summary)


@dataclass
class RankedWorld:
    """A synthetic world (with its truth) ranked by the champions: what the policy comparison reads."""

    world: Any
    policy: Any
    scorer: Any
    columns: dict[str, np.ndarray]
    aligned: Any
    core: Any


def rank_world(data_dir: Any, tracking_uri: str | None, top_k: int = 3) -> RankedWorld:
    """Rank every account of a world folder with the ``@champion`` models (the batch fast path).

    Raises:
        ConfigError: A champion is missing.
        DataValidationError: The features break the contract.
    """
    from telco_nbo.data.io import load_world
    from telco_nbo.features import build_account_features
    from telco_nbo.nbo.rank import Policy, rank_core
    from telco_nbo.nbo.rules import as_columns, validate_features
    from telco_nbo.serving.scoring import ChampionModels, FastScorer

    world = load_world(data_dir, with_truth=True)
    feats = build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))
    validate_features(feats)
    policy = Policy.build()
    scorer = FastScorer(ChampionModels.load(tracking_uri), policy, nthread=0)
    cols = as_columns(feats)
    # SHAP reason phrases cost a Python loop per account; the batch needs none of them to rank
    # (the demo computes them only for the households it shows, whole households, so the
    # household rules decide exactly as in the full batch).
    aligned = scorer.score(cols, reasons=False)
    return RankedWorld(world, policy, scorer, cols, aligned, rank_core(policy, cols, aligned, top_k))


def demo_step(ctx: Any) -> dict[str, Any]:
    """Rank the demo world with the champions, print decisions, compare policies on the truth.

    True value (from the generator's ground truth, never from the models): for each account the
    truth knows the uplift segment of (the retention experiment's enrolled accounts, still active
    at ``as_of``), sending RETENTION_DISCOUNT is worth ``-effect x CLV_36m + P(accept) x margin x
    months - contact cost`` (see :func:`true_retention_value`). Three targetings spend the same
    budget (the number of retention offers the policy makes among those accounts):

    - the **NBO policy**: the accounts it gives a retention offer (by uplift x CLV, rules, value);
    - **top churn**: the same number of accounts with the highest predicted churn (the classic
      "retention offer to the top churn decile", cut to the same budget; the full top decile is
      reported too);
    - **random**: the expected value of the same number of accounts drawn at random (the mean
      true value x budget: exact, no sampling noise).
    """
    from rich.table import Table

    from telco_nbo.nbo.rank import core_decisions, rank_core

    ranked = rank_world(ctx.data_dir, ctx.tracking_uri)
    world, policy, scorer, cols, aligned, core = (ranked.world, ranked.policy, ranked.scorer, ranked.columns,
                                                  ranked.aligned, ranked.core)
    as_of = pd.Timestamp(world.meta["as_of"])
    decisions = core_decisions(core, as_of)

    # ---- a few decisions, with reasons and suppressions ------------------------------------------
    first = [d for d in decisions if d["offers"]][:3]
    households = np.isin(np.asarray(cols["household_id"]).astype(str), [d["household_id"] for d in first])
    sub = {k: np.asarray(v)[households] for k, v in cols.items()}
    sub_decisions = core_decisions(rank_core(policy, sub, scorer.score(sub, reasons=True), 3), as_of)
    by_id = {d["account_id"]: d for d in sub_decisions}
    shown = [by_id[d["account_id"]] for d in first]
    for d in shown:
        t = Table(title=f"{d['account_id']} (household {d['household_id']}): churn {d['churn_probability']:.0%}, "
                        f"CLV {d['clv']:,.0f}", title_justify="left")
        for c in ("rank", "offer", "channel", "EV", "P(accept)", "why"):
            t.add_column(c)
        for o in d["offers"]:
            t.add_row(str(o["rank"]), o["offer_id"], o["channel"], f"{o['expected_value']:.1f}", f"{o['score']:.2f}",
                      "; ".join(o["reasons"][:3]))
        ctx.console.print(t)
        ctx.console.print("  suppressed: " + "; ".join(f"{s['offer_id']} [{s['rule_id']}] {s['reason']}"
                                                     for s in d["suppressed"][:4]) + " ...", highlight=False)

    # ---- true value of three targetings ----------------------------------------------------------
    comp = retention_targeting(policy, core, aligned, world.truth)
    result = {"accounts_ranked": len(decisions), "offers_made": int(core.selected.sum()), **comp.summary}
    rows, budget, decile, top, tv = len(comp.value), comp.budget, comp.decile, comp.top, comp.frame
    t = Table(title=f"True value of retention targeting ({rows:,} accounts with known uplift segment, "
                    f"budget {budget} offers)", title_justify="left")
    for c in ("targeting", "offers", "true value", "per offer", "persuadables / sleeping dogs"):
        t.add_column(c)
    for name, n, v, segs in (
        ("NBO policy (uplift x CLV, rules)", budget, result["policy_true_value"], result["policy_segments"]),
        ("top predicted churn, same budget", budget, result["top_churn_true_value"], result["top_churn_segments"]),
        ("random, same budget (expected)", budget, result["random_true_value"], None),
        ("top churn decile", decile, result["top_decile_true_value"],
         tv.iloc[top[:decile]]["segment"].value_counts().to_dict()),
    ):
        seg_txt = "" if segs is None else f"{segs.get('persuadable', 0)} / {segs.get('sleeping_dog', 0)}"
        t.add_row(name, str(n), f"{v:,.0f}", f"{v / max(n, 1):,.1f}", seg_txt)
    ctx.console.print(t)
    return result
