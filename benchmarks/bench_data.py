"""Benchmark: synthetic world generation + feature building at 100k and 1M households.

Each size runs in a fresh process (time and peak RSS of that process alone). Aim (issue 2):
100k households generated and featurized in <= 30 s, <= 4 GB, time growing linearly.

Usage: python benchmarks/bench_data.py [--sizes 100000 1000000] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_line, run_measured, write_section  # noqa: E402

STEP = """
import time
import pandas as pd
from telco_nbo.data.synthetic import generate_world
from telco_nbo.features import build_account_features
t0 = time.perf_counter()
world = generate_world({n}, seed=1)
t1 = time.perf_counter()
feats = build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))
t2 = time.perf_counter()
result = dict(households={n}, accounts=len(world.tables["accounts"]), lines=len(world.tables["lines"]),
              usage_rows=len(world.tables["usage_monthly"]), feature_rows=len(feats),
              feature_cols=feats.shape[1], generate_s=round(t1 - t0, 2), features_s=round(t2 - t1, 2),
              total_s=round(t2 - t0, 2))
"""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of RESULTS.md."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = ap.parse_args(argv)
    rows = []
    for n in args.sizes:
        r = run_measured(STEP.format(n=n))
        rows.append(r)
        print(r, flush=True)
    base = rows[0]
    lines = [
        f"Machine: {machine_line()}",
        "",
        "`python benchmarks/bench_data.py` — `generate_world` + `build_account_features`, each size in its own process.",
        "",
        "| households | accounts | lines | usage rows | generate s | features s | total s | s per 100k (vs first size) | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per100k = r["total_s"] / (r["households"] / 100_000)
        ratio = per100k / (base["total_s"] / (base["households"] / 100_000))
        lines.append(
            f"| {r['households']:,} | {r['accounts']:,} | {r['lines']:,} | {r['usage_rows']:,} | "
            f"{r['generate_s']} | {r['features_s']} | {r['total_s']} | {per100k:.1f} ({ratio:.2f}×) | {r['peak_rss_mb']:,.0f} |"
        )
    lines += ["", "Aim: 100k households in ≤ 30 s and ≤ 4 GB; linear growth means the per-100k column stays ≈ 1.0×."]
    write_section(args.results, "Data: generation + features", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
