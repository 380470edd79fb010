"""``telco-nbo data generate``: write a synthetic telco world to a data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from telco_nbo.cli._common import console, out, user_errors
from telco_nbo.cli.data import app


@app.command("generate")
def generate(
    households: int = typer.Option(100_000, "--households", "-n", min=1, help="Number of households."),
    seed: int = typer.Option(42, "--seed", "-s", min=0, help="Random seed (same seed -> identical files)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Data folder to create."),
    scenario: str = typer.Option(
        None, "--scenario", help="Drift scenario: price_rise, handset_launch or offer_fatigue (default none)."
    ),
    as_of: str = typer.Option("2025-12-31", "--as-of", help="Scoring date; the world runs 90 days past it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address or 'local': generate partitions on the workers (see docs/scaling_out.md)."
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, help="With --scheduler: number of partitions (default: ~50,000 households each)."
    ),
) -> None:
    """Generate a synthetic world (households, accounts, lines, usage, tickets, contacts,
    experiments, and the ground truth) and print its headline rates."""
    with user_errors():
        from telco_nbo.data.io import check_output_folder

        # Before generating: a taken folder is found out in a second, not after minutes of work.
        check_output_folder(out_dir, overwrite=overwrite)
    if scheduler is not None:
        _generate_on_dask(households, seed, out_dir, scenario, as_of, overwrite, scheduler, partitions)
        return
    with user_errors():
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from telco_nbo.data.io import write_world
        from telco_nbo.data.synthetic import generate_world, summarize_world

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        ) as bar:
            # stages: set-up, timing cohort, ~23 months, tables, write
            task = bar.add_task("generating", total=28)

            def step(name: str) -> None:
                bar.update(task, advance=1, description=name)

            world = generate_world(households, seed, as_of=as_of, scenario=scenario or None, progress=step)
            bar.update(task, description="writing")
            path = write_world(world, out_dir, overwrite=overwrite)
            bar.update(task, completed=28, description="done")
        _print_summary(summarize_world(world), str(path))


def _generate_on_dask(households: int, seed: int, out_dir: Path, scenario: str | None, as_of: str, overwrite: bool,
                      scheduler: str, partitions: int | None) -> None:
    """The --scheduler path: partitions generated and written by the Dask workers (telco_nbo.scale)."""
    with user_errors():
        from telco_nbo.scale import dask_client, generate_world_dask, write_partitioned_world

        n_parts = partitions or max(1, -(-households // 50_000))
        with dask_client(scheduler) as client:
            console.print(f"generating {households:,} households in {n_parts} partitions on {client.scheduler.address} ...",
                          highlight=False)
            world = generate_world_dask(households, seed, n_parts, client, as_of=as_of, scenario=scenario or None)
            path = write_partitioned_world(world, out_dir, client, overwrite=overwrite)
        from telco_nbo.data.io import load_meta

        counts = load_meta(path).get("row_counts", {})
        out.print(f"Synthetic world ({n_parts} partitions; seeded per partition, see docs/scaling_out.md) -> {path}")
        out.print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))


def _print_summary(s: dict[str, Any], path: str) -> None:
    from rich.table import Table

    t = Table(title=f"Synthetic world -> {path}", show_header=True)
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k in ("households", "accounts", "lines", "usage_rows", "tickets", "contacts"):
        t.add_row(k, f"{s[k]:,}")
    t.add_row("annual churn rate", f"{s['annual_churn_rate']:.1%}")
    out.print(t)

    o = Table(title="Campaign and experiment contacts: acceptance by offer")
    o.add_column("offer")
    o.add_column("contacts", justify="right")
    o.add_column("acceptance", justify="right")
    for k, v in s["acceptance_by_offer"].items():
        o.add_row(k, f"{v['contacts']:,}", f"{v['rate']:.1%}")
    out.print(o)

    r = s.get("retention")
    if r:
        u = Table(title=f"{r['experiment_id']} (true effects on 90-day churn)")
        u.add_column("segment")
        u.add_column("share", justify="right")
        u.add_column("true mean tau", justify="right")
        for seg, share in r["segment_shares"].items():
            tau = r["segment_tau"].get(seg)
            u.add_row(seg, f"{share:.1%}", "-" if tau is None else f"{tau:+.4f}")
        u.add_row("all enrolled", f"n={r['n_enrolled']:,}", f"{r['ate_churn_90d']:+.4f}")
        out.print(u)

    tm = s.get("timing")
    if tm:
        tt = Table(title=f"EXP-TIMING-1 ({tm['offer_id']}, {tm['n_households']:,} households): true effects vs control")
        tt.add_column("segment")
        tt.add_column("arm")
        tt.add_column("churned", justify="right")
        tt.add_column("accepted", justify="right")
        tt.add_column("revenue", justify="right")
        rows = [("all", tm["overall"])] + list(tm["by_segment"].items())
        for seg, eff in rows:
            c = eff["control"]
            tt.add_row(seg, "control (level)", f"{c['churned']:.3f}", "0", f"{c['revenue']:.1f}")
            for arm in ("day30", "pre_end60"):
                e = eff[arm]
                tt.add_row("", arm, f"{e['churned']:+.3f}", f"{e['accepted']:+.3f}", f"{e['revenue']:+.1f}")
        out.print(tt)
