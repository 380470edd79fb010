"""``telco-nbo readout``: read out an A/B test from a data folder.

Writes ``readout.json`` (the typed result), ``readout.md``, ``readout.html`` (with forest plots) and,
when the readout has a ``product_mix`` breakdown (or ``--rule-segment`` names another), the timing
rule ``timing_rule.json``. Everything is computed before the first file is written, so a failure
leaves nothing half-written.

Exit codes: 0 readout written; 1 readout written but UNTRUSTWORTHY (sample ratio mismatch);
2 bad input (nothing written).
"""

from __future__ import annotations

from pathlib import Path

import typer

from telco_nbo.cli._common import console, out, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``readout`` command to ``app``."""

    @app.command()
    def readout(
        data: Path = typer.Option(..., "--data", help="Data folder (telco-nbo data generate / import-csv)."),
        experiment: str = typer.Option(..., "--experiment", help="Experiment id, e.g. EXP-TIMING-1."),
        out_dir: Path = typer.Option(..., "--out", help="Folder for readout.json / .md / .html [+ timing_rule.json]."),
        metric: list[str] = typer.Option(
            [], "--metric", help="Metric(s) to read out: accepted, churned, revenue (repeatable; default all present)."
        ),
        segments: str | None = typer.Option(
            None, "--segments", help="Comma-separated segment columns (default: every built-in segment column)."
        ),
        sequential: bool = typer.Option(False, "--sequential", help="Add always-valid (peeking-safe) intervals."),
        alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
        min_segment_units: int = typer.Option(50, "--min-segment-units", help="Per-arm minimum of a segment cell."),
        rule_segment: str | None = typer.Option(
            None, "--rule-segment", help="Segment column keying the timing rule (default product_mix when present)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the Monte Carlo posterior draws."),
        tracking_uri: str | None = typer.Option(
            None, "--tracking-uri", help="Also log the readout to this MLflow tracking URI (experiment telco-ab-readouts)."
        ),
    ) -> None:
        """A/B readout: SRM, lifts with intervals, Bayesian summaries, CUPED, segments, timing rule."""
        with user_errors():
            from telco_nbo.data.io import load_world
            from telco_nbo.errors import ConfigError
            from telco_nbo.experiments.data import SEGMENT_COLUMNS, experiment_frame
            from telco_nbo.experiments.readout import default_metrics, readout_from_tables
            from telco_nbo.experiments.render import to_html, to_markdown
            from telco_nbo.experiments.timing_rule import timing_rule_from_readout

            world = load_world(data)
            frame = experiment_frame(world.tables, experiment)
            available = {m.name: m for m in default_metrics(frame)}
            unknown = [m for m in metric if m not in available]
            if unknown:
                raise ConfigError(f"unknown metric(s) {unknown}; choose from {sorted(available)}")
            specs = [available[m] for m in metric] if metric else list(available.values())
            seg_cols = [s.strip() for s in segments.split(",") if s.strip()] if segments is not None else list(SEGMENT_COLUMNS)
            result = readout_from_tables(
                world.tables, experiment, metrics=specs, segments=seg_cols, alpha=alpha,
                min_segment_units=min_segment_units, sequential=sequential, seed=seed,
            )
            key = rule_segment or ("product_mix" if "product_mix" in result.segment_columns else None)
            rule = timing_rule_from_readout(result, key, alpha=alpha) if key else None
            files = {
                "readout.json": result.model_dump_json(indent=2),
                "readout.md": to_markdown(result, rule=rule),
                "readout.html": to_html(result, rule=rule),
            }
            if rule is not None:
                files["timing_rule.json"] = rule.model_dump_json(indent=2)
            run_id = None
            if tracking_uri:
                from telco_nbo.experiments.tracking import log_readout_to_mlflow

                run_id = log_readout_to_mlflow(result, tracking_uri)
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                tmp = out_dir / f".{name}.tmp"
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(out_dir / name)

        _print_summary(result, rule, out_dir, run_id)
        if not result.trustworthy:
            raise typer.Exit(code=1)


def _print_summary(result, rule, out_dir: Path, run_id: str | None) -> None:  # noqa: ANN001
    from rich.table import Table

    if not result.trustworthy:
        console.print(f"[bold white on red] UNTRUSTWORTHY [/] {result.warnings[0]}", soft_wrap=True)
    table = Table(title=f"{result.experiment_id}: lift vs {result.control_arm} (alpha {result.alpha})")
    for col in ("metric", "arm", "control", "arm mean", "abs. lift [CI]", "p", "P(beat)"):
        table.add_column(col)
    for m in result.metrics:
        for c in m.primary_comparisons():
            fmt = (lambda v: f"{v:.2%}") if m.spec.kind == "binary" and not c.cuped else (lambda v: f"{v:,.2f}")
            table.add_row(
                m.spec.name + (" (CUPED)" if c.cuped else ""), c.arm, fmt(c.mean_reference), fmt(c.mean_treatment),
                f"{c.abs_lift:+.4g} [{c.abs_ci_low:+.4g}, {c.abs_ci_high:+.4g}]",
                f"{c.p_value:.3g}" + (" *" if c.significant else ""), f"{c.prob_beat_reference:.1%}",
            )
    out.print(table)
    if rule is not None:
        rules = ", ".join(f"{k} -> {v}" for k, v in rule.rules.items()) or "none (no significant winner)"
        out.print(f"timing rule by {rule.segment_column} on {rule.metric}: {rules}")
    from telco_nbo.experiments.decision import decide

    d = decide(result, rule)
    out.print(f"[bold]{d.headline}[/] {d.action}", highlight=False, soft_wrap=True)
    out.print(f"written to {out_dir}" + (f"; MLflow run {run_id}" if run_id else ""))
