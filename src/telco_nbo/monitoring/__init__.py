"""Monitoring: data drift, prediction drift, quality, uplift by segment and business KPIs.

Evidently does the per-column drift statistics, the classification reports, the HTML and the
workspace; this package chooses the methods and thresholds (``monitoring/thresholds.yaml``),
validates the windows, computes what Evidently cannot do correctly or at all (per-segment quality
on per-segment data, treated-vs-control uplift with intervals, KPIs) and turns everything into one
typed result with pass/fail checks.

Typical use::

    from telco_nbo.monitoring import load_config, monitor, write_outputs
    out = monitor(reference, current, model_name="telco-churn", config=load_config("monitoring/thresholds.yaml"))
    write_outputs(out, "monitoring_out/2024-06")
    out.result.passed

Importing this package does not import Evidently or MLflow (they load on first use).
"""

from telco_nbo.monitoring.config import MonitoringConfig, load_config, parse_config
from telco_nbo.monitoring.io import load_reference_from_champion, read_window
from telco_nbo.monitoring.kpis import (
    bundle_retention,
    churn_by_product_combination,
    early_cancellation,
    offer_acceptance,
    product_combination,
)
from telco_nbo.monitoring.quality import expected_calibration_error, quality_by_segment
from telco_nbo.monitoring.result import CheckResult, ColumnDrift, MonitoringResult, SegmentQuality, UpliftCell
from telco_nbo.monitoring.run import (
    MonitoringOutput,
    add_to_workspace,
    headline_values,
    log_to_mlflow,
    monitor,
    render_summary_html,
    write_outputs,
)
from telco_nbo.monitoring.uplift import uplift_by_segment
from telco_nbo.monitoring.window import deterministic_sample, infer_column_kinds, validate_window
from telco_nbo.monitoring.world_window import (
    MonitoringWindow,
    champion_scores,
    is_data_folder,
    retention_contact_log,
    window_from_data_folder,
    window_from_world,
)

__all__ = [
    "CheckResult",
    "ColumnDrift",
    "MonitoringConfig",
    "MonitoringOutput",
    "MonitoringResult",
    "MonitoringWindow",
    "SegmentQuality",
    "UpliftCell",
    "add_to_workspace",
    "bundle_retention",
    "champion_scores",
    "churn_by_product_combination",
    "deterministic_sample",
    "early_cancellation",
    "expected_calibration_error",
    "headline_values",
    "infer_column_kinds",
    "is_data_folder",
    "load_config",
    "load_reference_from_champion",
    "log_to_mlflow",
    "monitor",
    "offer_acceptance",
    "parse_config",
    "product_combination",
    "quality_by_segment",
    "read_window",
    "render_summary_html",
    "retention_contact_log",
    "uplift_by_segment",
    "validate_window",
    "window_from_data_folder",
    "window_from_world",
    "write_outputs",
]
