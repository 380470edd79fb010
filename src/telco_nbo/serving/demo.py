"""Demo step: rank the demo world with the champion models and value the policy on the truth.

Called by ``telco-nbo demo`` after the training step (``demo_step(ctx)``; ``ctx`` has ``data_dir``,
``tracking_uri``, ``seed``, ``console`` and ``out``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from telco_nbo.data.io import load_world
from telco_nbo.evaluation.evaluate import evaluate_decisions
from telco_nbo.evaluation.report import headline, to_html
from telco_nbo.evaluation.value import true_value
from telco_nbo.features import build_account_features
from telco_nbo.nbo.capacity import apply_capacity
from telco_nbo.nbo.catalog import Catalog
from telco_nbo.nbo.config import CapacityConfig, NboConfig
from telco_nbo.nbo.rank import Policy, core_decisions, core_frame, rank_core
from telco_nbo.nbo.rules import as_columns, validate_features
from telco_nbo.scoring import ChampionModels, FastScorer

@dataclass
class RankedWorld:
    """A synthetic world (with its truth) ranked by the champions: what the policy comparison reads."""

    world: Any
    policy: Any
    scorer: Any
    columns: dict[str, np.ndarray]
    aligned: Any
    core: Any


def rank_world(data_dir: Any, tracking_uri: str | None, top_k: int = 3, config: NboConfig | None = None,
               catalog: Catalog | None = None) -> RankedWorld:
    """Rank every account of a world folder with the ``@champion`` models (the batch fast path).

    Args:
        data_dir: The world folder.
        tracking_uri: MLflow tracking URI of the champions.
        top_k: Offers per account at most.
        config: The policy config (default: the built-in one).
        catalog: The offer catalog (default: the built-in one).

    Raises:
        ConfigError: A champion is missing.
        DataValidationError: The features break the contract.
    """
    world = load_world(data_dir, with_truth=True)
    feats = build_account_features(world.tables, world.as_of_date())
    validate_features(feats)
    policy = Policy.build(catalog, config)
    scorer = FastScorer(ChampionModels.load(tracking_uri), policy, nthread=0)
    cols = as_columns(feats)
    # SHAP reason phrases cost a Python loop per account; the batch needs none of them to rank
    # (the demo computes them only for the households it shows, whole households, so the
    # household rules decide exactly as in the full batch).
    aligned = scorer.score(cols, reasons=False)
    return RankedWorld(world, policy, scorer, cols, aligned, rank_core(policy, cols, aligned, top_k))


def policy_table(ev: Any, title: str) -> Any:
    """A rich table of a :class:`~telco_nbo.evaluation.evaluate.PolicyEvaluation`: policy vs baselines."""
    t = Table(title=title, title_justify="left")
    for c in ("targeting (same rules)", "contacts", "true value", "95 % interval", "at the policy's budget"):
        t.add_column(c)
    tot = ev.true_value
    t.add_row("NBO policy", f"{tot['contacts']:,}", f"{tot['total']:+,.0f}",
              f"[{tot['ci95'][0]:+,.0f}, {tot['ci95'][1]:+,.0f}]", f"{tot['total']:+,.0f}")
    names = {"oracle": "oracle (knows the truth)", "top_churn": "top predicted churn, retention offer",
             "random": "random allowed offer", "contact_nobody": "contact nobody"}
    for k, name in names.items():
        b = ev.baselines[k]
        t.add_row(name + " (own best budget)", f"{b['contacts']:,}", f"{b['total']:+,.0f}",
                  f"[{b['ci95'][0]:+,.0f}, {b['ci95'][1]:+,.0f}]", f"{b['at_policy_budget']:+,.0f}")
    if ev.ope is not None:
        dr = ev.ope["dr"]
        t.add_row("NBO policy, estimated from the logs (DR)", f"{tot['contacts']:,}", f"{dr['estimate']:+,.0f}",
                  f"[{dr['ci95'][0]:+,.0f}, {dr['ci95'][1]:+,.0f}]", "")
    return t


def demo_step(ctx: Any) -> dict[str, Any]:
    """Rank the demo world with the champions, print decisions, value the policy on the truth.

    The ranking is valued with :func:`telco_nbo.evaluation.evaluate.evaluate_decisions` (what
    ``telco-nbo evaluate`` runs): the true value of every offer the policy sends (its first choice
    per account, no substitution), against the oracle, top predicted churn with the retention
    offer, a random allowed offer and contacting nobody, each under the ranking's rules at its own
    best budget and at the policy's, with bootstrap intervals, and the off-policy estimates from
    the logged exploration beside them. The report is written to ``<out>/evaluate``.
    """
    ranked = rank_world(ctx.data_dir, ctx.tracking_uri)
    world, policy, scorer, cols, core = ranked.world, ranked.policy, ranked.scorer, ranked.columns, ranked.core
    as_of = world.as_of_date()
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

    # ---- the policy's true value against fair baselines --------------------------------------------
    frame = core_frame(core, as_of)
    ev = evaluate_decisions(world.tables, world.truth, frame, as_of, ranking=frame, seed=getattr(ctx, "seed", 0) or 0)
    out_dir = getattr(ctx, "out", None)
    if out_dir is not None:
        folder = out_dir / "evaluate"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "policy_value.json").write_text(json.dumps(ev.to_dict(), indent=2, default=float), encoding="utf-8")
        (folder / "policy_value.html").write_text(to_html(ev), encoding="utf-8")
    ctx.console.print(policy_table(ev, f"True value of the decisions ({ev.active_accounts:,} active accounts; "
                                       f"{ev.baselines['rules']})"))
    ctx.console.print(headline(ev), highlight=False)
    checks = decision_checks(ev)
    for line in checks["lines"]:
        ctx.console.print(line, highlight=False, soft_wrap=True)
    if ev.rules:
        ctx.console.print(rules_table(ev.rules))
    campaign = campaign_example(frame, world.truth["offer_effects"])
    for line in campaign["lines"]:
        ctx.console.print(line, highlight=False, soft_wrap=True)
    by_offer = ev.true_value["by_offer"]
    return {
        "accounts_ranked": len(decisions), "offers_made": int(core.selected.sum()), "contacts": ev.contacts,
        "policy_true_value": ev.true_value["total"], "share_of_oracle": ev.share_of_oracle,
        "baselines": {k: {"total": v["total"], "contacts": v["contacts"], "at_policy_budget": v["at_policy_budget"]}
                      for k, v in ev.baselines.items() if isinstance(v, dict)},
        "differences": ev.differences, "ope_dr": ev.ope["dr"] if ev.ope else None,
        "by_offer": {k: {"contacts": v["contacts"], "total": v["total"]} for k, v in by_offer.items()},
        "predicted_vs_true": ev.predicted_vs_true, "per_contact_vs_random": checks["per_contact_vs_random"],
        "campaign_example": {k: v for k, v in campaign.items() if k != "lines"},
    }


def decision_checks(ev: Any) -> dict[str, Any]:
    """The value per contact against a random assignment, and predicted against true value.

    Returns:
        ``per_contact_vs_random`` (ratio, ``None`` when random's value per contact is not positive)
        and ``lines`` to print.
    """
    tv, rnd = ev.true_value, ev.baselines["random"]
    per_random = rnd["at_policy_budget"] / rnd["contacts_at_policy_budget"] if rnd["contacts_at_policy_budget"] else 0.0
    ratio = tv["per_contact"] / per_random if per_random > 0 else None
    lines = [f"Value per contact: {tv['per_contact']:+.2f} against {per_random:+.2f} for a random allowed offer"
             + (f" ({ratio:.1f}x)." if ratio is not None else " (random loses money).")]
    pvt = ev.predicted_vs_true or {}
    if pvt.get("contacts"):
        lines.append(f"Predicted against true, on the {pvt['contacts']:,} contacts: {pvt['mean_predicted_value']:+.2f} "
                     f"expected per contact, {pvt['mean_true_value']:+.2f} true (ratio {pvt['value_ratio']:.2f}); "
                     + (f"cut in churn on the {pvt['effect_contacts']:,} valued on an effect: "
                        f"{pvt['mean_predicted_effect']:.4f} predicted, {pvt['mean_true_effect']:.4f} true."
                        if pvt.get("effect_contacts") else "no contact is valued on an effect on churn.")
                     + (f" Over all contacts, cut in churn {pvt['mean_predicted_effect_all']:.4f} predicted, "
                        f"{pvt['mean_true_effect_all']:.4f} true." if "mean_true_effect_all" in pvt else ""))
    return {"per_contact_vs_random": ratio, "lines": lines}


def rules_table(rules: dict[str, dict[str, Any]], top: int = 8) -> Table:
    """What the policy's rules and steps removed, estimated and true (eligibility left out)."""
    t = Table(title="What each rule removed (each offer under the first rule that removed it)", title_justify="left")
    for c in ("rule", "layer", "offers", "estimated value", "true value"):
        t.add_column(c)
    rows = [(k, v) for k, v in rules.items() if v["layer"] != "eligibility"][:top]
    for k, v in rows:
        t.add_row(k, v["layer"], f"{v['offers']:,}", f"{v['estimated']:+,.0f}", f"{v['true']:+,.0f}")
    return t


def campaign_example(frame: Any, offer_effects: Any) -> dict[str, Any]:
    """The same ranking fitted to a campaign's limits: half the contacts, a third of the call-center ones.

    Shows the capacity step (:mod:`telco_nbo.nbo.capacity`) on the demo's own ranking: which limit
    binds, what one more unit of it is worth, and the true value the limited campaign keeps.
    """
    first = frame["selected"] & (frame["rank"] == 1)
    contacts = int(first.sum())
    calls = int((first & (frame["channel"] == "call_center")).sum())
    if contacts < 4:
        return {"lines": []}
    cap = CapacityConfig(max_contacts=contacts // 2, per_channel={"call_center": calls // 3})
    limited, report = apply_capacity(frame, cap)
    value = true_value(limited, offer_effects, n_resamples=200).total.total
    lines = [f"A campaign with limits (budget {cap.max_contacts:,} contacts, {cap.per_channel['call_center']:,} "
             "call-center calls), from the same ranking:", *report.lines(),
             f"  true value of the limited campaign: {value:+,.0f}"]
    return {"limits": cap.model_dump(), "binding": report.binding, "contacts": report.contacts_after,
            "true_value": value, "lines": lines}
