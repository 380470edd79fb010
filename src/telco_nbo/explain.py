"""SHAP explanations: exact TreeSHAP values, global plots and per-account reason codes.

SHAP values come from XGBoost itself (``Booster.predict(..., pred_contribs=True)``): exact
TreeSHAP, computed in C++, and consistent with the model's categorical handling. They are in
margin space (log-odds for a classifier): the contributions of one row plus the bias add up to the
row's margin, which :func:`check_additivity` verifies.

:func:`reason_codes` is what the scoring API calls: the top-``k`` signed contributions of each row
turned into plain-language phrases ("contract ends in 34 days", "3 months of data overage in the
last 6"). It is vectorized (one XGBoost call for a whole batch) and fast for one row.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.vocabulary import DAYS_PER_MONTH

if TYPE_CHECKING:
    import shap
    import xgboost as xgb
    from matplotlib.figure import Figure

Phrase = Callable[[Any], str]
"""Renders a feature's value as a plain-language phrase."""

ADDITIVITY_TOLERANCE = 1e-4


class AdditivityError(RuntimeError):
    """SHAP contributions do not add up to the model's margin (a bug, not a user error)."""


# --------------------------------------------------------------------------------------------------
# phrase helpers
# --------------------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


def _num(value: Any) -> str:
    """Format a number for a sentence: integers bare, others with up to 3 significant digits."""
    v = float(value)
    if v.is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _plural(n: float, singular: str, plural: str | None = None) -> str:
    word = singular if float(n) == 1 else (plural or singular + "s")
    return f"{_num(n)} {word}"


def count(singular: str, plural: str | None = None, *, suffix: str = "", zero: str | None = None) -> Phrase:
    """Phrase for a count: ``count("open support ticket")(2)`` -> "2 open support tickets".

    Args:
        singular: Noun phrase for one.
        plural: Noun phrase for many (default ``singular + "s"``).
        suffix: Appended text, e.g. " in the last 90 days".
        zero: Phrase for zero (default "no <plural><suffix>").
    """

    def render(value: Any) -> str:
        if _missing(value):
            return f"no data on {plural or singular + 's'}{suffix}"
        if float(value) == 0:
            return zero if zero is not None else f"no {plural or singular + 's'}{suffix}"
        return _plural(value, singular, plural) + suffix

    return render


def flag(true: str, false: str) -> Phrase:
    """Phrase for a yes/no feature."""

    def render(value: Any) -> str:
        if _missing(value):
            return f"{true}: unknown"
        return true if bool(value) else false

    return render


def template(text: str, fmt: Callable[[Any], str] = _num, missing: str | None = None) -> Phrase:
    """Phrase from a template with ``{value}``: ``template("monthly bill of ${value}")``."""

    def render(value: Any) -> str:
        if _missing(value):
            return missing if missing is not None else text.replace("{value}", "unknown")
        return text.format(value=fmt(value))

    return render


def vocabulary(labels: Mapping[str, str], default: str = "{value}") -> Phrase:
    """Phrase for a categorical feature: a label per category, ``default`` for others."""

    def render(value: Any) -> str:
        if _missing(value):
            return default.format(value="unknown")
        return labels.get(str(value), default.format(value=str(value).replace("_", " ")))

    return render


def _contract_end(value: Any) -> str:
    if _missing(value):
        return "no contract end date (month-to-month)"
    days = round(float(value) * DAYS_PER_MONTH)
    if days < 0:
        return f"contract ended {_plural(-days, 'day')} ago"
    if days == 0:
        return "contract ends today"
    if days <= 90:
        return f"contract ends in {_plural(days, 'day')}"
    return f"contract ends in {_plural(round(float(value)), 'month')}"


def _tenure(value: Any) -> str:
    if _missing(value):
        return "tenure unknown"
    months = float(value)
    if months >= 24:
        return f"tenure of {_num(round(months / 12, 1))} years"
    return f"tenure of {_plural(round(months), 'month')}"


def _bill_change(value: Any) -> str:
    # account_bill_change_3m is the ratio of this month's bill to the 3-month mean (1.0 = flat).
    if _missing(value):
        return "no recent bill history"
    pct = (float(value) - 1.0) * 100
    if abs(pct) < 1:
        return "bill steady over the last 3 months"
    return f"bill {'up' if pct > 0 else 'down'} {abs(pct):.0f}% against the 3-month average"


def _percent(text: str) -> Phrase:
    def render(value: Any) -> str:
        if _missing(value):
            return text.format(value="unknown")
        return text.format(value=f"{float(value) * 100:.0f}%")

    return render


_CHANNEL_LABEL = {"app": "the app", "email": "email", "sms": "SMS", "call_center": "the call center", "retail": "retail"}
_PLAN_TIERS = ("basic", "standard", "premium", "unlimited")

REASON_PHRASES: dict[str, Phrase] = {
    # household grain
    "household_n_accounts": count("account", suffix=" in the household"),
    "household_n_lines": count("line", suffix=" in the household"),
    "household_n_products": count("product type", suffix=" in the household"),
    "household_size": template("household of {value}", missing="household size unknown"),
    "household_region": vocabulary({"urban": "urban address", "suburban": "suburban address", "rural": "rural address"}),
    "household_fiber_eligible": flag("fiber available at the address", "no fiber at the address"),
    "household_fwa_eligible": flag("fixed wireless available at the address", "no fixed wireless at the address"),
    "household_promo_contacts_30d": count("promotional contact", suffix=" to the household in 30 days"),
    # account grain
    "account_tenure_months": _tenure,
    "account_contract_type": vocabulary(
        {"month_to_month": "month-to-month contract", "one_year": "one-year contract", "two_year": "two-year contract"},
        default="{value} contract",
    ),
    "account_payment_method": vocabulary(
        {
            "electronic_check": "pays by electronic check",
            "mailed_check": "pays by mailed check",
            "bank_transfer": "pays by automatic bank transfer",
            "credit_card": "pays by credit card",
        },
        default="pays by {value}",
    ),
    "account_paperless_billing": flag("paperless billing", "paper bills"),
    "account_senior_citizen": flag("senior customer", "not a senior customer"),
    "account_has_partner": flag("has a partner", "no partner"),
    "account_has_dependents": flag("has dependents", "no dependents"),
    "account_monthly_charges": template("monthly charges of ${value}"),
    "account_months_to_contract_end": _contract_end,
    "account_out_of_contract": flag("out of contract (fixed term lapsed)", "within the contract term"),
    "account_overage_months_3m": count("month", suffix=" of data overage in the last 3", zero="no data overage in the last 3 months"),
    "account_open_tickets": count("open support ticket"),
    "account_tickets_90d": count("support ticket", suffix=" in the last 90 days"),
    "account_complaints_180d": count("complaint", suffix=" in the last 6 months"),
    "account_billing_tickets_180d": count("billing ticket", suffix=" in the last 6 months"),
    "account_network_tickets_180d": count("network ticket", suffix=" in the last 6 months"),
    "account_bill_mean_3m": template("average bill of ${value} over 3 months"),
    "account_bill_change_3m": _bill_change,
    "account_n_lines": count("line", suffix=" on the account"),
    "account_n_mobile_lines": count("mobile line", suffix=" on the account"),
    "account_offers_accepted_365d": count("offer", suffix=" accepted in the last year"),
    "account_contacts_90d": count("contact", suffix=" from us in the last 90 days"),
    "account_promo_contacts_30d": count("promotional contact", suffix=" in the last 30 days"),
    "account_open_service_issue": flag("an open service issue", "no open service issue"),
    "account_active_complaint": flag("an active complaint", "no active complaint"),
    "account_lifecycle_stage": vocabulary(
        {
            "new": "new customer (first 90 days)",
            "early": "in the first year",
            "growth": "established customer",
            "renewal": "in the renewal window",
            "at_risk": "flagged at risk",
        }
    ),
    "account_type": vocabulary({"consumer": "consumer account", "small_business": "small-business account"}),
    "account_channel_preference": vocabulary(
        {k: f"prefers {v}" for k, v in _CHANNEL_LABEL.items()}, default="prefers {value}"
    ),
    **{
        f"account_contacts_{ch}_30d": count("contact", suffix=f" through {label} in the last 30 days")
        for ch, label in _CHANNEL_LABEL.items()
    },
    "account_has_mobile": flag("has mobile service", "no mobile service"),
    "account_has_broadband": flag("has home internet", "no home internet"),
    "account_has_tv": flag("has TV service", "no TV service"),
    "account_has_fixed_voice": flag("has a home phone line", "no home phone line"),
    "account_has_capped_mobile": flag("a mobile plan with a data cap", "no capped mobile plan"),
    "account_has_device_protection": flag("has device protection", "no device protection"),
    "account_has_travel_pack": flag("has a travel pack", "no travel pack"),
    "account_has_mesh_wifi": flag("has mesh Wi-Fi", "no mesh Wi-Fi"),
    "account_has_online_security": flag("has online security", "no online security"),
    "account_has_streaming": flag("has streaming", "no streaming"),
    "account_has_premium_care": flag("has premium care", "no premium care"),
    # line aggregates at account grain
    "line_overage_months_3m": count("month", suffix=" of data overage in the last 3", zero="no data overage in the last 3 months"),
    "line_overage_months_6m": count("month", suffix=" of data overage in the last 6", zero="no data overage in the last 6 months"),
    "line_data_gb_mean_3m": template("uses {value} GB of data a month", missing="no data usage recorded"),
    "line_data_cap_util_3m": _percent("uses {value} of the data allowance"),
    "line_roaming_days_3m": count("roaming day", suffix=" in the last 3 months"),
    "line_intl_minutes_3m": count("international minute", suffix=" in the last 3 months"),
    "line_dropped_calls_3m": count("dropped call", suffix=" in the last 3 months"),
    "line_device_age_months": template("device is {value} months old", missing="device age unknown"),
    "line_max_plan_tier": vocabulary(
        {str(i): f"{name} plan" for i, name in enumerate(_PLAN_TIERS)}
        | {f"{i}.0": f"{name} plan" for i, name in enumerate(_PLAN_TIERS)}
        | {name: f"{name} plan" for name in _PLAN_TIERS},
        default="plan tier {value}",
    ),
}
"""Plain-language phrase per feature name (the account feature contract); others use a fallback."""


def generic_phrase(feature: str, value: Any) -> str:
    """Fallback phrase for a feature without an entry: ``"<feature> = <value>"``."""
    if _missing(value):
        shown = "missing"
    elif isinstance(value, (bool, np.bool_)):
        shown = "yes" if value else "no"
    elif isinstance(value, (int, float, np.integer, np.floating)):
        shown = _num(value)
    else:
        shown = str(value)
    return f"{feature} = {shown}"


# --------------------------------------------------------------------------------------------------
# SHAP values
# --------------------------------------------------------------------------------------------------


def _booster(model: Any) -> xgb.Booster:
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model
    if hasattr(model, "get_booster"):
        return model.get_booster()
    raise ConfigError(f"expected an XGBoost model or Booster, got {type(model).__name__}")


def _iteration_range(model: Any) -> tuple[int, int]:
    # The sklearn API predicts with the best iteration after early stopping; match it, or the
    # explanation would be of a different (longer) model than the one that scored.
    # A raw Booster predicts with all its trees by default; keep that.
    if not hasattr(model, "get_booster"):
        return (0, 0)
    best = getattr(model, "best_iteration", None)
    return (0, int(best) + 1) if best is not None else (0, 0)


def model_frame(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Select and order the model's input columns of ``X``, typing categorical ones as category.

    Extra columns (ids, decision flags) are ignored, so the account feature frame can be passed
    whole. String columns the model treats as categorical become ``category`` (XGBoost re-codes
    categories by name, so their order does not matter).

    Raises:
        DataValidationError: ``X`` is not a frame, is empty, or lacks some model columns.
    """
    if not isinstance(X, pd.DataFrame):
        raise DataValidationError("features", [f"expected a pandas DataFrame, got {type(X).__name__}"])
    if X.empty:
        raise DataValidationError("features", ["no rows to explain"])
    booster = _booster(model)
    names = list(booster.feature_names or [])
    if not names:
        raise ConfigError("the model was trained without feature names; train it on a DataFrame")
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise DataValidationError("features", [f"missing model columns: {', '.join(missing)}"])
    # Skip the copy when the frame already is exactly the model input (the 1-row API path).
    frame = X if list(X.columns) == names else X.loc[:, names]
    types = list(booster.feature_types or [])
    to_cat = [n for n, t in zip(names, types, strict=False) if t == "c" and not isinstance(frame[n].dtype, pd.CategoricalDtype)]
    if to_cat:
        frame = frame.assign(**{n: frame[n].astype("category") for n in to_cat})
    return frame


@dataclass(frozen=True)
class ShapValues:
    """SHAP values of a batch, in margin space.

    Attributes:
        values: One column per model feature, one row per input row (same index as the input).
        base_value: The bias (expected margin), the same for every row.
        margin: The model's margin per row (``output_margin=True``).
        data: The model input the values explain.
    """

    values: pd.DataFrame
    base_value: float
    margin: np.ndarray
    data: pd.DataFrame


SMALL_BATCH = 2048
"""Batches up to this size are scored on one thread: thread start-up costs more than it saves."""

_ENCODERS: weakref.WeakKeyDictionary[Any, _Encoder | None] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Encoder:
    """Turns a model frame into the float matrix XGBoost sees, using the model's own categories.

    XGBoost can build a DMatrix from pandas and re-code categories itself, but that path costs
    several milliseconds per call; the scoring API explains one account at a time. Encoding with
    the categories stored in the booster and handing XGBoost a float matrix gives the same
    contributions (tested) several times faster.
    """

    names: tuple[str, ...]
    types: tuple[str, ...] | None
    categories: dict[int, pd.Index]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.names)), dtype=np.float32)
        numeric = [j for j in range(len(self.names)) if j not in self.categories]
        if numeric:
            try:
                # One block conversion: per-column pandas calls would dominate a 1-row explanation.
                block = frame if not self.categories else frame.iloc[:, numeric]
                out[:, numeric] = block.to_numpy(dtype=np.float32, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                bad = [
                    self.names[j]
                    for j in numeric
                    if not (pd.api.types.is_numeric_dtype(frame.iloc[:, j]) or pd.api.types.is_bool_dtype(frame.iloc[:, j]))
                ]
                raise DataValidationError("features", [f"non-numeric values in numeric columns {bad}: {exc}"]) from exc
        for j, cats in self.categories.items():
            col = frame.iloc[:, j]
            if isinstance(col.dtype, pd.CategoricalDtype):
                # Map the column's categories to the model's once, then index by the codes.
                lookup = cats.get_indexer(col.cat.categories.astype(str))
                codes = col.cat.codes.to_numpy()
                mapped = np.where(codes >= 0, lookup[codes], -1)
            else:
                mapped = cats.get_indexer([None if _missing(v) else str(v) for v in col.to_numpy(dtype=object)])
            # A category unseen in training (or missing) goes down XGBoost's missing-value branch.
            out[:, j] = np.where(mapped < 0, np.nan, mapped)
        return out


def _encoder(booster: Any) -> _Encoder | None:
    try:
        return _ENCODERS[booster]
    except KeyError:
        pass
    names = tuple(booster.feature_names or ())
    types = tuple(booster.feature_types) if booster.feature_types else None
    enc: _Encoder | None = _Encoder(names, types, {})
    if types and "c" in types:
        try:
            stored = booster.get_categories(export_to_arrow=True).to_arrow()
        except Exception:  # noqa: BLE001 - older models carry no categories: use pandas' path
            stored = []
        by_name = {n: arr for n, arr in stored if arr is not None}
        if all(n in by_name for n, t in zip(names, types, strict=True) if t == "c"):
            enc = _Encoder(
                names,
                types,
                {j: pd.Index([str(v) for v in by_name[n].to_pylist()]) for j, (n, t) in enumerate(zip(names, types, strict=True)) if t == "c"},
            )
        else:
            enc = None
    _ENCODERS[booster] = enc
    return enc


def _dmatrix(model: Any, frame: pd.DataFrame) -> Any:
    import xgboost as xgb

    booster = _booster(model)
    enc = _encoder(booster)
    if enc is None:
        return xgb.DMatrix(frame, enable_categorical=True)
    return xgb.DMatrix(
        enc.matrix(frame), feature_names=list(enc.names), feature_types=list(enc.types) if enc.types else None,
        enable_categorical=True, nthread=1 if len(frame) <= SMALL_BATCH else 0,
    )


def _contribs(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, Any]:
    import xgboost as xgb

    booster = _booster(model)
    dm = _dmatrix(model, frame)
    with xgb.config_context(nthread=1 if len(frame) <= SMALL_BATCH else 0):
        contribs = booster.predict(dm, pred_contribs=True, iteration_range=_iteration_range(model))
    if contribs.ndim != 2:
        raise ConfigError("SHAP reason codes support binary classifiers and regressors, not multi-output models")
    return contribs, dm


def shap_values(model: Any, X: pd.DataFrame, *, check: bool = True, atol: float = ADDITIVITY_TOLERANCE) -> ShapValues:
    """Exact TreeSHAP values of ``X`` from XGBoost, checked to add up to the margin.

    Args:
        model: A fitted XGBoost sklearn model or Booster.
        X: Feature frame (extra columns are ignored, see :func:`model_frame`).
        check: Verify additivity (one extra prediction).
        atol: Tolerance of the check.

    Returns:
        The :class:`ShapValues`.

    Raises:
        AdditivityError: The contributions do not add up to the margin.
    """
    frame = model_frame(model, X)
    contribs, dm = _contribs(model, frame)
    margin = _booster(model).predict(dm, output_margin=True, iteration_range=_iteration_range(model))
    if check:
        _assert_additive(contribs, margin, atol)
    return ShapValues(
        values=pd.DataFrame(contribs[:, :-1], index=X.index, columns=frame.columns),
        base_value=float(contribs[0, -1]),
        margin=np.asarray(margin, dtype=float),
        data=frame,
    )


def _assert_additive(contribs: np.ndarray, margin: np.ndarray, atol: float) -> float:
    err = float(np.max(np.abs(contribs.astype(np.float64).sum(axis=1) - margin.astype(np.float64))))
    if not err <= atol:
        raise AdditivityError(f"SHAP contributions miss the margin by up to {err:.3g} (tolerance {atol:g})")
    return err


def check_additivity(model: Any, X: pd.DataFrame, atol: float = ADDITIVITY_TOLERANCE) -> float:
    """Return the largest |sum of contributions + bias - margin| over rows; raise if above ``atol``."""
    frame = model_frame(model, X)
    contribs, dm = _contribs(model, frame)
    margin = _booster(model).predict(dm, output_margin=True, iteration_range=_iteration_range(model))
    return _assert_additive(contribs, margin, atol)


# --------------------------------------------------------------------------------------------------
# global plots
# --------------------------------------------------------------------------------------------------


def explanation(sv: ShapValues) -> shap.Explanation:
    """Wrap :class:`ShapValues` as a ``shap.Explanation`` (numeric data colours the plots)."""
    import shap

    numeric = sv.data.copy()
    for col in numeric.columns:
        if isinstance(numeric[col].dtype, pd.CategoricalDtype):
            numeric[col] = numeric[col].cat.codes.replace(-1, np.nan)
    numeric = numeric.astype(float)
    return shap.Explanation(
        values=sv.values.to_numpy(),
        base_values=np.full(len(sv.values), sv.base_value),
        data=numeric.to_numpy(),
        display_data=sv.data.astype(object).to_numpy(),
        feature_names=list(sv.values.columns),
    )


def top_features(sv: ShapValues, n: int) -> list[str]:
    """The ``n`` features with the largest mean |SHAP| (global importance)."""
    importance = sv.values.abs().mean(axis=0).sort_values(ascending=False, kind="stable")
    return list(importance.index[:n])


def global_figures(
    model: Any,
    X: pd.DataFrame,
    *,
    max_display: int = 15,
    n_dependence: int = 3,
    max_rows: int = 2000,
    seed: int = 0,
) -> dict[str, Figure]:
    """SHAP beeswarm, bar and dependence plots of the top features, as matplotlib figures.

    Args:
        model: A fitted XGBoost model.
        X: Feature frame to explain (e.g. the holdout).
        max_display: Features shown in the beeswarm and bar plots.
        n_dependence: Dependence plots for this many top features.
        max_rows: Rows sampled (seeded) for the plots; a beeswarm of 100k points says no more.
        seed: Sampling seed.

    Returns:
        ``{"shap_beeswarm": fig, "shap_bar": fig, "shap_dependence_<feature>": fig, ...}``;
        the figures are detached from pyplot, ready for ``savefig`` / ``mlflow.log_figure``.
    """
    import matplotlib.pyplot as plt
    import shap

    if len(X) > max_rows:
        X = X.sample(n=max_rows, random_state=seed).sort_index()
    sv = shap_values(model, X)
    expl = explanation(sv)
    figures: dict[str, Figure] = {}
    created: list[Figure] = []

    def new(figsize: tuple[float, float]) -> tuple[Figure, Any]:
        fig, ax = plt.subplots(figsize=figsize)
        created.append(fig)
        return fig, ax

    height = 0.4 * min(max_display, sv.values.shape[1]) + 1.5
    try:
        fig, ax = new((8, height))
        shap.plots.beeswarm(expl, max_display=max_display, ax=ax, show=False, plot_size=None)
        ax.set_title("SHAP values (impact on the model's log-odds)")
        figures["shap_beeswarm"] = fig

        fig, ax = new((8, height))
        shap.plots.bar(expl, max_display=max_display, ax=ax, show=False)
        ax.set_title("Mean |SHAP value| per feature")
        figures["shap_bar"] = fig

        for name in top_features(sv, n_dependence):
            fig, ax = new((6, 4))
            shap.plots.scatter(expl[:, name], ax=ax, show=False)
            col = sv.data[name]
            if isinstance(col.dtype, pd.CategoricalDtype):
                # The x axis holds category codes; label them with the category names.
                ax.set_xticks(range(len(col.cat.categories)), [str(c) for c in col.cat.categories], rotation=30)
            ax.set_title(f"SHAP dependence: {name}")
            figures[f"shap_dependence_{name}"] = fig
        for fig in figures.values():
            fig.tight_layout()
    finally:
        # Detach from pyplot: no figure leaks in long sessions, no double display in notebooks.
        for fig in created:
            plt.close(fig)
    return figures


# --------------------------------------------------------------------------------------------------
# reason codes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind one account's score.

    Attributes:
        feature: Feature name.
        value: The account's value of it (JSON-safe: ``None`` when missing).
        contribution: Signed SHAP value in margin (log-odds) units.
        direction: ``raises`` or ``lowers`` (the outcome, e.g. churn risk).
        phrase: The plain-language phrase, e.g. "contract ends in 34 days".
        outcome: What is raised or lowered, e.g. "churn risk".
    """

    feature: str
    value: Any
    contribution: float
    direction: Literal["raises", "lowers"]
    phrase: str
    outcome: str = "churn risk"

    @property
    def sentence(self) -> str:
        """The reason as one sentence: "contract ends in 34 days: raises churn risk"."""
        return f"{self.phrase}: {self.direction} {self.outcome}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _render(feature: str, value: Any, phrases: Mapping[str, Phrase]) -> str:
    fn = phrases.get(feature)
    if fn is None:
        return generic_phrase(feature, value)
    try:
        return fn(value)
    except (TypeError, ValueError):
        # A value the phrase did not expect (e.g. a string where a count was) must not break
        # scoring; the generic phrase is still true.
        return generic_phrase(feature, value)


def reason_strength(phi: np.ndarray, direction: str) -> np.ndarray:
    """Return how strongly each contribution counts as a reason, for ranking the top ones.

    Args:
        phi: SHAP contributions, accounts x features (no bias column).
        direction: ``"raises"`` (only contributions that push the score up count), ``"lowers"``
            (only those that push it down, by size) or anything else (both, by size).

    Returns:
        Non-negative strengths, same shape as ``phi``.
    """
    if direction == "raises":
        return np.where(phi > 0, phi, 0.0)
    if direction == "lowers":
        return np.where(phi < 0, -phi, 0.0)
    return np.abs(phi)


def reason_codes(
    model: Any,
    X: pd.DataFrame,
    k: int = 3,
    phrases: Mapping[str, Phrase] = REASON_PHRASES,
    *,
    outcome: str = "churn risk",
    direction: Literal["both", "raises", "lowers"] = "both",
    min_abs_contribution: float = 1e-9,
) -> list[list[Reason]]:
    """Top-``k`` reasons per row: the largest SHAP contributions, as plain-language phrases.

    Args:
        model: A fitted XGBoost sklearn model or Booster (binary classifier or regressor).
        X: Feature frame; extra columns (ids) are ignored.
        k: Reasons per row (fewer when fewer features contribute).
        phrases: Phrase per feature; features without one get ``"<feature> = <value>"``.
        outcome: What the score measures, used in :attr:`Reason.sentence`.
        direction: ``both`` ranks by |contribution|; ``raises`` / ``lowers`` keep only positive /
            negative contributions (e.g. "why is this account at risk").
        min_abs_contribution: Contributions this small are not reasons (unused features).

    Returns:
        One list of :class:`Reason` per row of ``X``, strongest first.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    frame = model_frame(model, X)
    contribs, _ = _contribs(model, frame)
    phi = contribs[:, :-1].astype(np.float64)
    strength = reason_strength(phi, direction)
    k_eff = min(k, phi.shape[1])
    # argpartition finds the top k in O(p); only those k are sorted.
    top = np.argpartition(-strength, k_eff - 1, axis=1)[:, :k_eff]
    order = np.argsort(-np.take_along_axis(strength, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    names = list(frame.columns)
    columns: dict[int, np.ndarray] = {}
    # Few rows: one conversion of the whole frame is cheaper than one per reason column.
    rows = frame.to_numpy(dtype=object) if len(frame) <= 64 else None
    out: list[list[Reason]] = []
    for i in range(phi.shape[0]):
        reasons = []
        for j in top[i]:
            if strength[i, j] <= min_abs_contribution:
                break
            if rows is not None:
                raw = rows[i, j]
            else:
                if j not in columns:
                    columns[j] = frame.iloc[:, j].to_numpy(dtype=object)
                raw = columns[j][i]
            value = _json_value(raw)
            c = float(phi[i, j])
            reasons.append(
                Reason(
                    feature=names[j],
                    value=value,
                    contribution=c,
                    direction="raises" if c > 0 else "lowers",
                    phrase=_render(names[j], value, phrases),
                    outcome=outcome,
                )
            )
        out.append(reasons)
    return out


__all__ = [
    "ADDITIVITY_TOLERANCE",
    "REASON_PHRASES",
    "AdditivityError",
    "Reason",
    "ShapValues",
    "check_additivity",
    "count",
    "explanation",
    "flag",
    "generic_phrase",
    "global_figures",
    "model_frame",
    "reason_codes",
    "reason_strength",
    "shap_values",
    "template",
    "top_features",
    "vocabulary",
]
