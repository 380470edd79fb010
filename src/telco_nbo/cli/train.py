"""``telco-nbo train churn|propensity|uplift|clv|all``: tune, evaluate, log and register models."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from telco_nbo.cli._common import console, out, steps, user_errors
from telco_nbo.errors import ConfigError
from telco_nbo.vocabulary import MODEL_KINDS

# Training, tracking and Dask modules are imported when the command runs: the CLI starts (and
# prints --help) without loading MLflow, XGBoost or scikit-learn.


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command()
    def train(
        model: str = typer.Argument(..., help="churn | propensity | uplift | clv | all"),
        data: Path = typer.Option(..., "--data", help="Data folder (validated before any run starts)."),
        trials: int | None = typer.Option(None, "--trials", min=0, help="Optuna trials per model (0 = no tuning)."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: SQLite in the working directory)."),
        optuna_storage: str | None = typer.Option(None, "--optuna-storage", help="Optuna storage URL (default: SQLite in the working directory)."),
        as_of: str | None = typer.Option(None, "--as-of", help="Feature date YYYY-MM-DD (default: the folder's as_of)."),
        seed: int | None = typer.Option(None, "--seed", help="Seed of splits, samplers and models."),
        params: Path | None = typer.Option(
            None, "--params", help="Parameter file (YAML); default training/<model>.yaml when it exists. With 'all': a folder."
        ),
        promote_after: bool = typer.Option(False, "--promote", help="Run the champion/challenger promotion after training."),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="Dask scheduler address or 'local': train churn or propensity with xgboost.dask (see docs/scaling_out.md)."
        ),
        external_memory: bool = typer.Option(
            False, "--external-memory", help="With --scheduler: keep no training row in worker memory (Parquet shards + XGBoost external memory)."
        ),
        shard_dir: Path | None = typer.Option(
            None, "--shard-dir", help="With --external-memory: parent folder of the temporary shards, seen by every worker (default: the data folder)."
        ),
    ) -> None:
        """Train MODEL on a data folder: Optuna tuning, holdout evaluation, MLflow run, new registry version."""
        with user_errors():
            if model not in (*MODEL_KINDS, "all"):
                raise ConfigError(f"unknown model {model!r}; expected one of {', '.join((*MODEL_KINDS, 'all'))}")
            # MLflow's download progress bars would flood logs; an explicit user setting wins.
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            from telco_nbo.training.config import load_config
            from telco_nbo.training.pipeline import promote_all, train_all

            kinds = MODEL_KINDS if model == "all" else (model,)
            overrides = {"trials": trials, "tracking_uri": tracking_uri, "optuna_storage": optuna_storage,
                         "as_of": as_of, "seed": seed}
            configs = {k: load_config(k, _param_file(k, params, model == "all"), **overrides) for k in kinds}
            if scheduler is None and (external_memory or shard_dir is not None):
                raise ConfigError("--external-memory and --shard-dir apply to Dask training: add --scheduler")
            if scheduler is not None:
                from telco_nbo.scale.cli import train_on_dask

                train_on_dask(model, data, configs, scheduler, promote_after, external_memory,
                              None if shard_dir is None else str(shard_dir))
                return
            console.print(f"training {', '.join(kinds)} on {data} ...", highlight=False)

            def done(kind: str, result) -> None:  # noqa: ANN001 - TrainResult
                h = ", ".join(f"{k}={v:.4g}" for k, v in list(result.holdout_metrics.items())[:6])
                version = f"v{result.model_version} ({', '.join(result.aliases)})" if result.model_version else "not registered"
                out.print(f"[bold]{kind}[/]: {version} run {result.run_id} in {result.seconds:.0f} s - holdout {h}",
                          highlight=False, soft_wrap=True)
                if result.model_version and "champion" not in result.aliases:
                    from telco_nbo.tracking import promotion_refusal

                    why = promotion_refusal(kind, result.model_version, configs[kind].tracking_uri)
                    if why:
                        console.print(f"[yellow]{kind}: not champion[/] - {why}", highlight=False, soft_wrap=True)

            with steps(len(kinds), f"training {kinds[0]}") as step:
                def done_and_next(kind: str, result) -> None:  # noqa: ANN001 - TrainResult
                    done(kind, result)
                    later = kinds[kinds.index(kind) + 1:]
                    step(f"training {later[0]}" if later else "done")

                step(f"training {kinds[0]} (Optuna trials, fit, SHAP, MLflow)")
                from telco_nbo.tuning import TRIAL_PROGRESS

                def trial_done(study: str, done_n: int, total: int) -> None:
                    step.describe(f"training: {study} Optuna trial {done_n}/{total}")

                token = TRIAL_PROGRESS.set(trial_done)
                try:
                    results = train_all(data, configs, kinds=kinds, on_done=done_and_next)
                finally:
                    TRIAL_PROGRESS.reset(token)
            if model == "all":
                for kind in kinds:
                    if kind not in results:
                        out.print(f"[yellow]{kind}[/]: skipped (this data has no randomized retention experiment)")
            elif model not in results:
                raise ConfigError(f"{model}: this data folder has no randomized retention experiment (EXP-RETENTION-1)")
            if promote_after:
                for kind, d in promote_all(tuple(results), tracking_uri=configs[kinds[0]].tracking_uri).items():
                    verdict = "[green]promoted[/]" if d.promoted else "[yellow]kept the champion[/]"
                    out.print(f"{d.model_name}: {verdict} - {d.reason}", highlight=False, soft_wrap=True)


def _param_file(kind: str, given: Path | None, many: bool) -> Path | None:
    """The parameter file of ``kind``: ``given`` (a file, or with ``all`` a folder), else the default."""
    if given is not None:
        if given.is_dir():
            path = given / f"{kind}.yaml"
            return path if path.exists() else None
        if many:
            raise ConfigError(f"--params with 'all' must be a folder of <kind>.yaml files, got {given}")
        if not given.is_file():
            raise ConfigError(f"parameter file {given} does not exist")
        return given
    default = Path("training") / f"{kind}.yaml"
    return default if default.is_file() else None
