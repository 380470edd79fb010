"""``telco-nbo evaluate``: what a decision table is worth, in truth and from the logs.

Writes ``policy_value.json`` (the typed result) and ``policy_value.html`` (answer first, charts).
Everything is computed before the first file is written. Exit codes: 0 written; 2 bad input
(an unknown account / offer / channel, a malformed table: nothing written).
"""

from __future__ import annotations

from pathlib import Path

import typer

from telco_nbo.cli._common import out, steps, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""

    @app.command()
    def evaluate(
        data: Path = typer.Option(..., "--data", help="Data folder the decisions were made on."),
        decisions: Path = typer.Option(
            ..., "--decisions",
            help="Decision table: a `rank` output (its first choices), the service's decisions.jsonl, or a "
                 "CSV / Parquet list with account_id, offer_id[, channel]."),
        out_dir: Path = typer.Option(..., "--out", help="Folder for policy_value.json and policy_value.html."),
        as_of: str | None = typer.Option(None, "--as-of", help="Decision date (default: the folder's as_of)."),
        retention_offer: str | None = typer.Option(
            None, "--retention-offer",
            help="The offer the top-churn baseline sends (default: the catalog's retention offer with its own "
                 "experiment evidence, effect_evidence)."),
        catalog: Path | None = typer.Option(
            None, "--catalog", help="Offer catalog YAML the decisions were made with (default: built-in); "
                                    "gives the default --retention-offer and the offers' bill changes."),
        resamples: int = typer.Option(1000, "--resamples", min=100, help="Bootstrap resamples."),
        seed: int = typer.Option(0, "--seed", help="Seed of bootstraps and cross-fitting."),
        tracking_uri: str | None = typer.Option(
            None, "--tracking-uri", help="Also log the figures and the report to this MLflow tracking URI."),
    ) -> None:
        """Value decisions on the world's truth, against fair baselines, and off-policy from the logs."""
        with user_errors(), steps(4, "loading the data folder") as step:
            import json

            import pandas as pd

            from telco_nbo.data.io import load_meta, load_world
            from telco_nbo.errors import ConfigError
            from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS, Economics
            from telco_nbo.evaluation.evaluate import evaluate_decisions
            from telco_nbo.evaluation.report import headline, to_html
            from telco_nbo.evaluation.value import read_decisions
            from telco_nbo.nbo.catalog import evidenced_retention_offer, load_catalog

            offers = load_catalog(catalog) if catalog is not None else None
            economics = Economics.from_catalog(offers) if offers is not None else DEFAULT_ECONOMICS
            retention_offer = retention_offer or (evidenced_retention_offer(offers) if offers is not None else None)
            world = load_world(data, with_truth=True)
            date = as_of or load_meta(data).get("as_of")
            if not date:
                raise ConfigError(f"{data} has no as_of in meta.json; pass --as-of")
            table = read_decisions(decisions)
            ranking = None
            if decisions.suffix == ".parquet":
                raw = pd.read_parquet(decisions)
                ranking = raw if "layer" in raw.columns else None
            step("valuing the decisions: truth, baselines, bootstraps, off-policy")
            result = evaluate_decisions(world.tables, world.truth, table, date, ranking=ranking,
                                        retention_offer=retention_offer, economics=economics,
                                        n_resamples=resamples, seed=seed)
            step("writing the report")
            payload = json.dumps(result.to_dict(), indent=2, default=float)
            page = to_html(result)
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, text in (("policy_value.json", payload), ("policy_value.html", page)):
                tmp = out_dir / f".{name}.tmp"
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(out_dir / name)
            step("logging to MLflow")
            run_id = _log_mlflow(result, out_dir, tracking_uri) if tracking_uri else None
        out.print(headline(result), soft_wrap=True)
        if result.ope is not None:
            dr = result.ope["dr"]
            out.print(f"from the logs alone (doubly robust): {dr['estimate']:+,.0f} "
                      f"[{dr['ci95'][0]:+,.0f}, {dr['ci95'][1]:+,.0f}]")
        out.print(f"written to {out_dir}" + (f"; MLflow run {run_id}" if run_id else ""))


def _log_mlflow(result, out_dir: Path, tracking_uri: str) -> str:  # noqa: ANN001 - PolicyEvaluation
    """Log the figures and both files as one MLflow run; returns its id.

    Through a client, not the fluent API: ``mlflow.set_experiment`` / ``set_tracking_uri`` would
    change the process's global MLflow state under a caller (a notebook, a test, a scheduler).
    """
    import time

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    name = "telco-nbo-policy-value"
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    run = client.create_run(exp_id, run_name=f"evaluate {result.as_of}")
    run_id = run.info.run_id
    try:
        metrics = {"contacts": float(result.contacts)}
        if result.true_value is not None:
            metrics["true_value_total"] = result.true_value["total"]
            for k in ("oracle", "top_churn", "random"):
                metrics[f"{k}_total"] = result.baselines[k]["total"]
            if result.share_of_oracle is not None:
                metrics["share_of_oracle"] = result.share_of_oracle
        if result.ope is not None:
            for k in ("ips", "snips", "dr"):
                metrics[f"ope_{k}"] = result.ope[k]["estimate"]
        now = int(time.time() * 1000)
        for k, v in metrics.items():
            client.log_metric(run_id, k, float(v), timestamp=now)
        client.log_param(run_id, "as_of", result.as_of)
        client.log_artifact(run_id, str(out_dir / "policy_value.json"))
        client.log_artifact(run_id, str(out_dir / "policy_value.html"))
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id
