"""Campaign contacts before as_of.

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
"""

from __future__ import annotations

import numpy as np

from telco_nbo.data.schema import ACCOUNT_TYPES
from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    CAMPAIGN_RATE,
    FIBER,
    first_index,
    FLAG_OF,
    FWA,
    K_CAMPAIGN,
    MOB,
    pick_by_weight,
    substream,
    TV,
)


class CampaignStage:
    """The campaign stage (mixed into the generator)."""


    # ---------------------------------------------------------------- campaigns

    def campaign(self, i: int, ms: int, me: int) -> None:
        cal, L = self.cal, self.L
        lo = max(ms, cal.as_of - 364)
        hi = min(me, cal.as_of + 1)
        if hi <= lo:
            return
        r = substream(self.seed, K_CAMPAIGN, i)
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

        has_mob = any_line(L.typ == MOB)
        has_bb = any_line(L.typ == BB)
        has_tv = any_line(L.typ == TV)
        capped = act & (L.typ == MOB) & np.isfinite(L.cap)
        has_capped = (np.bincount(la[capped], minlength=n_a) > 0)[acc]
        ovg_months = np.zeros(n_a)
        np.maximum.at(ovg_months, la[capped], L.ovg3[:, capped].sum(axis=0))
        ovg_m = ovg_months[acc].astype(np.int64)
        roam = np.zeros(n_a)
        mob_act = act & (L.typ == MOB)
        np.add.at(roam, la[mob_act], L.roam3[:, mob_act].sum(axis=0))
        roam = roam[acc]
        flag_tp = any_line(L.tp)
        flag_dp = any_line(L.dp)
        flag_mesh = any_line(L.mesh)
        pcare = (self.a_pcare_from[acc] <= t) & (self.a_pcare_to[acc] > t)
        dev_at_t = np.where(L.dev <= t, L.dev, np.where(L.dev_prev <= t, L.dev_prev, L.dev_prev - 900))
        new_dev = any_line((L.typ == MOB) & (dev_at_t > t - 60))
        hh = self.a_hh[acc]
        hh_lines = np.bincount(self.a_hh[la[act]], minlength=n)[hh]
        hh_bb = (np.bincount(self.a_hh[la[act & (L.typ == BB)]], minlength=n) > 0)[hh]
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
        k = pick_by_weight(w, u_off[acc])
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
        stop = np.where(cancelled, cancel_day, BIG)
        live = accepted & (stop > start)
        names = np.array(self.campaign_offers, dtype=object)[k]
        first_mob = first_index(n_a, la, mob_act)
        first_cap = first_index(n_a, la, capped)
        first_bb = first_index(n_a, la, act & (L.typ == BB))
        first_any = first_index(n_a, la, act)
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
            if oid in FLAG_OF:
                arr = getattr(L, FLAG_OF[oid])
                arr[ln[held]] = True
            if oid == "PREMIUM_CARE":
                a2 = acc[sel]
                self.a_pcare_from[a2] = np.minimum(self.a_pcare_from[a2], start[sel])
                self.a_pcare_to[a2] = np.where(self.a_pcare_from[a2] == start[sel], stop[sel], self.a_pcare_to[a2])
        # Cross-sell: a new line.
        new_typ = {"HOME_FIBER": (BB, FIBER), "HOME_FWA": (BB, FWA), "TV_STREAMING": (TV, -1),
                   "EXTRA_LINE": (MOB, -1)}
        for oid, (lt, tech) in new_typ.items():
            sel = live & (names == oid)
            if not sel.any():
                continue
            a2 = acc[sel]
            m = len(a2)
            price = float(self.offer_price[self.offer_index[oid]])
            need = np.where(lt == MOB, 8.0 * np.exp(0.7 * (u_need[a2] - 0.5)), np.where(lt == BB, 180.0, 0.0))
            st_ = start[sel]
            L.append(
                acc=a2, typ=np.full(m, lt), start=st_, end=stop[sel], tier=np.full(m, 1),
                cap=np.full(m, 15.0 if lt == MOB else np.nan), price=np.full(m, price), tech=np.full(m, tech),
                dev=np.where(lt == MOB, st_, -1), dev_prev=np.where(lt == MOB, st_ - 900, -1),
                need=need, voice=np.ones(m), pm_from=np.full(m, BIG), dp=np.zeros(m, bool), tp=np.zeros(m, bool),
                mesh=np.zeros(m, bool), sec=np.zeros(m, bool), stream=np.full(m, lt == TV),
                ovg3=None, roam3=None,
            )
