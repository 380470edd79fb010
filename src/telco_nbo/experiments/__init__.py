"""A/B readouts: SRM, intervals, Bayesian summaries, CUPED, segments, sequential intervals, power.

Typical use::

    from telco_nbo.experiments import readout_from_tables, to_html, timing_rule_from_readout
    readout = readout_from_tables(world.tables, "EXP-TIMING-1", sequential=True)
    html = to_html(readout)
    rule = timing_rule_from_readout(readout, "product_mix")

Names are resolved lazily so that importing a light module (``timing_rule``, ``models``) does not
pull in scipy, pandas or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MetricSpec": "models",
    "Readout": "models",
    "Comparison": "models",
    "SegmentComparison": "models",
    "run_readout": "readout",
    "readout_from_tables": "readout",
    "unit_frame": "readout",
    "default_metrics": "readout",
    "experiment_frame": "data",
    "experiment_design": "data",
    "segment_breakdown": "segments",
    "confidence_sequence": "sequential",
    "tau2_for_plan": "sequential",
    "sample_size_proportions": "power",
    "mde_proportions": "power",
    "sample_size_means": "power",
    "mde_means": "power",
    "PowerPlan": "power",
    "to_markdown": "render",
    "to_html": "render",
    "forest_plot": "render",
    "log_readout_to_mlflow": "tracking",
    "TimingRule": "timing_rule",
    "timing_rule_from_readout": "timing_rule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
