"""Settings: paths, tracking URI, Optuna storage and seeds.

Values come from (in order of precedence) explicit arguments, ``TELCO_NBO_*`` environment variables,
and the defaults below. The tracking URI also honours MLflow's own ``MLFLOW_TRACKING_URI`` (after
``--tracking-uri`` and ``TELCO_NBO_TRACKING_URI``), as MLflow's documentation teaches users to set it. The defaults are the embedded single-machine setup: everything under the
current working directory, SQLite for MLflow and Optuna, no server.

Nothing here touches the disk or MLflow at import time; :meth:`Settings.ensure_dirs` creates
folders when a command actually needs them.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Resolved configuration of one run.

    Attributes:
        workdir: Root for every default path below.
        tracking_uri: MLflow tracking URI; default SQLite file in ``workdir``.
        optuna_storage: Optuna storage URL; default SQLite file in ``workdir``.
        artifact_root: Where MLflow stores artifacts for experiments it creates.
        seed: Global seed for generators, splits and tuners.
        prediction_log: Where the service appends its decisions (JSONL).
        project_run_id: Run of the ``mlflow run`` project that started this process (set by
            ``training/train.py``); every training run is tagged with it and, when that run is
            in the same store, made its child.
        quality_floor: Enforce the promotion gate's absolute quality floor
            (:mod:`telco_nbo.quality_floor`) on promotions and on a model's first version.
        trusted_model_code: Comma-separated SHA-256 digests of reviewed models-from-code files
            that may be loaded besides this package's own (:mod:`telco_nbo.model_files`).
        trust_registry_code: Load models without checking what code they carry (only for a
            registry that nobody but your own training pipeline can write to).
    """

    model_config = SettingsConfigDict(env_prefix="TELCO_NBO_", extra="ignore")

    workdir: Path = Field(default_factory=Path.cwd)
    tracking_uri: str | None = None
    optuna_storage: str | None = None
    artifact_root: str | None = None
    seed: int = 42
    prediction_log: Path | None = None
    project_run_id: str | None = None
    quality_floor: bool = True
    trusted_model_code: str = ""
    trust_registry_code: bool = False

    def resolved_tracking_uri(self) -> str:
        """Return the tracking URI.

        Order: the explicit value (``--tracking-uri`` / ``TELCO_NBO_TRACKING_URI``), then MLflow's
        ``MLFLOW_TRACKING_URI``, then ``sqlite:///<workdir>/mlflow.db``. Read when called, not at
        import, so a variable set later in the process counts.
        """
        return (
            self.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
            or f"sqlite:///{(self.workdir / 'mlflow.db').resolve()}"
        )

    def resolved_optuna_storage(self) -> str:
        """Return the Optuna storage URL, defaulting to ``sqlite:///<workdir>/optuna.db``."""
        return self.optuna_storage or f"sqlite:///{(self.workdir / 'optuna.db').resolve()}"

    def resolved_artifact_root(self, tracking_uri: str | None = None) -> str:
        """Return where new experiments keep their artifacts.

        Order: the explicit value (``TELCO_NBO_ARTIFACT_ROOT``); for a SQLite store, a
        ``mlartifacts`` folder beside its database (a store and its artifacts travel together, and
        nothing lands in whatever folder the command ran from); else ``<workdir>/mlartifacts``.

        Args:
            tracking_uri: The store the experiment is created in (default: the resolved one).
        """
        if self.artifact_root:
            return self.artifact_root
        uri = tracking_uri or self.resolved_tracking_uri()
        if uri.startswith("sqlite:///"):
            return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
        return (self.workdir / "mlartifacts").resolve().as_uri()

    def resolved_prediction_log(self) -> Path:
        """Return the prediction log path, defaulting to ``<workdir>/predictions/decisions.jsonl``."""
        return self.prediction_log or self.workdir / "predictions" / "decisions.jsonl"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (``None`` values ignored).

    Args:
        **overrides: Field values that win over the environment.

    Returns:
        The resolved settings.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
