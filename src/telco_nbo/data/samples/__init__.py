"""Sample data shipped with the package (see ``README.md`` here for source and licence)."""

from __future__ import annotations

from pathlib import Path

IBM_TELCO_CSV = Path(__file__).with_name("ibm_telco_customer_churn.csv")
"""The public IBM Telco Customer Churn sample (Apache-2.0), 7,043 rows."""

__all__ = ["IBM_TELCO_CSV"]
