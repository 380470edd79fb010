"""Moved to :mod:`telco_nbo.scoring` (one scoring stack for batch ``rank``, the service and Dask).

A re-export for a short transition while the last callers switch their imports; import from
:mod:`telco_nbo.scoring` in new code.
"""

from __future__ import annotations

from telco_nbo.scoring import ChampionModels, CompiledBooster, FastScorer, export_champions

__all__ = ["ChampionModels", "CompiledBooster", "FastScorer", "export_champions"]
