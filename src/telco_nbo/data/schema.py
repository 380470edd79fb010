"""Data contracts for the telco world: one pandera schema per table.

The customer unit is a hierarchy: a **household** holds one or more **accounts**; an account holds
**lines** (mobile, broadband, TV, fixed voice). Usage is monthly per line; tickets and contacts are
per account. Every table in a data folder is validated against these schemas on load, and the
cross-table rules (ids nest, no orphans, dates in order) are checked by
:func:`telco_nbo.data.validate.validate_world`.

Ids are strings with a prefix (``H``, ``A``, ``L``, ``T``, ``C``) so that a stray integer id from a
foreign system never silently joins. Dates are ``datetime64[ns]`` (naive, in the operator's local
calendar): a month in ``usage_monthly`` is the first day of that month.

This module is the contract every other part reads; changing a column name here is an API change.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.pandas import Check, Column, DataFrameSchema

# Vocabularies. Kept as tuples so they are usable both in checks and as pandas categories.
REGIONS = ("urban", "suburban", "rural")
ACCOUNT_TYPES = ("consumer", "small_business")
CONTRACT_TYPES = ("month_to_month", "one_year", "two_year")
CONTRACT_MONTHS = {"month_to_month": 1, "one_year": 12, "two_year": 24}
PAYMENT_METHODS = ("electronic_check", "mailed_check", "bank_transfer", "credit_card")
CHANNELS = ("app", "email", "sms", "call_center", "retail")
LINE_TYPES = ("mobile", "broadband", "tv", "fixed_voice")
PLAN_TIERS = ("basic", "standard", "premium", "unlimited")
BROADBAND_TECHS = ("fiber", "dsl", "fwa", "cable")
TICKET_CATEGORIES = ("network", "coverage", "billing", "device", "other")
OFFER_KINDS = ("cross_sell", "upsell", "add_on", "retention", "win_back", "service_recovery")
EXPERIMENT_UNITS = ("household", "account")

TABLES = (
    "households",
    "accounts",
    "lines",
    "usage_monthly",
    "support_tickets",
    "offers",
    "contacts",
    "experiments",
)
"""Every table of a data folder, in load order (parents before children)."""

ID_COLUMNS = {
    "households": "household_id",
    "accounts": "account_id",
    "lines": "line_id",
    "support_tickets": "ticket_id",
    "offers": "offer_id",
    "contacts": "contact_id",
    "experiments": "experiment_id",
}
"""The primary key of each table that has a single-column key (usage_monthly's is line_id+month)."""

_nonneg = Check.ge(0)


def _isin(values: tuple[str, ...]) -> Check:
    return Check.isin(list(values))


def _prefixed(prefix: str) -> Check:
    return Check.str_startswith(prefix)


HOUSEHOLDS = DataFrameSchema(
    {
        "household_id": Column(str, _prefixed("H"), unique=True),
        "region": Column(str, _isin(REGIONS)),
        "household_size": Column(int, Check.in_range(1, 12)),
        # Network reach at the address: what can be sold there.
        "fiber_eligible": Column(bool),
        "fwa_eligible": Column(bool),
        "created_date": Column("datetime64[ns]"),
    },
    strict=True,
    name="households",
)

ACCOUNTS = DataFrameSchema(
    {
        "account_id": Column(str, _prefixed("A"), unique=True),
        "household_id": Column(str, _prefixed("H")),
        "account_type": Column(str, _isin(ACCOUNT_TYPES)),
        "start_date": Column("datetime64[ns]"),
        # Disconnect date of the whole account; null while active.
        "end_date": Column("datetime64[ns]", nullable=True),
        "contract_type": Column(str, _isin(CONTRACT_TYPES)),
        # Null for month-to-month.
        "contract_end_date": Column("datetime64[ns]", nullable=True),
        "payment_method": Column(str, _isin(PAYMENT_METHODS)),
        "paperless_billing": Column(bool),
        "channel_preference": Column(str, _isin(CHANNELS)),
        "senior_citizen": Column(bool),
        "has_partner": Column(bool),
        "has_dependents": Column(bool),
        "has_premium_care": Column(bool),
        # Recurring charge of all the account's lines (list price, before overage).
        "monthly_charges": Column(float, _nonneg),
    },
    strict=True,
    name="accounts",
)

LINES = DataFrameSchema(
    {
        "line_id": Column(str, _prefixed("L"), unique=True),
        "account_id": Column(str, _prefixed("A")),
        "line_type": Column(str, _isin(LINE_TYPES)),
        "start_date": Column("datetime64[ns]"),
        "end_date": Column("datetime64[ns]", nullable=True),
        "plan_tier": Column(str, _isin(PLAN_TIERS)),
        # Mobile data allowance; null for non-mobile lines and unlimited plans.
        "data_cap_gb": Column(float, _nonneg, nullable=True),
        "monthly_price": Column(float, _nonneg),
        # Broadband technology; null for non-broadband lines.
        "broadband_tech": Column(str, _isin(BROADBAND_TECHS), nullable=True),
        # Last handset purchase; null for non-mobile lines.
        "device_purchase_date": Column("datetime64[ns]", nullable=True),
        "has_device_protection": Column(bool),
        "has_travel_pack": Column(bool),
        "has_mesh_wifi": Column(bool),
        "has_online_security": Column(bool),
        "has_streaming": Column(bool),
    },
    strict=True,
    name="lines",
)

USAGE_MONTHLY = DataFrameSchema(
    {
        "line_id": Column(str, _prefixed("L")),
        # First day of the month the row covers.
        "month": Column("datetime64[ns]", Check(lambda s: (s.dt.day == 1).all(), error="month must be the 1st")),
        "data_gb": Column(float, _nonneg),
        "overage_gb": Column(float, _nonneg),
        "voice_minutes": Column(float, _nonneg),
        "intl_minutes": Column(float, _nonneg),
        "roaming_days": Column(int, Check.in_range(0, 31)),
        "dropped_calls": Column(int, _nonneg),
        # What the line was billed that month, overage included.
        "bill_amount": Column(float, _nonneg),
    },
    strict=True,
    unique=["line_id", "month"],
    name="usage_monthly",
)

SUPPORT_TICKETS = DataFrameSchema(
    {
        "ticket_id": Column(str, _prefixed("T"), unique=True),
        "account_id": Column(str, _prefixed("A")),
        "line_id": Column(str, _prefixed("L"), nullable=True),
        "category": Column(str, _isin(TICKET_CATEGORIES)),
        "opened_at": Column("datetime64[ns]"),
        # Null while the ticket is open.
        "resolved_at": Column("datetime64[ns]", nullable=True),
        "is_complaint": Column(bool),
    },
    strict=True,
    name="support_tickets",
)

OFFERS = DataFrameSchema(
    {
        "offer_id": Column(str, unique=True),
        "kind": Column(str, _isin(OFFER_KINDS)),
        "product": Column(str),
        # Negative for a discount (a retention or win-back offer lowers the bill).
        "monthly_price": Column(float),
        "monthly_margin": Column(float),
        "term_months": Column(int, _nonneg),
        # Allowed channels, comma-separated, from CHANNELS.
        "channels": Column(str),
        # Promotional offers are the ones the guardrails hold back (all but service recovery).
        "promotional": Column(bool),
        "description": Column(str),
    },
    strict=True,
    name="offers",
)

CONTACTS = DataFrameSchema(
    {
        "contact_id": Column(str, _prefixed("C"), unique=True),
        "account_id": Column(str, _prefixed("A")),
        "household_id": Column(str, _prefixed("H")),
        # Null only on a logged "no contact" choice of an exploring policy (contacted False).
        "offer_id": Column(str, nullable=True),
        "experiment_id": Column(str, nullable=True),
        "arm": Column(str, nullable=True),
        # False for a holdout (control) record: assigned, never contacted.
        "contacted": Column(bool),
        "channel": Column(str, _isin(CHANNELS), nullable=True),
        # Contact time; for a holdout record, the time it would have been contacted.
        "contacted_at": Column("datetime64[ns]"),
        "accepted": Column(bool),
        "accepted_at": Column("datetime64[ns]", nullable=True),
        # Early cancellation of an accepted offer (a quality signal marketing tracks).
        "cancelled_at": Column("datetime64[ns]", nullable=True),
        # The policy that chose this row and the probability it gave this choice (offer, or no
        # contact when offer_id is null); null where nobody logged it. Off-policy evaluation
        # reads them.
        "policy_id": Column(str, nullable=True),
        "propensity": Column(float, Check.in_range(0.0, 1.0, include_min=False), nullable=True),
    },
    strict=True,
    name="contacts",
)

EXPERIMENTS = DataFrameSchema(
    {
        "experiment_id": Column(str, unique=True),
        "name": Column(str),
        "unit": Column(str, _isin(EXPERIMENT_UNITS)),
        "start_date": Column("datetime64[ns]"),
        "end_date": Column("datetime64[ns]"),
        "control_arm": Column(str),
        # All arms, control included, comma-separated.
        "arms": Column(str),
        "primary_metric": Column(str),
        "description": Column(str),
    },
    strict=True,
    name="experiments",
)

SCHEMAS: dict[str, DataFrameSchema] = {
    "households": HOUSEHOLDS,
    "accounts": ACCOUNTS,
    "lines": LINES,
    "usage_monthly": USAGE_MONTHLY,
    "support_tickets": SUPPORT_TICKETS,
    "offers": OFFERS,
    "contacts": CONTACTS,
    "experiments": EXPERIMENTS,
}
"""Table name -> schema. Columns listed in each schema are exactly the columns of the table."""


OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"contacts": ("policy_id", "propensity")}
"""Columns added after the first release: a data folder without them loads with them null."""


def columns(table: str) -> list[str]:
    """Return the column names of ``table`` in contract order.

    Args:
        table: One of :data:`TABLES`.

    Returns:
        The column names.
    """
    return list(SCHEMAS[table].columns)


__all__ = [
    "pa",
    "SCHEMAS",
    "TABLES",
    "ID_COLUMNS",
    "columns",
]
