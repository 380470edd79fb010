"""The next-best-offer policy's TRUE value on the synthetic world, against fair baselines.

What is measured (results into benchmarks/RESULTS.md, section "Next-best-offer policy: true value on
the synthetic world"): the champions rank every active account (the batch fast path, the same code
as ``telco-nbo rank``); the ranking's first choices are valued on ``truth/offer_effects`` with
:func:`telco_nbo.evaluation.evaluate.evaluate_decisions` (what ``telco-nbo evaluate`` runs): every
offer as sent, no substitution. Against it, under the same rules (the pairs the ranking's
eligibility, applicability and suitability rules let through):

- the oracle (best allowed offer per account by true value, if positive);
- top predicted churn (the churn champion's ranking) with the retention offer;
- a random allowed offer (exact expectation);
- contact nobody;

each at its own best budget and at the policy's budget, with 95 % bootstrap intervals over
accounts (models and selections held fixed) and paired intervals of the differences, and the
off-policy estimates (IPS, SNIPS, DR) from the world's logged exploration beside the true values.
Then, on the accounts the policy sends a retention offer, its predicted cut in churn against the
true one (the winner's curse).

Each world is ranked by three decision rules, the same champions: the default (``risk: lcb``,
rules from evidence), the risk-neutral rule (the expected value, rules from evidence), and the
rules before (risk-neutral, the discount held to the renewal / at-risk stages and the renewal
timing default). For the default, what each rule and step removed (estimated by the policy and
true on the world) and, on the contacts, the predicted against the true value and effect.

The worlds and models are built once into ``--workdir/seed<S>`` (the same world size and training
as ``make demo``: 100k households, 5 Optuna trials per model; seeds 7 -- the demo's -- 1234 and
99) and reused on the next run; or pass ``--data`` and ``--tracking-uri`` of one trained world
(e.g. ``demo_out``).

Usage: ``python benchmarks/bench_policy.py [--workdir DIR] [--households 100000] [--trials 5] [--seeds 7,1234,99]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(workdir: Path, households: int, seed: int, trials: int) -> tuple[Path, str]:
    """World (with truth) + champions, reused when present."""
    from telco_nbo.training.config import load_config
    from telco_nbo.vocabulary import MODEL_KINDS
    from telco_nbo.training.pipeline import train_all

    data, uri = workdir / "data", f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "trained.json").exists():
        from telco_nbo.data.io import write_world
        from telco_nbo.data.synthetic import generate_world

        workdir.mkdir(parents=True, exist_ok=True)
        write_world(generate_world(households, seed=seed), data, overwrite=True)
        cfgs = {k: load_config(k, trials=trials, seed=seed, tracking_uri=uri,
                               optuna_storage=f"sqlite:///{workdir / 'optuna.db'}") for k in MODEL_KINDS}
        res = train_all(data, cfgs)
        (workdir / "trained.json").write_text(json.dumps({k: r.model_version for k, r in res.items()}))
    force_champions(uri, households)
    return data, uri


def force_champions(uri: str, households: int) -> dict[str, str]:
    """Promote, with the reason recorded, a kind the quality floor refused (as ``make demo`` does).

    On a world whose retention experiment is too small for a reliable uplift ranking, the uplift
    model may fail the floor (its Qini interval reaches 0); the ranking needs every champion, and
    the decision rule must then cope with an uninformative effect model -- part of what is measured.

    Returns:
        Kind -> why the floor refused it, for the kinds forced.
    """
    from telco_nbo.tracking import no_champion_reason, promote, registered_model_name, tracking_session
    from telco_nbo.vocabulary import MODEL_KINDS

    forced = {}
    for kind in MODEL_KINDS:
        with tracking_session(uri) as client:
            why = no_champion_reason(client, registered_model_name(kind))
            try:
                client.get_model_version_by_alias(registered_model_name(kind), "champion")
                continue  # already has one (possibly forced on an earlier run)
            except Exception:  # noqa: BLE001 - MLflow's own exception type for a missing alias
                pass
        if why is None:
            continue
        promote(kind, tracking_uri=uri, force=True,
                reason=f"policy benchmark on a {households:,}-household world: the ranking needs every champion")
        forced[kind] = why
        print(f"{kind}: forced past the quality floor ({why})", flush=True)
    return forced


def decision_rules() -> dict:
    """The decision rules compared: name -> (config, catalog)."""
    from telco_nbo.nbo.catalog import builtin_catalog, Catalog
    from telco_nbo.nbo.config import NboConfig

    cat = builtin_catalog()
    # The rules before: the discount held to the renewal / at-risk stages by the catalog, and the
    # renewal timing default for every retention offer.
    before = Catalog(offers=[o.model_copy(update={"eligibility": o.eligibility.model_copy(
        update={"lifecycle": ["renewal", "at_risk"]})}) if o.offer_id == "RETENTION_DISCOUNT" else o
        for o in cat.offers], conflicts=cat.conflicts)
    return {
        "default (lcb, rules from evidence)": (NboConfig(), None),
        "lcb with the per-offer effects' errors": (NboConfig(lcb_per_offer=True), None),
        "risk-neutral, rules from evidence": (NboConfig(risk="neutral"), None),
        "risk-neutral, renewal-stage rules (before)": (
            NboConfig(risk="neutral", timing={"evidence_decides": False}), before),
    }


def measure(data: Path, uri: str, n_resamples: int, seed: int, config=None, catalog=None) -> dict:
    from telco_nbo.evaluation.evaluate import evaluate_decisions
    from telco_nbo.nbo.rank import core_frame
    from telco_nbo.serving.demo import rank_world

    t0 = time.perf_counter()
    ranked = rank_world(data, uri, config=config, catalog=catalog)
    rank_s = time.perf_counter() - t0
    world = ranked.world
    frame = core_frame(ranked.core, world.meta["as_of"])
    t0 = time.perf_counter()
    ev = evaluate_decisions(world.tables, world.truth, frame, world.meta["as_of"], ranking=frame,
                            n_resamples=n_resamples, seed=seed)
    out = {"rank_s": round(rank_s, 1), "evaluate_s": round(time.perf_counter() - t0, 1), **ev.to_dict()}
    first = frame[frame["selected"] & (frame["rank"] == 1)]
    ret = first[first["kind"] == "retention"]
    out["retention_contacts"] = int(len(ret))
    out["retention_by_offer"] = ret["offer_id"].value_counts().to_dict()
    rnd = out["baselines"]["random"]
    out["random_per_contact"] = (rnd["at_policy_budget"] / rnd["contacts_at_policy_budget"]
                                 if rnd["contacts_at_policy_budget"] else None)
    return out


def _ci(c) -> str:
    return f"[{c[0]:+,.0f}, {c[1]:+,.0f}]"


def render_world(r: dict, source: str) -> str:
    """The default rule's full table on one world."""
    tv, b, d = r["true_value"], r["baselines"], r["differences"]
    ci = _ci
    lines = [
        f"**{source}**. The champions rank all {r['active_accounts']:,} active accounts ({r['rank_s']:.0f} s, batch fast "
        f"path); the ranking's first choices ({r['contacts']:,} contacts) are valued on the world's truth "
        f"(`truth/offer_effects`, every offer as sent; {r['evaluate_s']:.0f} s with the bootstraps). "
        f"Rules for every targeting: {b['rules']}; top churn orders by {b['top_churn']['churn_source']}.",
        "",
        "| targeting | contacts (own best budget) | true value | 95 % interval | at the policy's budget |",
        "|---|---:|---:|---|---:|",
        f"| **NBO policy** | {tv['contacts']:,} | {tv['total']:+,.0f} | {ci(tv['ci95'])} | {tv['total']:+,.0f} |",
    ]
    names = {"oracle": "oracle (knows the truth)", "top_churn": "top predicted churn, retention offer",
             "random": "random allowed offer (expectation)", "contact_nobody": "contact nobody"}
    for k, name in names.items():
        x = b[k]
        lines.append(f"| {name} | {x['contacts']:,} | {x['total']:+,.0f} | {ci(x['ci95'])} | "
                     f"{x['at_policy_budget']:+,.0f} ({x['contacts_at_policy_budget']:,}) |")
    if r.get("ope"):
        for k, name in (("dr", "doubly robust"), ("snips", "self-normalized IPS"), ("ips", "IPS")):
            o = r["ope"][k]
            lines.append(f"| NBO policy estimated from the logs, {name} | | {o['estimate']:+,.0f} | {ci(o['ci95'])} | |")
    share = r["share_of_oracle"]
    pvt = r.get("predicted_vs_true") or {}
    lines += [
        "",
        "Differences, paired 95 % bootstrap intervals over accounts: "
        + "; ".join(f"{k.replace('_', ' ')} {v['difference']:+,.0f} {ci(v['ci95'])}" for k, v in d.items()) + ".",
        f"Share of the oracle's value: {share:.1%}." if share is not None else "",
        "",
        "By offer (the policy's first choices): " + ", ".join(
            f"{k} {v['contacts']:,} contacts {v['total']:+,.0f}" for k, v in
            sorted(r["true_value"]["by_offer"].items(), key=lambda kv: kv[1]["total"])) + ".",
        "",
        (f"Predicted vs true on the {pvt['contacts']:,} contacts: value per contact {pvt['mean_predicted_value']:.2f} "
         f"predicted, {pvt['mean_true_value']:.2f} true (ratio {pvt['value_ratio']:.3f}); "
         + (f"on the {pvt['effect_contacts']:,} whose value counts an effect on churn, predicted cut in churn "
            f"{pvt['mean_predicted_effect']:.4f}, true {pvt['mean_true_effect']:.4f}."
            if pvt.get("effect_contacts") else "no contact's value counts an effect on churn.")
         + (f" Over all contacts, cut in churn {pvt['mean_predicted_effect_all']:.4f} predicted, "
            f"{pvt['mean_true_effect_all']:.4f} true." if "mean_true_effect_all" in pvt else ""))
        if pvt.get("contacts") else "",
        "",
        "What each rule and step removed (each suppressed pair under the first rule that removed it; estimated = "
        "the policy's `value_removed`, true = the pair's true value on its best channel, floored at 0; eligibility "
        "rules, which state what cannot be sold, are left out):",
        "",
        "| rule | layer | offers | estimated | true |",
        "|---|---|---:|---:|---:|",
    ]
    for rid, v in (r.get("rules") or {}).items():
        if v["layer"] == "eligibility":
            continue
        lines.append(f"| {rid} | {v['layer']} | {v['offers']:,} | {v['estimated']:+,.0f} | {v['true']:+,.0f} |")
    lines += ["", f"Off-policy: {r['ope_note']}"]
    return "\n".join(x for x in lines if x is not None)


def render_comparison(results: dict) -> str:
    """One row per world x decision rule."""
    lines = [
        "| world | decision rule | contacts | true value | share of oracle | vs top churn (own best budgets), 95 % "
        "interval | per contact / random's | predicted / true value per contact | retention offers sent (true "
        "value) | DR estimate (covers the true value?) |",
        "|---|---|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for world, by_rule in results.items():
        for name, r in by_rule.items():
            tv, d = r["true_value"], r["differences"]["policy_minus_top_churn"]
            rnd = r["random_per_contact"]
            ratio = f"{tv['per_contact']:.2f} / {rnd:.2f}" if rnd is not None else f"{tv['per_contact']:.2f} / -"
            pvt = r.get("predicted_vs_true") or {}
            ret = tv["by_offer"].get("RETENTION_DISCOUNT")
            dr = (r.get("ope") or {}).get("dr")
            covers = "" if dr is None else (f"{dr['estimate']:+,.0f} {_ci(dr['ci95'])} "
                                            f"({'yes' if dr['ci95'][0] <= tv['total'] <= dr['ci95'][1] else 'no'})")
            lines.append(
                f"| {world} | {name} | {tv['contacts']:,} | {tv['total']:+,.0f} | {r['share_of_oracle']:.1%} | "
                f"{d['difference']:+,.0f} {_ci(d['ci95'])} | {ratio} | {pvt.get('value_ratio') or float('nan'):.3f} | "
                f"{r['retention_contacts']:,}" + (f" ({ret['total']:+,.0f})" if ret else "") + f" | {covers} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_policy")
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seeds", default="7,1234,99", help="World seeds, comma-separated (the first is the demo's).")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--data", type=Path, help="A trained world's data folder (with --tracking-uri) instead of building one.")
    ap.add_argument("--tracking-uri")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    if (args.data is None) != (args.tracking_uri is None):
        ap.error("--data and --tracking-uri go together")
    if args.data is not None:
        worlds = {f"world {args.data}": (args.data, args.tracking_uri, 0)}
    else:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        worlds = {}
        for seed in seeds:
            data, uri = build(args.workdir / f"seed{seed}", args.households, seed, args.trials)
            worlds[f"{args.households // 1000}k households, seed {seed}"] = (data, uri, seed)
    results: dict = {}
    for world, (data, uri, seed) in worlds.items():
        results[world] = {name: measure(data, uri, args.resamples, seed, config, catalog)
                          for name, (config, catalog) in decision_rules().items()}
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "bench_policy.json").write_text(json.dumps(results, indent=1))
    first_world = next(iter(results))
    default_name = next(iter(decision_rules()))
    text = "\n".join([
        f"Machine: {machine_line()}. Command: `python benchmarks/bench_policy.py` "
        + (f"(--seeds {args.seeds}, {args.trials} Optuna trials per model, as `make demo`)." if args.data is None
           else f"(world {args.data}, champions in {args.tracking_uri})."),
        "",
        "Every world, every decision rule (same champions per world; baselines under each rule's own rules):",
        "",
        render_comparison(results),
        "",
        "The default rule on the first world in full:",
        "",
        render_world(results[first_world][default_name], first_world),
    ])
    print(text)
    write_section(REPO / "benchmarks" / "RESULTS.md", "Next-best-offer policy: true value on the synthetic world", text)


if __name__ == "__main__":
    main()
