"""One calendar month of the world: usage, tickets, churn, re-signing.

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
"""

from __future__ import annotations

import numpy as np

from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    DATA_SIGMA,
    DATA_TREND,
    first_index,
    FIX,
    K_CHURN,
    K_TICKETS,
    K_USAGE,
    MOB,
    OVERAGE_RATE,
    P_RESIGN,
    PLAN_REVIEW_FACTOR,
    poisson_trunc3,
    sigmoid,
    substream,
)


class MonthlyStage:
    """The monthly simulation stage (mixed into the generator)."""


    def month(self, i: int, ms: int, me: int) -> None:
        cal, L, seed = self.cal, self.L, self.seed
        me_x = min(me, cal.world_end + 1)
        mlen = me - ms
        n_l = L.n
        # ---- usage
        r = substream(seed, K_USAGE, i)
        z = r.standard_normal(n_l)
        g_voice = r.gamma(2.0, size=n_l)
        g_drop = r.gamma(2.0, size=n_l)
        e_intl = r.exponential(size=n_l)
        u_trip = r.random(n_l)
        u_rd = r.random(n_l)
        u_drop = r.random(n_l)
        lo = np.maximum(L.start, ms)
        hi = np.minimum(np.minimum(L.end, me_x), BIG)
        act_days = hi - lo
        li = np.flatnonzero(act_days > 0)
        f = act_days[li] / mlen
        typ = L.typ[li]
        hh = self.a_hh[L.acc[li]]
        weak = self.h_weak[hh]
        mob = typ == MOB
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
        base_voice = np.where(mob, 120.0, np.where(typ == FIX, 60.0, 0.0))
        voice = f * base_voice * L.voice[li] * g_voice[li] / 2
        intl = np.where(mob | (typ == FIX), f * np.where(self.h_intl[hh], 40.0, 2.0) * e_intl[li], 0.0)
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
        has_bb = np.bincount(acc[typ == BB], minlength=n_a) > 0
        has_mob = np.bincount(acc[mob], minlength=n_a) > 0
        dev_age = np.zeros(n_a)
        if mob.any():
            lm = li[mob]
            d_used = np.where(ms >= L.dev[lm], L.dev[lm], np.where(ms >= L.dev_prev[lm], L.dev_prev[lm], L.dev_prev[lm] - 900))
            np.maximum.at(dev_age, acc[mob], (ms - d_used) / 365.25)
        a_lo = np.maximum(self.a_start, ms)
        a_hi = np.minimum(np.minimum(self.a_end, me_x), BIG)
        a_days = np.maximum(a_hi - a_lo, 0)
        fa = a_days / mlen
        # ---- tickets
        r = substream(seed, K_TICKETS, i)
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
        counts = np.where(fa > 0, poisson_trunc3(lam5, u_n), 0)
        first_mob = first_index(n_a, L.acc, (L.typ == MOB) & (L.start <= ms) & (L.end > ms))
        first_bb = first_index(n_a, L.acc, (L.typ == BB) & (L.start <= ms) & (L.end > ms))
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
        r = substream(seed, K_CHURN, i)
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
        h = sigmoid(self._logit(alive, ms, self.a_cend[alive], st_end, shock[alive]))
        # A recent contact multiplies the hazard for the part of the month its effect covers.
        cover = np.clip(np.minimum(self.hm_until[alive], me) - np.maximum(self.hm_from[alive], ms), 0, None) / mlen
        h = np.minimum(h * (1 + (self.hm_mult[alive] - 1) * cover), 1.0)
        p = 1 - (1 - h) ** expo[alive]
        churn = u_c[alive] < p
        ca = alive[churn]
        cday = lo_e[ca] + np.floor(u_d[ca] * (hi_e[ca] - lo_e[ca])).astype(np.int64)
        self.a_end[ca] = np.minimum(self.a_end[ca], cday)
        # externally drawn churn days falling in this month
        for day in (self.ex_day, self.po_day):
            hit = (day >= ms) & (day < me) & (self.a_end == BIG)
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
