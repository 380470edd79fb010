"""The capacity step at batch size: the decomposed linear program against the whole one, same run.

What is measured (results into benchmarks/RESULTS.md, section "Campaign capacity: the contact
budget and channel limits"): a ranking of ``N`` accounts with 1-3 ranked offers each on random
channels (values gamma-distributed, as ranked offers are), a budget of a third of the accounts and
call-center capacity of a tenth, fitted by :func:`telco_nbo.nbo.capacity.apply_capacity` -- above
``EXACT_LP_OPTIONS`` options by the certified decomposition -- and by the whole linear program in
the same run (the baseline). Both must reach the same optimum.

Usage: ``python benchmarks/bench_capacity.py [--accounts 100000 300000]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine_line, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ["call_center", "app", "email"]


def ranking(n: int, seed: int = 0) -> pd.DataFrame:
    """A long ranking frame: per account 1-3 selected offers, by value, on random channels."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 4, n)
    acc = np.repeat(np.arange(n), k)
    rank = np.concatenate([np.arange(1, j + 1) for j in k])
    value = rng.gamma(2.0, 10.0, len(acc))
    # Ranked by value within each account.
    order = np.lexsort((-value, acc))
    value = value[order]
    return pd.DataFrame({
        "account_id": np.char.add("A", acc.astype(str)), "offer_id": np.char.add("O", rank.astype(str)),
        "selected": True, "rank": pd.array(rank, dtype="Int64"), "channel": rng.choice(CHANNELS, len(acc)),
        "expected_value": value, "layer": None, "rule_id": None, "reason": None, "value_removed": np.nan,
    })


def main() -> None:
    import telco_nbo.nbo.capacity as capacity
    from telco_nbo.nbo.config import CapacityConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[100_000, 300_000])
    args = ap.parse_args()
    rows = []
    default = capacity.EXACT_LP_OPTIONS
    for n in args.accounts:
        frame = ranking(n)
        cfg = CapacityConfig(max_contacts=n // 3, per_channel={"call_center": n // 10})
        capacity.EXACT_LP_OPTIONS = default
        t0 = time.perf_counter()
        _, dec = capacity.apply_capacity(frame, cfg)
        t_dec = time.perf_counter() - t0
        capacity.EXACT_LP_OPTIONS = 10**12
        t0 = time.perf_counter()
        _, whole = capacity.apply_capacity(frame, cfg)
        t_whole = time.perf_counter() - t0
        capacity.EXACT_LP_OPTIONS = default
        same = abs(dec.value_after - whole.value_after) <= 1e-6 * max(1.0, abs(whole.value_after))
        rows.append((n, len(frame), dec.method, t_dec, t_whole, dec.value_after, whole.value_after, same,
                     ", ".join(f"{lim.name} {lim.shadow_price:.2f}" for lim in dec.limits)))
        print(rows[-1], flush=True)
    lines = [f"Machine: {machine_line()}. Command: `python benchmarks/bench_capacity.py --accounts "
             f"{' '.join(map(str, args.accounts))}`.", "",
             "| accounts | ranked offers | method | seconds | whole LP, seconds (same run) | speed-up | optimum | "
             "whole LP's optimum | same | shadow prices |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for n, opts, method, td, tw, vd, vw, same, prices in rows:
        lines.append(f"| {n:,} | {opts:,} | {method} | {td:.1f} | {tw:.1f} | {tw / td:.1f}x | {vd:,.2f} | {vw:,.2f} | "
                     f"{'yes' if same else 'NO'} | {prices} |")
    text = "\n".join(lines)
    print(text)
    write_section(REPO / "benchmarks" / "RESULTS.md", "Campaign capacity: the contact budget and channel limits", text)


if __name__ == "__main__":
    main()
