"""The synthetic telco world: households, accounts, lines, usage, tickets, contacts, experiments.

:func:`generate_world` builds a whole data folder (:class:`~telco_nbo.data.world.World`) whose
causes are known, so churn, propensity, uplift and CLV models and A/B readouts can be checked
against the truth it writes to ``World.truth`` (never to ``World.tables``).

Everything is vectorized numpy: the only Python loop runs over the ~23 calendar months of the
world, never over customers. Generation is deterministic per seed: the set-up draws come from
``np.random.default_rng(seed)`` in a fixed order, and every draw inside the monthly simulation
comes from its own stream ``np.random.default_rng([seed, stage, month])`` and is *parameter free*
(uniform, standard normal, fixed-shape gamma) and sized by the number of accounts / lines. So a
customer's random numbers do not depend on anybody else's outcome, and a scenario changes only
the customers it says it changes.

The world is built by parts, one module each (formulas in each module's docstring):

* :mod:`._base` -- time axis, constants, helpers;
* :mod:`.population` -- households, accounts, lines;
* :mod:`.monthly` -- usage, tickets, churn per month;
* :mod:`.hazard` -- the churn hazard;
* :mod:`.offers` -- the causal model of every catalog offer (acceptance, effect on churn and margin);
* :mod:`.campaigns` -- campaign contacts and logged exploration;
* :mod:`.experiments` -- the retention experiment;
* :mod:`.timing` -- the offer-timing experiment;
* :mod:`.truth` -- churn, CLV and offer truth at as_of;
* :mod:`.assemble` -- arrays to tables;
* :mod:`.generator` -- the run that calls the stages in order.

Scenarios
---------
* ``price_rise``: list prices in region ``suburban`` x1.15 for bills from the month 2 months
  before ``as_of``'s month on (3 months up to ``as_of``), and in the ``lines.monthly_price`` /
  ``accounts.monthly_charges`` snapshot; raises ``price_z`` and so churn there.
* ``handset_launch``: 30 % of mobile lines that started >= 60 days before ``as_of`` buy a handset
  in the last 60 days before ``as_of`` (``device_purchase_date``), lowering device age and device
  tickets, and raising DEVICE_PROTECTION need and acceptance.
* ``offer_fatigue``: the retention effect in segment ``account_type == 'small_business'`` fades to
  slightly harmful (see above).

What a scenario changed is recorded in ``meta['scenario_detail']``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.data.synthetic._base import (
    Calendar,
    FATIGUE_HARM,
    FATIGUE_SEGMENT,
    GENERATOR_VERSION,
    make_calendar,
    PRICE_RISE_REGION,
    RETENTION_EXPERIMENT_ID,
    RETENTION_OFFER,
    SCENARIOS,
    TIMING_EXPERIMENT_ID,
    TIMING_OFFER,
    UPLIFT_SEGMENTS,
)
from telco_nbo.data.synthetic.generator import WorldGenerator
from telco_nbo.data.synthetic.hazard import HAZARD, hazard_logit
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError


def generate_world(
    n_households: int,
    seed: int,
    *,
    as_of: str | pd.Timestamp = "2025-12-31",
    scenario: str | None = None,
    catalog: Any = None,
    progress: Callable[[str], None] | None = None,
) -> World:
    """Generate a synthetic telco world (all formulas in this module's docstring).

    Args:
        n_households: Number of households (>= 1).
        seed: Random seed; the same seed, size, ``as_of``, scenario and catalog give identical
            frames (and byte-identical Parquet files).
        as_of: The scoring date; the world runs to ``as_of + 90 days``.
        scenario: ``None``, ``"price_rise"``, ``"handset_launch"`` or ``"offer_fatigue"``.
        catalog: An offer :class:`~telco_nbo.nbo.catalog.Catalog`; ``None`` for the built-in one.
            It must contain RETENTION_DISCOUNT and PLAN_REVIEW (the experiments' offers).
        progress: Optional callback called with a stage name after each stage.

    Returns:
        The world: the eight tables, ``truth`` (``accounts``, ``clv``, ``retention``, ``timing``,
        ``households``) and ``meta`` (``truth_summary`` is written as ``truth/summary.json``).

    Raises:
        ConfigError: Bad size, seed, date or scenario, or a catalog without the experiments' offers.
    """
    if isinstance(n_households, bool) or not isinstance(n_households, (int, np.integer)) or n_households < 1:
        raise ConfigError(f"n_households must be a positive integer, got {n_households!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; choose from {[s for s in SCENARIOS if s]} or none")
    cal = make_calendar(as_of)
    step = progress or (lambda _s: None)
    g = WorldGenerator(int(n_households), int(seed), cal, scenario, catalog)
    rng = np.random.default_rng(int(seed))
    g.households(rng)
    g.accounts(rng)
    g.lines(rng)
    step("households, accounts, lines")
    g.timing_cohort()
    step("timing experiment")
    g.simulate(progress=step)
    g.timing_truth()
    world = g.assemble()
    step("tables")
    meta: dict[str, Any] = {
        "source": "synthetic",
        "generator": "telco_nbo.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_households": int(n_households),
        "as_of": str(pd.Timestamp(np.datetime64(cal.as_of, "D")).date()),
        "world_start": str(pd.Timestamp(np.datetime64(cal.world_start, "D")).date()),
        "world_end": str(pd.Timestamp(np.datetime64(cal.world_end, "D")).date()),
        "scenario": scenario,
        "scenario_detail": _scenario_detail(scenario, cal, g),
        "experiments": {
            RETENTION_EXPERIMENT_ID: {"offer_id": RETENTION_OFFER, "unit": "account"},
            TIMING_EXPERIMENT_ID: {"offer_id": TIMING_OFFER, "unit": "household"},
        },
        "truth_summary": {**g.summary, "scenario": scenario, "scenario_detail": _scenario_detail(scenario, cal, g)},
    }
    world.meta = meta
    return world


def _scenario_detail(scenario: str | None, cal: Calendar, g: WorldGenerator) -> dict[str, Any] | None:
    if scenario is None:
        return None
    if scenario == "price_rise":
        return {
            "region": PRICE_RISE_REGION, "factor": 1.15,
            "from_month": str(pd.Timestamp(np.datetime64(g.rise_from, "D")).date()),
            "changed": ["usage_monthly.bill_amount", "lines.monthly_price", "accounts.monthly_charges",
                        "churn hazard (price_z) in the region"],
        }
    if scenario == "handset_launch":
        return {
            "share_of_mobile_lines": 0.30, "window_days": 60, "n_lines": getattr(g, "handset_lines", 0),
            "changed": ["lines.device_purchase_date", "device tickets", "DEVICE_PROTECTION need and acceptance"],
        }
    return {
        "segment": f"account_type == '{FATIGUE_SEGMENT}'",
        "experiment_id": RETENTION_EXPERIMENT_ID,
        "effect": f"p1 = min(1, p0 + {FATIGUE_HARM}) for non-lost-cause accounts of the segment",
        "changed": ["EXP-RETENTION-1 outcomes of small-business accounts", "truth/retention.p1, tau, fatigued"],
    }


def summarize_world(world: World) -> dict[str, Any]:
    """Headline rates of a world (for the CLI and notebooks).

    Args:
        world: A generated (or loaded, with truth) world.

    Returns:
        Counts, annual churn rate (accounts active a year before ``as_of`` that ended within the
        year), acceptance rate by offer (contacted rows), uplift segment shares, true retention ATE
        and true timing effects per arm (from the truth summary when present).
    """
    t = world.tables
    as_of = pd.Timestamp(world.meta.get("as_of", "2025-12-31"))
    acc = t["accounts"]
    y0 = as_of - pd.Timedelta(days=365)
    base = acc[(acc["start_date"] <= y0) & (acc["end_date"].isna() | (acc["end_date"] > y0))]
    churned = base["end_date"].notna() & (base["end_date"] <= as_of)
    ct = t["contacts"]
    contacted = ct[ct["contacted"]]
    acc_rate = contacted.groupby("offer_id")["accepted"].agg(["size", "mean"]).rename(
        columns={"size": "contacts", "mean": "acceptance_rate"})
    summ = world.meta.get("truth_summary") or {}
    return {
        "households": int(len(t["households"])),
        "accounts": int(len(acc)),
        "lines": int(len(t["lines"])),
        "usage_rows": int(len(t["usage_monthly"])),
        "tickets": int(len(t["support_tickets"])),
        "contacts": int(len(ct)),
        "annual_churn_rate": float(churned.mean()) if len(base) else float("nan"),
        "acceptance_by_offer": {k: {"contacts": int(v["contacts"]), "rate": float(v["acceptance_rate"])}
                                for k, v in acc_rate.iterrows()},
        "retention": summ.get("retention"),
        "timing": summ.get("timing"),
    }


__all__ = [
    "GENERATOR_VERSION",
    "HAZARD",
    "SCENARIOS",
    "RETENTION_EXPERIMENT_ID",
    "TIMING_EXPERIMENT_ID",
    "TIMING_OFFER",
    "RETENTION_OFFER",
    "UPLIFT_SEGMENTS",
    "generate_world",
    "make_calendar",
    "hazard_logit",
    "summarize_world",
]
