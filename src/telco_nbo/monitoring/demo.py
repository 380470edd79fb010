"""The monitoring step of ``telco-nbo demo``: one clean and two drifted windows against the champion.

The demo's world (``ctx.data_dir``) trained the champions. Monitoring compares the champion's
reference with three new scoring batches, each a world of the same size generated with another
seed (other customers, same distribution), written as a data folder and monitored exactly as
``telco-nbo monitor --current <folder>`` would:

Windows have at least 20,000 households (a distance between two small samples is noisy: below
~10,000 accounts a clean window's price distance can approach the 0.07 line).

- ``clean``: no scenario -> expected to pass;
- ``price_rise``: a 15 % price rise in one region -> expected to fail on the price feature(s);
- ``offer_fatigue``: the retention offer turned harmful for small businesses -> expected to fail on
  that segment's uplift (the window has at least 50,000 households: the small-business holdout is
  ~10 % of a 40 % sample, and its effect must clear the interval).

A detected drift is the expected outcome, not an error: the step reports each window's verdict
and the failed checks, and raises only if a window cannot be monitored at all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from telco_nbo.data.io import write_world
from telco_nbo.data.synthetic import generate_world
from telco_nbo.monitoring import (
    add_to_workspace,
    load_config,
    load_reference_from_champion,
    log_to_mlflow,
    monitor,
    window_from_data_folder,
    write_outputs,
)

SCENARIOS = (("clean", None, 20_000), ("price_rise", "price_rise", 20_000), ("offer_fatigue", "offer_fatigue", 50_000))
"""(window name, generator scenario, minimum households; else the demo world's size)."""


def run_window(
    folder: str | Path, out_dir: str | Path, *, tracking_uri: str, workspace: str | Path | None = None, config_path: str | Path | None = None
) -> dict[str, Any]:
    """Monitor one data folder against the churn champion; write the report, log it to MLflow.

    Returns:
        ``passed``, ``failed`` (check names), ``drifted`` (features), ``uplift`` (segment -> status
        of the latest period), ``summary_html``, ``mlflow_run_id``.
    """

    cfg = load_config(config_path if config_path is not None else _shipped_thresholds())
    window = window_from_data_folder(folder, tracking_uri=tracking_uri)
    reference = load_reference_from_champion("churn", tracking_uri)
    output = monitor(
        reference, window.frame, model_name="telco-churn", config=cfg, contact_log=window.contact_log, contacts=window.contacts
    )
    files = write_outputs(output, out_dir)
    run_id = log_to_mlflow(output, out_dir, tracking_uri)
    if workspace is not None:
        add_to_workspace(output, workspace)
    r = output.result
    latest = max((c.period for c in r.uplift), default=None)
    return {
        "passed": r.passed,
        "failed": [c.name for c in r.failed],
        "drifted": r.drifted_columns,
        "uplift": {c.segment: c.status for c in r.uplift if c.period == latest},
        "labels": window.labels_available,
        "rows": len(window.frame),
        "summary_html": str(Path(out_dir) / files["summary_html"]),
        "mlflow_run_id": run_id,
    }


def _shipped_thresholds() -> Path | None:
    # monitoring/thresholds.yaml of a source checkout; the built-in defaults otherwise.
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        p = base / "monitoring" / "thresholds.yaml"
        if p.is_file():
            return p
    return None


def demo_step(ctx: Any) -> dict[str, Any]:
    """Demo step: monitor a clean, a price-rise and an offer-fatigue window; print which tests fail.

    Args:
        ctx: The demo context (``data_dir``, ``tracking_uri``, ``seed``, ``console``, ``out``,
            ``households``); the churn champion must exist (the training step made it).

    Returns:
        Window name -> its outcome (see :func:`run_window`), plus ``workspace``.
    """
    from rich.table import Table

    root = Path(ctx.out) / "monitoring"
    workspace = root / "evidently_workspace"
    results: dict[str, Any] = {}
    table = Table(title="Monitoring the churn champion: one clean window, two drifted ones")
    for col in ("window", "accounts", "verdict", "failed checks", "expected", "time"):
        table.add_column(col)
    expected = {
        "clean": "pass",
        "price_rise": "drift on price features",
        "offer_fatigue": "uplift harmful in small_business",
    }
    for name, scenario, min_households in SCENARIOS:
        t0 = time.perf_counter()
        world = generate_world(max(int(ctx.households), min_households), int(ctx.seed) + 1000, scenario=scenario)
        folder = root / "windows" / name
        write_world(world, folder, overwrite=True)
        res = run_window(folder, root / "reports" / name, tracking_uri=ctx.tracking_uri, workspace=workspace)
        res["scenario_detail"] = world.meta.get("scenario_detail")
        res["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = res
        shown = ", ".join(res["failed"][:4]) + (f" (+{len(res['failed']) - 4})" if len(res["failed"]) > 4 else "")
        verdict = "[green]passed[/]" if res["passed"] else "[red]FAILED[/]"
        table.add_row(name, f"{res['rows']:,}", verdict, shown or "-", expected[name], f"{res['seconds']:.0f} s")
    ctx.console.print(table)
    ctx.console.print(
        f"reports: {root / 'reports'} · trend across windows: evidently ui --workspace {workspace}"
    )
    results["workspace"] = str(workspace)
    return results
