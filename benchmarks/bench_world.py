"""The synthetic world's calibration targets, measured (the causal model of offers, no models trained).

What is measured (results into benchmarks/RESULTS.md, section "Synthetic world: calibration of the
offer model"), on a world of ``--households`` (default 100k, as ``make demo``), from its truth:

- persuadables' share of the retention target (accounts at a decision point: month-to-month, out
  of contract, or within 90 days of the contract end), target 15-25 %;
- the average retention effect: RETENTION_DISCOUNT's change in 90-day churn on the persuadables
  and on the whole target, target "a few points" on the persuadables;
- the oracle's value per active account (every account's best deliverable offer and channel by
  true value, contacted if positive; no policy rules), target >= +5;
- "retention offer to the riskiest" (by true churn probability: a stronger baseline than a model)
  at its best budget, target at most half the oracle's;
- contacting everyone with the retention offer, and with a random deliverable offer: clearly
  negative.

Usage: ``python benchmarks/bench_world.py [--households 100000] [--seed 7]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(households: int, seed: int) -> dict:
    """Generate a world and measure the targets from its truth."""
    from telco_nbo.data.synthetic import generate_world
    from telco_nbo.evaluation.value import default_channel_rows

    t0 = time.perf_counter()
    w = generate_world(households, seed)
    gen_s = time.perf_counter() - t0
    oe = w.truth["offer_effects"]
    ta = w.truth["accounts"].assign(account_id=lambda d: d["account_id"].astype(str)).set_index("account_id")
    acc = w.tables["accounts"].set_index("account_id").loc[ta.index]
    as_of = pd.Timestamp(w.meta["as_of"])
    dte = (acc["contract_end_date"] - as_of).dt.days
    target = (acc["contract_type"] == "month_to_month") | (dte <= 90)
    seg = ta["uplift_segment"]
    # Each (account, offer) on its preferred channel when allowed, else the cheapest (as evaluate does).
    one = default_channel_rows(oe.assign(account_id=oe["account_id"].astype(str), offer_id=oe["offer_id"].astype(str)),
                               ["account_id", "offer_id"])
    rd = one[one["offer_id"] == "RETENTION_DISCOUNT"].set_index("account_id")
    best = oe.groupby("account_id", observed=True)["true_value"].max()
    oracle = float(best.clip(lower=0).sum())
    order = ta["p_churn_90d"].sort_values(ascending=False).index
    v = rd["true_value"].reindex(order).to_numpy()
    cum = np.r_[0.0, np.cumsum(v)]
    k = int(np.argmax(cum))
    deliverable = one[one["p_accept"] > 0]
    n = len(ta)
    return {
        "households": households, "seed": seed, "generate_s": round(gen_s, 1), "active_accounts": n,
        "retention_target": int(target.sum()),
        "persuadable_share_of_target": float((seg[target] == "persuadable").mean()),
        "segment_shares": seg.value_counts(normalize=True).round(4).to_dict(),
        "retention_effect_persuadables": float(rd.loc[seg[seg == "persuadable"].index, "delta_churn"].mean()),
        "retention_effect_target": float(rd.loc[target[target].index, "delta_churn"].mean()),
        "retention_value_by_segment": rd.groupby(seg.reindex(rd.index))["true_value"].mean().round(2).to_dict(),
        "oracle_total": oracle, "oracle_per_active_account": oracle / n, "oracle_contacts": int((best > 0).sum()),
        "top_true_churn_best_budget": k, "top_true_churn_best_value": float(cum[k]),
        "top_true_churn_value_at_decile": float(cum[n // 10]),
        "everyone_retention_offer": float(np.nansum(v)), "everyone_retention_offer_per_account": float(np.nansum(v) / n),
        "random_deliverable_offer_per_contact": float(deliverable["true_value"].mean()),
        "random_deliverable_offer_everyone": float(deliverable.groupby("account_id")["true_value"].mean().sum()),
    }


def render(r: dict) -> str:
    ok = lambda c: "met" if c else "**not met**"  # noqa: E731
    return "\n".join([
        f"Machine: {machine_line()}. Command: `python benchmarks/bench_world.py --households {r['households']}` "
        f"(seed {r['seed']}; generated in {r['generate_s']} s; {r['active_accounts']:,} active accounts).",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| persuadables 15-25 % of the retention target ({r['retention_target']:,} accounts at a decision point) "
        f"| {r['persuadable_share_of_target']:.1%} | {ok(0.15 <= r['persuadable_share_of_target'] <= 0.25)} |",
        f"| retention effect a few points of churn (RETENTION_DISCOUNT, persuadables) "
        f"| {r['retention_effect_persuadables'] * 100:+.2f} points (whole target {r['retention_effect_target'] * 100:+.2f}) "
        f"| {ok(-0.08 <= r['retention_effect_persuadables'] <= -0.01)} |",
        f"| oracle >= +5 per active account | {r['oracle_per_active_account']:+.2f} ({r['oracle_contacts']:,} contacts, "
        f"{r['oracle_total']:+,.0f}) | {ok(r['oracle_per_active_account'] >= 5)} |",
        f"| top churn (true risk, retention offer) at its best budget <= half the oracle "
        f"| {r['top_true_churn_best_value']:+,.0f} at {r['top_true_churn_best_budget']:,} contacts "
        f"(top decile: {r['top_true_churn_value_at_decile']:+,.0f}) "
        f"| {ok(r['top_true_churn_best_value'] <= 0.5 * r['oracle_total'])} |",
        f"| contacting everyone clearly negative | retention offer {r['everyone_retention_offer']:+,.0f} "
        f"({r['everyone_retention_offer_per_account']:+.2f} per account); a random deliverable offer to everyone "
        f"{r['random_deliverable_offer_everyone']:+,.0f} | {ok(r['everyone_retention_offer'] < 0)} |",
        "",
        "Segment shares of the active base: " + ", ".join(f"{k} {v:.1%}" for k, v in r["segment_shares"].items())
        + ". Mean true value of the retention offer per segment: "
        + ", ".join(f"{k} {v:+.1f}" for k, v in r["retention_value_by_segment"].items())
        + ". The discount costs 10 a month for its 12-month term (-113 discounted per acceptance), so it pays only "
        "on persuadables at high risk; most of the oracle's value is cross-sell and service recovery to the "
        "accounts that need them.",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    r = measure(args.households, args.seed)
    print(json.dumps(r, indent=1))
    write_section(REPO / "benchmarks" / "RESULTS.md", "Synthetic world: calibration of the offer model", render(r))


if __name__ == "__main__":
    main()
