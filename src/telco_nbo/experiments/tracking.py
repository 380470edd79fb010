"""Log a readout to MLflow: metrics, parameters, and the HTML / markdown / JSON reports as artifacts.

Uses an explicit :class:`mlflow.MlflowClient` bound to the given URI, never the fluent API, so no
process-global tracking URI is set or left behind.
"""

from __future__ import annotations

import re

from telco_nbo.config import get_settings
from telco_nbo.experiments.models import Readout
from telco_nbo.experiments.render import to_html, to_markdown
from telco_nbo.tracking import ensure_experiment

_KEY_OK = re.compile(r"[^0-9A-Za-z_\-. /]")


def _key(*parts: str) -> str:
    return _KEY_OK.sub("_", ".".join(parts))


def readout_metrics(readout: Readout) -> dict[str, float]:
    """Flat ``metric.arm.stat`` -> value map of a readout (what goes into MLflow metrics)."""
    out: dict[str, float] = {
        "srm_p_value": readout.srm.p_value,
        "srm_chi2": readout.srm.chi2,
        "trustworthy": float(readout.trustworthy),
    }
    for m in readout.metrics:
        name = m.spec.name
        for a in m.arms:
            out[_key(name, a.arm, "mean")] = a.mean
            out[_key(name, a.arm, "units")] = float(a.units)
        blocks = [("", m.comparisons)] + ([("cuped", m.cuped.comparisons)] if m.cuped else [])
        for prefix, comps in blocks:
            for c in comps:
                base = [name, prefix, c.arm] if prefix else [name, c.arm]
                vals = {
                    "abs_lift": c.abs_lift, "abs_ci_low": c.abs_ci_low, "abs_ci_high": c.abs_ci_high,
                    "rel_lift": c.rel_lift, "p_value": c.p_value, "prob_beat_control": c.prob_beat_reference,
                    "expected_loss": c.expected_loss, "seq_ci_low": c.seq_ci_low, "seq_ci_high": c.seq_ci_high,
                }
                out.update({_key(*base, k): float(v) for k, v in vals.items() if v is not None})
        if m.cuped:
            out[_key(name, "cuped", "variance_reduction")] = m.cuped.variance_reduction
            out[_key(name, "cuped", "theta")] = m.cuped.theta
    return out


def log_readout_to_mlflow(
    readout: Readout,
    tracking_uri: str,
    experiment_name: str = "telco-ab-readouts",
    *,
    run_name: str | None = None,
    artifact_location: str | None = None,
) -> str:
    """Log a readout as one MLflow run.

    Logs: parameters (experiment id, unit, arms, alpha, primary metric, segment columns...), metrics
    (:func:`readout_metrics`), tags (``telco_nbo.trustworthy``, ``telco_nbo.experiment_id``) and the
    artifacts ``readout/readout.html``, ``readout/readout.md`` and ``readout/readout.json``.

    Args:
        readout: The readout.
        tracking_uri: MLflow tracking URI (e.g. ``sqlite:///path/mlflow.db``).
        experiment_name: MLflow experiment to log into (created if new).
        run_name: Run name; default ``readout-<experiment_id>``.
        artifact_location: Artifact root for a *new* MLflow experiment; default beside a SQLite
            database (``<db folder>/mlartifacts``), MLflow's default otherwise.

    Returns:
        The run id.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=tracking_uri)
    exp_id = ensure_experiment(client, experiment_name, artifact_location or get_settings().resolved_artifact_root(tracking_uri))
    run = client.create_run(
        exp_id,
        run_name=run_name or f"readout-{readout.experiment_id}",
        tags={
            "telco_nbo.experiment_id": readout.experiment_id,
            "telco_nbo.trustworthy": str(readout.trustworthy).lower(),
            "telco_nbo.kind": "ab_readout",
        },
    )
    run_id = run.info.run_id
    try:
        params = {
            "experiment_id": readout.experiment_id,
            "unit": readout.unit,
            "arms": ",".join(readout.arms),
            "control_arm": readout.control_arm,
            "alpha": str(readout.alpha),
            "primary_metric": readout.primary_metric,
            "metrics": ",".join(m.spec.name for m in readout.metrics),
            "segment_columns": ",".join(readout.segment_columns),
            "min_segment_units": str(readout.min_segment_units),
            "sequential": str(readout.sequential is not None).lower(),
            "seed": str(readout.seed),
        }
        metrics = readout_metrics(readout)
        items = [Metric(k, v, 0, 0) for k, v in metrics.items()]
        # log_batch takes at most 1000 metrics per call.
        for i in range(0, len(items), 900):
            client.log_batch(run_id, metrics=items[i : i + 900], params=[Param(k, v) for k, v in params.items()] if i == 0 else [],
                             tags=[RunTag("telco_nbo.srm_flagged", str(readout.srm.flagged).lower())] if i == 0 else [])
        client.log_text(run_id, to_html(readout), "readout/readout.html")
        client.log_text(run_id, to_markdown(readout), "readout/readout.md")
        client.log_text(run_id, readout.model_dump_json(indent=2), "readout/readout.json")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
