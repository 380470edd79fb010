"""What a registered model may contain before this package loads it: data, and only known code.

Loading an MLflow model can run code. The uplift and CLV models are MLflow *models from code*: the
file ``_pyfunc_model.py`` stored with each version is executed on load. The XGBoost flavor imports
the class named in the model's ``MLmodel`` file. Whoever can write to the registry (or to its
artifact store) could therefore run code in the service, in ``rank`` and in ``monitor``.

So every model is copied to a local folder first and checked there, and only that checked copy is
loaded (no second download between check and load):

- **XGBoost models** (churn, propensity): the ``xgboost`` flavor with the classifier or regressor
  class of XGBoost's scikit-learn API, a model file in XGBoost's own ``json`` / ``ubj`` format, no
  extra code paths;
- **component models** (uplift, CLV): the ``python_function`` flavor through MLflow's
  models-from-code loader, no extra code paths, and a code file whose SHA-256 is on the allow-list:
  the digest of the ``_pyfunc_model.py`` this installed package ships (it only rebuilds the scorer
  from JSON files, see :mod:`telco_nbo.training.pyfunc`), plus any digests listed in
  ``TELCO_NBO_TRUSTED_MODEL_CODE`` (comma-separated; for models saved by another release you have
  reviewed);
- **no file of an executable or pickled kind** anywhere in the model (``.pkl``, ``.joblib``,
  ``.so``, ``.pyc``, any ``.py`` but the allowed code file...).

``TELCO_NBO_TRUST_REGISTRY_CODE=true`` turns the checks off (for a registry only your own training
pipeline can write to, holding models this package did not make). A refused model raises a
:class:`~telco_nbo.errors.ConfigError` naming the model and every problem.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from telco_nbo.config import get_settings
from telco_nbo.errors import ConfigError

CODE_FILE = "_pyfunc_model.py"
"""The models-from-code file the component models are saved with."""

XGBOOST_CLASSES = frozenset({"xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor"})
"""Classes the XGBoost flavor may instantiate."""

XGBOOST_FORMATS = frozenset({"json", "ubj"})
"""XGBoost's own model formats (data, never pickles)."""

CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
"""MLflow's loader for models from code (the only pyfunc loader allowed besides XGBoost's)."""

FORBIDDEN_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".cloudpickle", ".dill", ".so", ".pyd", ".dll",
                                ".dylib", ".pyc", ".pyo", ".pth", ".egg", ".whl", ".zip", ".sh", ".ipynb"})
"""File kinds that can carry code: a checked model holds none of them."""


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def own_code_digest() -> str:
    """Return the SHA-256 of the models-from-code file this installed package ships."""
    return sha256_file(Path(__file__).parent / "training" / CODE_FILE)


def trusted_code_digests(extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the allow-list: this package's own code file, the configured digests and ``extra``."""
    configured = get_settings().trusted_model_code.split(",")
    return frozenset({own_code_digest(), *(d.strip().lower() for d in (*configured, *extra) if d.strip())})


def model_file_problems(folder: str | Path, trusted: Iterable[str] | None = None) -> list[str]:
    """Return what makes a local MLflow model folder unsafe to load (empty: safe).

    Args:
        folder: A model folder as MLflow saves it (``MLmodel`` at its root).
        trusted: Allowed SHA-256 digests of the models-from-code file (default:
            :func:`trusted_code_digests`).

    Returns:
        One plain sentence per problem.
    """
    root = Path(folder)
    allowed = frozenset(trusted) if trusted is not None else trusted_code_digests()
    try:
        meta = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [f"no readable MLmodel file ({type(exc).__name__})"]
    flavors = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    problems: list[str] = []
    code_file: Path | None = None
    if "xgboost" in flavors:
        xgb = flavors["xgboost"] or {}
        if set(flavors) - {"xgboost", "python_function"}:
            problems.append(f"unexpected flavors {sorted(set(flavors) - {'xgboost', 'python_function'})}")
        if xgb.get("model_class") not in XGBOOST_CLASSES:
            problems.append(f"XGBoost flavor names class {xgb.get('model_class')!r}, not one of {sorted(XGBOOST_CLASSES)}")
        if xgb.get("model_format") not in XGBOOST_FORMATS:
            problems.append(f"XGBoost model format {xgb.get('model_format')!r} is not json or ubj")
        if xgb.get("code") or pyfunc.get("code"):
            problems.append("the model adds code paths")
        if pyfunc and pyfunc.get("loader_module") != "mlflow.xgboost":
            problems.append(f"python_function loader {pyfunc.get('loader_module')!r} is not mlflow.xgboost")
    elif pyfunc:
        if set(flavors) != {"python_function"}:
            problems.append(f"unexpected flavors {sorted(set(flavors) - {'python_function'})}")
        if pyfunc.get("loader_module") != CODE_LOADER:
            problems.append(f"python_function loader {pyfunc.get('loader_module')!r} is not models-from-code "
                            f"({CODE_LOADER}); a pickled python model is never loaded")
        if pyfunc.get("code"):
            problems.append("the model adds code paths")
        name = Path(str(pyfunc.get("model_code_path") or "")).name
        if name != CODE_FILE:
            problems.append(f"code file {name or '<none>'!r} is not {CODE_FILE}")
        else:
            code_file = root / name
            if not code_file.is_file():
                problems.append(f"{CODE_FILE} is missing")
            elif sha256_file(code_file) not in allowed:
                problems.append(f"{CODE_FILE} (sha256 {sha256_file(code_file)[:16]}...) is not on the allow-list "
                                "(this package's own file, or TELCO_NBO_TRUSTED_MODEL_CODE)")
    else:
        problems.append(f"neither an XGBoost nor a models-from-code model (flavors {sorted(flavors)})")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path == code_file:
            continue
        if path.suffix.lower() == ".py" or path.suffix.lower() in FORBIDDEN_SUFFIXES:
            problems.append(f"file {rel} may carry code")
    return problems


def check_model_files(folder: str | Path, what: str) -> Path:
    """Raise unless the local model folder is safe to load (:func:`model_file_problems`).

    Args:
        folder: The local model folder.
        what: How to name the model in the message (``models:/telco-uplift@champion``).

    Returns:
        ``folder`` as a path.

    Raises:
        ConfigError: The model holds unknown code (each problem named).
    """
    if get_settings().trust_registry_code:
        return Path(folder)
    problems = model_file_problems(folder)
    if problems:
        raise ConfigError(f"refusing to load {what}: " + "; ".join(problems)
                          + ". Models must hold data and this package's own loader only; set "
                          "TELCO_NBO_TRUSTED_MODEL_CODE to a reviewed file's sha256, or "
                          "TELCO_NBO_TRUST_REGISTRY_CODE=true if only your own pipeline writes the registry")
    return Path(folder)


def _fetch(uri: str, tmp: str) -> Path:
    """Copy the model at ``uri`` (``models:/...``, ``runs:/...`` or a path) into ``tmp``; check it."""
    import mlflow  # heavy (~1 s): loaded only when models are

    local = uri if Path(uri).is_dir() else mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
    return check_model_files(local, uri)


def load_xgboost_model(uri: str) -> Any:
    """Load an XGBoost-flavor model after checking a local copy (scikit-learn API, with probabilities).

    Raises:
        ConfigError: The model holds unknown code.
    """
    import mlflow  # heavy (~1 s): loaded only when models are

    with tempfile.TemporaryDirectory(prefix="telco-nbo-model-") as tmp:
        return mlflow.xgboost.load_model(str(_fetch(uri, tmp)))


def load_component_scorer(uri: str) -> Any:
    """Load a component (uplift / CLV) model after checking a local copy; return its scorer.

    The scorer is taken out of the pyfunc wrapper (bypasses pyfunc's schema casts).

    Raises:
        ConfigError: The model holds unknown code.
    """
    import mlflow  # heavy (~1 s): loaded only when models are

    with tempfile.TemporaryDirectory(prefix="telco-nbo-model-") as tmp:
        return mlflow.pyfunc.load_model(str(_fetch(uri, tmp))).unwrap_python_model().scorer


__all__ = [
    "CODE_FILE",
    "check_model_files",
    "load_component_scorer",
    "load_xgboost_model",
    "model_file_problems",
    "own_code_digest",
    "sha256_file",
    "trusted_code_digests",
]
