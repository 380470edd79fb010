"""The randomized retention experiment.

Retention experiment ``EXP-RETENTION-1`` (unit account, arms control / treatment)
--------------------------------------------------------------------------------
At ``T0 = as_of - 120 days``, 40 % of active accounts (timing-cohort households excluded) are
enrolled, half treated (RETENTION_DISCOUNT on the preferred allowed channel) and half holdout
(``contacted`` False, channel null, ``contacted_at = T0``). ``p0`` = the true 90-day churn
probability at ``T0`` (as above). Who accepts and what the contact does come from the causal model
of offers (:mod:`.offers`, RETENTION_DISCOUNT) at ``T0``: segment (persuadable, sure thing, lost
cause, sleeping dog), ``p_accept`` (x 0.7 off the preferred channel), and the churn probability
if accepted ``p_a = 1 - (1 - p0)^r_accept`` or not ``p_r = 1 - (1 - p0)^r_reject``. A treated
account accepts with ``p_accept`` and then churns in ``[T0, T0 + 90)`` with ``p_a`` or ``p_r``; a
holdout account with ``p0``. ``truth/retention`` holds ``p1 = p_accept p_a + (1 - p_accept) p_r``
and ``tau = p1 - p0``. Scenario ``offer_fatigue``: small-business accounts that are not lost causes
get ``p1 = min(1, p0 + FATIGUE_HARM)`` (0.05): the effect has faded and turned harmful, strong
enough that a monitoring job sees it in the experiment's holdout at ~50k households.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.schema import ACCOUNT_TYPES
from telco_nbo.data.synthetic._base import (
    BIG,
    first_index,
    K_RETENTION,
    RETENTION_EXPERIMENT_ID,
    RETENTION_OFFER,
    RETENTION_SHARE,
    RETENTION_WINDOW_DAYS,
    STEP_DAYS,
    substream,
    UPLIFT_SEGMENTS,
)
from telco_nbo.data.synthetic.offers import LOST_CAUSE, channel_factor, churn_after
from telco_nbo.vocabulary import DAYS_PER_MONTH


class RetentionStage:
    """The retention experiment stage (mixed into the generator)."""


    def retention_experiment(self, ms: int) -> None:
        cal = self.cal
        t0 = cal.t0
        r = substream(self.seed, K_RETENTION, 0)
        n_a = self.n_a
        u_en, u_arm, u_c, u_step, u_day, u_acc, u_accd = (r.random(n_a) for _ in range(7))
        elig = (self.a_start <= t0) & (self.a_end > ms) & (self.ex_bs == BIG)
        enrolled = np.flatnonzero(elig & (u_en < RETENTION_SHARE))
        treat = u_arm[enrolled] < 0.5
        st = self._state(t0)
        S = self.project(enrolled, t0, 3, st)
        p0 = 1 - S[:, 3]
        # The causal model of offers decides who accepts and what the contact does (offers.py).
        _, resp, _ = self.offer_response(enrolled, t0, st, p0=p0)
        j = self.offer_index[RETENTION_OFFER]
        chan = self._channel_for(enrolled, RETENTION_OFFER)
        p_acc = resp.p_accept[:, j] * channel_factor(self.a_chan[enrolled], chan)
        p_if_acc = churn_after(p0, resp.r_accept[:, j])
        p_if_rej = churn_after(p0, resp.r_reject[:, j])
        p1 = p_acc * p_if_acc + (1 - p_acc) * p_if_rej
        seg = resp.segment
        fatigued = np.zeros(len(enrolled), bool)
        if self.scenario == "offer_fatigue":
            fatigued = self.a_sb[enrolled] & (seg != LOST_CAUSE)
        accepted = treat & (u_acc[enrolled] < p_acc)
        p_arm = np.where(treat, np.where(accepted, p_if_acc, p_if_rej), p0)
        churn = u_c[enrolled] < p_arm
        # step by the control hazard shape, day uniform in the step
        step_p = -np.diff(S, axis=1)
        cum = np.cumsum(step_p, axis=1) / np.maximum(step_p.sum(axis=1), 1e-12)[:, None]
        k = np.minimum((cum < u_step[enrolled][:, None]).sum(axis=1), 2)
        day = t0 + STEP_DAYS * k + np.floor(u_day[enrolled] * STEP_DAYS).astype(np.int64)
        self.ex_bs[enrolled] = ms
        self.ex_be[enrolled] = t0 + RETENTION_WINDOW_DAYS
        self.ex_day[enrolled] = np.where(churn, day, BIG)
        self.campaign_block[enrolled] = np.maximum(self.campaign_block[enrolled], t0 + RETENTION_WINDOW_DAYS)
        acc_day = t0 + np.floor(u_accd[enrolled] * 7).astype(np.int64)
        self.contacts.add(
            acc=enrolled, exp=0, arm=treat.astype(np.int64), offer=self.offer_index[RETENTION_OFFER],
            contacted=treat, channel=np.where(treat, chan, -1), day=t0, accepted=accepted,
            acc_day=np.where(accepted, acc_day, -1), cancel_day=-1,
        )
        # The discount runs on the account's first active line for 12 months from next month.
        L = self.L
        first_line = first_index(n_a, L.acc, (L.start <= t0) & (L.end > t0))
        a_ok = accepted & (first_line[enrolled] >= 0)
        nm = self._next_month(acc_day[a_ok])
        offer = self.catalog.get(RETENTION_OFFER)
        self.events.add(first_line[enrolled][a_ok], np.asarray(offer.monthly_price), np.asarray(0.0), nm,
                        nm + int(round(DAYS_PER_MONTH * max(offer.term_months, 1))))
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
