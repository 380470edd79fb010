"""``telco-nbo promote MODEL``: move ``champion`` to the challenger if it wins on the same holdout."""

from __future__ import annotations

import typer

from telco_nbo.cli._common import out, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``promote`` command to ``app``."""

    @app.command()
    def promote(
        model: str = typer.Argument(..., help="churn | propensity | uplift | clv (or telco-<kind>)."),
        metric: str = typer.Option("roc_auc", "--metric", help="Holdout metric to compare (logged as holdout_<metric>)."),
        lower_is_better: bool | None = typer.Option(
            None,
            "--lower-is-better/--greater-is-better",
            help="Direction of the metric (default: known per metric, e.g. log_loss is lower-is-better).",
            show_default=False,
        ),
        min_improvement: float = typer.Option(0.0, "--min-improvement", min=0.0, help="Margin the challenger must win by."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: SQLite in the working directory)."),
        as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
        fail_if_refused: bool = typer.Option(False, "--fail-if-refused", help="Exit with code 1 when the champion stays."),
        force: bool = typer.Option(False, "--force", help="Promote even below the quality floor or the champion (needs --reason)."),
        reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help="Why --force; recorded on the version."),
    ) -> None:
        """Promote the challenger of MODEL to champion if it clears the quality floor and beats the champion.

        The floor: churn / propensity AUC above a base-rate model's 0.5 (with margin and interval) and log loss below it; CLV against a naive constant CLV (correlation with the true CLV where known, else its hazard's AUC); uplift Qini above random targeting's 0 (its interval reported). The decision, the scores, the floor's figures and any --force reason are recorded as tags on the challenger version.
        """  # noqa: E501 - one paragraph: the help renderer keeps line breaks
        with user_errors():
            from telco_nbo.tracking import promote as do_promote  # lazy: ~0.4 s every other command skips

            decision = do_promote(
                model,
                metric=metric,
                greater_is_better=None if lower_is_better is None else not lower_is_better,
                min_improvement=min_improvement,
                tracking_uri=tracking_uri,
                force=force,
                reason=reason,
            )
        if as_json:
            out.print_json(decision.model_dump_json())
        else:
            if decision.promoted:
                verdict = "[green]promoted[/]"
            elif decision.champion_version is None:
                verdict = "[yellow]refused (no champion)[/]"
            else:
                verdict = f"[yellow]refused, champion stays v{decision.champion_version}[/]"
            out.print(f"{decision.model_name}: {verdict} - {decision.reason}", highlight=False, soft_wrap=True)
        if fail_if_refused and not decision.promoted:
            raise typer.Exit(code=1)
