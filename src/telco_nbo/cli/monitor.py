"""``telco-nbo monitor``: check a window against the champion's reference; exit 1 when a check fails.

Exit codes: 0 all ``fail``-severity checks passed; 1 a check failed (the report is written);
2 bad input or configuration (nothing is written); 3 an unexpected error (a bug, with its traceback).
"""

from __future__ import annotations

from pathlib import Path

import typer

from telco_nbo.cli._common import console, out, steps, user_errors

DEFAULT_CONFIG = Path("monitoring/thresholds.yaml")


def register(app: typer.Typer) -> None:
    """Add the ``monitor`` command to ``app``."""

    @app.command()
    def monitor(
        model: str = typer.Option(..., "--model", help="Monitored model, e.g. churn or telco-churn."),
        current: Path = typer.Option(
            ...,
            "--current",
            help="Window: a data folder (scored with the champions; labels and the retention log when they have landed), "
            "the service's prediction log (.jsonl file or folder), or a parquet/csv/jsonl file or folder of them.",
        ),
        out_dir: Path = typer.Option(..., "--out", help="Folder for summary.html, summary.json and the Evidently reports."),
        reference: Path | None = typer.Option(
            None, "--reference", help="Reference frame file; default: the champion's reference artifact in MLflow."
        ),
        config: Path | None = typer.Option(
            None, "--config", help="Thresholds YAML (default: monitoring/thresholds.yaml if present, else built-ins)."
        ),
        labels: Path | None = typer.Option(
            None, "--labels", help="Labeled rows (account_id + target [+ period]) joined to the window for quality."
        ),
        contact_log: Path | None = typer.Option(
            None, "--contact-log", help="Treated/control log (segment, period, treated, outcome) for uplift by segment."
        ),
        contacts: Path | None = typer.Option(None, "--contacts", help="Contacts table for acceptance / cancellation KPIs."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: settings)."),
        workspace: Path | None = typer.Option(None, "--workspace", help="Local Evidently workspace to add the run to."),
        no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log the run to MLflow."),
        as_of: str | None = typer.Option(None, "--as-of", help="Scoring date of a data-folder window (default: its meta as_of)."),
        segment_by: str = typer.Option(
            "account_type", "--segment-by", help="Uplift segments of a data-folder window: comma list of account_type, product_mix, contract_type."
        ),
    ) -> None:
        """Data drift, prediction drift, quality, uplift by segment and KPIs for one window."""
        with user_errors(), steps(5, "monitoring") as step:
            from telco_nbo.monitoring import (
                add_to_workspace,
                load_config,
                load_reference_from_champion,
                log_to_mlflow,
                monitor as run_monitor,
                read_window,
                write_outputs,
            )

            cfg_path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
            cfg = load_config(cfg_path)
            from telco_nbo.monitoring.world_window import (
                is_data_folder,
                is_prediction_log,
                window_from_data_folder,
                window_from_prediction_log,
            )

            step(f"reading the window {current}")
            window = None
            # The window's name and own time label the run in Evidently's UI (not the wall clock).
            window_label, window_time = current.name or str(current), None
            if is_data_folder(current):
                window = window_from_data_folder(
                    current, as_of=as_of, tracking_uri=tracking_uri, segment_by=tuple(s.strip() for s in segment_by.split(",") if s.strip())
                )
                cur = window.frame
                window_label, window_time = f"{current.name} as of {window.as_of.date()}", window.as_of
                out.print(
                    f"window: {current} at {window.as_of.date()}, {len(cur):,} accounts, labels "
                    f"{'landed' if window.labels_available else 'not landed yet'}, models {window.model_versions}"
                )
            elif is_prediction_log(current):
                cur = window_from_prediction_log(current)
                first, last = cur["timestamp"].min(), cur["timestamp"].max()
                window_label = f"decisions {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
                window_time = last
            else:
                cur = read_window(current)
            step("loading the reference")
            ref = read_window(reference) if reference is not None else load_reference_from_champion(model, tracking_uri)
            labeled = None
            if labels is not None:
                from telco_nbo.errors import DataValidationError

                lab = read_window(labels)
                if "account_id" not in lab.columns or "account_id" not in cur.columns:
                    raise DataValidationError("labels", ["labels and window both need an account_id column to be joined"])
                labeled = cur.drop(columns=[c for c in lab.columns if c != "account_id" and c in cur.columns]).merge(
                    lab, on="account_id", how="inner"
                )
                if labeled.empty:
                    raise DataValidationError("labels", ["no label matches an account_id of the window"])
            step("drift, quality, uplift and KPI checks")
            output = run_monitor(
                ref,
                cur,
                model_name=model,
                config=cfg,
                labeled=labeled,
                contact_log=read_window(contact_log) if contact_log is not None else (window.contact_log if window else None),
                contacts=read_window(contacts) if contacts is not None else (window.contacts if window else None),
                window=window_label,
                window_time=window_time,
            )
            step(f"writing the reports to {out_dir}")
            files = write_outputs(output, out_dir)
            result = output.result
            step("logging to MLflow / the Evidently workspace")
            if not no_mlflow:
                run_id = log_to_mlflow(output, out_dir, tracking_uri)
                out.print(f"MLflow run: {run_id}")
            if workspace is not None:
                pid = add_to_workspace(output, workspace)
                out.print(f"Evidently workspace {workspace} project {pid} (view: evidently ui --workspace {workspace})")
            step("done")
            out.print(f"summary: {files['summary_html']}")
            for c in result.warnings:
                console.print(f"[yellow]warn[/] {c.name}: {c.detail}", highlight=False)
            for c in result.failed:
                console.print(f"[red]FAIL[/] {c.name}: {c.detail}", highlight=False)
            n = len([c for c in result.checks if c.severity == "fail"])
            if result.passed:
                out.print(f"[green]passed[/]: {n} checks, drift share {result.drift_share:.1%}")
                return
            out.print(f"[red]failed[/]: {len(result.failed)} of {n} checks")
        raise typer.Exit(code=1)
