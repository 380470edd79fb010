"""Monitoring windows built from a data folder: a scoring batch, its labels and the retention log.

A *scoring batch* window is what the batch job sees at a date ``as_of``: the account features of
every account active at ``as_of`` (exactly the model matrix of :func:`telco_nbo.features.to_model_matrix`,
so it compares column for column with the champion's reference) plus the scores of the
``@champion`` models.

Labels (decision, documented): churn labels are attached **only when they have landed**, i.e.
when the folder's data runs at least ``horizon_days`` (90) past ``as_of``: ``meta["world_end"]``
when recorded (the synthetic world runs to ``as_of + 90 days`` by design, so its own ``as_of``
works), else the last date seen in the folder (latest account start/end, usage month, contact).
A window whose label period is not over yet is monitored for drift only: an account that leaves
after the data ends would otherwise be counted as a stayer and inflate the "quality".

The contact log for uplift by segment comes from the randomized retention experiment
(``EXP-RETENTION-1``): one row per enrolled account with ``treated`` (arm is not the
experiment's control arm), ``outcome`` (the account ended in ``[T0, T0 + 90 days]``),
``period`` (the enrolment month ``YYYY-MM``: one wave per period) and the segment columns
(``account_type``, ``product_mix``, ``contract_type``) measured at enrolment; ``segment`` is the
chosen segmentation (default ``account_type``), the column ``monitoring/thresholds.yaml`` groups by.
Enrolments whose 90-day outcome is not observed yet are left out (and counted in ``attrs``).

Everything here is pure (frames in, frames out) except :func:`window_from_data_folder`, which
reads the folder, and the model loading, which reads the MLflow registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.data.io import load_world
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.features import FEATURE_COLUMNS, build_account_features, make_churn_labels, to_model_matrix
from telco_nbo.monitoring.kpis import product_combination
from telco_nbo.tracking import load_champion, predict_scores

RETENTION_EXPERIMENT = "EXP-RETENTION-1"
LABEL_HORIZON_DAYS = 90
SEGMENT_COLUMNS = ("account_lifecycle_stage", "product_mix")
"""Non-feature columns kept in a window for per-segment quality and KPIs."""


@dataclass
class MonitoringWindow:
    """A window ready for :func:`telco_nbo.monitoring.monitor`.

    Attributes:
        frame: One row per account active at ``as_of``: ``account_id``, ``household_id``, the model
            features, segment columns, the champion scores (``churn_score``, and ``clv``,
            ``uplift``, ``propensity`` when those champions exist) and ``churned`` when labels landed.
        as_of: The scoring date.
        labels_available: Whether ``churned`` is in ``frame``.
        contact_log: Retention-experiment log (see module docstring) or ``None``.
        contacts: The folder's contacts table (for acceptance / cancellation KPIs).
        model_versions: Registered model -> version that scored the window.
        meta: The folder's ``meta.json`` (scenario and its detail for synthetic worlds).
    """

    frame: pd.DataFrame
    as_of: pd.Timestamp
    labels_available: bool
    contact_log: pd.DataFrame | None = None
    contacts: pd.DataFrame | None = None
    model_versions: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def is_data_folder(path: str | Path) -> bool:
    """True when ``path`` is a data folder (has an accounts table), not a folder of window files."""
    p = Path(path)
    return p.is_dir() and any((p / f"accounts.{ext}").is_file() for ext in ("parquet", "csv"))


def observed_until(world: World) -> pd.Timestamp:
    """Last date the folder's data covers: ``meta["world_end"]``, else the latest date in the tables."""
    if world.meta.get("world_end"):
        return pd.Timestamp(world.meta["world_end"])
    t = world.tables
    dates: list[pd.Timestamp] = []
    for table, cols in (("accounts", ("start_date", "end_date")), ("contacts", ("contacted_at",)), ("support_tickets", ("opened_at",))):
        frame = t.get(table)
        for c in cols:
            if frame is not None and c in frame.columns and frame[c].notna().any():
                dates.append(pd.Timestamp(frame[c].max()))
    usage = t.get("usage_monthly")
    if usage is not None and len(usage):
        # A usage month is observed once it is over.
        dates.append(pd.Timestamp(usage["month"].max()) + pd.offsets.MonthEnd(0))
    if not dates:
        raise DataValidationError("accounts", ["no dates in the data folder to tell how far it runs"])
    return max(dates)


def champion_scores(
    features: pd.DataFrame, tracking_uri: str | None = None, *, all_models: bool = True
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score an account feature frame with the ``@champion`` models.

    The churn champion is required (it is the monitored model). With ``all_models`` the other
    champions score too through :class:`telco_nbo.scoring.ChampionScoreProvider` when all four
    exist (``clv``, ``uplift`` = retention uplift, ``propensity`` = the account's best offer
    propensity); if they do not, the window carries the churn score only.

    Args:
        features: Output of :func:`telco_nbo.features.build_account_features`.
        tracking_uri: MLflow tracking URI (default from settings).
        all_models: Also try the other champions.

    Returns:
        ``account_id`` + score columns (aligned with ``features``), and model name -> version.

    Raises:
        ConfigError: No churn champion.
    """

    model, info = load_champion("churn", tracking_uri)
    X = to_model_matrix(features)
    names = list(info.feature_names) or list(X.columns)
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise DataValidationError("features", [f"the churn champion needs columns the features lack: {missing}"])
    out = pd.DataFrame({"account_id": features["account_id"].to_numpy(), "churn_score": predict_scores(model, X[names])})
    versions = {info.name: str(info.version)}
    if all_models:
        try:
            # Scoring loads XGBoost and the four champions: only when all of them are asked for.
            from telco_nbo.nbo.catalog import load_catalog
            from telco_nbo.scoring import ChampionScoreProvider

            scores = ChampionScoreProvider(tracking_uri=tracking_uri, reason_k=0).score(features, load_catalog())
        except ConfigError:
            return out, versions  # not every champion exists yet: monitor the churn model alone
        acc = scores.accounts.set_index("account_id")
        out["clv"] = acc["clv"].reindex(out["account_id"]).to_numpy()
        out["uplift"] = acc["retention_uplift"].reindex(out["account_id"]).to_numpy()
        if len(scores.offers):
            best = scores.offers.groupby("account_id")["propensity"].max()
            out["propensity"] = best.reindex(out["account_id"]).to_numpy()
        versions.update(scores.model_versions)
    return out, versions


def _product_mix(features: pd.DataFrame) -> pd.Series:
    return product_combination(features)


def retention_contact_log(
    tables: Mapping[str, pd.DataFrame],
    *,
    experiment_id: str = RETENTION_EXPERIMENT,
    segment_by: Sequence[str] = ("account_type",),
    horizon_days: int = LABEL_HORIZON_DAYS,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Treated-vs-control log of a randomized retention experiment, one row per enrolled account.

    Args:
        tables: The folder's tables (``contacts``, ``experiments``, ``accounts``, ``lines``).
        experiment_id: The experiment.
        segment_by: Columns joined (``/``) into ``segment``: any of ``account_type``,
            ``product_mix``, ``contract_type``.
        horizon_days: Outcome window after enrolment.
        observed_until: Last date the data covers; enrolments whose window ends later are dropped.

    Returns:
        Columns ``account_id``, ``period``, ``treated``, ``outcome``, ``account_type``,
        ``product_mix``, ``contract_type``, ``segment``; ``attrs["dropped_unobserved"]`` counts the
        enrolments left out.

    Raises:
        DataValidationError: No such experiment / enrolments, unknown accounts, duplicate
            enrolments, or no enrolment with an observed outcome.
        ConfigError: An unknown ``segment_by`` column.
    """
    allowed = ("account_type", "product_mix", "contract_type")
    bad = [c for c in segment_by if c not in allowed]
    if bad or not segment_by:
        raise ConfigError(f"segment_by must be a non-empty subset of {allowed}, got {list(segment_by)}")
    contacts, experiments, accounts = tables.get("contacts"), tables.get("experiments"), tables.get("accounts")
    if contacts is None or experiments is None or accounts is None or experiment_id not in set(experiments["experiment_id"]):
        raise DataValidationError("experiments", [f"no experiment {experiment_id!r} in this data folder (uplift needs its holdout)"])
    control_arm = str(experiments.loc[experiments["experiment_id"] == experiment_id, "control_arm"].iloc[0])
    enrol = contacts.loc[contacts["experiment_id"] == experiment_id, ["account_id", "arm", "contacted_at"]]
    problems = []
    if enrol.empty:
        problems.append(f"experiment {experiment_id} has no enrolments")
    if enrol["account_id"].duplicated().any():
        problems.append(f"accounts enrolled twice: {enrol.loc[enrol['account_id'].duplicated(), 'account_id'].head(5).tolist()}")
    acc = accounts.set_index("account_id")
    unknown = ~enrol["account_id"].isin(acc.index)
    if unknown.any():
        problems.append(f"enrolments of unknown accounts: {enrol.loc[unknown, 'account_id'].head(5).tolist()}")
    if problems:
        raise DataValidationError("contacts", problems)
    t0 = pd.to_datetime(enrol["contacted_at"]).dt.normalize()
    end = pd.to_datetime(acc["end_date"].reindex(enrol["account_id"]).to_numpy())
    window_end = t0 + pd.Timedelta(days=int(horizon_days))
    observed = np.ones(len(enrol), bool) if observed_until is None else (window_end <= pd.Timestamp(observed_until)).to_numpy()
    outcome = (pd.notna(end) & (end >= t0.to_numpy()) & (end <= window_end.to_numpy())).astype(np.int8)
    log = pd.DataFrame(
        {
            "account_id": enrol["account_id"].to_numpy(),
            "period": t0.dt.strftime("%Y-%m").to_numpy(),
            "treated": (enrol["arm"].astype(str) != control_arm).to_numpy().astype(np.int8),
            "outcome": np.asarray(outcome),
            "account_type": acc["account_type"].reindex(enrol["account_id"]).to_numpy(),
            "contract_type": acc["contract_type"].reindex(enrol["account_id"]).to_numpy(),
        }
    )
    # Product mix at enrolment: line types active on T0 (lines of the account only).
    lines = tables.get("lines")
    if lines is not None and len(lines):
        t0_by_acc = pd.Series(t0.to_numpy(), index=enrol["account_id"].to_numpy())
        ln = lines[lines["account_id"].isin(t0_by_acc.index)]
        at = t0_by_acc.reindex(ln["account_id"]).to_numpy()
        active = (ln["start_date"].to_numpy() <= at) & (ln["end_date"].isna().to_numpy() | (ln["end_date"].to_numpy() > at))
        owned = ln.loc[active].groupby(["account_id", "line_type"]).size().unstack(fill_value=0) > 0
        flags = pd.DataFrame({"account_id": log["account_id"]})
        for p in ("mobile", "broadband", "tv", "fixed_voice"):
            col = owned[p] if p in owned.columns else pd.Series(False, index=owned.index)
            flags[f"account_has_{p}"] = col.reindex(log["account_id"]).fillna(False).to_numpy()
        log["product_mix"] = _product_mix(flags).to_numpy()
    else:
        log["product_mix"] = "unknown"
    parts = [log[c].astype(str) for c in segment_by]
    seg = parts[0]
    for p in parts[1:]:
        seg = seg + "/" + p
    log["segment"] = seg
    log = log.loc[observed].reset_index(drop=True)
    if log.empty:
        raise DataValidationError("contacts", [f"no enrolment of {experiment_id} has its {horizon_days}-day outcome observed yet"])
    log.attrs["dropped_unobserved"] = int((~observed).sum())
    return log


def window_from_world(
    world: World,
    *,
    as_of: Any = None,
    tracking_uri: str | None = None,
    score: bool = True,
    all_models: bool = True,
    labels: bool | None = None,
    horizon_days: int = LABEL_HORIZON_DAYS,
    segment_by: Sequence[str] = ("account_type",),
) -> MonitoringWindow:
    """Build the scoring-batch window of a world at ``as_of`` (see module docstring).

    Args:
        world: A loaded (validated) data folder.
        as_of: Scoring date (default ``meta["as_of"]``).
        tracking_uri: MLflow tracking URI of the champions.
        score: Score with the champions (the churn champion must exist).
        all_models: Also the other champions' scores, when they exist.
        labels: ``None`` attaches labels when they have landed; ``True`` requires them (raises
            otherwise); ``False`` never attaches them.
        horizon_days: Churn label horizon.
        segment_by: Segmentation of the retention log's ``segment``.

    Returns:
        The window.

    Raises:
        ConfigError: Bad ``as_of``; labels required but not landed; no churn champion.
        DataValidationError: No account active at ``as_of``.
    """

    ts = world.as_of_date(as_of)
    until = observed_until(world)
    landed = ts + pd.Timedelta(days=int(horizon_days)) <= until
    if labels and not landed:
        raise ConfigError(
            f"churn labels for as_of {ts.date()} land on {(ts + pd.Timedelta(days=int(horizon_days))).date()} "
            f"but the data runs to {until.date()}: pick an earlier as_of"
        )
    feats = build_account_features(world.tables, ts)
    if feats.empty:
        raise DataValidationError("accounts", [f"no account is active at {ts.date()}"])
    X = to_model_matrix(feats)
    frame = pd.concat(
        [feats[["account_id", "household_id"]], X, feats[["account_lifecycle_stage"]].assign(product_mix=_product_mix(feats))],
        axis=1,
    )
    versions: dict[str, str] = {}
    if score:
        scores, versions = champion_scores(feats, tracking_uri, all_models=all_models)
        frame = pd.concat([frame, scores.drop(columns="account_id")], axis=1)
    attach = landed if labels is None else bool(labels)
    if attach:
        lab = make_churn_labels(world.tables, ts, int(horizon_days), observed_until=until)
        frame["churned"] = lab["churned"].to_numpy()
    log = None
    exps = world.tables.get("experiments")
    if exps is not None and RETENTION_EXPERIMENT in set(exps["experiment_id"]):
        try:
            log = retention_contact_log(world.tables, segment_by=segment_by, horizon_days=horizon_days, observed_until=until)
        except DataValidationError:
            log = None  # the experiment's outcomes are not observed yet: no uplift check this window
    return MonitoringWindow(
        frame=frame,
        as_of=ts,
        labels_available=attach,
        contact_log=log,
        contacts=_window_contacts(world.tables.get("contacts"), frame["account_id"], ts),
        model_versions=versions,
        meta=dict(world.meta),
    )


def _window_contacts(contacts: pd.DataFrame | None, account_ids: pd.Series, as_of: pd.Timestamp) -> pd.DataFrame | None:
    # KPIs segment contacts by the window's account features: keep the contacts of accounts in the
    # window made by as_of (acceptance / early cancellation of the current customer base).
    if contacts is None:
        return None
    keep = contacts["account_id"].isin(set(account_ids)) & (pd.to_datetime(contacts["contacted_at"]) <= as_of)
    return contacts.loc[keep].reset_index(drop=True)


def window_from_data_folder(path: str | Path, **kwargs: Any) -> MonitoringWindow:
    """Load a data folder (validated) and build its window; keyword arguments as :func:`window_from_world`."""

    if not is_data_folder(path):
        raise ConfigError(f"{path} is not a data folder (no accounts table)")
    return window_from_world(load_world(path), **kwargs)


def is_prediction_log(path: str | Path) -> bool:
    """True when ``path`` is a ``.jsonl`` file (or a folder of them) written by the service's prediction log."""
    import json

    p = Path(path)
    files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if not files or files[0].suffix.lower() != ".jsonl" or not files[0].is_file():
        return False
    with files[0].open() as fh:
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except ValueError:
                    return False
                return isinstance(rec, dict) and isinstance(rec.get("features"), dict) and isinstance(rec.get("scores"), dict)
    return False


def window_from_prediction_log(
    path_or_records: str | Path | Sequence[Mapping[str, Any]],
    *,
    since: Any = None,
    until: Any = None,
    latest_per_account: bool = True,
) -> pd.DataFrame:
    """A monitoring window from the service's prediction log (``telco_nbo.serving.predlog``).

    Each record carries ``timestamp``, ``account_id``, ``features`` (the model inputs as served),
    ``scores`` (``churn_probability``, ``clv``, ``retention_uplift``, ``propensity`` per offer) and
    ``model_versions``. The window has one row per account (its latest decision in the time range
    by default: an account asked about ten times would otherwise weigh ten times in the drift),
    the features as the model matrix (:func:`telco_nbo.features.to_model_matrix`, same dtypes as
    the reference) and the scores renamed to the monitoring names (``churn_score``, ``clv``,
    ``uplift``, ``propensity`` = the best offer's).

    Args:
        path_or_records: A ``.jsonl`` file, a folder of them, or the parsed records.
        since: Keep decisions at or after this time (UTC; naive = UTC).
        until: Keep decisions before this time.
        latest_per_account: One row per account (latest decision) instead of one per decision.

    Returns:
        The window.

    Raises:
        DataValidationError: Unreadable lines, records without features/scores, no decision in
            the range, or features the model matrix rejects (named).
    """
    import json

    if isinstance(path_or_records, (str, Path)):
        p = Path(path_or_records)
        files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
        records: list[Mapping[str, Any]] = []
        for f in files:
            with f.open() as fh:
                for i, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        records.append(json.loads(line))
                    except ValueError as exc:
                        raise DataValidationError(str(f), [f"line {i} is not JSON: {exc}"]) from None
        source = str(p)
    else:
        records, source = list(path_or_records), "prediction log"
    bad = [i for i, r in enumerate(records) if not (isinstance(r.get("features"), dict) and isinstance(r.get("scores"), dict))]
    if bad:
        raise DataValidationError(source, [f"{len(bad)} records without 'features'/'scores' objects (first at record {bad[0]})"])
    if not records:
        raise DataValidationError(source, ["the prediction log is empty"])
    ts = pd.to_datetime([r.get("timestamp") for r in records], utc=True, errors="coerce")
    if ts.isna().any():
        raise DataValidationError(source, [f"{int(ts.isna().sum())} records without a valid timestamp"])
    keep = np.ones(len(records), bool)
    if since is not None:
        keep &= ts >= pd.Timestamp(since, tz="UTC") if pd.Timestamp(since).tz is None else ts >= pd.Timestamp(since)
    if until is not None:
        keep &= ts < pd.Timestamp(until, tz="UTC") if pd.Timestamp(until).tz is None else ts < pd.Timestamp(until)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        raise DataValidationError(source, ["no decision in the requested time range"])
    feats = pd.DataFrame([records[i]["features"] for i in idx])
    # The service logs the identifiers among the features too (the rules read them); the record's
    # own top-level fields are the authority, so copies inside ``features`` are dropped, not
    # inserted twice.
    feats = feats.drop(columns=[c for c in ("account_id", "timestamp") if c in feats.columns])
    feats.insert(0, "account_id", [records[i].get("account_id") for i in idx])
    feats.insert(1, "timestamp", ts[idx].tz_convert(None))
    scores = [records[i]["scores"] for i in idx]
    out = feats[["account_id", "timestamp"]].copy()
    missing = [c for c in FEATURE_COLUMNS if c not in feats.columns]
    if missing:
        raise DataValidationError(source, [f"records lack model features: {missing}"])
    out = pd.concat([out, to_model_matrix(feats)], axis=1)
    for extra in ("household_id", "account_lifecycle_stage"):
        if extra in feats.columns:
            out[extra] = feats[extra].to_numpy()
        elif extra == "household_id":
            out[extra] = [records[i].get("household_id") for i in idx]
    for src, dst in (("churn_probability", "churn_score"), ("clv", "clv"), ("retention_uplift", "uplift")):
        out[dst] = pd.to_numeric(pd.Series([s.get(src) for s in scores]), errors="coerce").to_numpy(dtype=float)
    out["propensity"] = [max((v for v in (s.get("propensity") or {}).values() if v is not None), default=np.nan) for s in scores]
    if latest_per_account:
        out = out.sort_values("timestamp", kind="stable").drop_duplicates("account_id", keep="last")
    return out.reset_index(drop=True)
