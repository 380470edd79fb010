"""The catalog's offers in the propensity model's input form (the ``offer_*`` columns).

Training builds its account x offer rows with :func:`telco_nbo.models.propensity.offer_features`
from the data folder's offers table; scoring builds the offers' columns with the same function
from the catalog's offers table (:func:`telco_nbo.nbo.catalog.catalog_frame`), so a price, margin
or term changed in the catalog reaches the model exactly as a training row would carry it.
"""

from __future__ import annotations

import numpy as np

from telco_nbo.models.propensity import OFFER_FEATURE_COLUMNS, offer_features
from telco_nbo.nbo.catalog import Catalog, catalog_frame

OFFER_ATTRIBUTES: tuple[str, ...] = tuple(OFFER_FEATURE_COLUMNS)
"""The propensity model's offer inputs (``offer_id``, ``offer_kind``, price, margin, term)."""

_CATEGORICAL = ("offer_id", "offer_kind")


def offer_attributes(catalog: Catalog) -> dict[str, np.ndarray]:
    """The offer columns of every catalog offer, in catalog order, as numpy arrays.

    Args:
        catalog: The offer catalog.

    Returns:
        Column name -> ``(m,)`` array: ``offer_id`` and ``offer_kind`` as text (the compiled
        booster codes them with the model's own stored categories), the rest as float.
    """
    frame = offer_features([o.offer_id for o in catalog.offers], catalog_frame(catalog))
    return {c: frame[c].astype(str).to_numpy().astype(str) if c in _CATEGORICAL else frame[c].to_numpy(dtype=float)
            for c in OFFER_ATTRIBUTES}


__all__ = ["OFFER_ATTRIBUTES", "offer_attributes"]
