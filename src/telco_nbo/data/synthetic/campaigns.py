"""Campaign contacts before as_of, the logged exploration, and the accounts' context for offers.

Campaign contacts (12 months before ``as_of``)
----------------------------------------------
At the end of each month a household is contacted with probability 0.10 (one active account,
picked at random), except households in an experiment window. The contact's effect on acceptance,
churn and margin comes from the causal model of :mod:`.offers` (the same one the truth uses).

* **Exploration** (:data:`EXPLORE_SHARE` = 30 % of the picked accounts, policy
  ``explore-uniform-v1``): the action is drawn uniformly among "no contact" and every catalog offer
  the world can deliver to the account; ``propensity = 1 / (1 + deliverable offers)``. A "no
  contact" choice is logged as a row with ``contacted`` False and no offer.
* **The campaign engine** (the rest, policy ``campaign-need-v1``) targets by need: offer weight
  ``eligible * (0.05 + 3 p)`` over the cross-sell / upsell / add-on / service-recovery offers,
  where ``p`` is the model's acceptance, promotional offers held back while a ticket is open;
  ``propensity`` is the chosen offer's share of the weights.

The channel is the preferred one when the offer allows it (75 %; exploration: always), else a
random allowed one. A contacted account accepts with the model's ``p_accept`` (x 0.7 off its
preferred channel); its churn hazard is multiplied by the model's ``r_accept`` / ``r_reject`` for
the 90 days from the 1st of the next month (the month of the contact is already drawn).
Accepted offers are cancelled within 5..90 days with probability .08 (acceptance >= .10, a real
need) / .35; their effects (new line, flag, data cap, add-on charge, discount, plan-review price
cut) run from the 1st of the next month to the cancellation.
"""

from __future__ import annotations

import numpy as np

from telco_nbo.data.schema import CHANNELS
from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    CAMPAIGN_RATE,
    EXPLORE_SHARE,
    FIBER,
    first_index,
    FIX,
    FLAG_OF,
    FWA,
    K_CAMPAIGN,
    K_EXPLORE,
    MOB,
    pick_by_weight,
    substream,
    TV,
)
from telco_nbo.data.synthetic.offers import EFFECT_DAYS, OfferContext, channel_factor, deliverable, respond_model
from telco_nbo.vocabulary import DAYS_PER_MONTH


class CampaignStage:
    """Campaigns, exploration and the offer context (mixed into the generator)."""

    # ---------------------------------------------------------------- context for the offer model

    def offer_context(self, acc: np.ndarray, t: int, st: dict[str, np.ndarray] | None = None) -> OfferContext:
        """What the causal model of offers reads about accounts ``acc`` at day ``t``."""
        L = self.L
        n_a, n = self.n_a, self.n
        st = st if st is not None else self._state(t)
        act = (L.start <= t) & (L.end > t)
        la = L.acc

        def any_line(mask: np.ndarray) -> np.ndarray:
            return (np.bincount(la[act & mask], minlength=n_a) > 0)[acc]

        capped = act & (L.typ == MOB) & np.isfinite(L.cap)
        ovg_months = np.zeros(n_a)
        np.maximum.at(ovg_months, la[capped], L.ovg3[:, capped].sum(axis=0))
        roam = np.zeros(n_a)
        mob_act = act & (L.typ == MOB)
        np.add.at(roam, la[mob_act], L.roam3[:, mob_act].sum(axis=0))
        dev_at_t = np.where(L.dev <= t, L.dev, np.where(L.dev_prev <= t, L.dev_prev, L.dev_prev - 900))
        hh = self.a_hh[acc]
        hh_lines = np.bincount(self.a_hh[la[act]], minlength=n)[hh]
        hh_bb = (np.bincount(self.a_hh[la[act & (L.typ == BB)]], minlength=n) > 0)[hh]
        kind, dte = self._contract(t, self.a_cend[acc], self.a_term[acc])
        pcare = (self.a_pcare_from[acc] <= t) & (self.a_pcare_to[acc] > t)
        return OfferContext(
            kind=kind, days_to_end=dte, tenure_years=(t - self.a_start[acc]) / 365.25,
            price_z=st["price_z"][acc], sensitivity=self.a_sens[acc],
            complaint=self.cpl_until[acc] > t, open_issue=self.open_until[acc] > t,
            app_user=self.a_chan[acc] == CHANNELS.index("app"), small_business=self.a_sb[acc].astype(bool),
            active=(self.a_start[acc] <= t) & (self.a_end[acc] > t),
            weak_coverage=self.h_weak[hh], fiber=self.h_fiber[hh], fwa=self.h_fwa[hh],
            household_size=self.h_size[hh], household_broadband=hh_bb, line_gap=self.h_size[hh] - hh_lines,
            coverage_tickets=self.tix3[:, acc].sum(axis=0), network_tickets=self.ntix3[:, acc].sum(axis=0),
            overage_months=ovg_months[acc].astype(np.int64), roaming_days=roam[acc],
            new_device=any_line((L.typ == MOB) & (dev_at_t > t - 60)),
            has_mobile=any_line(L.typ == MOB), has_broadband=any_line(L.typ == BB), has_tv=any_line(L.typ == TV),
            has_fixed_voice=any_line(L.typ == FIX), capped_mobile=(np.bincount(la[capped], minlength=n_a) > 0)[acc],
            flags={"has_travel_pack": any_line(L.tp), "has_device_protection": any_line(L.dp),
                   "has_mesh_wifi": any_line(L.mesh), "has_online_security": any_line(L.sec),
                   "has_streaming": any_line(L.stream), "has_premium_care": pcare},
            bill=st["charges"][acc],
        )

    def offer_response(self, acc: np.ndarray, t: int, st: dict[str, np.ndarray] | None = None,
                       p0: np.ndarray | None = None):  # noqa: ANN201 - (context, Response, deliverable)
        """Context, the model's response and the deliverable mask for accounts ``acc`` at ``t``."""
        st = st if st is not None else self._state(t)
        ctx = self.offer_context(acc, t, st)
        if p0 is None and self.scenario == "offer_fatigue":
            p0 = 1 - self.project(acc, t, 3, st)[:, 3]
        resp = respond_model(ctx, self.ov, scenario=self.scenario, p0=p0,
                             handset_launch=self.scenario == "handset_launch")
        return ctx, resp, deliverable(ctx, self.ov)

    # ---------------------------------------------------------------- campaigns

    def campaign(self, i: int, ms: int, me: int) -> None:
        cal = self.cal
        lo = max(ms, cal.as_of - 364)
        hi = min(me, cal.as_of + 1)
        if hi <= lo:
            return
        r = substream(self.seed, K_CAMPAIGN, i)
        n_a, n = self.n_a, self.n
        u_hh = r.random(n)
        u_key = r.random(n_a)
        u_off, u_pref, u_ch, u_acc, u_accd, u_cn, u_cnd, u_day, u_need = (r.random(n_a) for _ in range(9))
        rx = substream(self.seed, K_EXPLORE, i)
        u_x, u_xa = rx.random(n_a), rx.random(n_a)
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
        ctx, resp, deliv = self.offer_response(acc, t)
        m = len(self.offer_ids)
        explore = u_x[acc] < EXPLORE_SHARE
        # The campaign engine: need-weighted over its offers, promotions held back during an issue.
        camp = np.zeros(m, bool)
        camp[[self.offer_index[o] for o in self.campaign_offers]] = True
        elig = deliv & camp[None, :] & ~(self.ov.promotional[None, :] & ctx.open_issue[:, None])
        w = elig * (0.05 + 3 * resp.p_accept)
        k_need = pick_by_weight(w, u_off[acc])
        tot = w.sum(axis=1)
        prop_need = np.where(k_need >= 0, w[np.arange(len(acc)), np.maximum(k_need, 0)] / np.maximum(tot, 1e-12), np.nan)
        # Exploration: uniform over "no contact" and every deliverable offer.
        n_opt = deliv.sum(axis=1) + 1
        pos = np.minimum(np.floor(u_xa[acc] * n_opt).astype(np.int64), n_opt - 1)  # 0 = no contact
        cum = np.cumsum(deliv, axis=1)
        k_exp = np.where(pos > 0, np.argmax(cum >= np.maximum(pos, 1)[:, None], axis=1), -1)
        k = np.where(explore, k_exp, k_need)
        prop = np.where(explore, 1.0 / n_opt, prop_need)
        policy = np.where(explore, 1, 0)
        logged = explore | (k_need >= 0)
        acc, k, prop, policy, rows = acc[logged], k[logged], prop[logged], policy[logged], np.flatnonzero(logged)
        none = k < 0
        kk = np.maximum(k, 0)
        allowed = self.ov.channels[kk]
        chan = self._channel_rows(acc, allowed, u_pref[acc], 0.75, u_ch[acc])
        chan = np.where(policy == 1, self._channel_rows(acc, allowed, None, 1.0, u_ch[acc]), chan)
        day = lo + np.floor(u_day[acc] * (hi - lo)).astype(np.int64)
        p_base = resp.p_accept[rows, kk]
        p_sel = np.where(none, 0.0, p_base * channel_factor(self.a_chan[acc], chan))
        accepted = ~none & (u_acc[acc] < p_sel)
        acc_day = day + np.floor(u_accd[acc] * 7).astype(np.int64)
        cancelled = accepted & (u_cn[acc] < np.where(p_base >= 0.10, 0.08, 0.35))
        cancel_day = acc_day + 5 + np.floor(u_cnd[acc] * 86).astype(np.int64)
        self.contacts.add(
            acc=acc, exp=-1, arm=-1, offer=np.where(none, -1, k), contacted=~none, channel=np.where(none, -1, chan),
            day=day, accepted=accepted, acc_day=np.where(accepted, acc_day, -1),
            cancel_day=np.where(cancelled, cancel_day, -1), policy=policy, prop=prop,
        )
        # The contact's effect on the churn hazard: 90 days from the 1st of the next month.
        c = ~none
        mult = np.where(accepted, resp.r_accept[rows, kk], resp.r_reject[rows, kk])
        self.hm_mult[acc[c]] = mult[c]
        self.hm_from[acc[c]] = me
        self.hm_until[acc[c]] = me + EFFECT_DAYS
        self._apply_acceptances(acc[accepted], k[accepted], acc_day[accepted],
                                np.where(cancelled, cancel_day, BIG)[accepted], u_need[acc[accepted]])

    def _apply_acceptances(self, acc: np.ndarray, k: np.ndarray, acc_day: np.ndarray, stop: np.ndarray,
                           u_need: np.ndarray) -> None:
        """Products of accepted offers, from the 1st of the next month to the cancellation."""
        cal, L = self.cal, self.L
        n_a = self.n_a
        start = self._next_month(acc_day)
        live = stop > start
        acc, k, start, stop, u_need = acc[live], k[live], start[live], stop[live], u_need[live]
        if not len(acc):
            return
        names = np.array(self.offer_ids, dtype=object)[k]
        t = int(start.min()) - 1
        act = (L.start <= t) & (L.end > t)
        la = L.acc
        first_mob = first_index(n_a, la, act & (L.typ == MOB))
        first_cap = first_index(n_a, la, act & (L.typ == MOB) & np.isfinite(L.cap))
        first_bb = first_index(n_a, la, act & (L.typ == BB))
        first_any = first_index(n_a, la, act)
        for oid, line_of in (("TRAVEL_PACK", first_mob), ("DEVICE_PROTECTION", first_mob),
                             ("MESH_WIFI", first_bb), ("DATA_UPSELL", first_cap), ("PREMIUM_CARE", first_any),
                             ("RETENTION_DISCOUNT", first_any)):
            if oid not in self.offer_index:
                continue
            sel = (names == oid) & (line_of[acc] >= 0)
            if not sel.any():
                continue
            ln = line_of[acc[sel]]
            offer = self.catalog.get(oid)
            price = float(offer.monthly_price)
            # A discount runs its term; add-ons run until cancelled.
            end = np.minimum(stop[sel], start[sel] + int(round(DAYS_PER_MONTH * offer.term_months))) \
                if oid == "RETENTION_DISCOUNT" else stop[sel]
            self.events.add(ln, np.asarray(price), np.asarray(30.0 if oid == "DATA_UPSELL" else 0.0), start[sel], end)
            # Ownership flags: the state known at as_of (held and not cancelled by then).
            held = (start[sel] <= cal.as_of) & (end > cal.as_of)
            if oid in FLAG_OF:
                arr = getattr(L, FLAG_OF[oid])
                arr[ln[held]] = True
            if oid == "PREMIUM_CARE":
                a2 = acc[sel]
                self.a_pcare_from[a2] = np.minimum(self.a_pcare_from[a2], start[sel])
                self.a_pcare_to[a2] = np.where(self.a_pcare_from[a2] == start[sel], stop[sel], self.a_pcare_to[a2])
        if "PLAN_REVIEW" in self.offer_index:
            sel = names == "PLAN_REVIEW"
            if sel.any():
                # The plan review lowers the price part of every line of the account (x 0.92).
                pr_from = np.full(n_a, BIG, np.int64)
                np.minimum.at(pr_from, acc[sel], start[sel])
                L.pm_from = np.minimum(L.pm_from, pr_from[L.acc])
        # Cross-sell: a new line.
        new_typ = {"HOME_FIBER": (BB, FIBER), "HOME_FWA": (BB, FWA), "TV_STREAMING": (TV, -1),
                   "EXTRA_LINE": (MOB, -1)}
        for oid, (lt, tech) in new_typ.items():
            sel = names == oid
            if not sel.any():
                continue
            a2 = acc[sel]
            m = len(a2)
            price = float(self.offer_price[self.offer_index[oid]])
            need = np.where(lt == MOB, 8.0 * np.exp(0.7 * (u_need[sel] - 0.5)), np.where(lt == BB, 180.0, 0.0))
            st_ = start[sel]
            L.append(
                acc=a2, typ=np.full(m, lt), start=st_, end=stop[sel], tier=np.full(m, 1),
                cap=np.full(m, 15.0 if lt == MOB else np.nan), price=np.full(m, price), tech=np.full(m, tech),
                dev=np.where(lt == MOB, st_, -1), dev_prev=np.where(lt == MOB, st_ - 900, -1),
                need=need, voice=np.ones(m), pm_from=np.full(m, BIG), dp=np.zeros(m, bool), tp=np.zeros(m, bool),
                mesh=np.zeros(m, bool), sec=np.zeros(m, bool), stream=np.full(m, lt == TV),
                ovg3=None, roam3=None,
            )
