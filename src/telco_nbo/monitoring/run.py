"""One monitoring run: checks in memory first, then outputs (HTML, JSON, MLflow, Evidently workspace).

:func:`monitor` is pure (frames in, a :class:`MonitoringOutput` out, nothing written); the
``write_*`` / ``log_*`` / ``add_*`` functions are the I/O edges. A malformed window therefore
raises before a single file exists.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from telco_nbo.config import get_settings
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.monitoring import kpis as kpi_mod
from telco_nbo.monitoring.config import MonitoringConfig
from telco_nbo.monitoring.drift import drift_checks, drift_report
from telco_nbo.monitoring.quality import OVERALL, overall_quality_report, quality_by_segment, quality_checks
from telco_nbo.monitoring.result import CheckResult, MonitoringResult
from telco_nbo.monitoring.uplift import uplift_by_segment, uplift_checks
from telco_nbo.monitoring.window import infer_column_kinds, validate_window
from telco_nbo.tracking import ensure_experiment, tracking_session

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

SCORE_COLUMN_BY_KIND = {"churn": "churn_score", "propensity": "propensity", "uplift": "uplift", "clv": "clv"}
"""Score column a model kind writes into scoring batches and the prediction log."""

# Columns of the tracking reference artifact that are not features (see telco_nbo.tracking).
_REFERENCE_META = ("target", "prediction")


@dataclass
class MonitoringOutput:
    """A run's result plus the Evidently snapshots behind it (kept in memory until written)."""

    result: MonitoringResult
    snapshots: dict[str, Snapshot] = field(default_factory=dict)


def _to_frame(rows: list[dict]) -> list[dict]:
    # JSON-safe records (NaN -> None) for the KPI tables in the result.
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]


def _naive_utc(t: object) -> datetime:
    """A time as naive UTC (Evidently stores naive timestamps)."""
    ts = pd.Timestamp(t)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts).to_pydatetime()


def monitor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    model_name: str,
    config: MonitoringConfig | None = None,
    feature_columns: list[str] | None = None,
    labeled: pd.DataFrame | None = None,
    contact_log: pd.DataFrame | None = None,
    account_features: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    contacts: pd.DataFrame | None = None,
    window: str | None = None,
    window_time: datetime | None = None,
) -> MonitoringOutput:
    """Run every check that its inputs allow; write nothing.

    Args:
        reference: Training features + scores (the champion's reference sample).
        current: The window to check (scoring batch or prediction-log slice) with the same features.
        model_name: Monitored model (recorded in the result).
        config: Thresholds (default: built-in defaults).
        feature_columns: Features to check for drift (default: every reference column except
            excluded ones, model scores and the reference's ``target``/``prediction``).
        labeled: Labeled rows for the quality checks (default: ``current`` when it carries the
            configured target column).
        contact_log: Treated/control log for uplift by segment.
        account_features: Account feature frame for the KPIs (default: ``current`` when it has
            ``account_id``).
        labels: ``account_id`` + churn label (+ ``period``) for the churn KPIs (default: taken
            from ``labeled`` when it has ``account_id``).
        contacts: Contacts table (data contract) for acceptance and early-cancellation KPIs.
        window: The window's name for people and Evidently's UI (e.g. ``d1_drift as of 2025-12-31``).
        window_time: The window's own time (its as-of date, its last decision): the snapshots carry
            it instead of the wall clock, so the UI plots windows in their order.

    Returns:
        The result and its snapshots.

    Raises:
        DataValidationError: A malformed window or input, naming the columns.
        ConfigError: No feature left to monitor. (A per-column override for a feature this model
            does not have is a ``warn`` check, so one thresholds file can serve several models.)
    """
    config = config or MonitoringConfig()
    timings: dict[str, float] = {}
    checks: list[CheckResult] = []
    snapshots: dict[str, Snapshot] = {}

    score_cols_cfg = config.prediction_drift.columns
    not_features = set(config.data_drift.exclude) | set(score_cols_cfg) | set(_REFERENCE_META) | {config.quality.target}
    if feature_columns is not None:
        missing_ref = [c for c in feature_columns if c not in reference.columns]
        if missing_ref:
            raise DataValidationError("reference", [f"missing feature columns: {missing_ref}"])
    kinds = infer_column_kinds(reference, feature_columns, exclude=sorted(not_features))
    if not kinds.all:
        raise ConfigError("no feature columns to monitor: the reference has none left after exclusions")
    # One thresholds file may serve several models; an override for a feature this model lacks is
    # reported (a typo shows up there) rather than failing the run.
    for c in config.data_drift.columns:
        if c not in kinds.all:
            checks.append(
                CheckResult(
                    category="data_drift",
                    name=f"config:unused_override:{c}",
                    subject=c,
                    metric="configured_column_present",
                    value=0.0,
                    threshold=1.0,
                    op=">=",
                    passed=False,
                    severity="warn",
                    detail=f"data_drift.columns.{c} is configured but '{c}' is not a monitored feature",
                )
            )
    validate_window(current, reference, kinds)
    score_cols = [c for c in score_cols_cfg if c in reference.columns and c in current.columns]
    bad_scores = [
        c
        for c in score_cols
        if not pd.api.types.is_numeric_dtype(current[c]) or pd.api.types.is_bool_dtype(current[c])
    ]
    if bad_scores:
        raise DataValidationError("current window", [f"score column '{c}' must be numeric" for c in bad_scores])

    # Everything that can fail on input is validated before the (slow) computations start.
    if labeled is None and config.quality.target in current.columns:
        labeled = current
    if contact_log is not None:
        from telco_nbo.monitoring.uplift import validate_contact_log

        validate_contact_log(contact_log, config.uplift)

    t0 = time.perf_counter()
    stamp = None if window_time is None else _naive_utc(window_time)
    label = f" · {window}" if window else ""
    snap, feat_drift, score_drift, sampled = drift_report(reference, current, kinds, score_cols, config,
                                                          timestamp=stamp, name=f"drift{label}")
    snapshots["drift"] = snap
    share, dchecks = drift_checks(feat_drift, score_drift, config)
    checks += dchecks
    timings["drift"] = time.perf_counter() - t0

    quality = []
    if labeled is not None:
        t0 = time.perf_counter()
        quality = quality_by_segment(labeled, config)
        checks += quality_checks(quality, config)
        snapshots["quality"] = overall_quality_report(labeled, config, timestamp=stamp, name=f"quality{label}")
        timings["quality"] = time.perf_counter() - t0

    cells = []
    if contact_log is not None:
        t0 = time.perf_counter()
        cells = uplift_by_segment(contact_log, config.uplift)
        checks += uplift_checks(cells, config.uplift)
        timings["uplift"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    kpi_tables: dict[str, list[dict]] = {}
    feats = account_features if account_features is not None else (current if "account_id" in current.columns else None)
    if labels is None and labeled is not None and "account_id" in labeled.columns:
        labels = labeled[["account_id", config.quality.target] + (["period"] if "period" in labeled.columns else [])]
    has_products = feats is not None and all(f"account_has_{p}" in feats.columns for p in kpi_mod.PRODUCTS)
    if feats is not None and labels is not None and has_products:
        # Labels taken from the quality frame carry the quality target's name.
        label = config.kpis.label if config.kpis.label in labels.columns else config.quality.target
        kpi_tables["churn_by_product_combination"] = kpi_mod.churn_by_product_combination(feats, labels, label).to_dict("records")
        kpi_tables["bundle_retention"] = kpi_mod.bundle_retention(feats, labels, label).to_dict("records")
    if feats is not None and contacts is not None:
        kpi_tables["offer_acceptance"] = kpi_mod.offer_acceptance(contacts, feats, config.kpis.segments).to_dict("records")
        kpi_tables["early_cancellation"] = kpi_mod.early_cancellation(
            contacts, feats, config.kpis.segments, config.kpis.early_cancel_days
        ).to_dict("records")
    timings["kpis"] = time.perf_counter() - t0

    result = MonitoringResult(
        model_name=model_name,
        created_at=datetime.now(timezone.utc),
        reference_rows=len(reference),
        current_rows=len(current),
        sampled_rows=sampled,
        window=window,
        window_time=stamp,
        config=config.model_dump(mode="json"),
        data_drift=feat_drift,
        drift_share=share,
        prediction_drift=score_drift,
        quality=quality,
        uplift=cells,
        kpis={k: _to_frame(v) for k, v in kpi_tables.items()},
        checks=checks,
        timings_s={k: round(v, 3) for k, v in timings.items()},
    )
    snapshots["headline"] = headline_snapshot(result)
    return MonitoringOutput(result=result, snapshots=snapshots)


# ------------------------------------------------------------------------------------------------
# the headline snapshot: the numbers to trend in `evidently ui`
# ------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def headline_values(result: MonitoringResult) -> dict[str, float]:
    """The numbers worth a trend line: drift share, AUC (overall and per segment), uplift per segment.

    Uplift is taken from the latest period of each segment (the current window).
    """
    values: dict[str, float] = {"drift_share": result.drift_share, "failed_checks": float(len(result.failed))}
    for d in result.prediction_drift:
        values[f"prediction_drift__{_slug(d.column)}"] = d.score
    for q in result.quality:
        if q.roc_auc is None:
            continue
        key = "roc_auc" if q.segment_column == OVERALL else f"roc_auc__{_slug(q.segment_column)}__{_slug(q.segment)}"
        values[key] = q.roc_auc
    if result.uplift:
        latest = max(c.period for c in result.uplift)
        for c in result.uplift:
            if c.period == latest and c.uplift is not None:
                values[f"uplift__{_slug(c.segment)}"] = c.uplift
    return values


def headline_snapshot(result: MonitoringResult) -> Snapshot:
    """An Evidently snapshot holding :func:`headline_values` as ``MeanValue`` metrics of a one-row frame.

    Drift share, per-segment AUC and per-segment uplift are computed by this package, not by an
    Evidently metric; recording each as the mean of a one-row column makes it a first-class value
    in the snapshot, so Evidently dashboards can plot its trend across runs (and the pass/fail of
    the matching test is attached to it).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue
    from evidently.tests import gte, lte

    values = headline_values(result)
    cfg = MonitoringConfig.model_validate(result.config)
    metrics = []
    for key in values:
        tests = None
        if key == "drift_share":
            tests = [lte(cfg.data_drift.drift_share)]
        elif key == "failed_checks":
            tests = [lte(0)]
        elif key.startswith("roc_auc"):
            tests = [gte(cfg.quality.min_roc_auc)]
        elif key.startswith("uplift__"):
            tests = [gte(cfg.uplift.min_uplift)]
        metrics.append(MeanValue(column=key, tests=tests) if tests is not None else MeanValue(column=key))
    frame = pd.DataFrame({k: [float(v)] for k, v in values.items()})
    report = Report(metrics, metadata={"kind": "headline", "model": result.model_name})
    return report.run(
        Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=list(values))),
        None,
        timestamp=(result.window_time or result.created_at).replace(tzinfo=None),
        name="headline" + (f" · {result.window}" if result.window else ""),
        tags=[result.model_name],
    )


# ------------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------------


_OPS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


def _human(value: object) -> object:
    """A cell as a person reads it: yes/no for booleans, "all accounts" for the overall segment."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == OVERALL:
        return "all accounts"
    return value


def _table(rows: list[dict], columns: list[str] | None = None, rename: dict[str, str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    frame = pd.DataFrame(rows)
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    frame = frame.map(_human) if hasattr(frame, "map") else frame.applymap(_human)
    if rename:
        frame = frame.rename(columns=rename)
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4f}", na_rep="")


def _check_rows(checks: list[CheckResult]) -> list[dict]:
    """Checks in words: what was measured, the rule it must meet, and the outcome."""
    rows = []
    for c in checks:
        measured = "not computed" if c.value is None else f"{c.value:.4g}"
        outcome = "ok" if c.passed else ("FAILED" if c.severity == "fail" else "warning")
        rows.append({
            "result": outcome,
            "check": c.name,
            "what": f"{c.metric} of {_human(c.subject)}",
            "measured": measured,
            "rule": f"must be {_OPS[c.op]} {c.threshold:.4g}",
            "kind": "decides the exit code" if c.severity == "fail" else "reported only",
            "detail": c.detail,
        })
    return rows


def verdict_text(result: MonitoringResult) -> tuple[str, str]:
    """The verdict in one headline and one sentence saying what moved (or that nothing did)."""
    fails = [c for c in result.checks if c.severity == "fail"]
    drifted = [d.column for d in result.data_drift if d.drifted]
    if result.passed:
        head = f"PASSED: all {len(fails)} checks within their lines"
        body = (f"Nothing moved beyond its threshold; {len(drifted)} of {len(result.data_drift)} features drifted "
                f"(drift share {result.drift_share:.0%}).") if result.data_drift else "Nothing moved beyond its threshold."
        if result.warnings:
            body += f" {len(result.warnings)} warning(s) below, reported only."
        return head, body
    head = f"FAILED: {len(result.failed)} of {len(fails)} checks broke their lines"
    moved = "; ".join(c.detail or f"{c.name} = {c.value}" for c in result.failed[:4])
    more = f" (and {len(result.failed) - 4} more)" if len(result.failed) > 4 else ""
    return head, f"What moved: {moved}{more}."


def what_moved_png(result: MonitoringResult, top: int = 12) -> bytes | None:
    """A bar chart of the most-moved columns: drift score over its threshold (1 = the line).

    Returns:
        PNG bytes, or ``None`` when there is no drift measure to show.
    """
    cols = [*result.prediction_drift, *result.data_drift]
    cols = [d for d in cols if d.threshold and d.threshold > 0]
    if not cols:
        return None
    import io

    from matplotlib.figure import Figure

    cols = sorted(cols, key=lambda d: d.score / d.threshold, reverse=True)[:top][::-1]
    ratio = [d.score / d.threshold for d in cols]
    fig = Figure(figsize=(8, 0.32 * len(cols) + 1.1))
    ax = fig.add_subplot()
    ax.barh([d.column for d in cols], ratio, color=["#cf222e" if d.drifted else "#8c959f" for d in cols])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.text(1.0, len(cols) - 0.4, " threshold", fontsize=8, va="bottom")
    ax.set_xlabel("drift score / its threshold (red: drifted)")
    ax.set_title("What moved: the columns that drifted most against the reference", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def render_summary_html(result: MonitoringResult, report_files: dict[str, str]) -> str:
    """A one-page summary for people: the verdict and a chart of what moved first, then every table."""
    import base64

    head, body = verdict_text(result)
    color = "#1a7f37" if result.passed else "#cf222e"
    links = " · ".join(f'<a href="{html.escape(f)}">{html.escape(k)} (Evidently)</a>' for k, f in report_files.items())
    png = what_moved_png(result)
    chart = (f"<img id='what-moved' alt='what moved' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
             if png else "")
    cols = ["result", "check", "what", "measured", "rule", "kind", "detail"]
    drift_names = {"column": "column", "kind": "type", "method": "method", "threshold": "threshold", "score": "score",
                   "drifted": "drifted"}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Monitoring: {html.escape(result.model_name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
        "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}h2{margin-top:1.5em}"
        f".verdict{{border:2px solid {color};border-radius:6px;padding:.6em 1.1em;margin:.6em 0}}"
        f".verdict h2{{color:{color};margin:.1em 0 .3em;font-size:24px}}</style></head><body>",
        f"<h1>Monitoring: {html.escape(result.model_name)}</h1>",
        f"<section class='verdict'><h2 id='headline'>{html.escape(head)}</h2><p>{html.escape(body)}</p></section>",
        chart,
        f"<p>Run {result.created_at:%Y-%m-%d %H:%M} UTC · reference {result.reference_rows:,} rows · "
        f"current {result.current_rows:,} rows · compared on {result.sampled_rows:,} sampled rows per side · "
        f"drift share {result.drift_share:.1%}</p>",
        f"<p>{links}</p>",
        "<h2>Failed checks</h2>",
        _table(_check_rows(result.failed), cols),
        "<h2>Warnings</h2>",
        _table(_check_rows(result.warnings), cols),
        "<h2>Data drift per feature</h2>",
        _table([d.model_dump() for d in sorted(result.data_drift, key=lambda d: -d.score)], rename=drift_names),
        "<h2>Prediction drift</h2>",
        _table([d.model_dump() for d in result.prediction_drift], rename=drift_names),
        "<h2>Quality (overall and per segment)</h2>",
        _table([q.model_dump() for q in result.quality]),
        "<h2>Uplift by segment and period</h2>",
        "<p>Retention uplift = control outcome rate - treated outcome rate when the outcome is churn "
        "(positive: the contact keeps customers; an interval entirely below 0: sleeping dogs).</p>",
        _table([c.model_dump() for c in result.uplift]),
    ]
    for name, rows in result.kpis.items():
        parts += [f"<h2>KPI: {html.escape(name.replace('_', ' '))}</h2>", _table(rows)]
    parts += ["<h2>All checks</h2>", _table(_check_rows(result.checks), cols), "</body></html>"]
    return "\n".join(parts)


def write_outputs(output: MonitoringOutput, out_dir: str | Path) -> dict[str, str]:
    """Write ``summary.json``, ``summary.html``, the Evidently HTML reports and snapshots.

    Files are written to a temporary folder beside ``out_dir`` and moved in at the end, so an error
    half-way leaves no partial report.

    Returns:
        Artifact name -> path (also recorded in ``output.result.artifacts``).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    result = output.result
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        tmpd = Path(tmp)
        report_files = {}
        for name, snap in output.snapshots.items():
            snap.save_html(str(tmpd / f"evidently_{name}.html"))
            (tmpd / f"evidently_{name}.json").write_text(snap.json())
            report_files[name] = f"evidently_{name}.html"
        files = {f"evidently_{k}": v for k, v in report_files.items()}
        files["summary_html"] = "summary.html"
        files["summary_json"] = "summary.json"
        result.artifacts = {k: str(out_dir / v) for k, v in files.items()}
        (tmpd / "summary.html").write_text(render_summary_html(result, report_files))
        (tmpd / "summary.json").write_text(result.to_json())
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in tmpd.iterdir():
            shutil.move(str(f), out_dir / f.name)
    return dict(result.artifacts)


def log_to_mlflow(
    output: MonitoringOutput,
    out_dir: str | Path,
    tracking_uri: str | None = None,
    experiment: str = "telco-monitoring",
) -> str:
    """Log the run to MLflow: headline metrics, per-check metrics, tags and the output folder.

    Args:
        output: A finished run.
        out_dir: Folder written by :func:`write_outputs` (logged as the ``monitoring`` artifact).
        tracking_uri: MLflow tracking URI (default from settings).
        experiment: Experiment name.

    Returns:
        The MLflow run id.
    """
    from mlflow.entities import Metric, Param, RunTag

    uri = tracking_uri or get_settings().resolved_tracking_uri()
    result = output.result
    with tracking_session(uri) as client:
        exp_id = ensure_experiment(client, experiment, get_settings().resolved_artifact_root(uri))
        run = client.create_run(
            exp_id,
            run_name=f"{result.model_name}-{result.created_at:%Y%m%dT%H%M%S}",
            tags={"telco_nbo.monitored_model": result.model_name, "telco_nbo.passed": str(result.passed).lower()},
        )
        rid = run.info.run_id
        ts = int(result.created_at.timestamp() * 1000)
        metrics = [Metric(k, float(v), ts, 0) for k, v in headline_values(result).items()]
        metrics += [Metric(f"drift.{_slug(d.column)}", d.score, ts, 0) for d in result.data_drift]
        params = [
            Param("reference_rows", str(result.reference_rows)),
            Param("current_rows", str(result.current_rows)),
            Param("sampled_rows", str(result.sampled_rows)),
        ]
        tags = [RunTag("telco_nbo.failed_checks", ",".join(c.name for c in result.failed)[:4000])]
        for i in range(0, len(metrics), 500):
            client.log_batch(rid, metrics=metrics[i : i + 500])
        client.log_batch(rid, params=params, tags=tags)
        client.log_artifacts(rid, str(out_dir), artifact_path="monitoring")
        client.set_terminated(rid, "FINISHED")
    return rid


# ------------------------------------------------------------------------------------------------
# Evidently workspace
# ------------------------------------------------------------------------------------------------


def _panels(result: MonitoringResult):
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    values = headline_values(result)

    def pm(key: str) -> PanelMetric:
        return PanelMetric(legend=key, metric="MeanValue", metric_labels={"column": key})

    panels = [("Data drift share", [pm("drift_share")]), ("Failed checks", [pm("failed_checks")])]
    auc = [pm(k) for k in values if k.startswith("roc_auc")]
    if auc:
        panels.append(("ROC AUC (overall and per segment)", auc))
    upl = [pm(k) for k in values if k.startswith("uplift__")]
    if upl:
        panels.append(("Retention uplift per segment (latest period)", upl))
    pd_ = [pm(k) for k in values if k.startswith("prediction_drift__")]
    if pd_:
        panels.append(("Prediction drift (score distance)", pd_))
    return [line_plot_panel(title=t, values=v, size="half") for t, v in panels]


def add_to_workspace(output: MonitoringOutput, workspace_dir: str | Path, project_name: str | None = None) -> str:
    """Add this run's snapshots to a local Evidently workspace project (created on first use).

    The project dashboard gets line panels for drift share, AUC and uplift per segment, so
    ``evidently ui --workspace DIR`` shows the trend across windows.

    Returns:
        The project id.
    """
    from evidently.ui.workspace import Workspace

    result = output.result
    name = project_name or f"telco-nbo monitoring: {result.model_name}"
    ws = Workspace.create(str(workspace_dir))
    found = ws.search_project(name)
    project = found[0] if found else ws.create_project(name, description="Drift, quality and uplift per window")
    # Panels are matched by title: a later run adds panels it needs (e.g. uplift once a contact log
    # is given) without duplicating the existing ones.
    existing = {p.title for p in project.dashboard.model().panels}
    for panel in _panels(result):
        if panel.title not in existing:
            project.dashboard.add_panel(panel, tab="Trends")
    for snap in output.snapshots.values():
        ws.add_run(project.id, snap)
    return str(project.id)
