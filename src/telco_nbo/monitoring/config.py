"""Monitoring thresholds: a validated configuration read from ``monitoring/thresholds.yaml``.

Every number that decides pass or fail lives here, not in code, so operations can tune a check
without a release. The file is validated with pydantic (unknown keys are errors: a typo such as
``treshold`` must not silently fall back to a default) and any problem becomes a
:class:`~telco_nbo.errors.ConfigError` that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telco_nbo.errors import ConfigError

# Drift measures allowed in the config. Distance measures only by default: at production window
# sizes (10^5-10^6 rows) a p-value test (KS, chi-square) flags any negligible shift as "drift".
# The p-value tests stay available for small windows, where a distance is too noisy.
NUMERIC_METHODS = ("wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "ks", "anderson", "cramer_von_mises")
CATEGORICAL_METHODS = ("jensenshannon", "psi", "hellinger", "kl_div", "chisquare", "z", "TVD")
# For p-value tests a column drifts when the score is BELOW the threshold; for distances, at or above.
PVALUE_METHODS = frozenset({"ks", "anderson", "cramer_von_mises", "chisquare", "z"})

Severity = Literal["fail", "warn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftMethod(_Strict):
    """One drift measure and the score at which a column counts as drifted.

    Attributes:
        method: An Evidently stat-test name (see :data:`NUMERIC_METHODS`, :data:`CATEGORICAL_METHODS`).
        threshold: Distance at/above which (p-value below which) the column drifted.
    """

    method: str
    threshold: float = Field(gt=0)


class SamplingConfig(_Strict):
    """Deterministic down-sampling of large windows.

    A distance between two 200k-row samples is within ~0.005 of the full-data distance, far below
    any useful threshold, while the cost of the library's per-column computations (and of its
    histograms in the HTML) grows with the row count. The sample is drawn with a fixed seed so the
    same window always gives the same report.

    ``report_rows`` caps the rows behind the Evidently charts (a histogram does not change at more
    rows; the pass/fail verdicts use the ``max_rows`` sample). ``report_columns`` picks the features charted in the Evidently drift report: the drifted ones
    (default; the summary page lists every feature's score) or all of them (slower: one chart each).
    """

    max_rows: int = Field(200_000, ge=1_000)
    report_rows: int = Field(50_000, ge=1_000)
    seed: int = 42
    report_columns: Literal["drifted", "all"] = "drifted"


class DataDriftConfig(_Strict):
    """Per-feature data drift.

    Attributes:
        numerical: Default measure for numeric columns.
        categorical: Default measure for categorical and boolean columns.
        columns: Per-column overrides of method and threshold.
        exclude: Columns never checked (ids, dates).
        drift_share: Dataset-level test: fails when more than this share of the columns drifted.
        column_severity: Whether one drifted column fails the run or only warns.
    """

    numerical: DriftMethod = DriftMethod(method="wasserstein", threshold=0.1)
    categorical: DriftMethod = DriftMethod(method="jensenshannon", threshold=0.1)
    # PSI barely moves under a regional price rise (< 0.01 for +15 % in one region), so the charge
    # column uses a distance that does (see monitoring/thresholds.yaml, which mirrors these defaults).
    columns: dict[str, DriftMethod] = Field(
        default_factory=lambda: {"account_monthly_charges": DriftMethod(method="wasserstein", threshold=0.07)}
    )
    exclude: list[str] = Field(default_factory=lambda: ["account_id", "household_id"])
    drift_share: float = Field(0.3, gt=0, le=1)
    column_severity: Severity = "fail"

    @model_validator(mode="after")
    def _known_methods(self) -> DataDriftConfig:
        if self.numerical.method not in NUMERIC_METHODS:
            raise ValueError(f"data_drift.numerical.method '{self.numerical.method}' not in {NUMERIC_METHODS}")
        if self.categorical.method not in CATEGORICAL_METHODS:
            raise ValueError(
                f"data_drift.categorical.method '{self.categorical.method}' not in {CATEGORICAL_METHODS}"
            )
        for col, m in self.columns.items():
            if m.method not in set(NUMERIC_METHODS) | set(CATEGORICAL_METHODS):
                raise ValueError(f"data_drift.columns.{col}.method '{m.method}' is not a known drift method")
        return self


class PredictionDriftConfig(_Strict):
    """Drift of the model scores (the ones present in both windows are checked)."""

    columns: list[str] = Field(default_factory=lambda: ["churn_score", "propensity", "uplift", "clv"])
    method: DriftMethod = DriftMethod(method="wasserstein", threshold=0.1)
    severity: Severity = "fail"

    @model_validator(mode="after")
    def _numeric(self) -> PredictionDriftConfig:
        if self.method.method not in NUMERIC_METHODS:
            raise ValueError(f"prediction_drift.method.method '{self.method.method}' not in {NUMERIC_METHODS}")
        return self


class QualityConfig(_Strict):
    """Model quality once labels land (checked when the target column is present).

    Attributes:
        target: Label column (1 = the event, e.g. churned within the horizon).
        score: Predicted probability column.
        min_roc_auc: Fails below this ROC AUC (overall and per segment).
        max_brier: Fails above this Brier score.
        max_ece: Fails above this expected calibration error (plus the ECE sampling noise of a
            calibrated model at the segment's size, see ``quality.ece_noise``).
        calibration_bins: Equal-width bins for the ECE.
        segments: Columns whose values define the per-segment checks.
        min_segment_rows: Segments with fewer rows (or only one class) are reported, not tested.
        evidently_per_segment: Also compute each segment's ROC AUC with its own Evidently report
            (a cross-check of scikit-learn's; about 0.2-0.5 s per segment).
    """

    target: str = "churned"
    score: str = "churn_score"
    # Per-segment AUCs of a healthy churn model here are 0.60-0.69: the floor catches collapse.
    min_roc_auc: float = Field(0.58, ge=0, le=1)
    max_brier: float = Field(0.20, gt=0, le=1)
    max_ece: float = Field(0.05, gt=0, le=1)
    calibration_bins: int = Field(10, ge=2, le=100)
    segments: list[str] = Field(
        default_factory=lambda: ["account_contract_type", "household_region", "account_lifecycle_stage"]
    )
    min_segment_rows: int = Field(200, ge=10)
    evidently_per_segment: bool = True


class UpliftConfig(_Strict):
    """Uplift by segment from a contact log with a control (holdout) group.

    Sign convention: ``outcome`` is the bad event (churn) by default, so the retention uplift is
    ``control rate - treated rate`` (positive = the offer keeps customers). With
    ``outcome_is_bad: false`` (outcome = accepted, retained) it is ``treated - control``.

    Attributes:
        segment_columns: Columns that define a segment.
        period_column: Column with the period label (month, campaign wave).
        min_uplift: An uplift below this floor counts as faded.
        fade_rule: ``point`` compares the estimate with the floor; ``upper`` needs the whole
            interval below the floor (fewer alarms on small segments).
        alpha: 1 - confidence level of the intervals.
        ci_method: statsmodels ``confint_proportions_2indep`` method for the difference.
        min_group_size: Cells with fewer treated or control units are reported, not tested.
        test_periods: Test only the latest period (the current window) or every period.
    """

    segment_columns: list[str] = Field(default_factory=lambda: ["segment"])
    period_column: str = "period"
    treated_column: str = "treated"
    outcome_column: str = "outcome"
    outcome_is_bad: bool = True
    # A randomized (untargeted) retention experiment averages ~0 uplift per segment, because
    # persuadables and sleeping dogs cancel out: only a whole interval below 0 is an alarm.
    min_uplift: float = 0.0
    fade_rule: Literal["point", "upper"] = "upper"
    alpha: float = Field(0.05, gt=0, lt=1)
    ci_method: Literal["newcomb", "wald", "agresti-caffo", "score"] = "newcomb"
    min_group_size: int = Field(50, ge=1)
    test_periods: Literal["latest", "all"] = "latest"


class KpiConfig(_Strict):
    """Business KPIs beside the model checks."""

    segments: list[str] = Field(default_factory=lambda: ["account_contract_type"])
    early_cancel_days: int = Field(90, ge=1)
    label: str = "churned"


class MonitoringConfig(_Strict):
    """The whole ``thresholds.yaml``."""

    version: Literal[1] = 1
    sampling: SamplingConfig = SamplingConfig()
    data_drift: DataDriftConfig = DataDriftConfig()
    prediction_drift: PredictionDriftConfig = PredictionDriftConfig()
    quality: QualityConfig = QualityConfig()
    uplift: UpliftConfig = UpliftConfig()
    kpis: KpiConfig = KpiConfig()


def parse_config(data: dict | None) -> MonitoringConfig:
    """Validate a configuration mapping.

    Args:
        data: The parsed YAML (``None`` or empty = all defaults).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Naming every bad key.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"monitoring config must be a mapping, got {type(data).__name__}")
    try:
        return MonitoringConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid monitoring config: {problems}") from None


def load_config(path: str | Path | None) -> MonitoringConfig:
    """Read and validate a thresholds file (``None`` -> defaults).

    Args:
        path: YAML file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Missing file, bad YAML or bad values.
    """
    if path is None:
        return MonitoringConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"monitoring config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"monitoring config {path} is not valid YAML: {exc}") from None
    return parse_config(data)
