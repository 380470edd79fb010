"""Run every benchmark in sequence (``make bench``); each writes its own section of RESULTS.md.

The machines here are shared and noisy, so every benchmark measures its baseline in the same run
and reports a ratio next to the absolute figures. Pass ``--quick`` for the small sizes only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

POLICY_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "telco_nbo_bench_policy"
"""bench_policy.py's default workdir (its worlds and champions, one folder per seed)."""
POLICY_QUICK_DIR = Path("/tmp/telco_nbo_bench_policy_quick")


def _policy_world(workdir: Path, seed: int) -> list[str]:
    """``--world DATA URI`` of one of bench_policy.py's worlds."""
    return ["--world", str(workdir / f"seed{seed}" / "data"), f"sqlite:///{workdir / f'seed{seed}' / 'mlflow.db'}"]


# (script, full-size arguments, quick arguments)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench_data.py", [], ["--sizes", "20000", "100000"]),
    ("bench_world.py", [], ["--households", "20000"]),
    ("bench_training.py", ["--steps", "ibm", "churn", "all", "--households", "83000", "--trials", "20"],
     ["--steps", "ibm", "churn", "--households", "20000", "--trials", "3"]),
    ("bench_serving.py", [], ["--accounts", "20000", "--seconds", "5", "--repeat", "1"]),
    ("bench_policy.py", [], ["--households", "20000", "--trials", "0", "--seeds", "7",
                             "--workdir", str(POLICY_QUICK_DIR)]),
    # The per-offer effects of the worlds and champions bench_policy.py just built.
    ("bench_offer_effects.py", [a for seed in (7, 1234, 99) for a in _policy_world(POLICY_DIR, seed)],
     [*_policy_world(POLICY_QUICK_DIR, 7), "--no-write"]),
    ("bench_capacity.py", [], ["--accounts", "50000"]),
    ("bench_monitoring.py", [], ["--rows", "200000", "--preset-rows", "50000"]),
    ("bench_scale.py", ["--accounts", "1000000", "--accounts", "5000000"], ["--accounts", "100000"]),
]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return non-zero if any failed."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--only", nargs="*", help="script names to run (default: all)")
    args = ap.parse_args(argv)
    failed = []
    for script, full, quick in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            print(f"skip {script}: not present", flush=True)
            continue
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        print("$", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
