"""The next-best-offer policy's TRUE value on the synthetic world, against simpler retention targetings.

What is measured (results into benchmarks/RESULTS.md, section "Next-best-offer policy"): the
world's generator knows each enrolled account's uplift segment (persuadable, sure thing, lost
cause, sleeping dog) and churn probability, so the true value of sending an account the retention
offer is known (``telco_nbo.serving.demo.true_retention_value``). The champions rank every account
(the batch fast path, the same code as ``telco-nbo rank``); three targetings then spend the same
budget, the number of retention offers the policy makes:

- the NBO policy (uplift x CLV, rules, value, household step);
- the accounts with the highest predicted churn (the classic "top churn decile", cut to the budget);
- random accounts (exact expectation).

The differences come with 95 % bootstrap intervals over accounts (``scipy.stats.bootstrap``,
models and selections held fixed: the interval says how much the figure depends on which accounts
the world happened to have, not on retraining).

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

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(workdir: Path, households: int, seed: int, trials: int) -> tuple[Path, str]:
    """World (with truth) + champions, reused when present."""
    from telco_nbo.training.config import KINDS, load_config
    from telco_nbo.training.pipeline import train_all

    data, uri = workdir / "data", f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "trained.json").exists():
        from telco_nbo.data.io import write_world
        from telco_nbo.data.synthetic import generate_world

        workdir.mkdir(parents=True, exist_ok=True)
        write_world(generate_world(households, seed=seed), data, overwrite=True)
        cfgs = {k: load_config(k, trials=trials, seed=seed, tracking_uri=uri,
                               optuna_storage=f"sqlite:///{workdir / 'optuna.db'}") for k in KINDS}
        res = train_all(data, cfgs)
        (workdir / "trained.json").write_text(json.dumps({k: r.model_version for k, r in res.items()}))
    return data, uri


def interval(diff: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``diff.sum()`` over accounts."""
    from scipy.stats import bootstrap

    res = bootstrap((diff,), np.mean, n_resamples=n_resamples, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low * len(diff)), float(res.confidence_interval.high * len(diff))


def measure(data: Path, uri: str, n_resamples: int, seed: int) -> dict:
    from telco_nbo.serving.demo import rank_world, retention_targeting

    t0 = time.perf_counter()
    ranked = rank_world(data, uri)
    rank_s = time.perf_counter() - t0
    comp = retention_targeting(ranked.policy, ranked.core, ranked.aligned, ranked.world.truth)
    v, chosen, budget = comp.value, comp.chosen.astype(float), comp.budget
    top = np.zeros(len(v))
    top[comp.top[:budget]] = 1.0
    out = dict(comp.summary)
    out["accounts_ranked"] = len(ranked.core.account_ids)
    out["rank_s"] = round(rank_s, 1)
    # Paired per-account differences: their sum is the difference of the two targetings' totals.
    out["policy_minus_top_churn_ci"] = interval(v * (chosen - top), n_resamples, seed)
    out["policy_minus_random_ci"] = interval(v * (chosen - budget / len(v)), n_resamples, seed)
    out["top_churn_minus_random_ci"] = interval(v * (top - budget / len(v)), n_resamples, seed)
    # How the policy's own estimates compare with the truth on the accounts it sends a retention
    # offer: the churn cut (uplift) and the CLV its expected value multiplies.
    core, policy, truth = ranked.core, ranked.policy, ranked.world.truth
    ret_cols = np.flatnonzero(np.isin(policy.offers.kind, ["retention"]))
    pos = {a: i for i, a in enumerate(core.account_ids.astype(str).tolist())}
    rows = np.array([pos[a] for a in comp.frame["account_id"].astype(str)], dtype=np.int64)[comp.chosen]
    jsel = ret_cols[np.argmax(core.selected[rows][:, ret_cols], axis=1)]
    ids = comp.frame["account_id"].astype(str).to_numpy()[comp.chosen]
    clv_true = truth["clv"].set_index("account_id")["clv_36m"] if "clv" in truth else \
        truth["accounts"].set_index("account_id")["clv_36m"]
    out["retention_offers_by_id"] = {str(k): int(v) for k, v in zip(*np.unique(policy.offers.ids[jsel], return_counts=True))}
    out["chosen_predicted_churn_cut"] = float(np.mean(core.parts.uplift[rows, jsel]))
    out["chosen_true_churn_cut"] = float(np.mean(-comp.frame["true_effect"].to_numpy()[comp.chosen]))
    out["chosen_predicted_clv"] = float(np.mean(ranked.aligned.clv[rows]))
    out["chosen_true_clv"] = float(np.mean(clv_true.reindex(ids).to_numpy(dtype=float)))
    out["oracle_true_value"] = float(v[v > 0].sum())
    out["oracle_offers"] = int((v > 0).sum())
    seg = comp.frame["segment"].to_numpy()
    out["segment_mix_all"] = {s: int((seg == s).sum()) for s in sorted(set(seg.tolist()))}
    out["mean_true_value_by_segment"] = {s: float(v[seg == s].mean()) for s in sorted(set(seg.tolist()))}
    return out


def render(r: dict, source: str) -> str:
    b = r["budget"]
    rows = [("NBO policy (uplift x CLV, rules, value)", b, r["policy_true_value"], r["policy_segments"]),
            ("top predicted churn, same budget", b, r["top_churn_true_value"], r["top_churn_segments"]),
            ("random, same budget (expectation)", b, r["random_true_value"], None),
            ("top churn decile (full)", r["top_decile_size"], r["top_decile_true_value"], None)]
    lines = [
        f"Machine: {machine_line()}. Command: `python benchmarks/bench_policy.py` ({source}).",
        "",
        f"The champions rank all {r['accounts_ranked']:,} active accounts ({r['rank_s']:.0f} s, batch fast path). "
        f"Judged on the generator's truth over the {r['accounts_with_truth']:,} accounts whose uplift segment it knows "
        "(the retention experiment's enrolled accounts): true value of a retention offer = "
        "-(true change in 90-day churn) x true 36-month CLV + P(accept) x margin x months - contact cost. "
        f"Budget = the {b:,} retention offers the policy makes among them.",
        "",
        "| targeting | offers | true value | per offer | persuadables / sleeping dogs |",
        "|---|---:|---:|---:|---|",
    ]
    for name, n, v, segs in rows:
        seg = "" if segs is None else f"{segs.get('persuadable', 0)} / {segs.get('sleeping_dog', 0)}"
        lines.append(f"| {name} | {n:,} | {v:,.0f} | {v / max(n, 1):,.1f} | {seg} |")
    ci = lambda k: f"[{r[k][0]:,.0f}, {r[k][1]:,.0f}]"  # noqa: E731
    lines += [
        "",
        "Differences of totals, 95 % bootstrap intervals over accounts (models and selections fixed):",
        f"- policy - top churn: {r['policy_true_value'] - r['top_churn_true_value']:,.0f} {ci('policy_minus_top_churn_ci')}",
        f"- policy - random: {r['policy_true_value'] - r['random_true_value']:,.0f} {ci('policy_minus_random_ci')}",
        f"- top churn - random: {r['top_churn_true_value'] - r['random_true_value']:,.0f} {ci('top_churn_minus_random_ci')}",
        "",
        f"Offers the policy sends these accounts: {', '.join(f'{k} {v:,}' for k, v in r['retention_offers_by_id'].items())}. "
        "The true value above is that of the retention contact the generator simulates (valued with RETENTION_DISCOUNT's "
        "economics for every targeting alike), so the table compares *whom* each targeting contacts. "
        f"On the accounts the policy picks, its estimates against the truth: cut in 90-day churn per contact "
        f"{r['chosen_predicted_churn_cut']:.3f} predicted, {r['chosen_true_churn_cut']:.3f} true; 36-month CLV "
        f"{r['chosen_predicted_clv']:,.0f} predicted, {r['chosen_true_clv']:,.0f} true. An oracle contacting only the "
        f"accounts where the true value is positive: {r['oracle_offers']:,} contacts, {r['oracle_true_value']:,.0f}.",
        "",
        "Segments among the accounts with truth: " + ", ".join(f"{k} {v:,}" for k, v in r["segment_mix_all"].items())
        + "; mean true value of a retention offer per segment: "
        + ", ".join(f"{k} {v:,.1f}" for k, v in r["mean_true_value_by_segment"].items()) + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_policy")
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--data", type=Path, help="A trained world's data folder (with --tracking-uri) instead of building one.")
    ap.add_argument("--tracking-uri")
    ap.add_argument("--resamples", type=int, default=2000)
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
