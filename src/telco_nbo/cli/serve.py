"""``telco-nbo serve``: start the next-best-offer API (BentoML) on the @champion models."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from telco_nbo.cli._common import console, user_errors


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command()
    def serve(
        data: Path | None = typer.Option(None, "--data", help="Data folder: rank its accounts by id (features at its as_of)."),
        tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: TELCO_NBO_TRACKING_URI / ./mlflow.db)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(3000, "--port", min=1, max=65535, help="Port."),
        api_key_env: str | None = typer.Option(None, "--api-key-env", help="Env variable holding the API key for scoring routes."),
        prediction_log: Path | None = typer.Option(None, "--prediction-log", help="JSONL decision log (default: TELCO_NBO_PREDICTION_LOG / ./predictions/decisions.jsonl)."),
        catalog_path: Path | None = typer.Option(None, "--catalog", help="Offer catalog YAML (default built-in)."),
        config_path: Path | None = typer.Option(None, "--config", help="NBO policy YAML (default built-in)."),
        model_dir: Path | None = typer.Option(None, "--model-dir", help="Exported champion models (instead of the registry)."),
        workers: int = typer.Option(1, "--workers", min=1, help="HTTP worker processes (each with its own engine)."),
        engine: str = typer.Option("process", "--engine", help="Where decisions are computed: 'process' (an engine "
                                   "process beside each HTTP worker: HTTP and decisions on separate cores) or "
                                   "'thread' (inside the HTTP worker)."),
        engine_restart: bool = typer.Option(True, "--engine-restart/--no-engine-restart", help="Restart a dead "
                                            "decision engine (backoff 0.5 s doubling to 30 s)."),
        liveness_grace: float = typer.Option(60.0, "--liveness-grace", min=0.0, help="Seconds a dead engine may take "
                                             "to come back before /livez fails."),
        drain_timeout: int = typer.Option(30, "--drain-timeout", min=1, help="On SIGTERM: seconds to finish "
                                          "the requests in flight (new connections are refused meanwhile)."),
        reload_every: float | None = typer.Option(None, "--reload-every", min=1.0, help="Poll the registry every "
                                                  "SECONDS and switch to changed @champion models (also: POST /admin/reload)."),
        explain_engine: bool = typer.Option(True, "--explain-engine/--no-explain-engine", help="Answer /explain "
                                            "in an engine process of its own (lower CPU priority): a long "
                                            "explanation never holds up /rank."),
        explain_max_cost: int = typer.Option(5000, "--explain-max-cost", min=1, help="Most explanations one "
                                             "/explain may ask for (accounts x models explained); 422 beyond."),
        state_dir: Path | None = typer.Option(None, "--state-dir", help="BentoML's working folder (metrics "
                                              "files, temporary files; default: BENTOML_HOME, else "
                                              "<workdir>/.bentoml): nothing is written to ~/bentoml."),
        access_log: bool = typer.Option(False, "--access-log/--no-access-log", help="Log one line per HTTP request "
                                        "(every decision is in the prediction log either way)."),
        export_models: Path | None = typer.Option(None, "--export-models", help="Only copy the champions into this folder "
                                                  "(for bentoml build, see serving/bentofile.yaml) and exit."),
    ) -> None:
        """Serve /rank, /score, /explain, /healthz, /readyz and /metrics over HTTP."""
        with user_errors():
            from telco_nbo.config import get_settings
            from telco_nbo.errors import ConfigError

            if export_models is not None:
                from telco_nbo.scoring import export_champions

                versions = export_champions(get_settings(tracking_uri=tracking_uri).resolved_tracking_uri(), export_models)
                console.print(f"exported {', '.join(f'{k} v{v}' for k, v in versions.items())} -> {export_models}",
                              highlight=False)
                return

            if engine not in ("process", "thread"):
                raise ConfigError(f"--engine must be 'process' or 'thread', got {engine!r}")
            if data is not None and not data.is_dir():
                raise ConfigError(f"data folder {data} does not exist")
            if api_key_env and not os.environ.get(api_key_env):
                raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is not set")
            for p, what in ((catalog_path, "--catalog"), (config_path, "--config")):
                if p is not None and not p.is_file():
                    raise ConfigError(f"{what} {p} does not exist")
            settings = get_settings(tracking_uri=tracking_uri, prediction_log=prediction_log)
            uri = settings.resolved_tracking_uri()
            default_store = settings.workdir / "mlflow.db"
            if model_dir is None and uri == f"sqlite:///{default_store.resolve()}" and not default_store.exists():
                # Opening a SQLite store creates it: refuse before a stray ./mlflow.db appears.
                raise ConfigError(f"no MLflow store at {default_store} (the default): pass --tracking-uri "
                                  "(or set TELCO_NBO_TRACKING_URI), or train first")
            if model_dir is None:
                # Fail now, with the reason, rather than from a server that never gets ready.
                from telco_nbo.cli.rank import champion_versions

                versions = champion_versions(uri)
                console.print("champions: " + ", ".join(f"{k} v{v}" for k, v in versions.items()), highlight=False)
            cfg = {
                "tracking_uri": uri, "data_dir": str(data.resolve()) if data else None, "api_key_env": api_key_env,
                "prediction_log": str(settings.resolved_prediction_log().resolve()),
                "catalog_path": str(catalog_path.resolve()) if catalog_path else None,
                "config_path": str(config_path.resolve()) if config_path else None,
                "model_dir": str(model_dir.resolve()) if model_dir else None,
                "engine": engine, "engine_restart": engine_restart, "liveness_grace": liveness_grace,
                "reload_every": reload_every, "explain_engine": explain_engine,
                "explain_max_cost": explain_max_cost,
            }
            env = dict(os.environ, TELCO_NBO_SERVE_CONFIG=json.dumps(cfg), BENTOML_DO_NOT_TRACK="True")
            if state_dir is not None or not os.environ.get("BENTOML_HOME"):
                home = (state_dir or settings.workdir / ".bentoml").resolve()
                home.mkdir(parents=True, exist_ok=True)
                env["BENTOML_HOME"] = str(home)
            console.print(f"serving on http://{host}:{port} (decisions -> {cfg['prediction_log']})", highlight=False)
            args = [sys.executable, "-m", "bentoml", "serve", "telco_nbo.serving.bento:NBOService",
                    "--host", host, "--port", str(port), "--timeout-graceful-shutdown", str(drain_timeout)]
            if workers > 1:
                env["TELCO_NBO_SERVE_WORKERS"] = str(workers)
            env["TELCO_NBO_SERVE_ACCESS_LOG"] = "1" if access_log else "0"
        # Replace this process: signals (Ctrl-C, SIGTERM from a supervisor) reach the server directly.
        os.execve(sys.executable, args, env)
