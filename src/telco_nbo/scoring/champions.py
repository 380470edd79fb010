"""The four champion models, loaded once from the registry or from an exported folder.

:class:`ChampionModels` loads ``models:/telco-<kind>@champion`` for every model kind (churn and
propensity through the XGBoost flavor, uplift and CLV through their component pyfunc, whose
boosters are plain XGBoost models) and records the versions; :func:`export_champions` copies them
out of the registry for a Bento, and :meth:`ChampionModels.load_dir` reads such a copy back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telco_nbo.errors import ConfigError
from telco_nbo.model_files import load_component_scorer, load_xgboost_model
from telco_nbo.tracking import (
    CHAMPION,
    load_model_version,
    no_champion_reason,
    registered_model_name,
    tracking_session,
)
from telco_nbo.vocabulary import MODEL_KINDS

COMPONENT_KINDS = ("uplift", "clv")
"""Kinds saved as component pyfunc models (several boosters and a spec), not one XGBoost model."""


def _champion_version(client: Any, kind: str) -> Any:
    """The registry's ``@champion`` version of ``kind``.

    Raises:
        ConfigError: No champion; says why when the registry knows (e.g. refused by the gate).
    """
    import mlflow  # heavy (~1 s): loaded only when models are
    from mlflow.exceptions import MlflowException

    name = registered_model_name(kind)
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        why = no_champion_reason(client, name)
        raise ConfigError(
            f"model {name!r} has no '{CHAMPION}' version: {why}" if why else
            f"model {name!r} has no version with alias '{CHAMPION}' in {mlflow.get_tracking_uri()}; "
            f"run telco-nbo train {kind} first") from None


@dataclass
class ChampionModels:
    """The four champion models and the versions that produced them.

    Attributes:
        churn: Churn classifier (XGBoost sklearn).
        propensity: Offer-acceptance classifier (XGBoost sklearn).
        uplift: Uplift scorer (``telco_nbo.training.pyfunc.UpliftScorer``; carries the learner).
        clv: CLV scorer (``telco_nbo.training.pyfunc.ClvScorer``).
        versions: Registered name -> version.
    """

    churn: Any
    propensity: Any
    uplift: Any
    clv: Any
    versions: dict[str, str]

    @classmethod
    def load(cls, tracking_uri: str | None) -> ChampionModels:
        """Load every ``@champion`` from the registry at ``tracking_uri``.

        Raises:
            ConfigError: A model has no champion (names which and why: e.g. refused by the gate).
        """
        churn, churn_info = load_model_version("churn", CHAMPION, tracking_uri)
        prop, prop_info = load_model_version("propensity", CHAMPION, tracking_uri)
        versions = {churn_info.name: str(churn_info.version), prop_info.name: str(prop_info.version)}
        scorers = {}
        with tracking_session(tracking_uri) as client:
            for kind in COMPONENT_KINDS:
                mv = _champion_version(client, kind)
                scorers[kind] = load_component_scorer(f"models:/{mv.name}@{CHAMPION}")
                versions[mv.name] = str(mv.version)
        return cls(churn, prop, scorers["uplift"], scorers["clv"], dict(sorted(versions.items())))

    @classmethod
    def load_dir(cls, folder: str | Path) -> ChampionModels:
        """Load models exported by :func:`export_champions` (a Bento carries them; no registry needed).

        Raises:
            ConfigError: The folder lacks a model or ``versions.json``.
        """
        root = Path(folder)
        try:
            versions = json.loads((root / "versions.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{root} holds no exported champion models (versions.json): {exc}") from exc
        paths = {k: root / registered_model_name(k) for k in MODEL_KINDS}
        missing = [str(p) for p in paths.values() if not (p / "MLmodel").exists()]
        if missing:
            raise ConfigError(f"exported models missing: {missing}")
        churn = load_xgboost_model(str(paths["churn"]))
        prop = load_xgboost_model(str(paths["propensity"]))
        up = load_component_scorer(str(paths["uplift"]))
        clv = load_component_scorer(str(paths["clv"]))
        return cls(churn, prop, up, clv, {str(k): str(v) for k, v in sorted(versions.items())})


def export_champions(tracking_uri: str | None, out_dir: str | Path) -> dict[str, str]:
    """Copy the four ``@champion`` models out of the registry into ``out_dir`` (for a Bento).

    Each model lands in ``out_dir/<registered name>/`` in MLflow's own model format (XGBoost JSON
    / UBJ and the component JSON files, no pickles); ``versions.json`` records which versions.

    Returns:
        Registered name -> version.

    Raises:
        ConfigError: A model has no champion.
    """
    import mlflow  # heavy (~1 s): loaded only when models are

    out = Path(out_dir)
    versions: dict[str, str] = {}
    with tracking_session(tracking_uri) as client:
        for kind in MODEL_KINDS:
            mv = _champion_version(client, kind)
            name = mv.name
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(f"models:/{name}@{CHAMPION}", dst_path=str(target))
            versions[name] = str(mv.version)
    (out / "versions.json").write_text(json.dumps(dict(sorted(versions.items())), indent=2))
    return versions


__all__ = ["ChampionModels", "export_champions"]
