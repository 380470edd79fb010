"""Per-offer effects on churn from the logged contacts, against the truth (several offers as several treatments).

For each trained synthetic world: the uplift champion's per-offer relative effects (estimated
from the logged randomized contacts, saved in its spec), their intervals and the shrunk values the
decisions use, beside the world's true relative effect at ``as_of``. Also what an estimate per
*acceptance* would say (acceptors and refusers as separate "treatments", the same regression):
the comparison shows why the project estimates per contact. Acceptance is the customer's choice,
so acceptors differ from refusers in ways the features do not capture, and an offer with no effect
on churn can look strongly protective among its acceptors.

Usage::

    python benchmarks/bench_offer_effects.py --world DATA_DIR TRACKING_URI [--world ...]

(the worlds of ``bench_policy.py``: ``--world $W/seed7/data sqlite:///$W/seed7/mlflow.db``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def true_per_acceptor(truth: dict) -> pd.Series:
    """True relative effect on churn *among acceptors*: acceptance-weighted (churn if accepted - p0) / p0."""
    tr = truth["offer_effects"]
    tr = tr[tr["p_accept"] > 0].sort_values("p_accept").drop_duplicates(["account_id", "offer_id"], keep="last")
    p0 = truth["accounts"].set_index("account_id")["p_churn_90d"].reindex(tr["account_id"]).to_numpy(float)
    w = tr["p_accept"].to_numpy(float)
    d = pd.DataFrame({"offer_id": tr["offer_id"].to_numpy(), "num": w * (tr["p_churn_if_accepted"].to_numpy(float) - p0),
                      "den": w * p0}).groupby("offer_id")[["num", "den"]].sum()
    return d["num"] / d["den"]


def measure(data: Path, uri: str) -> pd.DataFrame:
    """One world's table: per offer, the per-contact estimate and truth, and the per-acceptance ones."""
    from telco_nbo.features import to_model_matrix
    from telco_nbo.models.offer_effects import NO_CONTACT, OfferEffects, estimate_offer_effects
    from telco_nbo.nbo.catalog import load_catalog
    from telco_nbo.nbo.rules import sellable
    from telco_nbo.scoring.champions import ChampionModels
    from telco_nbo.training.data import prepare_logged
    from telco_nbo.training.steps import load_world
    from telco_nbo.training.uplift import true_relative_effects

    world = load_world(data)
    scorer = ChampionModels.load(uri).uplift
    saved = OfferEffects.from_spec(scorer.spec.get("offer_effects"))
    if saved is None:
        raise SystemExit(f"{uri}: the uplift champion carries no per-offer effects (trained before they existed)")
    table = pd.DataFrame(saved.table())
    if table.empty:  # too few logged contacts or controls for any offer (a small world)
        table = pd.DataFrame(index=pd.Index([], name="offer_id"))
        table.attrs.update(tau=saved.tau, n_control=saved.n_control, n_units=saved.n_units, c=saved.baseline_ratio,
                           too_few=saved.too_few)
        return table
    table = table.set_index("offer_id")
    table["true"] = true_relative_effects(world.truth).reindex(table.index)
    # Per acceptance: the same regression, the same units, strata and weights as the training run,
    # with acceptors and refusers as separate actions.
    logged = prepare_logged(world.tables, world.as_of_date(None), saved.horizon_days, policies=saved.policies)
    feats = logged.features
    X = to_model_matrix(feats).reindex(columns=list(scorer.learner.feature_names_in_))
    baseline = scorer.learner.model_control_.predict_proba(X)[:, 1]
    catalog = load_catalog()
    can = sellable(feats, catalog)
    available = {}
    for k, o in enumerate(o.offer_id for o in catalog.offers):
        available[f"{o}|accepted"] = available[f"{o}|refused"] = can[:, k]
    act = logged.action
    action = np.where(act == NO_CONTACT, NO_CONTACT,
                      np.where(logged.accepted, act + "|accepted", act + "|refused")).astype(object)
    per = estimate_offer_effects(action, logged.churned, baseline, logged.household_ids,
                                 horizon_days=saved.horizon_days, available=available,
                                 weights=1.0 / logged.propensity, min_contacts=50)
    acc = {k.split("|")[0]: v for k, v in per.effects.items() if k.endswith("|accepted")}
    table["acceptors"] = pd.Series({k: v.relative_effect for k, v in acc.items()}).reindex(table.index)
    table["acceptors_se"] = pd.Series({k: v.se for k, v in acc.items()}).reindex(table.index)
    table["acceptors_n"] = pd.Series({k: v.n_contacts for k, v in acc.items()}).reindex(table.index)
    table["true_acceptors"] = true_per_acceptor(world.truth).reindex(table.index)
    table.attrs.update(tau=saved.tau, n_control=saved.n_control, n_units=saved.n_units, c=saved.baseline_ratio)
    return table


def render(name: str, t: pd.DataFrame) -> str:
    """A markdown table for one world."""
    rows = [f"**{name}**: {t.attrs['n_units']:,} logged units ({t.attrs['n_control']:,} not contacted); baseline "
            f"model's observed/expected churn on them {t.attrs['c']:.2f}; spread of effects beyond noise "
            f"tau = {t.attrs['tau']:.3f}.", "",
            "| offer | contacts | estimate per contact (95 % interval) | p | evidence (Holm) | decisions use | true | "
            "among acceptors: estimate +- se (n) | true among acceptors |",
            "|---|---|---|---|---|---|---|---|---|"]
    if t.empty:
        return "\n".join(rows[:1] + ["", "No offer has enough logged contacts and not-contacted units it could have "
                                      f"been sold to for an estimate (logged contacts per offer: {t.attrs['too_few']})."])
    for o, r in t.iterrows():
        rows.append(f"| {o} | {int(r['n_contacts']):,} | {r['relative_effect']:+.3f} [{r['ci_low']:+.3f}, "
                    f"{r['ci_high']:+.3f}] | {r['p_value']:.3f} | {'yes' if r['evidence'] else 'no'} | "
                    f"{r['shrunk']:+.3f} | {r['true']:+.3f} | "
                    + (f"{r['acceptors']:+.3f} +- {r['acceptors_se']:.3f} ({int(r['acceptors_n']):,})"
                       if np.isfinite(r["acceptors"]) else "too few") + f" | {r['true_acceptors']:+.3f} |")
    covered = ((t["ci_low"] <= t["true"]) & (t["true"] <= t["ci_high"])).mean()
    rows += ["", f"95 % intervals per contact cover the true effect for {covered:.0%} of the offers."]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", nargs=2, action="append", metavar=("DATA", "TRACKING_URI"), required=True)
    ap.add_argument("--no-write", action="store_true", help="print only (do not update RESULTS.md)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    parts = [f"Machine: {machine_line()}. Command: `python benchmarks/bench_offer_effects.py "
             + " ".join(f"--world {d} {u}" for d, u in args.world) + "` (the worlds and champions of "
             "`bench_policy.py`). Relative effect = change in 90-day churn from a contact, as a share of the "
             "account's risk (-0.2: a fifth fewer leave).", ""]
    for data, uri in args.world:
        parts += [render(str(data), measure(Path(data), uri)), ""]
    text = "\n".join(parts)
    print(text)
    if not args.no_write:
        write_section(REPO / "benchmarks" / "RESULTS.md", "Per-offer effects from the logged contacts", text)


if __name__ == "__main__":
    main()
