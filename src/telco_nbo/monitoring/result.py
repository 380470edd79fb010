"""The monitoring result as a value: typed, JSON round-trippable, rendered elsewhere.

Schedulers read ``summary.json`` (this model dumped); people read the HTML. Every check is a
:class:`CheckResult` with the measured value, the threshold, the direction of the comparison and
pass/fail, so a failure message can always say *what* crossed *which* line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["data_drift", "prediction_drift", "quality", "uplift", "kpi"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckResult(_Model):
    """One pass/fail test.

    Attributes:
        category: Which family the check belongs to.
        name: Stable machine name, e.g. ``drift:account_monthly_charges`` or ``uplift:young_family@2024-05``.
        subject: The column, score, segment or cell the check is about.
        metric: What was measured (``wasserstein``, ``roc_auc``, ``retention_uplift``...).
        value: The measured value (``None`` when it could not be computed).
        threshold: The line it is compared with.
        op: How ``value`` must relate to ``threshold`` to pass.
        passed: The outcome.
        severity: ``fail`` checks decide the exit code; ``warn`` checks are reported only.
        detail: One human sentence.
    """

    category: Category
    name: str
    subject: str
    metric: str
    value: float | None
    threshold: float
    op: Literal["<", "<=", ">", ">="]
    passed: bool
    severity: Literal["fail", "warn"] = "fail"
    detail: str = ""


class ColumnDrift(_Model):
    """Drift of one column (feature or score)."""

    column: str
    kind: Literal["numerical", "categorical"]
    method: str
    threshold: float
    score: float
    drifted: bool


class SegmentQuality(_Model):
    """Quality of the scores on one segment (or ``__overall__``)."""

    segment_column: str
    segment: str
    n: int
    positives: int
    roc_auc: float | None
    roc_auc_evidently: float | None = None
    brier: float | None
    ece: float | None
    ece_noise: float = 0.0
    tested: bool


class UpliftCell(_Model):
    """Treated-vs-control comparison in one segment and period.

    ``uplift`` is the retention uplift under the configured sign convention (positive = the
    contact helps); ``ci_low``/``ci_high`` its interval (``None`` when a cell is too small).
    """

    segment: str
    period: str
    n_treated: int
    n_control: int
    rate_treated: float | None
    rate_control: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    status: Literal["ok", "faded", "harmful", "insufficient_data"]


class MonitoringResult(_Model):
    """Everything one monitoring run found."""

    model_name: str
    created_at: datetime
    reference_rows: int
    current_rows: int
    sampled_rows: int = Field(description="rows per side actually compared after deterministic sampling")
    window: str | None = Field(None, description="the window as a person names it, e.g. 'd1_drift as of 2025-12-31'")
    window_time: datetime | None = Field(None, description="the window's own time (as-of date, last decision); "
                                         "Evidently's UI orders runs by it")
    config: dict
    data_drift: list[ColumnDrift] = Field(default_factory=list)
    drift_share: float = 0.0
    prediction_drift: list[ColumnDrift] = Field(default_factory=list)
    quality: list[SegmentQuality] = Field(default_factory=list)
    uplift: list[UpliftCell] = Field(default_factory=list)
    kpis: dict[str, list[dict]] = Field(default_factory=dict)
    checks: list[CheckResult] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        """Checks that failed with severity ``fail`` (these decide the exit code)."""
        return [c for c in self.checks if not c.passed and c.severity == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Checks that failed with severity ``warn``."""
        return [c for c in self.checks if not c.passed and c.severity == "warn"]

    @property
    def passed(self) -> bool:
        """True when no ``fail`` check failed."""
        return not self.failed

    @property
    def drifted_columns(self) -> list[str]:
        """Feature columns flagged as drifted."""
        return [d.column for d in self.data_drift if d.drifted]

    def to_json(self) -> str:
        """Serialize (the inverse of :meth:`from_json`)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> MonitoringResult:
        """Parse a serialized result."""
        return cls.model_validate_json(text)
