"""Scheduled monitoring job (cron, Airflow, `mlflow run`): a thin wrapper over `telco-nbo monitor`.

Monitors one model's newest window and writes the report under ``<out-root>/<model>/<UTC stamp>``.
Exit code: 0 passed, 1 a check failed (report written), 2 bad input or config (nothing written).

    python monitoring/run_monitoring.py --model churn --current predictions/ \
        --out-root monitoring_out --workspace monitoring_ws [--reference ref.parquet]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from telco_nbo.cli import app

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Build the ``telco-nbo monitor`` arguments and run it; return its exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--current", required=True)
    ap.add_argument("--out-root", default="monitoring_out")
    ap.add_argument("--reference")
    ap.add_argument("--config", default=str(HERE / "thresholds.yaml"))
    ap.add_argument("--tracking-uri")
    ap.add_argument("--workspace")
    ap.add_argument("--contact-log")
    ap.add_argument("--labels")
    args = ap.parse_args(argv)
    out = Path(args.out_root) / args.model / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    cli = ["monitor", "--model", args.model, "--current", args.current, "--out", str(out), "--config", args.config]
    for flag, value in (
        ("--reference", args.reference),
        ("--tracking-uri", args.tracking_uri),
        ("--workspace", args.workspace),
        ("--contact-log", args.contact_log),
        ("--labels", args.labels),
    ):
        if value:
            cli += [flag, value]
    import click

    try:
        # Not standalone: click returns the command's exit code instead of calling sys.exit.
        return int(app(cli, standalone_mode=False) or 0)
    except click.ClickException as exc:
        exc.show()
        return 2


if __name__ == "__main__":
    sys.exit(main())
