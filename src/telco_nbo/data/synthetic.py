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

Households and products
-----------------------
* ``region`` ~ urban 45 % / suburban 35 % / rural 20 %; ``household_size`` in 1..6 (weights
  .28 .32 .16 .15 .06 .03).
* ``fiber_eligible`` ~ Bernoulli(.45 urban, .35 suburban, .15 rural); ``fwa_eligible`` ~
  Bernoulli(.70 / .60 / .45) where there is no fiber and Bernoulli(.20) where there is.
* Latent household traits (written to ``truth/households``): ``weak_coverage`` ~ Bernoulli(.08 /
  .15 / .30 by region), ``traveller`` ~ Bernoulli(.12), ``intl_caller`` ~ Bernoulli(.15),
  ``price_sensitivity`` ~ N(0, 1) clipped to [-2, 2].
* Accounts per household 1 / 2 / 3 with probability .82 / .14 / .04; lines per household
  ``clip(n_accounts + Poisson(0.5 + 0.3 (household_size - 1)), n_accounts, 6)``, the extra lines
  on the first account. The first account's product mix is mobile-only (45 %), broadband+mobile
  bundle (35 %) or home-only (20 %; broadband, then TV 70 % / fixed voice, at most 3 lines); a
  later account has one line (mobile 70 %, broadband 30 %). Bundle lines: broadband, mobile, then
  TV 45 % / fixed voice 15 % / mobile 40 % for the third, mobile after that.
* Plan tiers basic / standard / premium / unlimited with weights .25 .40 .20 .15 and list prices
  mobile 20/30/45/60, broadband 35/50/70/90 (+5 on fiber), TV 25/35/50/70, fixed voice
  15/20/25/30, times a legacy factor ``1 + min(0.04 * tenure_years, 0.3)`` (old plans cost more)
  and ``U(0.95, 1.05)``. Mobile data caps 4 / 15 / 40 GB, none on unlimited.
* Broadband technology: fiber (85 %) at fiber addresses, fwa (30 %) at fwa-only addresses,
  otherwise dsl / cable.
* Contracts: accounts that started within 2 years: month-to-month .40 / one-year .40 /
  two-year .20, older ones .45 / .25 / .30. Terms are 365 / 730 days. At each contract end a
  customer re-signs with probability ``P_RESIGN`` = 0.55 (``contract_end_date`` rolls forward by
  one term); otherwise the contract lapses: ``contract_end_date`` stays in the past and the
  account is out of contract. Re-signing after ``as_of`` is not recorded (the accounts table is
  the contract state known at ``as_of``). Accounts of the timing cohort never re-sign (their
  ``contract_end_date`` is the end of the first term the experiment is about).
* ``device_purchase_date`` of a mobile line ~ ``as_of - U(0, 1100)`` days (the handset owned at
  ``as_of``); before that date the line used an older handset bought 900 days earlier.

Monthly usage (per line, month ``m``; ``f`` = fraction of the month the line was active)
------------------------------------------------------------------------------------
* mobile ``data_gb = f * need * 1.01^m * X``, ``X = exp(0.45 Z - 0.45^2/2)`` (mean 1),
  ``need`` ~ LogNormal(log 8, 0.7) GB; ``overage_gb = f * max(0, need * 1.01^m * X - cap)``
  (0 on unlimited; ``cap`` includes +30 GB while an accepted DATA_UPSELL runs);
  broadband ``data_gb = f * need_bb * X`` with ``need_bb`` ~ LogNormal(log 180, 0.5);
  TV / fixed voice: 0.
* ``bill_amount = f * price * price_factor * plan_factor + 8 * overage_gb + charges`` where
  ``price_factor`` is 1.15 in the price-rise region/months (scenario) else 1, ``plan_factor`` is
  0.92 from the month after an accepted PLAN_REVIEW, and ``charges`` are prorated add-on prices
  (accepted TRAVEL_PACK, DEVICE_PROTECTION, DATA_UPSELL, MESH_WIFI, PREMIUM_CARE) and the
  RETENTION_DISCOUNT (-10 a month for 12 months); floored at 0.
* ``voice_minutes = f * 120 * v * G2 / 2`` (mobile; fixed voice 60), ``v`` ~ LogNormal(0, 0.5),
  ``G2`` ~ Gamma(2); ``intl_minutes = f * (40 if intl_caller else 2) * Exp(1)``.
* ``roaming_days``: a trip with probability 0.15 (travellers; 0.35 in Jun-Aug, 0.25 in Dec) or
  0.01 (others) and then ``min(1 + floor(-5 log U), active days)``.
* ``dropped_calls = floor(lambda * G2' / 2 + U)``, ``lambda = voice / 100 * (0.04 + 0.5 weak)``.

Support tickets (per active account and month; counts are Poisson, truncated at 3 per category)
------------------------------------------------------------------------------------------------
* network ``(0.01 + 0.05 min(dropped_calls, 12)) f``; coverage ``(0.004 + weak (0.06 + 0.08
  has_broadband)) f``; billing ``(0.008 + 0.30 bill_shock) f``; device ``(0.003 + 0.015
  max device age in years) has_mobile f``; other ``0.008 f``.
* ``bill_shock`` = the account's overage charges that month exceed ``max(15, 0.25 *
  monthly list charges)``.
* Complaint with probability .15 / .20 / .30 / .08 / .05 (same category order). Resolution after
  ``1 + floor(Exp(4))`` days, or with probability 0.08 (0.25 for complaints)
  ``10 + floor(Exp(40))`` days; ``resolved_at`` is null if that is after ``world_end``.

Churn (monthly hazard, logistic)
--------------------------------
``logit h = -4.75 + 1.2 m2m - 0.5 two_year_in_contract + 0.9 out_of_contract
+ 1.4 renewal_window (in contract, 0..60 days to the end) + 0.6 recently_lapsed (<= 60 days)
+ 0.9 bill_shock + 0.4 open_ticket + 2.2 open_complaint
+ 0.9 price_z (1 + 0.5 price_sensitivity) + 0.8 exp(-tenure_months / 4) - 0.2 min(tenure_years, 6)
- 0.5 household_has_broadband_and_mobile - 0.15 min(household_lines - 1, 4)
- 0.3 small_business + 0.35 electronic_check + 0.2 senior + 0.1 paperless``
(see :data:`HAZARD`), where ``price_z = log(account list charges / median charges of accounts
with the same region and number of lines)``. A month's hazard applies to the exposed fraction
``e`` of the month: ``P(churn in month) = 1 - (1 - h)^e``; the day is uniform in the exposed part.
Three windows are drawn from closed-form probabilities instead (so the truth is exact):
the retention experiment window, the timing cohort's first contract term, and the 90 days after
``as_of``.

True 90-day churn and CLV (``truth/accounts``, ``truth/clv``)
-------------------------------------------------------------
For every account active at ``as_of``: the stochastic inputs (bill shock of the last month,
open ticket / complaint, charges, household mix) are frozen at ``as_of`` and the deterministic
ones (tenure, days to contract end) advance by 30-day steps ``k = 0, 1, ...``. With
``S^r`` (re-signs at contract end) and ``S^o`` (lapses) the survivals ``prod_k (1 - h_k)``,
``S_k = P_RESIGN S^r_k + (1 - P_RESIGN) S^o_k`` (cohort accounts: ``S^o`` only) and
``p_churn_90d = 1 - S_3``; the account's churn in ``(as_of, world_end]`` is drawn from exactly this
(step ``k`` with probability ``S_k - S_{k+1}``, day uniform in the step).
``clv_36m = sum_{k=1..36} margin * S_k / 1.01^k`` with ``margin = MARGIN_RATE (0.5) *
monthly_charges``.

Offers and campaign contacts (12 months before ``as_of``, not randomized)
---------------------------------------------------------------------------
At the end of each month a household is contacted with probability 0.10 (one active account,
picked at random), except households in an experiment window. The campaign engine targets by
need: offer weight ``eligible * (0.05 + 3 p)``, promotional offers are held back while a ticket is
open. Acceptance probabilities ``p`` (need signal -> strong / weak):
HOME_FIBER (mobile, no broadband, fiber address; household without broadband .14 / .02),
HOME_FWA (fwa address without fiber .09 / .015), DATA_UPSELL (overage months in the last 3:
0/1/2/3 -> .01 .10 .28 .40), TRAVEL_PACK (roaming in the last 3 months .25 + .01 min(days, 20) /
.01), DEVICE_PROTECTION (handset bought in the last 60 days .30 / .02; .40 in the handset-launch
scenario), EXTRA_LINE (gap = household_size - household lines >= 1: .04 + .05 min(gap, 3) / .01),
TV_STREAMING (broadband without TV .05 + .03 [size >= 3]), MESH_WIFI (coverage ticket in the last
3 months .35 / .02), PREMIUM_CARE (coverage or network ticket .15 / .01). The channel is the
preferred one when the offer allows it (75 %), else a random allowed one. Accepted offers are
cancelled within 5..90 days with probability .08 (strong need) / .35 (weak need); their effects
(new line, flag, data cap, add-on charge) run from the 1st of the next month to the cancellation.

Retention experiment ``EXP-RETENTION-1`` (unit account, arms control / treatment)
--------------------------------------------------------------------------------
At ``T0 = as_of - 120 days``, 40 % of active accounts (timing-cohort households excluded) are
enrolled, half treated (RETENTION_DISCOUNT on the preferred allowed channel) and half holdout
(``contacted`` False, channel null, ``contacted_at = T0``). ``p0`` = the true 90-day churn
probability at ``T0`` (as above). Segments (rules at ``T0``):

* lost cause: an unresolved complaint; ``p1 = p0``.
* persuadable: month-to-month, out of contract or within 90 days of its end, and price
  sensitive (``price_z > 0.1`` or ``price_sensitivity > 1.0``), tenure < 4 years;
  ``p1 = 0.30 p0``.
* sleeping dog: tenure >= 4 years, ``price_z > 0.1`` (old expensive plan), not an app user and no
  open ticket (low engagement); ``p1 = min(0.95, p0 + 0.06 + 0.6 p0)`` (the contact reminds them
  they can leave).
* sure thing: everyone else (low ``p0``); ``p1 = 0.95 p0``.

``tau = p1 - p0``. Scenario ``offer_fatigue``: for small-business accounts that are not lost
causes ``p1 = min(1, p0 + FATIGUE_HARM)`` with ``FATIGUE_HARM`` = 0.05 (the effect has faded and turned
harmful; strong enough that a monitoring job sees it in the experiment's holdout at ~50k households).
Treated accounts accept with probability .40 / .15 / .04 / .10 (persuadable / sure thing / lost
cause / sleeping dog). Churn in ``[T0, T0 + 90)`` ~ Bernoulli(p0 or p1).

Offer-timing experiment ``EXP-TIMING-1`` (unit household, arms control / day30 / pre_end60)
------------------------------------------------------------------------------------------
Cohort: households whose first account started on a one-year contract in
``[as_of - 575, as_of - 455)`` days (so ``contract_end + 90 <= as_of - 90``); all their accounts
start that day on one-year contracts with all lines, and get no campaign contacts until
``contract_end + 90``. Arms are equal thirds (random). The offer is PLAN_REVIEW (fixed): day30 at
``start + 30``, pre_end60 at ``contract_end - 60``; one contact row per account with the
household's arm, control rows ``contacted`` False. Segments: ``mobile_only`` (only mobile lines),
``bundle`` (broadband and mobile), ``home_only`` (no mobile; no effect).

Churn: none before the end of the household's first full month; in period A
``[tA0, contract_end - 60)`` with probability ``pA`` and, if not, in period B ``[contract_end - 60,
contract_end + 90]`` with probability ``pB`` (days uniform inside each); all accounts end that
day. Base ``(pA, pB)``: mobile_only (.10, .30), bundle (.05, .18), home_only (.07, .22).
day30 multiplies mobile_only's ``pA`` by .70 and ``pB`` by .75; pre_end60 multiplies bundle's
``pB`` by .60; nothing else changes. Acceptance given contact ``a``: day30 .30 / .10 / .08,
pre_end60 .12 / .35 / .08 (mobile_only / bundle / home_only); accepted PLAN_REVIEW lowers the
price part of every line's bill by 8 % from the month after contact.

Readout definitions (what the truth is the expectation of):

* ``accepted`` = any accepted contact of the household in EXP-TIMING-1;
* ``churned`` = any account of the household ended on or before its ``contract_end_date + 90
  days``;
* ``revenue`` = sum of ``bill_amount`` of the household's lines over the 12 months starting the
  month after the start month;
* ``pre_revenue`` = ``bill_amount`` of the household's first full month (CUPED covariate; no
  treatment can touch it).

Truth (``truth/timing``): ``p_churned_<arm> = 1 - (1 - pA)(1 - pB)``, ``p_accept_<arm> = a
S(contact)`` (``S`` = survival to the contact day), ``revenue_<arm> = sum_m E[f_m] (sum_lines
price * price_factor_m * (1 - 0.08 a [m > contact month]) + E[8 overage_m])`` with the lognormal
closed form ``E[max(0, A X - c)] = A Phi(d1) - c Phi(d2)``, ``d1 = (log(A/c) + s^2/2)/s``,
``d2 = d1 - s``. ``truth_summary`` (``truth/summary.json``) holds the cohort means of the arm -
control differences, overall and per segment, and the retention ATE and segment shares.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from telco_nbo.data.schema import (
    ACCOUNT_TYPES,
    CHANNELS,
    CONTRACT_TYPES,
    LINE_TYPES,
    PAYMENT_METHODS,
    PLAN_TIERS,
    REGIONS,
    TICKET_CATEGORIES,
    columns,
)
from telco_nbo.data.world import World
from telco_nbo.errors import ConfigError

GENERATOR_VERSION = "1.0.0"
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
STEP_DAYS = 30
_BIG = 10**7  # "no date" for ends: far beyond any world

HAZARD: dict[str, float] = {
    "intercept": -4.75,
    "month_to_month": 1.2,
    "two_year_in_contract": -0.5,
    "out_of_contract": 0.9,
    "renewal_window": 1.4,
    "recently_lapsed": 0.6,
    "bill_shock": 0.9,
    "open_ticket": 0.4,
    "open_complaint": 2.2,
    "price_z": 0.9,
    "new_customer": 0.8,
    "tenure_years": -0.2,
    "bundle": -0.5,
    "extra_lines": -0.15,
    "small_business": -0.3,
    "electronic_check": 0.35,
    "senior": 0.2,
    "paperless": 0.1,
}
"""Coefficients of the monthly churn hazard's logit (formula in the module docstring)."""

# Codes used internally (indices into the schema vocabularies).
_MOB, _BB, _TV, _FIX = (LINE_TYPES.index(t) for t in ("mobile", "broadband", "tv", "fixed_voice"))
_TECHS = ("fiber", "dsl", "fwa", "cable")
_FIBER, _DSL, _FWA, _CABLE = range(4)
_CAPS = np.array([4.0, 15.0, 40.0, np.nan])
_PRICES = np.array(
    [[20.0, 30.0, 45.0, 60.0], [35.0, 50.0, 70.0, 90.0], [25.0, 35.0, 50.0, 70.0], [15.0, 20.0, 25.0, 30.0]]
)
_CAMPAIGN_OFFERS = (
    "HOME_FIBER", "HOME_FWA", "DATA_UPSELL", "TRAVEL_PACK", "DEVICE_PROTECTION",
    "EXTRA_LINE", "TV_STREAMING", "MESH_WIFI", "PREMIUM_CARE",
)
_FLAG_OF = {
    "TRAVEL_PACK": "tp", "DEVICE_PROTECTION": "dp", "MESH_WIFI": "mesh",
}
# Stream keys of the monthly simulation (with the month index): never reorder.
_K_USAGE, _K_TICKETS, _K_CHURN, _K_CAMPAIGN, _K_RETENTION, _K_POST, _K_TIMING, _K_SCEN = range(1, 9)


def _day(ts: pd.Timestamp | str) -> int:
    return int(np.datetime64(pd.Timestamp(ts).date(), "D").astype(np.int64))


def _to_dt(days: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """Int day numbers -> datetime64[ns] (NaT where ``missing``)."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    if missing is not None:
        out = out.copy()
        out[missing] = np.datetime64("NaT")
    return out


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    nums = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, nums).astype(object)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice(rng: np.random.Generator, n: int, p: list[float]) -> np.ndarray:
    """Categorical draw by inverse CDF (one uniform per row)."""
    cum = np.cumsum(np.asarray(p, dtype=float))
    return np.minimum(np.searchsorted(cum / cum[-1], rng.random(n), side="right"), len(p) - 1)


def _pick_by_weight(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical pick among columns with weights ``w`` (rows with no weight -> -1)."""
    tot = w.sum(axis=1)
    cum = np.cumsum(w, axis=1)
    # counts the columns whose cumulative weight is <= u * total: zero-weight columns are never picked
    k = (cum <= (u * tot)[:, None]).sum(axis=1)
    k = np.minimum(k, w.shape[1] - 1)
    return np.where(tot > 0, k, -1)


def _poisson_trunc3(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(lam) by inverse CDF truncated at 3 (one uniform each: stable random streams)."""
    e = np.exp(-lam)
    f0 = e
    f1 = f0 + e * lam
    f2 = f1 + e * lam * lam / 2
    return (u > f0).astype(np.int64) + (u > f1) + (u > f2)


def _first_index(n: int, owner: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each owner 0..n-1 the smallest index i with mask[i] and owner[i] == owner, else -1."""
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)[::-1]
    out[owner[idx]] = idx  # later writes win: reversed order leaves the smallest index
    return out


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
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


def _calendar(as_of: str | pd.Timestamp) -> _Calendar:
    try:
        ts = pd.Timestamp(as_of).normalize()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"as_of '{as_of}' is not a date") from exc
    a = _day(ts)
    w_end = a + 90
    m0 = np.datetime64(np.datetime64(a - 600, "D"), "M")
    m_last = np.datetime64(np.datetime64(w_end, "D"), "M")
    ms = np.arange(m0, m_last + 2, dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return _Calendar(
        as_of=a, world_end=w_end, world_start=int(ms[0]), month_starts=ms,
        t0=a - RETENTION_LEAD_DAYS, cohort_lo=a - 575, cohort_hi=a - 455,
    )


# --------------------------------------------------------------------------------------------
# State containers
# --------------------------------------------------------------------------------------------


@dataclass
class _Lines:
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
class _Events:
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
class _Contacts:
    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)

    def add(self, **cols: np.ndarray) -> None:
        n = len(cols["acc"])
        full = {k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in cols.items()}
        self.chunks.append(full)


# --------------------------------------------------------------------------------------------
# Hazard
# --------------------------------------------------------------------------------------------


def hazard_logit(
    *,
    kind: np.ndarray,
    days_to_end: np.ndarray,
    tenure_days: np.ndarray,
    bill_shock: np.ndarray,
    open_ticket: np.ndarray,
    open_complaint: np.ndarray,
    price_z: np.ndarray,
    price_sensitivity: np.ndarray,
    bundle: np.ndarray,
    household_lines: np.ndarray,
    small_business: np.ndarray,
    electronic_check: np.ndarray,
    senior: np.ndarray,
    paperless: np.ndarray,
) -> np.ndarray:
    """Logit of the monthly churn hazard (coefficients in :data:`HAZARD`).

    Args:
        kind: 0 month-to-month, 1 one-year in contract, 2 two-year in contract, 3 out of contract.
        days_to_end: Contract end minus now in days (negative once lapsed; ignored for kind 0).
        tenure_days: Days since the account started.
        bill_shock, open_ticket, open_complaint, bundle, small_business, electronic_check,
            senior, paperless: 0/1 indicators.
        price_z: log(account charges / peer median charges).
        price_sensitivity: Household trait, N(0, 1) clipped to [-2, 2].
        household_lines: Active lines in the household.

    Returns:
        ``logit h`` per row.
    """
    c = HAZARD
    in_contract = (kind == 1) | (kind == 2)
    tenure_m = tenure_days / 30.4375
    return (
        c["intercept"]
        + c["month_to_month"] * (kind == 0)
        + c["two_year_in_contract"] * (kind == 2)
        + c["out_of_contract"] * (kind == 3)
        + c["renewal_window"] * (in_contract & (days_to_end >= 0) & (days_to_end <= 60))
        + c["recently_lapsed"] * ((kind == 3) & (days_to_end >= -60))
        + c["bill_shock"] * bill_shock
        + c["open_ticket"] * open_ticket
        + c["open_complaint"] * open_complaint
        + c["price_z"] * price_z * (1 + 0.5 * price_sensitivity)
        + c["new_customer"] * np.exp(-tenure_m / 4)
        + c["tenure_years"] * np.minimum(tenure_m / 12, 6)
        + c["bundle"] * bundle
        + c["extra_lines"] * np.minimum(np.maximum(household_lines - 1, 0), 4)
        + c["small_business"] * small_business
        + c["electronic_check"] * electronic_check
        + c["senior"] * senior
        + c["paperless"] * paperless
    )


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _Gen:
    """One generation run: holds the arrays; methods are the stages (called in a fixed order)."""

    def __init__(self, n: int, seed: int, cal: _Calendar, scenario: str | None, catalog: Any) -> None:
        from telco_nbo.nbo.catalog import catalog_frame, load_catalog

        self.n, self.seed, self.cal, self.scenario = n, seed, cal, scenario
        self.catalog = catalog if catalog is not None else load_catalog()
        self.offers = catalog_frame(self.catalog)
        ids = list(self.offers["offer_id"])
        for need in (RETENTION_OFFER, TIMING_OFFER):
            if need not in ids:
                raise ConfigError(f"the offer catalog has no '{need}' offer, which the synthetic experiments use")
        self.offer_ids = ids
        self.offer_index = {o: i for i, o in enumerate(ids)}
        self.campaign_offers = [o for o in _CAMPAIGN_OFFERS if o in self.offer_index]
        chan = np.zeros((len(ids), len(CHANNELS)), bool)
        for i, chs in enumerate(self.offers["channels"]):
            for ch in chs.split(","):
                chan[i, CHANNELS.index(ch)] = True
        self.offer_channels = chan
        self.offer_price = self.offers["monthly_price"].to_numpy(float)
        self.events = _Events()
        self.contacts = _Contacts()
        self.usage: list[dict[str, np.ndarray]] = []
        self.tickets: list[dict[str, np.ndarray]] = []
        self.truth: dict[str, pd.DataFrame] = {}
        self.summary: dict[str, Any] = {}
        rise_from = int(cal.month_starts[cal.month_of(cal.as_of)]) if scenario == "price_rise" else _BIG
        if scenario == "price_rise":
            k = int(cal.month_of(cal.as_of)) - 2
            rise_from = int(cal.month_starts[k])
        self.rise_from = rise_from
        self.rise_region = REGIONS.index(PRICE_RISE_REGION)

    # ---------------------------------------------------------------- set-up (sequential rng)

    def households(self, rng: np.random.Generator) -> None:
        n = self.n
        self.h_region = _choice(rng, n, [0.45, 0.35, 0.20])
        self.h_size = _choice(rng, n, [0.28, 0.32, 0.16, 0.15, 0.06, 0.03]) + 1
        p_fiber = np.array([0.45, 0.35, 0.15])[self.h_region]
        self.h_fiber = rng.random(n) < p_fiber
        p_fwa = np.where(self.h_fiber, 0.20, np.array([0.70, 0.60, 0.45])[self.h_region])
        self.h_fwa = rng.random(n) < p_fwa
        self.h_weak = rng.random(n) < np.array([0.08, 0.15, 0.30])[self.h_region]
        self.h_trav = rng.random(n) < 0.12
        self.h_intl = rng.random(n) < 0.15
        self.h_sens = np.clip(rng.standard_normal(n), -2, 2)
        self.h_nacc = _choice(rng, n, [0.82, 0.14, 0.04]) + 1
        extra = rng.poisson(0.5 + 0.3 * (self.h_size - 1))
        self.h_nlines = np.clip(self.h_nacc + extra, self.h_nacc, 6)
        self.h_mix = _choice(rng, n, [0.45, 0.35, 0.20])  # 0 mobile-only, 1 bundle, 2 home-only

    def accounts(self, rng: np.random.Generator) -> None:
        cal = self.cal
        n_a = int(self.h_nacc.sum())
        hh = np.repeat(np.arange(self.n), self.h_nacc)
        first = np.r_[0, np.cumsum(self.h_nacc)[:-1]]
        rank = np.arange(n_a) - np.repeat(first, self.h_nacc)
        self.a_hh, self.a_rank = hh, rank
        # First account: tenure concentrated on recent years (u^1.6 over 8 years).
        u_age = rng.random(self.n)
        recent_pick = rng.random(self.n) < 0.30
        age = np.floor(np.where(recent_pick, 730 * u_age, 2920 * u_age**1.3)).astype(np.int64)
        h_start = cal.as_of - age
        u_ct = rng.random(self.n)
        recent = age < 730
        ct_recent = np.searchsorted([0.40, 0.80, 1.0], u_ct, side="right")
        ct_old = np.searchsorted([0.45, 0.70, 1.0], u_ct, side="right")
        h_ct = np.minimum(np.where(recent, ct_recent, ct_old), 2)
        in_window = (h_start >= cal.cohort_lo) & (h_start < cal.cohort_hi)
        # Households starting in the cohort window on one_year are the timing cohort; the others
        # starting then cannot be on one_year (the cohort is *all* such households).
        self.h_cohort = in_window & (h_ct == 1)
        # Later accounts start uniformly between the household's start and as_of.
        u_st = rng.random(n_a)
        start = np.where(rank == 0, h_start[hh], h_start[hh] + np.floor(u_st * (cal.as_of - h_start[hh])).astype(np.int64))
        start = np.where(self.h_cohort[hh], h_start[hh], start)
        self.h_start = h_start
        sb = rng.random(n_a) < np.where(rank == 0, 0.06, 0.30)
        u_ct2 = rng.random(n_a)
        a_age = cal.as_of - start
        ct2 = np.where(a_age < 730, np.searchsorted([0.40, 0.80, 1.0], u_ct2, side="right"),
                       np.searchsorted([0.45, 0.70, 1.0], u_ct2, side="right"))
        ct = np.where(rank == 0, h_ct[hh], np.minimum(ct2, 2))
        ct = np.where(self.h_cohort[hh], 1, ct)
        # Non-cohort first accounts in the window with one_year would join the cohort by definition.
        ct = np.where(in_window[hh] & ~self.h_cohort[hh] & (rank == 0) & (ct == 1), 0, ct)
        self.a_ct = ct
        self.a_term = np.array([0, 365, 730])[ct]
        # Contract end at world start: in the first term if it has not ended; else in a later term
        # (p .65) or lapsed at the last term boundary.
        u_in = rng.random(n_a)
        term = np.maximum(self.a_term, 1)
        ref = np.maximum(cal.world_start, start)
        k_next = np.ceil((ref - start + 1) / term).astype(np.int64)
        next_end = start + k_next * term
        last_end = next_end - term
        first_term = k_next == 1
        cend = np.where(first_term | (u_in < 0.65) | (last_end <= start), next_end, last_end)
        self.a_cend = np.where(self.a_term > 0, cend, -1)
        self.a_start, self.a_sb = start, sb
        self.a_end = np.full(n_a, _BIG, np.int64)
        self.a_pay = _choice(rng, n_a, [0.30, 0.15, 0.27, 0.28])
        self.a_paperless = rng.random(n_a) < 0.60
        senior = rng.random(n_a) < 0.16
        chan_young = _choice(rng, n_a, [0.32, 0.26, 0.11, 0.18, 0.13])
        u_sen = rng.random(n_a)
        chan_sen = np.searchsorted([0.08, 0.33, 0.38, 0.75, 1.0], u_sen, side="right")
        self.a_chan = np.where(senior, np.minimum(chan_sen, 4), chan_young)
        self.a_senior = senior
        self.a_partner = rng.random(n_a) < 0.48
        self.a_dep = rng.random(n_a) < np.where(self.h_size[hh] >= 3, 0.55, 0.08)
        self.a_pcare = rng.random(n_a) < 0.05
        self.a_pcare_from = np.where(self.a_pcare, start, _BIG)
        self.a_pcare_to = np.full(n_a, _BIG, np.int64)
        self.a_sens = np.clip(self.h_sens[hh] + 0.3 * rng.standard_normal(n_a), -2, 2)
        self.a_resign_ok = ~self.h_cohort[hh]
        self.n_a = n_a
        # Experiment windows (blackouts of the monthly hazard) and post-as_of window.
        self.ex_bs = np.full(n_a, _BIG, np.int64)
        self.ex_be = np.full(n_a, _BIG, np.int64)
        self.ex_day = np.full(n_a, _BIG, np.int64)
        self.po_bs = np.full(n_a, _BIG, np.int64)
        self.po_be = np.full(n_a, _BIG, np.int64)
        self.po_day = np.full(n_a, _BIG, np.int64)
        self.open_until = np.full(n_a, -1, np.int64)
        self.cpl_until = np.full(n_a, -1, np.int64)
        self.shock_last = np.zeros(n_a, bool)
        self.tix3 = np.zeros((3, n_a), np.int64)  # coverage tickets in the last 3 months
        self.ntix3 = np.zeros((3, n_a), np.int64)  # network tickets in the last 3 months
        self.campaign_block = np.full(n_a, -1, np.int64)  # no campaign contact through this day

    def lines(self, rng: np.random.Generator) -> None:
        cal = self.cal
        hh, rank = self.a_hh, self.a_rank
        n_l_acc = np.where(rank == 0, self.h_nlines[hh] - (self.h_nacc[hh] - 1), 1)
        mix = self.h_mix[hh]
        # A home-only account never has more than 3 lines; a single line cannot be a bundle.
        mix = np.where((mix == 2) & (n_l_acc > 3), 1, mix)
        mix = np.where((mix == 1) & (n_l_acc == 1), 0, mix)
        u_sec = rng.random(self.n_a)
        mix = np.where(rank > 0, np.where(u_sec < 0.7, 0, 2), mix)
        acc = np.repeat(np.arange(self.n_a), n_l_acc)
        pos = np.arange(len(acc)) - np.repeat(np.r_[0, np.cumsum(n_l_acc)[:-1]], n_l_acc)
        n_l = len(acc)
        m = mix[acc]
        u_t = rng.random(n_l)
        typ = np.full(n_l, _MOB)
        # bundle
        b = m == 1
        typ[b & (pos == 0)] = _BB
        third = b & (pos == 2)
        typ[third] = np.where(u_t[third] < 0.45, _TV, np.where(u_t[third] < 0.60, _FIX, _MOB))
        # home-only
        h = m == 2
        typ[h & (pos == 0)] = _BB
        sec_ = h & (pos == 1)
        typ[sec_] = np.where(u_t[sec_] < 0.70, _TV, _FIX)
        thr = h & (pos == 2)
        typ[thr] = np.where(typ[np.maximum(np.flatnonzero(thr) - 1, 0)] == _TV, _FIX, _TV)
        a_start = self.a_start[acc]
        # Lines beyond the first may start later (30 %), never for the timing cohort.
        u_ls = rng.random(n_l)
        later = (pos > 0) & (rng.random(n_l) < 0.30) & ~self.h_cohort[hh[acc]]
        span = np.maximum(cal.as_of - a_start, 0)
        start = np.where(later, a_start + np.floor(u_ls * span * 0.7).astype(np.int64), a_start)
        tier = _choice(rng, n_l, [0.25, 0.40, 0.20, 0.15])
        tenure_y = (cal.as_of - start) / 365.25
        legacy = 1 + np.minimum(0.04 * tenure_y, 0.3)
        fiber = self.h_fiber[hh[acc]]
        fwa = self.h_fwa[hh[acc]]
        u_tech = rng.random(n_l)
        tech = np.where(fiber & (u_tech < 0.85), _FIBER,
                        np.where(~fiber & fwa & (u_tech < 0.30), _FWA, np.where(u_tech < 0.6, _DSL, _CABLE)))
        tech = np.where(typ == _BB, tech, -1)
        price = _PRICES[typ, tier] * legacy * rng.uniform(0.95, 1.05, n_l) + 5.0 * (tech == _FIBER)
        price = np.round(price, 2)
        cap = np.where(typ == _MOB, _CAPS[tier], np.nan)
        dev = cal.as_of - np.floor(rng.random(n_l) * 1100).astype(np.int64)
        dev = np.where(typ == _MOB, dev, -1)
        need_m = np.exp(np.log(8.0) + 0.7 * rng.standard_normal(n_l))
        need_b = np.exp(np.log(180.0) + 0.5 * rng.standard_normal(n_l))
        need = np.where(typ == _MOB, need_m, np.where(typ == _BB, need_b, 0.0))
        voice = np.exp(0.5 * rng.standard_normal(n_l))
        trav = self.h_trav[hh[acc]]
        u_f = rng.random((5, n_l))
        self.L = _Lines(
            acc=acc, typ=typ, start=start, end=np.full(n_l, _BIG, np.int64), tier=tier, cap=cap,
            price=price, tech=tech, dev=dev, dev_prev=np.where(dev >= 0, dev - 900, -1),
            need=need, voice=voice, pm_from=np.full(n_l, _BIG, np.int64),
            dp=(typ == _MOB) & (u_f[0] < 0.22),
            tp=(typ == _MOB) & (u_f[1] < np.where(trav, 0.20, 0.02)),
            mesh=(typ == _BB) & (u_f[2] < 0.10),
            sec=(typ == _BB) & (u_f[3] < 0.30),
            stream=((typ == _TV) | (typ == _BB)) & (u_f[4] < 0.25),
            ovg3=np.zeros((3, n_l), bool), roam3=np.zeros((3, n_l), np.int64),
        )
        if self.scenario == "handset_launch":
            r = _rng(self.seed, _K_SCEN, 0)
            u = r.random(n_l)
            u2 = r.random(n_l)
            pick = (typ == _MOB) & (start <= cal.as_of - 60) & (u < 0.30) & (dev < cal.as_of - 60)
            self.L.dev_prev = np.where(pick, dev, self.L.dev_prev)
            self.L.dev = np.where(pick, cal.as_of - np.floor(u2 * 60).astype(np.int64), dev)
            self.handset_lines = int(pick.sum())
        # Peer medians of list charges by (region, number of lines).
        charges = np.bincount(acc, weights=price, minlength=self.n_a)
        nl = np.minimum(np.bincount(acc, minlength=self.n_a), 4)
        key = self.h_region[hh] * 5 + nl
        med = pd.Series(charges).groupby(key).median()
        table = np.ones(15)
        table[med.index.to_numpy()] = med.to_numpy()
        self.peer_median = table

    # ---------------------------------------------------------------- account state

    def _state(self, t: int) -> dict[str, np.ndarray]:
        """Per-account state at day ``t`` from the current line arrays (active at ``t``)."""
        L = self.L
        act = (L.start <= t) & (L.end > t)
        hh_of_line = self.a_hh[L.acc]
        n_hh_lines = np.bincount(hh_of_line[act], minlength=self.n)
        hh_bb = np.bincount(hh_of_line[act & (L.typ == _BB)], minlength=self.n) > 0
        hh_mob = np.bincount(hh_of_line[act & (L.typ == _MOB)], minlength=self.n) > 0
        factor = self._price_factor(t, np.arange(L.n))
        charges = np.bincount(L.acc[act], weights=(L.price * factor)[act], minlength=self.n_a)
        nl = np.minimum(np.bincount(L.acc[act], minlength=self.n_a), 4)
        med = self.peer_median[self.h_region[self.a_hh] * 5 + nl]
        price_z = np.where(charges > 0, np.log(np.maximum(charges, 1e-6) / med), 0.0)
        hh = self.a_hh
        return {
            "charges": charges,
            "price_z": price_z,
            "bundle": (hh_bb & hh_mob)[hh],
            "household_lines": n_hh_lines[hh],
            "open_ticket": self.open_until > t,
            "open_complaint": self.cpl_until > t,
        }

    def _price_factor(self, t: int, line_idx: np.ndarray) -> np.ndarray:
        if t < self.rise_from:
            return np.ones(len(line_idx))
        reg = self.h_region[self.a_hh[self.L.acc[line_idx]]]
        return np.where(reg == self.rise_region, 1.15, 1.0)

    def _contract(self, t: np.ndarray | int, cend: np.ndarray, term: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kind = np.where(term == 0, 0, np.where(t < cend, np.where(term == 365, 1, 2), 3))
        return kind, (cend - t).astype(float)

    def _logit(self, idx: np.ndarray, t: np.ndarray | int, cend: np.ndarray, st: dict[str, np.ndarray],
               shock: np.ndarray) -> np.ndarray:
        kind, dte = self._contract(t, cend, self.a_term[idx])
        return hazard_logit(
            kind=kind, days_to_end=dte, tenure_days=(t - self.a_start[idx]).astype(float),
            bill_shock=shock.astype(float), open_ticket=st["open_ticket"][idx].astype(float),
            open_complaint=st["open_complaint"][idx].astype(float), price_z=st["price_z"][idx],
            price_sensitivity=self.a_sens[idx], bundle=st["bundle"][idx].astype(float),
            household_lines=st["household_lines"][idx].astype(float),
            small_business=self.a_sb[idx].astype(float), electronic_check=(self.a_pay[idx] == 0).astype(float),
            senior=self.a_senior[idx].astype(float), paperless=self.a_paperless[idx].astype(float),
        )

    def project(self, idx: np.ndarray, t0: int, steps: int, st: dict[str, np.ndarray]) -> np.ndarray:
        """Survival ``S_k`` (k = 0..steps) from ``t0`` with stochastic state frozen (docstring)."""
        term = self.a_term[idx]
        cend = self.a_cend[idx]
        shock = self.shock_last[idx]
        s_r = np.ones((steps + 1, len(idx)))
        s_o = np.ones((steps + 1, len(idx)))
        for k in range(steps):
            t = t0 + STEP_DAYS * k
            # Re-sign path: after the end the contract runs another term (once, then again...).
            renewed = np.where((term > 0) & (cend <= t) & (cend >= t0),
                               cend + term * np.ceil((t - cend + 1) / np.maximum(term, 1)).astype(np.int64), cend)
            h_o = _sigmoid(self._logit(idx, t, cend, st, shock))
            h_r = _sigmoid(self._logit(idx, t, renewed, st, shock))
            s_o[k + 1] = s_o[k] * (1 - h_o)
            s_r[k + 1] = s_r[k] * (1 - h_r)
        p_r = np.where(self.a_resign_ok[idx], P_RESIGN, 0.0)
        return (p_r * s_r + (1 - p_r) * s_o).T

    # ---------------------------------------------------------------- timing cohort (closed form)

    def timing_cohort(self) -> None:
        cal, L = self.cal, self.L
        r = _rng(self.seed, _K_TIMING, 0)
        u_arm, u_a, u_ad, u_b, u_bd, u_acc, u_accd = (r.random(self.n) for _ in range(7))
        hh_idx = np.flatnonzero(self.h_cohort)
        self.t_hh = hh_idx
        n_c = len(hh_idx)
        line_hh = self.a_hh[L.acc]
        has_mob = np.bincount(line_hh[L.typ == _MOB], minlength=self.n) > 0
        has_bb = np.bincount(line_hh[L.typ == _BB], minlength=self.n) > 0
        only_mob = np.bincount(line_hh[L.typ != _MOB], minlength=self.n) == 0
        seg = np.where(only_mob, 0, np.where(has_mob & has_bb, 1, 2))[hh_idx]
        arm = np.minimum(np.floor(3 * u_arm[hh_idx]).astype(np.int64), 2)
        s = self.h_start[hh_idx]
        cend = s + 365
        sdt = s.astype("datetime64[D]")
        som = sdt.astype("datetime64[M]")
        first_full = np.where(sdt == som.astype("datetime64[D]"), som, som + 1)
        t_a0 = (first_full + 1).astype("datetime64[D]").astype(np.int64)
        base = np.array([[0.10, 0.30], [0.05, 0.18], [0.07, 0.22]])
        mult_a = np.ones((3, 3))
        mult_b = np.ones((3, 3))  # [arm, segment]
        mult_a[1, 0], mult_b[1, 0] = 0.70, 0.75
        mult_b[2, 1] = 0.60
        acc_p = np.array([[0.0, 0.0, 0.0], [0.30, 0.10, 0.08], [0.12, 0.35, 0.08]])  # [arm, segment]
        pA = base[seg, 0][:, None] * mult_a[:, seg].T  # (n_c, arm)
        pB = base[seg, 1][:, None] * mult_b[:, seg].T
        contact = np.stack([s + 30, s + 30, cend - 60], axis=1)
        # Realized: churn day in A or B for the household's own arm.
        ia = np.arange(n_c)
        pa, pb = pA[ia, arm], pB[ia, arm]
        lenA = np.maximum(cend - 60 - t_a0, 1)
        in_a = u_a[hh_idx] < pa
        in_b = ~in_a & (u_b[hh_idx] < pb)
        day = np.where(in_a, t_a0 + np.floor(u_ad[hh_idx] * lenA).astype(np.int64),
                       np.where(in_b, cend - 60 + np.floor(u_bd[hh_idx] * 151).astype(np.int64), _BIG))
        c_day = contact[ia, arm]
        contacted = (arm > 0) & (day > c_day)
        a_given = acc_p[arm, seg]
        accepted = contacted & (u_acc[hh_idx] < a_given)
        acc_day = c_day + np.floor(u_accd[hh_idx] * 7).astype(np.int64)
        # Apply to accounts: blackout [start, cend + 90], churn day.
        a_idx = np.flatnonzero(self.h_cohort[self.a_hh])
        pos = np.searchsorted(hh_idx, self.a_hh[a_idx])
        self.a_cend[a_idx] = cend[pos]
        self.ex_bs[a_idx] = s[pos]
        self.ex_be[a_idx] = cend[pos] + 91
        self.ex_day[a_idx] = day[pos]
        self.campaign_block[a_idx] = cend[pos] + 90
        # Plan review: -8 % on every line of the household from the month after the contact.
        next_month = (c_day.astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]").astype(np.int64)
        l_idx = np.flatnonzero(self.h_cohort[line_hh])
        lpos = np.searchsorted(hh_idx, line_hh[l_idx])
        L.pm_from[l_idx] = np.where(accepted[lpos], next_month[lpos], _BIG)
        # Contacts: one row per account, accepted on the first account.
        first_acc = self.a_rank[a_idx] == 0
        self.contacts.add(
            acc=a_idx, exp=1, arm=arm[pos], offer=self.offer_index[TIMING_OFFER],
            contacted=contacted[pos], channel=np.where(contacted[pos], self._channel_for(a_idx, TIMING_OFFER), -1),
            day=c_day[pos], accepted=accepted[pos] & first_acc,
            acc_day=np.where(accepted[pos] & first_acc, acc_day[pos], -1), cancel_day=-1,
        )
        self.t_info = dict(hh=hh_idx, seg=seg, arm=arm, start=s, cend=cend, t_a0=t_a0, pA=pA, pB=pB,
                           acc_p=acc_p[:, seg].T, contact=contact, first_full=first_full)

    def timing_truth(self) -> None:
        """Expected outcomes per arm for the cohort (formulas in the module docstring)."""
        cal, L, ti = self.cal, self.L, self.t_info
        hh_idx = ti["hh"]
        n_c = len(hh_idx)
        if n_c == 0:
            self.truth["timing"] = pd.DataFrame()
            return
        s, cend, t_a0 = ti["start"], ti["cend"], ti["t_a0"]
        pA, pB, a = ti["pA"], ti["pB"], ti["acc_p"]
        # Survival to the contact day and acceptance.
        S_contact = np.ones((n_c, 3))
        S_contact[:, 2] = 1 - pA[:, 2]
        p_acc = a * S_contact
        p_acc[:, 0] = 0.0
        p_churn = 1 - (1 - pA) * (1 - pB)
        # Revenue months: 12 months from the month after the start month.
        som = s.astype("datetime64[D]").astype("datetime64[M]")
        months = som[:, None] + 1 + np.arange(12)[None, :]  # (n_c, 12)
        m_start = months.astype("datetime64[D]").astype(np.int64)
        m_end = (months + 1).astype("datetime64[D]").astype(np.int64)
        m_len = m_end - m_start
        days = m_start[:, :, None] + np.arange(31)[None, None, :]
        valid = days < m_end[:, :, None]
        lenA = np.maximum(cend - 60 - t_a0, 1)
        FA = np.clip((days - t_a0[:, None, None] + 1) / lenA[:, None, None], 0, 1)
        FB = np.clip((days - (cend - 60)[:, None, None] + 1) / 151.0, 0, 1)
        # Line terms per household: list price and expected overage per month.
        line_hh = self.a_hh[L.acc]
        cl = np.flatnonzero(self.h_cohort[line_hh] & (L.start <= cal.as_of))
        cpos = np.searchsorted(hh_idx, line_hh[cl])
        m_idx = self.cal.month_of(m_start[cpos])  # (n_cl, 12) world month index
        trend = DATA_TREND ** m_idx
        A = L.need[cl][:, None] * trend
        c = L.cap[cl][:, None]
        capped = (L.typ[cl] == _MOB)[:, None] & np.isfinite(c)
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = (np.log(A / c) + DATA_SIGMA**2 / 2) / DATA_SIGMA
            e_ovg = np.where(capped, A * ndtr(d1) - c * ndtr(d1 - DATA_SIGMA), 0.0)
        e_ovg = np.nan_to_num(e_ovg) * OVERAGE_RATE
        reg = self.h_region[line_hh[cl]]
        rise = np.where((reg == self.rise_region)[:, None] & (m_start[cpos] >= self.rise_from), 1.15, 1.0)
        list_part = L.price[cl][:, None] * rise
        price_sum = np.zeros((n_c, 12))
        ovg_sum = np.zeros((n_c, 12))
        np.add.at(price_sum, cpos, list_part)
        np.add.at(ovg_sum, cpos, e_ovg)
        contact_month = ti["contact"].astype("datetime64[D]").astype("datetime64[M]")  # (n_c, 3)
        out = {}
        for k, arm in enumerate(TIMING_ARMS):
            surv = 1 - pA[:, k, None, None] * FA - (1 - pA[:, k, None, None]) * pB[:, k, None, None] * FB
            e_frac = (surv * valid).sum(axis=2) / m_len
            after = months > contact_month[:, k, None]
            pf = 1 - (1 - PLAN_REVIEW_FACTOR) * a[:, k, None] * after * (k > 0)
            out[arm] = (e_frac * (price_sum * pf + ovg_sum)).sum(axis=1)
        seg_names = np.array(TIMING_SEGMENTS, dtype=object)[ti["seg"]]
        df = pd.DataFrame({
            "household_id": hh_idx,  # replaced by ids at assembly
            "arm": np.array(TIMING_ARMS, dtype=object)[ti["arm"]],
            "segment": seg_names,
            "start_date": _to_dt(s),
            "contract_end_date": _to_dt(cend),
        })
        for k, arm in enumerate(TIMING_ARMS):
            df[f"p_churned_{arm}"] = p_churn[:, k]
            df[f"p_accept_{arm}"] = p_acc[:, k]
            df[f"revenue_{arm}"] = out[arm]
        self.truth["timing"] = df
        summ: dict[str, Any] = {"n_households": int(n_c), "offer_id": TIMING_OFFER, "overall": {}, "by_segment": {}}

        def effects(mask: np.ndarray) -> dict[str, dict[str, float]]:
            res = {}
            for arm in TIMING_ARMS[1:]:
                res[arm] = {
                    "churned": float((df[f"p_churned_{arm}"] - df["p_churned_control"])[mask].mean()),
                    "accepted": float((df[f"p_accept_{arm}"] - df["p_accept_control"])[mask].mean()),
                    "revenue": float((df[f"revenue_{arm}"] - df["revenue_control"])[mask].mean()),
                }
            res["control"] = {
                "churned": float(df["p_churned_control"][mask].mean()),
                "accepted": 0.0,
                "revenue": float(df["revenue_control"][mask].mean()),
            }
            return res

        summ["overall"] = effects(np.ones(n_c, bool))
        for sname in TIMING_SEGMENTS:
            msk = (seg_names == sname)
            if msk.any():
                summ["by_segment"][sname] = {"n_households": int(msk.sum()), **effects(msk)}
        summ["definitions"] = {
            "effects": "arm minus control, expectation over the cohort; 'control' holds control levels",
            "accepted": "any accepted contact of the household in EXP-TIMING-1",
            "churned": "any account of the household ended on or before contract_end_date + 90 days",
            "revenue": "sum of bill_amount of the household's lines over the 12 months from the month after the start month",
            "pre_revenue": "bill_amount of the household's first full month",
        }
        self.summary["timing"] = summ

    # ---------------------------------------------------------------- helpers

    def _channel_for(self, acc_idx: np.ndarray, offer: str, u: np.ndarray | None = None,
                     p_pref: float = 1.0, u2: np.ndarray | None = None) -> np.ndarray:
        allowed = self.offer_channels[self.offer_index[offer]]
        return self._channel_rows(acc_idx, np.broadcast_to(allowed, (len(acc_idx), len(CHANNELS))), u, p_pref, u2)

    def _channel_rows(self, acc_idx: np.ndarray, allowed: np.ndarray, u: np.ndarray | None,
                      p_pref: float, u2: np.ndarray | None) -> np.ndarray:
        pref = self.a_chan[acc_idx]
        pref_ok = allowed[np.arange(len(acc_idx)), pref]
        if u is not None:
            pref_ok = pref_ok & (u < p_pref)
        uu = u2 if u2 is not None else np.full(len(acc_idx), 0.0)
        alt = _pick_by_weight(allowed.astype(float), uu)
        return np.where(pref_ok, pref, alt)

    # ---------------------------------------------------------------- monthly simulation

    def simulate(self, progress: Callable[[str], None] | None = None) -> None:
        cal = self.cal
        ms_all = cal.month_starts
        i_t0 = int(cal.month_of(cal.t0))
        i_post = int(cal.month_of(cal.as_of + 1))
        for i in range(cal.n_months):
            ms, me = int(ms_all[i]), int(ms_all[i + 1])
            if i == i_t0:
                self.retention_experiment(ms)
            if i == i_post:
                self.post_as_of(ms)
            self.month(i, ms, me)
            if ms <= cal.as_of and me > cal.as_of - 365:
                self.campaign(i, ms, me)
            if progress is not None:
                progress(f"month {i + 1}/{cal.n_months}")

    def month(self, i: int, ms: int, me: int) -> None:
        cal, L, seed = self.cal, self.L, self.seed
        me_x = min(me, cal.world_end + 1)
        mlen = me - ms
        n_l = L.n
        # ---- usage
        r = _rng(seed, _K_USAGE, i)
        z = r.standard_normal(n_l)
        g_voice = r.gamma(2.0, size=n_l)
        g_drop = r.gamma(2.0, size=n_l)
        e_intl = r.exponential(size=n_l)
        u_trip = r.random(n_l)
        u_rd = r.random(n_l)
        u_drop = r.random(n_l)
        lo = np.maximum(L.start, ms)
        hi = np.minimum(np.minimum(L.end, me_x), _BIG)
        act_days = hi - lo
        li = np.flatnonzero(act_days > 0)
        f = act_days[li] / mlen
        typ = L.typ[li]
        hh = self.a_hh[L.acc[li]]
        weak = self.h_weak[hh]
        mob = typ == _MOB
        # data-cap bonus and add-on charges from events
        ev = self.events
        e_on = np.flatnonzero((ev.start < me) & (ev.stop > ms))
        bonus = np.zeros(n_l)
        charges = np.zeros(n_l)
        if len(e_on):
            el = ev.line[e_on]
            ov = np.minimum(np.minimum(ev.stop[e_on], me_x), L.end[el]) - np.maximum(ev.start[e_on], np.maximum(ms, L.start[el]))
            ov = np.maximum(ov, 0) / mlen
            charges += np.bincount(el, weights=ev.amount[e_on] * ov, minlength=n_l)
            bonus += np.bincount(el, weights=ev.cap[e_on] * (ov > 0), minlength=n_l)
        x = np.exp(DATA_SIGMA * z[li] - DATA_SIGMA**2 / 2)
        trend = DATA_TREND**i
        full_data = L.need[li] * np.where(mob, trend, 1.0) * x
        cap = L.cap[li] + bonus[li]
        ovg_full = np.where(mob & np.isfinite(cap), np.maximum(full_data - np.nan_to_num(cap, nan=np.inf), 0), 0.0)
        data = f * full_data
        ovg = f * ovg_full
        base_voice = np.where(mob, 120.0, np.where(typ == _FIX, 60.0, 0.0))
        voice = f * base_voice * L.voice[li] * g_voice[li] / 2
        intl = np.where(mob | (typ == _FIX), f * np.where(self.h_intl[hh], 40.0, 2.0) * e_intl[li], 0.0)
        month_no = int(np.datetime64(ms, "D").astype("datetime64[M]").astype(np.int64) % 12) + 1
        p_trip_t = 0.35 if month_no in (6, 7, 8) else (0.25 if month_no == 12 else 0.15)
        p_trip = np.where(self.h_trav[hh], p_trip_t, 0.01)
        trip = mob & (u_trip[li] < p_trip)
        rdays = np.minimum(1 + np.floor(-5 * np.log(np.maximum(u_rd[li], 1e-12))), act_days[li])
        roam = np.where(trip, np.minimum(rdays, 31), 0).astype(np.int64)
        lam = voice / 100 * (0.04 + 0.5 * weak)
        dropped = np.where(mob, np.floor(lam * g_drop[li] / 2 + u_drop[li]), 0).astype(np.int64)
        pfac = np.where(ms >= L.pm_from[li], PLAN_REVIEW_FACTOR, 1.0)
        list_price = L.price[li] * self._price_factor(ms, li)
        bill = np.maximum(f * list_price * pfac + OVERAGE_RATE * ovg + charges[li], 0.0)
        self.usage.append({
            "line": li, "month": np.full(len(li), ms, np.int64), "data_gb": np.round(data, 3),
            "overage_gb": np.round(ovg, 3), "voice_minutes": np.round(voice, 1), "intl_minutes": np.round(intl, 1),
            "roaming_days": roam, "dropped_calls": dropped, "bill_amount": np.round(bill, 2),
        })
        # rolling need signals
        L.ovg3[1:] = L.ovg3[:-1].copy()
        L.roam3[1:] = L.roam3[:-1].copy()
        L.ovg3[0] = False
        L.roam3[0] = 0
        L.ovg3[0, li] = ovg > 0
        L.roam3[0, li] = roam
        # ---- account aggregates
        n_a = self.n_a
        acc = L.acc[li]
        ovg_charge = np.bincount(acc, weights=OVERAGE_RATE * ovg, minlength=n_a)
        st = self._state(ms)
        shock = ovg_charge > np.maximum(15.0, 0.25 * st["charges"])
        drop_acc = np.bincount(acc, weights=dropped, minlength=n_a)
        has_bb = np.bincount(acc[typ == _BB], minlength=n_a) > 0
        has_mob = np.bincount(acc[mob], minlength=n_a) > 0
        dev_age = np.zeros(n_a)
        if mob.any():
            lm = li[mob]
            d_used = np.where(ms >= L.dev[lm], L.dev[lm], np.where(ms >= L.dev_prev[lm], L.dev_prev[lm], L.dev_prev[lm] - 900))
            np.maximum.at(dev_age, acc[mob], (ms - d_used) / 365.25)
        a_lo = np.maximum(self.a_start, ms)
        a_hi = np.minimum(np.minimum(self.a_end, me_x), _BIG)
        a_days = np.maximum(a_hi - a_lo, 0)
        fa = a_days / mlen
        # ---- tickets
        r = _rng(seed, _K_TICKETS, i)
        u_n = r.random((5, n_a))
        u_open = r.random((5, n_a))
        u_res = r.random((5, n_a))
        u_long = r.random((5, n_a))
        u_cpl = r.random((5, n_a))
        lam5 = np.stack([
            (0.01 + 0.05 * np.minimum(drop_acc, 12)) * fa,
            (0.004 + self.h_weak[self.a_hh] * (0.06 + 0.08 * has_bb)) * fa,
            (0.008 + 0.30 * shock) * fa,
            (0.003 + 0.015 * dev_age) * has_mob * fa,
            0.008 * fa,
        ])
        counts = np.where(fa > 0, _poisson_trunc3(lam5, u_n), 0)
        first_mob = _first_index(n_a, L.acc, (L.typ == _MOB) & (L.start <= ms) & (L.end > ms))
        first_bb = _first_index(n_a, L.acc, (L.typ == _BB) & (L.start <= ms) & (L.end > ms))
        p_cpl = np.array([0.15, 0.20, 0.30, 0.08, 0.05])
        cov_count = np.zeros(n_a, np.int64)
        net_count = np.zeros(n_a, np.int64)
        for cat in range(5):
            for slot in range(3):
                a_idx = np.flatnonzero(counts[cat] > slot)
                if not len(a_idx):
                    continue
                rot = slot * 0.6180339887

                def uu(arr: np.ndarray, a_idx: np.ndarray = a_idx, rot: float = rot, cat: int = cat) -> np.ndarray:
                    return (arr[cat, a_idx] + rot) % 1.0

                opened = a_lo[a_idx] + np.floor(uu(u_open) * a_days[a_idx]).astype(np.int64)
                cpl = uu(u_cpl) < p_cpl[cat]
                long_ = uu(u_long) < np.where(cpl, 0.40, 0.08)
                ur = np.maximum(uu(u_res), 1e-12)
                delay = np.where(long_, 10 + np.floor(-60 * np.log(ur)), 1 + np.floor(-4 * np.log(ur))).astype(np.int64)
                resolved = opened + delay
                if cat in (0, 3):
                    line = first_mob[a_idx]
                elif cat == 1:
                    line = np.where(first_bb[a_idx] >= 0, first_bb[a_idx], first_mob[a_idx])
                else:
                    line = np.full(len(a_idx), -1)
                self.tickets.append({"acc": a_idx, "line": line, "cat": np.full(len(a_idx), cat), "opened": opened,
                                     "resolved": resolved, "complaint": cpl})
                np.maximum.at(self.open_until, a_idx, resolved)
                if cpl.any():
                    np.maximum.at(self.cpl_until, a_idx[cpl], resolved[cpl])
                if cat == 1:
                    cov_count[a_idx] += 1
                if cat == 0:
                    net_count[a_idx] += 1
        self.tix3[1:] = self.tix3[:-1].copy()
        self.tix3[0] = cov_count
        self.ntix3[1:] = self.ntix3[:-1].copy()
        self.ntix3[0] = net_count
        # ---- churn (monthly hazard on the exposed part of the month)
        r = _rng(seed, _K_CHURN, i)
        u_c = r.random(n_a)
        u_d = r.random(n_a)
        u_rs = r.random(n_a)
        st_end = self._state(me - 1)
        st_end["open_ticket"] = self.open_until > me - 1
        st_end["open_complaint"] = self.cpl_until > me - 1
        lo_e, hi_e = a_lo.copy(), a_hi.copy()
        for bs, be in ((self.ex_bs, self.ex_be), (self.po_bs, self.po_be)):
            cut_lo = (bs <= lo_e) & (be > lo_e)
            lo_e = np.where(cut_lo, be, lo_e)
            cut_hi = (bs < hi_e) & (be >= hi_e) & ~cut_lo
            hi_e = np.where(cut_hi, bs, hi_e)
        expo = np.maximum(hi_e - lo_e, 0) / mlen
        alive = np.flatnonzero((expo > 0) & (self.a_end >= me_x))
        h = _sigmoid(self._logit(alive, ms, self.a_cend[alive], st_end, shock[alive]))
        p = 1 - (1 - h) ** expo[alive]
        churn = u_c[alive] < p
        ca = alive[churn]
        cday = lo_e[ca] + np.floor(u_d[ca] * (hi_e[ca] - lo_e[ca])).astype(np.int64)
        self.a_end[ca] = np.minimum(self.a_end[ca], cday)
        # externally drawn churn days falling in this month
        for day in (self.ex_day, self.po_day):
            hit = (day >= ms) & (day < me) & (self.a_end == _BIG)
            self.a_end[hit] = day[hit]
        # lines end with their account
        L.end = np.minimum(L.end, self.a_end[L.acc])
        L.start = np.minimum(L.start, L.end)  # a cross-sell line whose account left first never starts
        self.shock_last = shock
        # ---- re-sign or lapse at contract end (decisions after as_of are not recorded)
        ends_now = (self.a_term > 0) & (self.a_cend >= ms) & (self.a_cend < me) & (self.a_end > self.a_cend)
        resign = ends_now & self.a_resign_ok & (u_rs < P_RESIGN) & (self.a_cend <= cal.as_of)
        self.a_cend = np.where(resign, self.a_cend + self.a_term, self.a_cend)

    # ---------------------------------------------------------------- retention experiment

    def retention_experiment(self, ms: int) -> None:
        cal = self.cal
        t0 = cal.t0
        r = _rng(self.seed, _K_RETENTION, 0)
        n_a = self.n_a
        u_en, u_arm, u_c, u_step, u_day, u_acc, u_accd = (r.random(n_a) for _ in range(7))
        elig = (self.a_start <= t0) & (self.a_end > ms) & (self.ex_bs == _BIG)
        enrolled = np.flatnonzero(elig & (u_en < RETENTION_SHARE))
        treat = u_arm[enrolled] < 0.5
        st = self._state(t0)
        S = self.project(enrolled, t0, 3, st)
        p0 = 1 - S[:, 3]
        tenure_y = (t0 - self.a_start[enrolled]) / 365.25
        kind, dte = self._contract(t0, self.a_cend[enrolled], self.a_term[enrolled])
        renewal = (kind == 0) | (kind == 3) | ((dte >= 0) & (dte <= 90))
        pz = st["price_z"][enrolled]
        sensitive = (pz > 0.1) | (self.a_sens[enrolled] > 1.0)
        lost = st["open_complaint"][enrolled]
        pers = ~lost & renewal & sensitive & (tenure_y < 4)
        sleep = ~lost & ~pers & (tenure_y >= 4) & (pz > 0.1) & (self.a_chan[enrolled] != CHANNELS.index("app")) \
            & ~st["open_ticket"][enrolled]
        seg = np.where(lost, 2, np.where(pers, 0, np.where(sleep, 3, 1)))
        p1 = np.select([seg == 0, seg == 1, seg == 2, seg == 3],
                       [0.30 * p0, 0.95 * p0, p0, np.minimum(0.95, p0 + 0.06 + 0.6 * p0)])
        fatigued = np.zeros(len(enrolled), bool)
        if self.scenario == "offer_fatigue":
            fatigued = self.a_sb[enrolled] & (seg != 2)
            p1 = np.where(fatigued, np.minimum(1.0, p0 + FATIGUE_HARM), p1)
        p_arm = np.where(treat, p1, p0)
        churn = u_c[enrolled] < p_arm
        # step by the control hazard shape, day uniform in the step
        step_p = -np.diff(S, axis=1)
        cum = np.cumsum(step_p, axis=1) / np.maximum(step_p.sum(axis=1), 1e-12)[:, None]
        k = np.minimum((cum < u_step[enrolled][:, None]).sum(axis=1), 2)
        day = t0 + STEP_DAYS * k + np.floor(u_day[enrolled] * STEP_DAYS).astype(np.int64)
        self.ex_bs[enrolled] = ms
        self.ex_be[enrolled] = t0 + RETENTION_WINDOW_DAYS
        self.ex_day[enrolled] = np.where(churn, day, _BIG)
        self.campaign_block[enrolled] = np.maximum(self.campaign_block[enrolled], t0 + RETENTION_WINDOW_DAYS)
        p_acc = np.array([0.40, 0.15, 0.04, 0.10])[seg]
        accepted = treat & (u_acc[enrolled] < p_acc)
        acc_day = t0 + np.floor(u_accd[enrolled] * 7).astype(np.int64)
        chan = self._channel_for(enrolled, RETENTION_OFFER)
        self.contacts.add(
            acc=enrolled, exp=0, arm=treat.astype(np.int64), offer=self.offer_index[RETENTION_OFFER],
            contacted=treat, channel=np.where(treat, chan, -1), day=t0, accepted=accepted,
            acc_day=np.where(accepted, acc_day, -1), cancel_day=-1,
        )
        # The discount runs on the account's first active line for 12 months from next month.
        L = self.L
        first_line = _first_index(n_a, L.acc, (L.start <= t0) & (L.end > t0))
        a_ok = accepted & (first_line[enrolled] >= 0)
        nm = self._next_month(acc_day[a_ok])
        offer = self.catalog.get(RETENTION_OFFER)
        self.events.add(first_line[enrolled][a_ok], np.asarray(offer.monthly_price), np.asarray(0.0), nm,
                        nm + int(round(30.4375 * max(offer.term_months, 1))))
        seg_names = np.array(UPLIFT_SEGMENTS, dtype=object)[seg]
        self.truth["retention"] = pd.DataFrame({
            "account_id": enrolled, "arm": np.where(treat, "treatment", "control").astype(object),
            "segment": seg_names, "p0": p0, "p1": p1, "tau": p1 - p0, "p_accept_if_treated": p_acc,
            "fatigued": fatigued,
        })
        shares = {s: float((seg_names == s).mean()) if len(seg) else 0.0 for s in UPLIFT_SEGMENTS}
        self.summary["retention"] = {
            "experiment_id": RETENTION_EXPERIMENT_ID, "n_enrolled": int(len(enrolled)),
            "ate_churn_90d": float((p1 - p0).mean()) if len(seg) else 0.0,
            "segment_shares": shares,
            "segment_tau": {s: float((p1 - p0)[seg_names == s].mean()) if (seg_names == s).any() else None
                            for s in UPLIFT_SEGMENTS},
            "by_account_type": {
                t: float((p1 - p0)[self.a_sb[enrolled] == (t == "small_business")].mean())
                if (self.a_sb[enrolled] == (t == "small_business")).any() else None
                for t in ACCOUNT_TYPES
            },
        }

    def _next_month(self, days: np.ndarray) -> np.ndarray:
        return (np.asarray(days).astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]").astype(np.int64)

    # ---------------------------------------------------------------- after as_of

    def post_as_of(self, ms: int) -> None:
        cal = self.cal
        t0 = cal.as_of + 1
        r = _rng(self.seed, _K_POST, 0)
        n_a = self.n_a
        u_c, u_step, u_day = (r.random(n_a) for _ in range(3))
        act = np.flatnonzero((self.a_start <= cal.as_of) & (self.a_end > ms))
        st = self._state(cal.as_of)
        S = self.project(act, t0, 36, st)
        p90 = 1 - S[:, 3]
        churn = u_c[act] < p90
        step_p = -np.diff(S[:, :4], axis=1)
        cum = np.cumsum(step_p, axis=1) / np.maximum(step_p.sum(axis=1), 1e-12)[:, None]
        k = np.minimum((cum < u_step[act][:, None]).sum(axis=1), 2)
        day = t0 + STEP_DAYS * k + np.floor(u_day[act] * STEP_DAYS).astype(np.int64)
        day = np.minimum(day, cal.world_end)
        self.po_bs[act] = ms
        self.po_be[act] = cal.world_end + 1
        self.po_day[act] = np.where(churn, day, _BIG)
        margin = MARGIN_RATE * st["charges"][act]
        disc = (1 + MONTHLY_DISCOUNT) ** -np.arange(1, 37)
        clv = margin * (S[:, 1:] * disc[None, :]).sum(axis=1)
        self.truth["accounts"] = pd.DataFrame({
            "account_id": act, "p_churn_90d": p90, "monthly_margin": margin, "clv_36m": clv,
            "price_sensitivity": self.a_sens[act],
        })
        self.truth["clv"] = pd.DataFrame({
            "account_id": act, "monthly_margin": margin, "clv_36m": clv,
            "survival_12m": S[:, 12], "survival_36m": S[:, 36],
        })

    # ---------------------------------------------------------------- campaigns

    def campaign(self, i: int, ms: int, me: int) -> None:
        cal, L = self.cal, self.L
        lo = max(ms, cal.as_of - 364)
        hi = min(me, cal.as_of + 1)
        if hi <= lo:
            return
        r = _rng(self.seed, _K_CAMPAIGN, i)
        n_a, n = self.n_a, self.n
        u_hh = r.random(n)
        u_key = r.random(n_a)
        u_off, u_pref, u_ch, u_acc, u_accd, u_cn, u_cnd, u_day, u_need = (r.random(n_a) for _ in range(9))
        t = me - 1
        alive = (self.a_start <= lo) & (self.a_end >= me) & (self.campaign_block < lo)
        pick_hh = u_hh < CAMPAIGN_RATE
        cand = np.flatnonzero(alive & pick_hh[self.a_hh])
        if not len(cand):
            return
        order = np.lexsort((-u_key[cand], self.a_hh[cand]))
        c_sorted = cand[order]
        _, first = np.unique(self.a_hh[c_sorted], return_index=True)
        acc = c_sorted[first]
        act = (L.start <= t) & (L.end > t)
        la = L.acc

        def any_line(mask: np.ndarray) -> np.ndarray:
            return (np.bincount(la[act & mask], minlength=n_a) > 0)[acc]

        has_mob = any_line(L.typ == _MOB)
        has_bb = any_line(L.typ == _BB)
        has_tv = any_line(L.typ == _TV)
        capped = act & (L.typ == _MOB) & np.isfinite(L.cap)
        has_capped = (np.bincount(la[capped], minlength=n_a) > 0)[acc]
        ovg_months = np.zeros(n_a)
        np.maximum.at(ovg_months, la[capped], L.ovg3[:, capped].sum(axis=0))
        ovg_m = ovg_months[acc].astype(np.int64)
        roam = np.zeros(n_a)
        mob_act = act & (L.typ == _MOB)
        np.add.at(roam, la[mob_act], L.roam3[:, mob_act].sum(axis=0))
        roam = roam[acc]
        flag_tp = any_line(L.tp)
        flag_dp = any_line(L.dp)
        flag_mesh = any_line(L.mesh)
        pcare = (self.a_pcare_from[acc] <= t) & (self.a_pcare_to[acc] > t)
        dev_at_t = np.where(L.dev <= t, L.dev, np.where(L.dev_prev <= t, L.dev_prev, L.dev_prev - 900))
        new_dev = any_line((L.typ == _MOB) & (dev_at_t > t - 60))
        hh = self.a_hh[acc]
        hh_lines = np.bincount(self.a_hh[la[act]], minlength=n)[hh]
        hh_bb = (np.bincount(self.a_hh[la[act & (L.typ == _BB)]], minlength=n) > 0)[hh]
        gap = self.h_size[hh] - hh_lines
        cov = self.tix3[:, acc].sum(axis=0)
        net = self.ntix3[:, acc].sum(axis=0)
        consumer = ~self.a_sb[acc]
        fiber, fwa = self.h_fiber[hh], self.h_fwa[hh]
        p_dp_strong = 0.40 if self.scenario == "handset_launch" else 0.30
        spec = {
            "HOME_FIBER": (fiber & has_mob & ~has_bb, ~hh_bb, 0.14, 0.02),
            "HOME_FWA": (fwa & ~fiber & has_mob & ~has_bb, ~hh_bb, 0.09, 0.015),
            "DATA_UPSELL": (has_capped, ovg_m >= 2, None, None),
            "TRAVEL_PACK": (has_mob & ~flag_tp, roam > 0, None, 0.01),
            "DEVICE_PROTECTION": (has_mob & ~flag_dp, new_dev, p_dp_strong, 0.02),
            "EXTRA_LINE": (consumer & has_mob, gap >= 1, None, 0.01),
            "TV_STREAMING": (consumer & has_bb & ~has_tv, self.h_size[hh] >= 3, 0.08, 0.05),
            "MESH_WIFI": (has_bb & ~flag_mesh, cov > 0, 0.35, 0.02),
            "PREMIUM_CARE": (~pcare, (cov + net) > 0, 0.15, 0.01),
        }
        k_off = len(self.campaign_offers)
        elig = np.zeros((len(acc), k_off), bool)
        prob = np.zeros((len(acc), k_off))
        strong = np.zeros((len(acc), k_off), bool)
        promo = np.zeros(k_off, bool)
        open_t = self.open_until[acc] > t
        for j, oid in enumerate(self.campaign_offers):
            e, s, ps, pw = spec[oid]
            if oid == "DATA_UPSELL":
                p = np.array([0.01, 0.10, 0.28, 0.40])[np.minimum(ovg_m, 3)]
            elif oid == "TRAVEL_PACK":
                p = np.where(s, 0.25 + 0.01 * np.minimum(roam, 20), pw)
            elif oid == "EXTRA_LINE":
                p = np.where(s, 0.04 + 0.05 * np.minimum(gap, 3), pw)
            else:
                p = np.where(s, ps, pw)
            o = self.catalog.get(oid)
            if o.eligibility.account_types is not None:
                e = e & np.isin(np.array(ACCOUNT_TYPES)[self.a_sb[acc].astype(int)], o.eligibility.account_types)
            promo[j] = o.promotional
            if o.promotional:
                e = e & ~open_t  # guardrail: fix first
            elig[:, j] = e
            prob[:, j] = p
            strong[:, j] = s
        w = elig * (0.05 + 3 * prob)
        k = _pick_by_weight(w, u_off[acc])
        ok = k >= 0
        acc, k = acc[ok], k[ok]
        rows = np.flatnonzero(ok)
        p_sel = prob[rows, k]
        s_sel = strong[rows, k]
        offer_idx = np.array([self.offer_index[o] for o in self.campaign_offers])[k]
        allowed = self.offer_channels[offer_idx]
        chan = self._channel_rows(acc, allowed, u_pref[acc], 0.75, u_ch[acc])
        day = lo + np.floor(u_day[acc] * (hi - lo)).astype(np.int64)
        accepted = u_acc[acc] < p_sel
        acc_day = day + np.floor(u_accd[acc] * 7).astype(np.int64)
        cancelled = accepted & (u_cn[acc] < np.where(s_sel, 0.08, 0.35))
        cancel_day = acc_day + 5 + np.floor(u_cnd[acc] * 86).astype(np.int64)
        self.contacts.add(
            acc=acc, exp=-1, arm=-1, offer=offer_idx, contacted=True, channel=chan, day=day,
            accepted=accepted, acc_day=np.where(accepted, acc_day, -1), cancel_day=np.where(cancelled, cancel_day, -1),
        )
        # Effects of accepted offers, from the 1st of the next month to the cancellation.
        start = self._next_month(acc_day)
        stop = np.where(cancelled, cancel_day, _BIG)
        live = accepted & (stop > start)
        names = np.array(self.campaign_offers, dtype=object)[k]
        first_mob = _first_index(n_a, la, mob_act)
        first_cap = _first_index(n_a, la, capped)
        first_bb = _first_index(n_a, la, act & (L.typ == _BB))
        first_any = _first_index(n_a, la, act)
        for oid, line_of in (("TRAVEL_PACK", first_mob), ("DEVICE_PROTECTION", first_mob),
                             ("MESH_WIFI", first_bb), ("DATA_UPSELL", first_cap), ("PREMIUM_CARE", first_any)):
            sel = live & (names == oid)
            sel &= line_of[acc] >= 0
            if not sel.any():
                continue
            ln = line_of[acc[sel]]
            price = float(self.offer_price[self.offer_index[oid]])
            self.events.add(ln, np.asarray(price), np.asarray(30.0 if oid == "DATA_UPSELL" else 0.0),
                            start[sel], stop[sel])
            # Ownership flags: the state known at as_of (held and not cancelled by then).
            held = (start[sel] <= cal.as_of) & (stop[sel] > cal.as_of)
            if oid in _FLAG_OF:
                arr = getattr(L, _FLAG_OF[oid])
                arr[ln[held]] = True
            if oid == "PREMIUM_CARE":
                a2 = acc[sel]
                self.a_pcare_from[a2] = np.minimum(self.a_pcare_from[a2], start[sel])
                self.a_pcare_to[a2] = np.where(self.a_pcare_from[a2] == start[sel], stop[sel], self.a_pcare_to[a2])
        # Cross-sell: a new line.
        new_typ = {"HOME_FIBER": (_BB, _FIBER), "HOME_FWA": (_BB, _FWA), "TV_STREAMING": (_TV, -1),
                   "EXTRA_LINE": (_MOB, -1)}
        for oid, (lt, tech) in new_typ.items():
            sel = live & (names == oid)
            if not sel.any():
                continue
            a2 = acc[sel]
            m = len(a2)
            price = float(self.offer_price[self.offer_index[oid]])
            need = np.where(lt == _MOB, 8.0 * np.exp(0.7 * (u_need[a2] - 0.5)), np.where(lt == _BB, 180.0, 0.0))
            st_ = start[sel]
            L.append(
                acc=a2, typ=np.full(m, lt), start=st_, end=stop[sel], tier=np.full(m, 1),
                cap=np.full(m, 15.0 if lt == _MOB else np.nan), price=np.full(m, price), tech=np.full(m, tech),
                dev=np.where(lt == _MOB, st_, -1), dev_prev=np.where(lt == _MOB, st_ - 900, -1),
                need=need, voice=np.ones(m), pm_from=np.full(m, _BIG), dp=np.zeros(m, bool), tp=np.zeros(m, bool),
                mesh=np.zeros(m, bool), sec=np.zeros(m, bool), stream=np.full(m, lt == _TV),
                ovg3=None, roam3=None,
            )

    # ---------------------------------------------------------------- assembly

    def assemble(self) -> World:
        cal, L = self.cal, self.L
        n, n_a = self.n, self.n_a
        hh_ids = _ids("H", n, 7)
        acc_ids = _ids("A", n_a, 7)
        # households
        h_created = np.full(n, _BIG, np.int64)
        np.minimum.at(h_created, self.a_hh, self.a_start)
        households = pd.DataFrame({
            "household_id": hh_ids,
            "region": np.array(REGIONS, dtype=object)[self.h_region],
            "household_size": self.h_size.astype(np.int64),
            "fiber_eligible": self.h_fiber.astype(bool),
            "fwa_eligible": self.h_fwa.astype(bool),
            "created_date": _to_dt(h_created),
        })
        # lines: drop cross-sell lines that never started (account gone first); sort by account, start
        keep = np.flatnonzero(L.end > L.start)
        order = keep[np.lexsort((keep, L.start[keep], L.acc[keep]))]
        new_pos = np.full(L.n, -1, np.int64)
        new_pos[order] = np.arange(len(order))
        line_ids = _ids("L", len(order), 8)
        # account snapshot at as_of (or at its end): list charges of the lines active then
        snap = np.minimum(self.a_end - 1, cal.as_of)
        l_snap = snap[L.acc]
        l_act = (L.start <= l_snap) & (L.end > l_snap)
        rise = self._price_factor(cal.as_of, np.arange(L.n))
        price_now = np.round(L.price * rise, 2)
        charges = np.bincount(L.acc[l_act], weights=price_now[l_act], minlength=n_a)
        pcare = self.a_pcare & (self.a_pcare_to > cal.as_of) | ((self.a_pcare_from <= cal.as_of) & (self.a_pcare_to > cal.as_of))
        a_end_missing = self.a_end >= _BIG
        cend_missing = self.a_term == 0
        accounts = pd.DataFrame({
            "account_id": acc_ids,
            "household_id": hh_ids[self.a_hh],
            "account_type": np.array(ACCOUNT_TYPES, dtype=object)[self.a_sb.astype(int)],
            "start_date": _to_dt(self.a_start),
            "end_date": _to_dt(np.where(a_end_missing, 0, self.a_end), a_end_missing),
            "contract_type": np.array(CONTRACT_TYPES, dtype=object)[self.a_ct],
            "contract_end_date": _to_dt(np.where(cend_missing, 0, self.a_cend), cend_missing),
            "payment_method": np.array(PAYMENT_METHODS, dtype=object)[self.a_pay],
            "paperless_billing": self.a_paperless.astype(bool),
            "channel_preference": np.array(CHANNELS, dtype=object)[self.a_chan],
            "senior_citizen": self.a_senior.astype(bool),
            "has_partner": self.a_partner.astype(bool),
            "has_dependents": self.a_dep.astype(bool),
            "has_premium_care": pcare.astype(bool),
            "monthly_charges": np.round(charges, 2).astype(float),
        })
        o = order
        end_missing = L.end[o] >= _BIG
        cap_now = L.cap.copy()
        ev = self.events
        held = (ev.start <= cal.as_of) & (ev.stop > cal.as_of) & (ev.cap > 0)
        np.add.at(cap_now, ev.line[held], ev.cap[held])
        typ = L.typ[o]
        dev = L.dev[o]
        lines = pd.DataFrame({
            "line_id": line_ids,
            "account_id": acc_ids[L.acc[o]],
            "line_type": np.array(LINE_TYPES, dtype=object)[typ],
            "start_date": _to_dt(L.start[o]),
            "end_date": _to_dt(np.where(end_missing, 0, L.end[o]), end_missing),
            "plan_tier": np.array(PLAN_TIERS, dtype=object)[L.tier[o]],
            "data_cap_gb": cap_now[o].astype(float),
            "monthly_price": price_now[o].astype(float),
            "broadband_tech": np.where(L.tech[o] >= 0, np.array(_TECHS, dtype=object)[np.maximum(L.tech[o], 0)], None),
            "device_purchase_date": _to_dt(np.maximum(dev, 0), dev < 0),
            "has_device_protection": L.dp[o].astype(bool),
            "has_travel_pack": L.tp[o].astype(bool),
            "has_mesh_wifi": L.mesh[o].astype(bool),
            "has_online_security": L.sec[o].astype(bool),
            "has_streaming": L.stream[o].astype(bool),
        })
        # usage
        u = {k: np.concatenate([c[k] for c in self.usage]) for k in self.usage[0]}
        upos = new_pos[u["line"]]
        ok = upos >= 0
        uo = np.lexsort((u["month"][ok], upos[ok]))
        usage = pd.DataFrame({
            "line_id": line_ids[upos[ok][uo]],
            "month": _to_dt(u["month"][ok][uo]),
            "data_gb": u["data_gb"][ok][uo].astype(float),
            "overage_gb": u["overage_gb"][ok][uo].astype(float),
            "voice_minutes": u["voice_minutes"][ok][uo].astype(float),
            "intl_minutes": u["intl_minutes"][ok][uo].astype(float),
            "roaming_days": u["roaming_days"][ok][uo].astype(np.int64),
            "dropped_calls": u["dropped_calls"][ok][uo].astype(np.int64),
            "bill_amount": u["bill_amount"][ok][uo].astype(float),
        })
        # tickets (only up to world_end; after an account's end none were drawn)
        t = {k: np.concatenate([c[k] for c in self.tickets]) for k in self.tickets[0]} if self.tickets else None
        if t is not None:
            keep_t = t["opened"] <= cal.world_end
            t = {k: v[keep_t] for k, v in t.items()}
            to = np.lexsort((t["cat"], t["acc"], t["opened"]))
            t = {k: v[to] for k, v in t.items()}
            t_line = np.where(t["line"] >= 0, new_pos[np.maximum(t["line"], 0)], -1)
            res_missing = t["resolved"] > cal.world_end
            tickets = pd.DataFrame({
                "ticket_id": _ids("T", len(to), 8),
                "account_id": acc_ids[t["acc"]],
                "line_id": np.where(t_line >= 0, line_ids[np.maximum(t_line, 0)], None),
                "category": np.array(TICKET_CATEGORIES, dtype=object)[t["cat"]],
                "opened_at": _to_dt(t["opened"]),
                "resolved_at": _to_dt(np.where(res_missing, 0, t["resolved"]), res_missing),
                "is_complaint": t["complaint"].astype(bool),
            })
        else:
            tickets = pd.DataFrame({c: pd.Series(dtype=object) for c in columns("support_tickets")})
        # contacts
        c = {k: np.concatenate([ch[k] for ch in self.contacts.chunks]) for k in self.contacts.chunks[0]}
        co = np.lexsort((c["exp"], c["acc"], c["day"]))
        c = {k: v[co] for k, v in c.items()}
        exp_names = np.array([RETENTION_EXPERIMENT_ID, TIMING_EXPERIMENT_ID, None], dtype=object)
        arm_names = np.where(c["exp"] == 0, np.array(["control", "treatment"], dtype=object)[np.clip(c["arm"], 0, 1)],
                             np.array(TIMING_ARMS, dtype=object)[np.clip(c["arm"], 0, 2)])
        arm_names = np.where(c["exp"] < 0, None, arm_names)
        acc_missing = c["acc_day"] < 0
        can_missing = c["cancel_day"] < 0
        contacts = pd.DataFrame({
            "contact_id": _ids("C", len(co), 8),
            "account_id": acc_ids[c["acc"]],
            "household_id": hh_ids[self.a_hh[c["acc"]]],
            "offer_id": np.array(self.offer_ids, dtype=object)[c["offer"]],
            "experiment_id": exp_names[np.where(c["exp"] < 0, 2, c["exp"])],
            "arm": arm_names.astype(object),
            "contacted": c["contacted"].astype(bool),
            "channel": np.where(c["channel"] >= 0, np.array(CHANNELS, dtype=object)[np.maximum(c["channel"], 0)], None),
            "contacted_at": _to_dt(c["day"]),
            "accepted": c["accepted"].astype(bool),
            "accepted_at": _to_dt(np.maximum(c["acc_day"], 0), acc_missing),
            "cancelled_at": _to_dt(np.maximum(c["cancel_day"], 0), can_missing),
        })
        ti = self.t_info
        timing_end = int((ti["cend"] + 90).max()) if len(ti["hh"]) else cal.as_of
        timing_start = cal.cohort_lo
        experiments = pd.DataFrame({
            "experiment_id": [RETENTION_EXPERIMENT_ID, TIMING_EXPERIMENT_ID],
            "name": ["Retention discount, randomized holdout", "Offer timing: day 30 vs 60 days before contract end"],
            "unit": ["account", "household"],
            "start_date": _to_dt(np.array([cal.t0, timing_start])),
            "end_date": _to_dt(np.array([cal.t0 + RETENTION_WINDOW_DAYS, timing_end])),
            "control_arm": ["control", "control"],
            "arms": ["control,treatment", ",".join(TIMING_ARMS)],
            "primary_metric": ["churn_90d", "churned"],
            "description": [
                f"{int(RETENTION_SHARE * 100)}% of active accounts at the start, half offered "
                f"{RETENTION_OFFER} on their preferred allowed channel, half held out; churn within 90 days.",
                "Households starting on a one-year contract, randomized in thirds: no contact, "
                f"{TIMING_OFFER} on day 30 of tenure, or {TIMING_OFFER} 60 days before the contract end; "
                "churned = any account ended by contract end + 90 days.",
            ],
        })
        tables = {
            "households": households, "accounts": accounts, "lines": lines, "usage_monthly": usage,
            "support_tickets": tickets, "offers": self.offers.copy(), "contacts": contacts,
            "experiments": experiments,
        }
        for name, df in tables.items():
            tables[name] = df[columns(name)].reset_index(drop=True)
        # truth with ids
        truth: dict[str, pd.DataFrame] = {}
        for name in ("accounts", "clv", "retention"):
            df = self.truth[name].copy()
            df["account_id"] = acc_ids[df["account_id"].to_numpy(np.int64)]
            truth[name] = df.sort_values("account_id").reset_index(drop=True)
        if "household_id" not in truth["retention"]:
            truth["retention"].insert(1, "household_id", accounts.set_index("account_id").loc[truth["retention"]["account_id"], "household_id"].to_numpy())
        tdf = self.truth["timing"].copy()
        if len(tdf):
            tdf["household_id"] = hh_ids[tdf["household_id"].to_numpy(np.int64)]
        truth["timing"] = tdf.sort_values("household_id").reset_index(drop=True) if len(tdf) else tdf
        truth["households"] = pd.DataFrame({
            "household_id": hh_ids, "weak_coverage": self.h_weak, "traveller": self.h_trav,
            "intl_caller": self.h_intl, "price_sensitivity": self.h_sens,
            "timing_cohort": self.h_cohort,
        })
        return World(tables=tables, truth=truth)


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
    cal = _calendar(as_of)
    step = progress or (lambda _s: None)
    g = _Gen(int(n_households), int(seed), cal, scenario, catalog)
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


def _scenario_detail(scenario: str | None, cal: _Calendar, g: _Gen) -> dict[str, Any] | None:
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
    "generate_world",
    "hazard_logit",
    "summarize_world",
]
