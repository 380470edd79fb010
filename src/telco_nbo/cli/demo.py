"""``telco-nbo demo``: the whole platform end to end on the embedded default."""

from __future__ import annotations

from pathlib import Path

import typer

from telco_nbo.cli._common import out, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command()
    def demo(
        out_dir: Path = typer.Option(Path("demo_out"), "--out", help="Output folder (data, MLflow store, reports)."),
        households: int = typer.Option(100_000, "--households", min=500, help="Synthetic world size."),
        seed: int = typer.Option(7, "--seed", help="Seed of the world and of every model."),
        trials: int = typer.Option(5, "--trials", min=1, help="Optuna trials per model (short budget)."),
    ) -> None:
        """Run the platform end to end: generate, featurize, train, rank, read out, monitor."""
        with user_errors():
            from telco_nbo.demo import run_demo

            run_demo(out_dir, households=households, seed=seed, trials=trials, console=out)
