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

The world and models are built once into ``--workdir`` (the same world size and training as
``make demo``: 100k households, seed 7, 5 Optuna trials per model) and reused on the next run; or
pass ``--data`` and ``--tracking-uri`` of a trained world (e.g. ``demo_out``).

Usage: ``python benchmarks/bench_policy.py [--workdir DIR] [--households 100000] [--trials 5]``
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
    return data, uri


def measure(data: Path, uri: str, n_resamples: int, seed: int) -> dict:
    from telco_nbo.evaluation.evaluate import evaluate_decisions
    from telco_nbo.nbo.rank import core_frame
    from telco_nbo.serving.demo import rank_world

    t0 = time.perf_counter()
    ranked = rank_world(data, uri)
    rank_s = time.perf_counter() - t0
    world = ranked.world
    frame = core_frame(ranked.core, world.meta["as_of"])
    t0 = time.perf_counter()
    ev = evaluate_decisions(world.tables, world.truth, frame, world.meta["as_of"], ranking=frame,
                            n_resamples=n_resamples, seed=seed)
    out = {"rank_s": round(rank_s, 1), "evaluate_s": round(time.perf_counter() - t0, 1), **ev.to_dict()}
    # Winner's curse: on the retention offers the policy sends, predicted vs true cut in churn.
    first = frame[frame["selected"] & (frame["rank"] == 1)]
    ret = first[first["kind"] == "retention"]
    oe = world.truth["offer_effects"]
    keyed = oe[oe["account_id"].isin(ret["account_id"].unique())].astype({"account_id": str, "offer_id": str,
                                                                          "channel": str})
    m = ret.astype({"account_id": str, "offer_id": str, "channel": str}).merge(
        keyed, on=["account_id", "offer_id", "channel"], how="left")
    out["retention_contacts"] = int(len(m))
    out["retention_by_offer"] = m["offer_id"].value_counts().to_dict()
    out["retention_predicted_churn_cut"] = float(m["uplift"].mean()) if len(m) else None
    out["retention_true_churn_cut"] = float(-m["delta_churn"].mean()) if len(m) else None
    return out


def render(r: dict, source: str) -> str:
    tv, b, d = r["true_value"], r["baselines"], r["differences"]
    ci = lambda c: f"[{c[0]:+,.0f}, {c[1]:+,.0f}]"  # noqa: E731
    lines = [
        f"Machine: {machine_line()}. Command: `python benchmarks/bench_policy.py` ({source}).",
        "",
        f"The champions rank all {r['active_accounts']:,} active accounts ({r['rank_s']:.0f} s, batch fast path); the "
        f"ranking's first choices ({r['contacts']:,} contacts) are valued on the world's truth "
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
        f"Retention offers sent: {r['retention_contacts']:,} ({', '.join(f'{k} {v:,}' for k, v in r['retention_by_offer'].items())}); "
        + (f"predicted cut in 90-day churn per contact {r['retention_predicted_churn_cut']:.4f}, true "
           f"{r['retention_true_churn_cut']:.4f}." if r["retention_contacts"] else "none."),
        "",
        f"Off-policy: {r['ope_note']}",
    ]
    return "\n".join(x for x in lines if x is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_policy")
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--data", type=Path, help="A trained world's data folder (with --tracking-uri) instead of building one.")
    ap.add_argument("--tracking-uri")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    if (args.data is None) != (args.tracking_uri is None):
        ap.error("--data and --tracking-uri go together")
    if args.data is not None:
        data, uri = args.data, args.tracking_uri
        source = f"world {args.data}, champions in {args.tracking_uri}"
    else:
        data, uri = build(args.workdir, args.households, args.seed, args.trials)
        source = f"{args.households:,} households, seed {args.seed}, {args.trials} Optuna trials per model, as `make demo`"
    r = measure(data, uri, args.resamples, args.seed)
    (args.workdir).mkdir(parents=True, exist_ok=True)
    (args.workdir / "bench_policy.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1))
    write_section(REPO / "benchmarks" / "RESULTS.md", "Next-best-offer policy: true value on the synthetic world",
                  render(r, source))


if __name__ == "__main__":
    main()
