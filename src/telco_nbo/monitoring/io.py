"""I/O edges of monitoring: reading windows from files and the champion's reference from MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.monitoring.run import SCORE_COLUMN_BY_KIND
from telco_nbo.tracking import SCORE_COLUMN, load_reference_frame, registered_model_name

SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")


def _read_one(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=suffix == ".jsonl")
            # A prediction-log record may nest its inputs, e.g. {"features": {...}, "churn_score": ...}.
            nested = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, dict)).all()]
            for c in nested:
                frame = frame.drop(columns=c).join(pd.json_normalize(frame[c].tolist()).set_index(frame.index))
            return frame
    except (ValueError, OSError) as exc:
        raise DataValidationError(str(path), [f"cannot be read: {exc}"]) from None
    raise ConfigError(f"unsupported window file {path} (expected one of {', '.join(SUFFIXES)})")


def read_window(path: str | Path) -> pd.DataFrame:
    """Read a monitoring window: one file, or every data file of a folder (same columns), concatenated.

    Args:
        path: A ``.parquet`` / ``.csv`` / ``.jsonl`` / ``.json`` file or a folder of them (read in
            name order, so dated file names concatenate in time order).

    Returns:
        The window.

    Raises:
        ConfigError: The path does not exist, or a folder holds no data file.
        DataValidationError: A file cannot be parsed, or the files of a folder differ in columns.
    """
    path = Path(path)
    if path.is_file():
        return _read_one(path)
    if not path.is_dir():
        raise ConfigError(f"window not found: {path}")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ConfigError(f"no {'/'.join(SUFFIXES)} files in {path}")
    frames = [_read_one(f) for f in files]
    cols = set(frames[0].columns)
    odd = [f.name for f, fr in zip(files, frames) if set(fr.columns) != cols]
    if odd:
        raise DataValidationError(str(path), [f"files with other columns than {files[0].name}: {odd}"])
    return pd.concat(frames, ignore_index=True)


def load_reference_from_champion(model_name: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """The reference frame of ``models:/<name>@champion``: training features + scores.

    The tracking module saves, with each model's run, a parquet sample of the training features
    with ``target`` and ``prediction`` columns (tag ``telco_nbo.reference_artifact``). Monitoring
    compares it with scoring batches in which the score column is named after the model kind
    (``churn_score``, ``propensity``, ``uplift``, ``clv``), so ``prediction`` is renamed to that name.

    Args:
        model_name: ``churn`` or ``telco-churn`` (any kind of :data:`telco_nbo.vocabulary.MODEL_KINDS`).
        tracking_uri: MLflow tracking URI (default from settings).

    Returns:
        The reference frame.

    Raises:
        ConfigError: Unknown model or no champion.
        TelcoNboError: The champion's run recorded no reference.
    """

    name = registered_model_name(model_name)
    frame = load_reference_frame(name, tracking_uri=tracking_uri)
    score = SCORE_COLUMN_BY_KIND[name.removeprefix("telco-")]
    if SCORE_COLUMN in frame.columns and score not in frame.columns:
        frame = frame.rename(columns={SCORE_COLUMN: score})
    return frame
