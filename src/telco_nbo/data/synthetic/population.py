"""Households, accounts and lines: the set-up draws (sequential random stream).

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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    CABLE,
    CAPS,
    choice,
    DSL,
    FIBER,
    FIX,
    FWA,
    K_SCEN,
    LineArrays,
    MOB,
    PRICES,
    substream,
    TV,
)


class PopulationStage:
    """Set-up stages of the generator (mixed into :class:`~telco_nbo.data.synthetic.generator._Gen`)."""


    def households(self, rng: np.random.Generator) -> None:
        n = self.n
        self.h_region = choice(rng, n, [0.45, 0.35, 0.20])
        self.h_size = choice(rng, n, [0.28, 0.32, 0.16, 0.15, 0.06, 0.03]) + 1
        p_fiber = np.array([0.45, 0.35, 0.15])[self.h_region]
        self.h_fiber = rng.random(n) < p_fiber
        p_fwa = np.where(self.h_fiber, 0.20, np.array([0.70, 0.60, 0.45])[self.h_region])
        self.h_fwa = rng.random(n) < p_fwa
        self.h_weak = rng.random(n) < np.array([0.08, 0.15, 0.30])[self.h_region]
        self.h_trav = rng.random(n) < 0.12
        self.h_intl = rng.random(n) < 0.15
        self.h_sens = np.clip(rng.standard_normal(n), -2, 2)
        self.h_nacc = choice(rng, n, [0.82, 0.14, 0.04]) + 1
        extra = rng.poisson(0.5 + 0.3 * (self.h_size - 1))
        self.h_nlines = np.clip(self.h_nacc + extra, self.h_nacc, 6)
        self.h_mix = choice(rng, n, [0.45, 0.35, 0.20])  # 0 mobile-only, 1 bundle, 2 home-only

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
        self.a_end = np.full(n_a, BIG, np.int64)
        self.a_pay = choice(rng, n_a, [0.30, 0.15, 0.27, 0.28])
        self.a_paperless = rng.random(n_a) < 0.60
        senior = rng.random(n_a) < 0.16
        chan_young = choice(rng, n_a, [0.32, 0.26, 0.11, 0.18, 0.13])
        u_sen = rng.random(n_a)
        chan_sen = np.searchsorted([0.08, 0.33, 0.38, 0.75, 1.0], u_sen, side="right")
        self.a_chan = np.where(senior, np.minimum(chan_sen, 4), chan_young)
        self.a_senior = senior
        self.a_partner = rng.random(n_a) < 0.48
        self.a_dep = rng.random(n_a) < np.where(self.h_size[hh] >= 3, 0.55, 0.08)
        self.a_pcare = rng.random(n_a) < 0.05
        self.a_pcare_from = np.where(self.a_pcare, start, BIG)
        self.a_pcare_to = np.full(n_a, BIG, np.int64)
        self.a_sens = np.clip(self.h_sens[hh] + 0.3 * rng.standard_normal(n_a), -2, 2)
        self.a_resign_ok = ~self.h_cohort[hh]
        self.n_a = n_a
        # Experiment windows (blackouts of the monthly hazard) and post-as_of window.
        self.ex_bs = np.full(n_a, BIG, np.int64)
        self.ex_be = np.full(n_a, BIG, np.int64)
        self.ex_day = np.full(n_a, BIG, np.int64)
        self.po_bs = np.full(n_a, BIG, np.int64)
        self.po_be = np.full(n_a, BIG, np.int64)
        self.po_day = np.full(n_a, BIG, np.int64)
        self.open_until = np.full(n_a, -1, np.int64)
        self.cpl_until = np.full(n_a, -1, np.int64)
        self.shock_last = np.zeros(n_a, bool)
        self.tix3 = np.zeros((3, n_a), np.int64)  # coverage tickets in the last 3 months
        self.ntix3 = np.zeros((3, n_a), np.int64)  # network tickets in the last 3 months
        self.campaign_block = np.full(n_a, -1, np.int64)  # no campaign contact through this day
        # A contact's effect on the churn hazard: x hm_mult on [hm_from, hm_until) (the offer model).
        self.hm_mult = np.ones(n_a)
        self.hm_from = np.full(n_a, BIG, np.int64)
        self.hm_until = np.full(n_a, -1, np.int64)

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
        typ = np.full(n_l, MOB)
        # bundle
        b = m == 1
        typ[b & (pos == 0)] = BB
        third = b & (pos == 2)
        typ[third] = np.where(u_t[third] < 0.45, TV, np.where(u_t[third] < 0.60, FIX, MOB))
        # home-only
        h = m == 2
        typ[h & (pos == 0)] = BB
        sec_ = h & (pos == 1)
        typ[sec_] = np.where(u_t[sec_] < 0.70, TV, FIX)
        thr = h & (pos == 2)
        typ[thr] = np.where(typ[np.maximum(np.flatnonzero(thr) - 1, 0)] == TV, FIX, TV)
        a_start = self.a_start[acc]
        # Lines beyond the first may start later (30 %), never for the timing cohort.
        u_ls = rng.random(n_l)
        later = (pos > 0) & (rng.random(n_l) < 0.30) & ~self.h_cohort[hh[acc]]
        span = np.maximum(cal.as_of - a_start, 0)
        start = np.where(later, a_start + np.floor(u_ls * span * 0.7).astype(np.int64), a_start)
        tier = choice(rng, n_l, [0.25, 0.40, 0.20, 0.15])
        tenure_y = (cal.as_of - start) / 365.25
        legacy = 1 + np.minimum(0.04 * tenure_y, 0.3)
        fiber = self.h_fiber[hh[acc]]
        fwa = self.h_fwa[hh[acc]]
        u_tech = rng.random(n_l)
        tech = np.where(fiber & (u_tech < 0.85), FIBER,
                        np.where(~fiber & fwa & (u_tech < 0.30), FWA, np.where(u_tech < 0.6, DSL, CABLE)))
        tech = np.where(typ == BB, tech, -1)
        price = PRICES[typ, tier] * legacy * rng.uniform(0.95, 1.05, n_l) + 5.0 * (tech == FIBER)
        price = np.round(price, 2)
        cap = np.where(typ == MOB, CAPS[tier], np.nan)
        dev = cal.as_of - np.floor(rng.random(n_l) * 1100).astype(np.int64)
        dev = np.where(typ == MOB, dev, -1)
        need_m = np.exp(np.log(8.0) + 0.7 * rng.standard_normal(n_l))
        need_b = np.exp(np.log(180.0) + 0.5 * rng.standard_normal(n_l))
        need = np.where(typ == MOB, need_m, np.where(typ == BB, need_b, 0.0))
        voice = np.exp(0.5 * rng.standard_normal(n_l))
        trav = self.h_trav[hh[acc]]
        u_f = rng.random((5, n_l))
        self.L = LineArrays(
            acc=acc, typ=typ, start=start, end=np.full(n_l, BIG, np.int64), tier=tier, cap=cap,
            price=price, tech=tech, dev=dev, dev_prev=np.where(dev >= 0, dev - 900, -1),
            need=need, voice=voice, pm_from=np.full(n_l, BIG, np.int64),
            dp=(typ == MOB) & (u_f[0] < 0.22),
            tp=(typ == MOB) & (u_f[1] < np.where(trav, 0.20, 0.02)),
            mesh=(typ == BB) & (u_f[2] < 0.10),
            sec=(typ == BB) & (u_f[3] < 0.30),
            stream=((typ == TV) | (typ == BB)) & (u_f[4] < 0.25),
            ovg3=np.zeros((3, n_l), bool), roam3=np.zeros((3, n_l), np.int64),
        )
        if self.scenario == "handset_launch":
            r = substream(self.seed, K_SCEN, 0)
            u = r.random(n_l)
            u2 = r.random(n_l)
            pick = (typ == MOB) & (start <= cal.as_of - 60) & (u < 0.30) & (dev < cal.as_of - 60)
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
