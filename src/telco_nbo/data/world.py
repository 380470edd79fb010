"""The in-memory shape of a data folder: the eight tables, optional ground truth, and metadata.

On disk a data folder is::

    DIR/households.parquet ... DIR/experiments.parquet   one file per table in schema.TABLES
    DIR/meta.json                                         seed, size, dates, scenario, source
    DIR/truth/*.parquet, DIR/truth/summary.json           synthetic worlds only; features never read it

CSV is accepted on load in place of Parquet (``DIR/<table>.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from telco_nbo.vocabulary import resolve_as_of

TRUTH_DIR = "truth"
META_FILE = "meta.json"


@dataclass
class World:
    """Tables of one data folder.

    Attributes:
        tables: Table name -> frame, for every table in :data:`telco_nbo.data.schema.TABLES`.
        truth: Ground-truth frames (synthetic worlds only), name -> frame. Never a feature input.
        meta: Free-form metadata (``seed``, ``n_households``, ``as_of``, ``world_end``,
            ``scenario``, ``source``...), JSON-serialisable.
    """

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def as_of_date(self, given: Any = None) -> pd.Timestamp:
        """Return the feature date: ``given`` (``--as-of``) if set, else the folder's ``meta["as_of"]``.

        Raises:
            ConfigError: Neither is set, or the value is not a naive date.
        """
        return resolve_as_of(given, self.meta.get("as_of"))
