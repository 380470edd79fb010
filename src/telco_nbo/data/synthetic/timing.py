"""The offer-timing experiment (closed form).

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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    DATA_SIGMA,
    DATA_TREND,
    K_TIMING,
    MOB,
    OVERAGE_RATE,
    PLAN_REVIEW_FACTOR,
    substream,
    TIMING_ARMS,
    TIMING_OFFER,
    TIMING_SEGMENTS,
    to_datetime64,
)


class TimingStage:
    """Timing cohort and its truth (mixed into the generator)."""


    def timing_cohort(self) -> None:
        cal, L = self.cal, self.L
        r = substream(self.seed, K_TIMING, 0)
        u_arm, u_a, u_ad, u_b, u_bd, u_acc, u_accd = (r.random(self.n) for _ in range(7))
        hh_idx = np.flatnonzero(self.h_cohort)
        self.t_hh = hh_idx
        n_c = len(hh_idx)
        line_hh = self.a_hh[L.acc]
        has_mob = np.bincount(line_hh[L.typ == MOB], minlength=self.n) > 0
        has_bb = np.bincount(line_hh[L.typ == BB], minlength=self.n) > 0
        only_mob = np.bincount(line_hh[L.typ != MOB], minlength=self.n) == 0
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
                       np.where(in_b, cend - 60 + np.floor(u_bd[hh_idx] * 151).astype(np.int64), BIG))
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
        L.pm_from[l_idx] = np.where(accepted[lpos], next_month[lpos], BIG)
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
        capped = (L.typ[cl] == MOB)[:, None] & np.isfinite(c)
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
            "start_date": to_datetime64(s),
            "contract_end_date": to_datetime64(cend),
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
