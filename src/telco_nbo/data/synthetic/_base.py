"""Constants, small helpers, the calendar and the state containers of the generator.

Time axis
---------
* ``as_of`` (default 2025-12-31): the date models score at. ``world_end = as_of + 90 days`` so that
  90-day churn labels after ``as_of`` are observable.
* Months run from ``M0 = month(as_of - 600 days)`` (>= 19 months before ``as_of``: the timing
  cohort's first months must be in the usage table) to ``month(world_end)``; ``world_start`` is the
  first day of ``M0``. Usage rows after ``as_of`` exist on purpose (features must ignore them).
* Accounts started between 8 years before ``as_of`` and ``as_of``. Accounts that started before
  ``world_start`` are the survivors the world begins with; churn is simulated from
  ``world_start`` on. A churned account gets ``end_date`` and all its lines end on that day;
  no usage after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from telco_nbo.data.schema import LINE_TYPES
from telco_nbo.errors import ConfigError


GENERATOR_VERSION = "2.0.0"
SCENARIOS: tuple[str | None, ...] = (None, "price_rise", "handset_launch", "offer_fatigue")
RETENTION_EXPERIMENT_ID = "EXP-RETENTION-1"
TIMING_EXPERIMENT_ID = "EXP-TIMING-1"
RETENTION_OFFER = "RETENTION_DISCOUNT"
TIMING_OFFER = "PLAN_REVIEW"
TIMING_ARMS = ("control", "day30", "pre_end60")
TIMING_SEGMENTS = ("mobile_only", "bundle", "home_only")
UPLIFT_SEGMENTS = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
PRICE_RISE_REGION = "suburban"
FATIGUE_SEGMENT = "small_business"
FATIGUE_HARM = 0.05
"""Offer fatigue: added 90-day churn probability of a contacted small-business account (scenario)."""

P_RESIGN = 0.55
MARGIN_RATE = 0.5
MONTHLY_DISCOUNT = 0.01
OVERAGE_RATE = 8.0
DATA_SIGMA = 0.45
DATA_TREND = 1.01
PLAN_REVIEW_FACTOR = 0.92
RETENTION_WINDOW_DAYS = 90
RETENTION_LEAD_DAYS = 120
RETENTION_SHARE = 0.40
CAMPAIGN_RATE = 0.10
EXPLORE_SHARE = 0.30
"""Share of campaign contacts chosen uniformly at random (logged exploration)."""
WAVE_SHARE = 0.10
"""Share of active accounts in the exploration wave the day after as_of (off-policy evaluation)."""
POLICIES = ("campaign-need-v1", "explore-uniform-v1")
"""policy_id of the campaign engine (need-weighted choice) and of uniform exploration."""
STEP_DAYS = 30
BIG = 10**7  # "no date" for ends: far beyond any world

# Codes used internally (indices into the schema vocabularies).
MOB, BB, TV, FIX = (LINE_TYPES.index(t) for t in ("mobile", "broadband", "tv", "fixed_voice"))
TECHS = ("fiber", "dsl", "fwa", "cable")
FIBER, DSL, FWA, CABLE = range(4)
CAPS = np.array([4.0, 15.0, 40.0, np.nan])
PRICES = np.array(
    [[20.0, 30.0, 45.0, 60.0], [35.0, 50.0, 70.0, 90.0], [25.0, 35.0, 50.0, 70.0], [15.0, 20.0, 25.0, 30.0]]
)
CAMPAIGN_OFFERS = (
    "HOME_FIBER", "HOME_FWA", "DATA_UPSELL", "TRAVEL_PACK", "DEVICE_PROTECTION",
    "EXTRA_LINE", "TV_STREAMING", "MESH_WIFI", "PREMIUM_CARE",
)
FLAG_OF = {
    "TRAVEL_PACK": "tp", "DEVICE_PROTECTION": "dp", "MESH_WIFI": "mesh",
}
# Stream keys of the monthly simulation (with the month index): never reorder.
K_USAGE, K_TICKETS, K_CHURN, K_CAMPAIGN, K_RETENTION, K_POST, K_TIMING, K_SCEN, K_EXPLORE, K_WAVE = range(1, 11)


def day_number(ts: pd.Timestamp | str) -> int:
    return int(np.datetime64(pd.Timestamp(ts).date(), "D").astype(np.int64))


def to_datetime64(days: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """Int day numbers -> datetime64[ns] (NaT where ``missing``)."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    if missing is not None:
        out = out.copy()
        out[missing] = np.datetime64("NaT")
    return out


def make_ids(prefix: str, n: int, width: int) -> np.ndarray:
    nums = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, nums).astype(object)


def substream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def choice(rng: np.random.Generator, n: int, p: list[float]) -> np.ndarray:
    """Categorical draw by inverse CDF (one uniform per row)."""
    cum = np.cumsum(np.asarray(p, dtype=float))
    return np.minimum(np.searchsorted(cum / cum[-1], rng.random(n), side="right"), len(p) - 1)


def pick_by_weight(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical pick among columns with weights ``w`` (rows with no weight -> -1)."""
    tot = w.sum(axis=1)
    cum = np.cumsum(w, axis=1)
    # counts the columns whose cumulative weight is <= u * total: zero-weight columns are never picked
    k = (cum <= (u * tot)[:, None]).sum(axis=1)
    k = np.minimum(k, w.shape[1] - 1)
    return np.where(tot > 0, k, -1)


def poisson_trunc3(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(lam) by inverse CDF truncated at 3 (one uniform each: stable random streams)."""
    e = np.exp(-lam)
    f0 = e
    f1 = f0 + e * lam
    f2 = f1 + e * lam * lam / 2
    return (u > f0).astype(np.int64) + (u > f1) + (u > f2)


def first_index(n: int, owner: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each owner 0..n-1 the smallest index i with mask[i] and owner[i] == owner, else -1."""
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)[::-1]
    out[owner[idx]] = idx  # later writes win: reversed order leaves the smallest index
    return out


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    as_of: int
    world_end: int
    world_start: int
    month_starts: np.ndarray  # n_months + 1 boundaries (int days)
    t0: int  # retention experiment start
    cohort_lo: int
    cohort_hi: int

    @property
    def n_months(self) -> int:
        return len(self.month_starts) - 1

    def month_of(self, day: np.ndarray | int) -> np.ndarray:
        return np.searchsorted(self.month_starts, day, side="right") - 1


def make_calendar(as_of: str | pd.Timestamp) -> Calendar:
    try:
        ts = pd.Timestamp(as_of).normalize()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"as_of '{as_of}' is not a date") from exc
    a = day_number(ts)
    w_end = a + 90
    m0 = np.datetime64(np.datetime64(a - 600, "D"), "M")
    m_last = np.datetime64(np.datetime64(w_end, "D"), "M")
    ms = np.arange(m0, m_last + 2, dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return Calendar(
        as_of=a, world_end=w_end, world_start=int(ms[0]), month_starts=ms,
        t0=a - RETENTION_LEAD_DAYS, cohort_lo=a - 575, cohort_hi=a - 455,
    )


# --------------------------------------------------------------------------------------------
# State containers
# --------------------------------------------------------------------------------------------


@dataclass
class LineArrays:
    """Line arrays (grow when campaigns add lines)."""

    acc: np.ndarray
    typ: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tier: np.ndarray
    cap: np.ndarray
    price: np.ndarray
    tech: np.ndarray
    dev: np.ndarray  # handset owned at as_of (day; -1 none)
    dev_prev: np.ndarray  # the handset before it
    need: np.ndarray
    voice: np.ndarray
    pm_from: np.ndarray  # plan-review price factor from this day (BIG: never)
    dp: np.ndarray
    tp: np.ndarray
    mesh: np.ndarray
    sec: np.ndarray
    stream: np.ndarray
    ovg3: np.ndarray  # (3, n) overage in the last 3 months
    roam3: np.ndarray  # (3, n) roaming days in the last 3 months

    @property
    def n(self) -> int:
        return len(self.acc)

    def append(self, **cols: np.ndarray) -> None:
        k = len(cols["acc"])
        for name in self.__dataclass_fields__:
            cur = getattr(self, name)
            if name in ("ovg3", "roam3"):
                setattr(self, name, np.concatenate([cur, np.zeros((3, k), cur.dtype)], axis=1))
            else:
                setattr(self, name, np.concatenate([cur, np.asarray(cols[name], dtype=cur.dtype)]))


@dataclass
class Events:
    """Recurring charges / data-cap bonuses on lines, active on [start, stop)."""

    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    amount: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    stop: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, line: np.ndarray, amount: np.ndarray, cap: np.ndarray, start: np.ndarray, stop: np.ndarray) -> None:
        self.line = np.concatenate([self.line, line.astype(np.int64)])
        self.amount = np.concatenate([self.amount, np.broadcast_to(amount, line.shape).astype(float)])
        self.cap = np.concatenate([self.cap, np.broadcast_to(cap, line.shape).astype(float)])
        self.start = np.concatenate([self.start, np.broadcast_to(start, line.shape).astype(np.int64)])
        self.stop = np.concatenate([self.stop, np.broadcast_to(stop, line.shape).astype(np.int64)])


@dataclass
class ContactChunks:
    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)

    def add(self, **cols: np.ndarray) -> None:
        # Experiments log no policy: their arm is the assignment.
        cols.setdefault("policy", -1)
        cols.setdefault("prop", np.nan)
        n = len(cols["acc"])
        full = {k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in cols.items()}
        self.chunks.append(full)
