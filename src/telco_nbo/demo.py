"""The end-to-end demo behind ``telco-nbo demo`` (and ``make demo``).

Each capability of the platform adds one step here; a step takes the demo's context, does real
work through the same public functions a user would call, writes its outputs under ``out`` and
prints a short summary. Steps run in order and each later step reads what earlier ones wrote,
exactly as separate CLI calls would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from telco_nbo.data.io import load_world, write_world
from telco_nbo.data.synthetic import generate_world, summarize_world
from telco_nbo.experiments import readout_from_tables, timing_rule_from_readout, to_html, to_markdown
from telco_nbo.features import FEATURE_COLUMNS, build_account_features, make_churn_labels
from telco_nbo.monitoring import demo as monitoring_demo
from telco_nbo.serving import demo as serving_demo
from telco_nbo.tracking import model_versions, no_champion_reason, promote, registered_model_name, tracking_session
from telco_nbo.training import pipeline as training_pipeline
from telco_nbo.vocabulary import MODEL_KINDS


@dataclass
class DemoContext:
    """State shared by the demo's steps.

    Attributes:
        out: Output folder (data, MLflow store, reports).
        households: Size of the synthetic world.
        seed: Seed of the world and of every model.
        trials: Optuna trials per model (a short budget).
        console: Where to print.
        results: Step name -> summary, filled as steps run.
    """

    out: Path
    households: int
    seed: int
    trials: int
    console: Console
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        """The data folder the demo generates."""
        return self.out / "data"

    @property
    def tracking_uri(self) -> str:
        """The demo's own MLflow store (SQLite), so it never mixes with a user's runs."""
        return f"sqlite:///{(self.out / 'mlflow.db').resolve()}"


def step_data(ctx: DemoContext) -> dict[str, Any]:
    """Generate the synthetic world, write it as a data folder, build features at ``as_of``."""

    t0 = time.perf_counter()
    world = generate_world(ctx.households, seed=ctx.seed)
    t1 = time.perf_counter()
    write_world(world, ctx.data_dir, overwrite=True)
    # Read back through the validating loader, as every later command does.
    world = load_world(ctx.data_dir)
    as_of = world.as_of_date()
    t2 = time.perf_counter()
    feats = build_account_features(world.tables, as_of)
    labels = make_churn_labels(world.tables, as_of)
    t3 = time.perf_counter()
    summary = summarize_world(world)
    churn_90d = float(labels["churned"].mean())
    stages = feats["account_lifecycle_stage"].value_counts(normalize=True).sort_index()

    table = Table(title=f"Synthetic telco world ({ctx.households:,} households, seed {ctx.seed}, as of {as_of.date()})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k in ("households", "accounts", "lines", "usage_rows", "tickets", "contacts"):
        table.add_row(k, f"{summary[k]:,}")
    table.add_row("annual churn rate", f"{summary['annual_churn_rate']:.1%}")
    table.add_row("90-day churn after as-of (label)", f"{churn_90d:.1%}")
    table.add_row("active accounts featurized", f"{len(feats):,} × {len(FEATURE_COLUMNS)} model features")
    table.add_row("lifecycle stages", ", ".join(f"{s} {v:.0%}" for s, v in stages.items()))
    table.add_row("generate / load+validate / features", f"{t1 - t0:.1f} s / {t2 - t1:.1f} s / {t3 - t2:.1f} s")
    ctx.console.print(table)
    return {"summary": summary, "churn_90d": churn_90d, "n_features": len(FEATURE_COLUMNS)}


def step_readout(ctx: DemoContext) -> dict[str, Any]:
    """Read out the offer-timing experiment and compare it with the generator's true effects."""
    import json

    world = load_world(ctx.data_dir, with_truth=True)
    readout = readout_from_tables(world.tables, "EXP-TIMING-1", seed=ctx.seed)
    rule = timing_rule_from_readout(readout, "product_mix")
    out = ctx.out / "readout"
    out.mkdir(parents=True, exist_ok=True)
    (out / "readout.json").write_text(readout.model_dump_json(indent=2))
    (out / "readout.md").write_text(to_markdown(readout))
    (out / "readout.html").write_text(to_html(readout))
    (out / "timing_rule.json").write_text(rule.model_dump_json(indent=2))

    truth = (world.meta.get("truth_summary") or {}).get("timing") or {}
    table = Table(title=f"EXP-TIMING-1 readout ({'trustworthy' if readout.trustworthy else 'UNTRUSTWORTHY: SRM'})")
    for col in ("metric", "arm", "lift vs control [95% CI]", "p", "true effect", "covered"):
        table.add_column(col)
    for m in readout.metrics:
        for c in m.primary_comparisons():
            true = _true_timing_effect(truth, m.spec.name, c.arm)
            covered = "" if true is None else ("yes" if c.abs_ci_low <= true <= c.abs_ci_high else "NO")
            table.add_row(
                m.spec.name + (" (CUPED)" if c.cuped else ""), c.arm, f"{c.abs_lift:+.4g} [{c.abs_ci_low:+.4g}, {c.abs_ci_high:+.4g}]",
                f"{c.p_value:.3g}", "" if true is None else f"{true:+.4g}", covered,
            )
    ctx.console.print(table)
    rules = ", ".join(f"{k} -> {v}" for k, v in rule.rules.items()) or "none significant"
    ctx.console.print(f"timing rule by product mix: {rules}   (report: {out / 'readout.html'})")
    return {"trustworthy": readout.trustworthy, "rule": json.loads(rule.model_dump_json())}


def _true_timing_effect(truth: dict[str, Any], metric: str, arm: str) -> float | None:
    """Look up the generator's true average effect of ``arm`` on ``metric`` (None if absent)."""
    overall = truth.get("overall", truth)
    by_arm = overall.get(arm) if isinstance(overall, dict) else None
    if isinstance(by_arm, dict):
        for key in (metric, f"{metric}_effect", f"delta_{metric}"):
            if isinstance(by_arm.get(key), (int, float)):
                return float(by_arm[key])
    return None


def step_train(ctx: DemoContext) -> dict[str, Any]:
    """Train churn, propensity, uplift and CLV with a short Optuna budget; promote champions.

    A model the promotion gate's quality floor refuses (on a small world the retention experiment's
    holdout is a few hundred enrolments) would stop the ranking. The demo says so, with the gate's
    reason, and forces it with the reason recorded, as a person would with ``telco-nbo promote KIND
    --force --reason TEXT``; the forced version carries the tags that say so.
    """
    summary = training_pipeline.demo_step(ctx)
    forced = {}
    for kind in MODEL_KINDS:
        if not model_versions(kind, ctx.tracking_uri):
            continue
        with tracking_session(ctx.tracking_uri) as client:
            why = no_champion_reason(client, registered_model_name(kind))
            try:
                client.get_model_version_by_alias(registered_model_name(kind), "champion")
                has_champion = True
            except Exception:  # noqa: BLE001 - MLflow raises its own exception type for a missing alias
                has_champion = False
        if has_champion or why is None:
            continue
        ctx.console.print(f"[yellow]{kind}: refused by the quality floor[/] - {why}", highlight=False, soft_wrap=True)
        decision = promote(kind, tracking_uri=ctx.tracking_uri, force=True,
                           reason=f"demo on a {ctx.households:,}-household world: the ranking needs every champion")
        ctx.console.print(f"[yellow]{kind}: forced for the demo[/] ({decision.reason})", highlight=False, soft_wrap=True)
        forced[kind] = why
    if forced:
        summary = {**summary, "forced_below_quality_floor": forced}
    return summary


def step_rank(ctx: DemoContext) -> dict[str, Any]:
    """Rank next-best offers with the champion models; policy value against baselines from truth."""
    return serving_demo.demo_step(ctx)


def step_monitor(ctx: DemoContext) -> dict[str, Any]:
    """Monitor a clean and two drifted windows against the churn champion's reference."""
    return monitoring_demo.demo_step(ctx)


STEPS: list[tuple[str, Callable[[DemoContext], dict[str, Any]]]] = [
    ("data", step_data),
    ("train", step_train),
    ("rank", step_rank),
    ("readout", step_readout),
    ("monitor", step_monitor),
]
"""The demo's steps, in order."""


def run_demo(out: Path, *, households: int = 100_000, seed: int = 7, trials: int = 5,
             console: Console | None = None) -> dict[str, Any]:
    """Run every demo step.

    Args:
        out: Output folder (created; an existing demo there is replaced step by step).
        households: Synthetic world size.
        seed: Seed of the world and models.
        trials: Optuna trials per model.
        console: Where to print (default: stdout).

    Returns:
        Step name -> that step's summary.
    """
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, households=households, seed=seed, trials=trials, console=console)
    for name, step in STEPS:
        console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        ctx.results[name] = step(ctx)
        console.print(f"[dim]{name}: {time.perf_counter() - t0:.1f} s[/]")
    return ctx.results
