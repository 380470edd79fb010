"""The column contract: every column of the account feature frame, declared once.

One :class:`Column` per column says where its value comes from (``grain``), what values it holds
(``kind``, ``categories``, ``range``) and who reads it (``role``). Everything else is derived
from :data:`COLUMNS`, never restated:

* the model matrix (:data:`FEATURE_COLUMNS` in the order models see them, the fixed category
  lists of :data:`CATEGORY_VALUES`) used by :func:`telco_nbo.features.to_model_matrix`;
* the kinds of the columns the NBO rules read (the rules name the columns, :func:`kinds` types
  them) and so :func:`telco_nbo.nbo.rules.validate_features`;
* the scoring API's request schema (:mod:`telco_nbo.serving.schemas`: field types from the kinds,
  number bounds from the ranges, vocabularies from the categories).

Roles:

* ``id``: identity of the row (``account_id``, ``household_id``);
* ``feature``: a model input (the rules may read it too); the order of these declarations is the
  order of the model matrix, which trained models depend on;
* ``decision``: read by the ranking (rules, signals), not by the models;
* ``helper``: emitted by the feature builder for people and reports, read by neither.

Account attributes an importer keeps (``account_x_<name>``, see :mod:`telco_nbo.data.attributes`)
are not declared here: they exist only for the data that carries them, so their kind comes from
the data at run time; they follow :data:`FEATURE_COLUMNS` in the model matrix.

The meaning of each column, and the point-in-time rule behind it, is in :mod:`telco_nbo.features`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from telco_nbo.data.schema import ACCOUNT_TYPES, CHANNELS, CONTRACT_TYPES, PAYMENT_METHODS, REGIONS
from telco_nbo.vocabulary import LIFECYCLE_STAGES

Grain = Literal["account", "household", "line"]
"""Where a value comes from: the account, its household, or its active lines (aggregated)."""

Kind = Literal["id", "category", "bool", "count", "float_nan"]
"""What a value is: an identifier; one of fixed categories; a yes/no flag (never missing); a
whole number >= 0 (never missing); a real number (NaN when unknown)."""

Role = Literal["id", "feature", "decision", "helper"]
"""Who reads the column (see the module docstring)."""

GRAINS: tuple[str, ...] = ("account", "household", "line")
KINDS: tuple[str, ...] = ("id", "category", "bool", "count", "float_nan")
ROLES: tuple[str, ...] = ("id", "feature", "decision", "helper")

MAX_COUNT = 100_000
"""Largest value of a count (tickets, contacts, lines...): far above any real account, so a value
above it is an encoding mistake."""


@dataclass(frozen=True)
class Column:
    """One column of the account feature frame.

    Attributes:
        name: Column name; it starts with its grain (``account_``, ``household_``, ``line_``) so
            that reason codes read well.
        grain: Where the value comes from.
        kind: What values it holds.
        role: Who reads it.
        description: One line for people (the full rule is in :mod:`telco_nbo.features`).
        categories: The fixed category list of a ``category`` column (empty otherwise); the
            order is the order of the pandas categories models are trained with.
        range: Closed range of plausible values of a ``float_nan`` column (``None`` otherwise):
            generous bounds of what an account can hold, so a value outside is a unit or encoding
            mistake (the scoring API refuses it).
        built: Whether :func:`telco_nbo.features.build_account_features` emits it; ``False`` for
            a column only a caller's frame may carry.
    """

    name: str
    grain: Grain
    kind: Kind
    role: Role
    description: str
    categories: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    built: bool = True

    @property
    def bounds(self) -> tuple[float, float] | None:
        """Closed range of a number (``range``; ``0..MAX_COUNT`` for a count), else ``None``."""
        if self.kind == "count":
            return (0, MAX_COUNT)
        return self.range


def _bool(name: str, grain: Grain, role: Role, description: str, built: bool = True) -> Column:
    return Column(name, grain, "bool", role, description, built=built)


def _count(name: str, grain: Grain, role: Role, description: str) -> Column:
    return Column(name, grain, "count", role, description)


def _number(name: str, grain: Grain, role: Role, lo: float, hi: float, description: str) -> Column:
    return Column(name, grain, "float_nan", role, description, range=(lo, hi))


def _category(name: str, grain: Grain, role: Role, categories: Iterable[str], description: str) -> Column:
    return Column(name, grain, "category", role, description, categories=tuple(categories))


COLUMNS: tuple[Column, ...] = (
    # ---- identity
    Column("account_id", "account", "id", "id", "The account"),
    Column("household_id", "household", "id", "id", "The account's household"),
    # ---- model features, in model-matrix order (household, account, holdings, line aggregates)
    _count("household_n_accounts", "household", "feature", "Accounts of the household active at as_of"),
    _count("household_n_lines", "household", "feature", "Active lines of the household"),
    _count("household_n_products", "household", "feature", "Distinct line types the household holds"),
    _number("household_size", "household", "feature", 1.0, 50.0, "People in the household"),
    _category("household_region", "household", "feature", REGIONS, "Region of the address"),
    _bool("household_fiber_eligible", "household", "feature", "Fiber can be sold at the address"),
    _bool("household_fwa_eligible", "household", "feature", "5G fixed wireless can be sold at the address"),
    _category("account_type", "account", "feature", ACCOUNT_TYPES, "Consumer or small business"),
    _number("account_tenure_months", "account", "feature", 0.0, 1200.0, "Months since the account started"),
    _category("account_contract_type", "account", "feature", CONTRACT_TYPES, "Contract type"),
    _category("account_payment_method", "account", "feature", PAYMENT_METHODS, "Payment method"),
    _bool("account_paperless_billing", "account", "feature", "Paperless billing"),
    _bool("account_senior_citizen", "account", "feature", "Senior citizen"),
    _bool("account_has_partner", "account", "feature", "Has a partner"),
    _bool("account_has_dependents", "account", "feature", "Has dependents"),
    _number("account_monthly_charges", "account", "feature", 0.0, 100_000.0, "Monthly charges"),
    _number("account_months_to_contract_end", "account", "feature", -1200.0, 1200.0,
            "Months to the fixed-term contract's end (negative: lapsed; NaN: month to month)"),
    _bool("account_out_of_contract", "account", "feature", "A fixed-term contract lapsed"),
    _count("account_open_tickets", "account", "feature", "Support tickets open at as_of"),
    _bool("account_open_service_issue", "account", "feature", "An open network, coverage or device ticket"),
    _bool("account_active_complaint", "account", "feature", "A complaint open or opened in the last 30 days"),
    _count("account_tickets_90d", "account", "feature", "Tickets opened in the last 90 days"),
    _count("account_complaints_180d", "account", "feature", "Complaints opened in the last 180 days"),
    _count("account_billing_tickets_180d", "account", "feature", "Billing tickets in the last 180 days"),
    _count("account_network_tickets_180d", "account", "feature",
           "Network and coverage tickets in the last 180 days"),
    _number("account_bill_mean_3m", "account", "feature", -100_000.0, 1_000_000.0,
            "Mean monthly bill of the last 3 visible months"),
    _number("account_bill_change_3m", "account", "feature", -10_000.0, 10_000.0,
            "Last visible bill / mean bill of the 3 months before it (bill shock)"),
    _count("account_overage_months_3m", "account", "feature", "Months with overage among the last 3"),
    _count("account_n_lines", "account", "feature", "Active lines"),
    _count("account_n_mobile_lines", "account", "feature", "Active mobile lines"),
    _count("account_offers_accepted_365d", "account", "feature", "Offers accepted in the last 365 days"),
    _count("account_contacts_90d", "account", "feature", "Times contacted in the last 90 days"),
    # What the account holds at as_of: model features and, equally, what the NBO rules read.
    _bool("account_has_mobile", "account", "feature", "Holds a mobile line"),
    _bool("account_has_broadband", "account", "feature", "Holds broadband"),
    _bool("account_has_tv", "account", "feature", "Holds TV"),
    _bool("account_has_fixed_voice", "account", "feature", "Holds fixed voice"),
    _bool("account_has_capped_mobile", "account", "feature", "Holds a mobile line with a data cap"),
    _bool("account_has_device_protection", "account", "feature", "Holds device protection"),
    _bool("account_has_travel_pack", "account", "feature", "Holds a travel pack"),
    _bool("account_has_mesh_wifi", "account", "feature", "Holds mesh Wi-Fi"),
    _bool("account_has_online_security", "account", "feature", "Holds online security"),
    _bool("account_has_streaming", "account", "feature", "Holds streaming"),
    _bool("account_has_premium_care", "account", "feature", "Holds premium care"),
    _number("line_overage_months_6m", "line", "feature", 0.0, 6.0,
            "Months with overage in the last 6 (max over lines)"),
    _number("line_data_gb_mean_3m", "line", "feature", 0.0, 100_000.0,
            "Mean monthly data GB of the last 3 months (mean over mobile lines)"),
    _number("line_data_cap_util_3m", "line", "feature", 0.0, 10_000.0,
            "Mean data GB / cap (mean over capped mobile lines)"),
    _number("line_roaming_days_3m", "line", "feature", 0.0, 92.0, "Roaming days in the last 3 months (max over lines)"),
    _number("line_intl_minutes_3m", "line", "feature", 0.0, 1_000_000.0,
            "International minutes in the last 3 months (sum over lines)"),
    _number("line_dropped_calls_3m", "line", "feature", 0.0, 1_000_000.0,
            "Dropped calls in the last 3 months (sum over lines)"),
    _number("line_device_age_months", "line", "feature", 0.0, 1200.0, "Age of the newest handset (min over mobile lines)"),
    _number("line_max_plan_tier", "line", "feature", 0.0, 100.0, "Highest plan tier (basic=0 .. unlimited=3)"),
    # ---- read by the ranking only
    _category("account_lifecycle_stage", "account", "decision", LIFECYCLE_STAGES, "Lifecycle stage at as_of"),
    _category("account_channel_preference", "account", "decision", CHANNELS, "Preferred contact channel"),
    *(_count(f"account_contacts_{c}_30d", "account", "decision", f"Contacts on channel {c} in the last 30 days")
      for c in CHANNELS),
    _count("account_promo_contacts_30d", "account", "decision", "Promotional contacts in the last 30 days"),
    _count("household_promo_contacts_30d", "household", "decision",
           "Promotional contacts of the household in the last 30 days"),
    # The builder emits active accounts only; a caller's frame may mark ended ones (win-back).
    _bool("account_is_active", "account", "decision", "The account is active (absent: every row is)", built=False),
    # ---- emitted for people and reports, read by neither models nor rules
    _bool("account_open_ticket_over_14d", "account", "helper", "A ticket open for more than 14 days"),
    _number("account_days_to_contract_end", "account", "helper", -36_500.0, 36_500.0,
            "Days to the fixed-term contract's end"),
    _number("account_tenure_days", "account", "helper", 0.0, 36_500.0, "Days since the account started"),
    _number("household_tenure_months", "household", "helper", 0.0, 1200.0, "Months since the household was created"),
    _bool("household_has_mobile", "household", "helper", "The household holds a mobile line"),
    _bool("household_has_broadband", "household", "helper", "The household holds broadband"),
    _bool("household_has_tv", "household", "helper", "The household holds TV"),
    _bool("household_has_fixed_voice", "household", "helper", "The household holds fixed voice"),
    _count("household_open_tickets", "household", "helper", "Tickets of the household open at as_of"),
    _count("household_contacts_30d", "household", "helper", "Contacts of the household in the last 30 days"),
)
"""Every column of the account feature frame (account attributes ``account_x_*`` aside)."""

BY_NAME: Mapping[str, Column] = {c.name: c for c in COLUMNS}
"""Column name -> its declaration."""

FEATURE_COLUMNS: list[str] = [c.name for c in COLUMNS if c.role == "feature"]
"""Model input columns, in the order models see them (no ids)."""

CATEGORY_VALUES: dict[str, tuple[str, ...]] = {
    c.name: c.categories for c in COLUMNS if c.role == "feature" and c.kind == "category"
}
"""Categorical model feature -> its fixed category list (from the schema vocabularies)."""


def column(name: str) -> Column:
    """Return the declaration of ``name``.

    Raises:
        KeyError: ``name`` is not declared (the message says where to declare it).
    """
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"column {name!r} is not declared in telco_nbo.contract.COLUMNS") from None


def kinds(names: Iterable[str]) -> dict[str, str]:
    """Return ``name -> kind`` for ``names``, in the given order.

    This is how a consumer that names the columns it reads (the rules) gets their types.

    Args:
        names: Declared column names.

    Returns:
        Name -> kind (see :data:`Kind`).

    Raises:
        KeyError: A name is not declared.
    """
    return {n: column(n).kind for n in names}


def columns(role: str | None = None, *, built: bool | None = None) -> tuple[Column, ...]:
    """Return the declarations with ``role`` (any role if ``None``), in declaration order.

    Args:
        role: One of :data:`ROLES`, or ``None``.
        built: When given, only the columns the feature builder emits (``True``) or does not.

    Returns:
        The matching declarations.
    """
    return tuple(c for c in COLUMNS if (role is None or c.role == role) and (built is None or c.built == built))


__all__ = [
    "BY_NAME",
    "CATEGORY_VALUES",
    "COLUMNS",
    "FEATURE_COLUMNS",
    "GRAINS",
    "KINDS",
    "MAX_COUNT",
    "ROLES",
    "Column",
    "Grain",
    "Kind",
    "Role",
    "column",
    "columns",
    "kinds",
]
