"""The truth at as_of: churn, CLV, every offer's effect, and the exploration wave after as_of.

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
monthly_charges``. An account the exploration wave (below) contacts churns with the probability the
contact gives it instead (``truth/accounts.p_churn_90d`` stays the no-contact figure).

Offer truth (``truth/offer_effects``)
-------------------------------------
Every active account x every catalog offer x every channel the offer allows, at ``as_of``, from
the causal model of :mod:`.offers`: ``p_accept``, ``p_churn_if_accepted``, ``p_churn_if_not``,
``delta_churn`` (90-day churn with the contact minus without), ``delta_margin`` (expected margin
of the acceptance), ``accept_value``, ``kept_value`` (what keeping the account is worth),
``contact_cost`` and ``true_value = delta_margin - delta_churn x kept_value - contact_cost``.
``truth/accounts`` adds the account's ``uplift_segment`` at as_of and its ``kept_value``.

Exploration wave (``contacts``, policy ``explore-uniform-v1``)
---------------------------------------------------------------
The day after ``as_of``, :data:`WAVE_SHARE` (10 %) of active accounts get an action drawn
uniformly among "no contact" and every offer the world can deliver to them, on their preferred
allowed channel, with ``propensity = 1 / (1 + deliverable offers)``. Acceptance and churn within
90 days follow the model; the products of accepted offers are not materialized after as_of (no
new lines or bills), only the acceptance and its churn effect. Features never see these rows
(they are dated after as_of); off-policy evaluation values a decision table at as_of on them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.synthetic._base import (
    BIG,
    K_POST,
    K_WAVE,
    MARGIN_RATE,
    MONTHLY_DISCOUNT,
    STEP_DAYS,
    substream,
    UPLIFT_SEGMENTS,
    WAVE_SHARE,
)
from telco_nbo.data.synthetic.offers import accept_value, channel_factor, churn_after, OfferContext, Response
from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS


class TruthStage:
    """The post-as_of stage (mixed into the generator)."""


    def post_as_of(self, ms: int) -> None:
        cal = self.cal
        t0 = cal.as_of + 1
        r = substream(self.seed, K_POST, 0)
        n_a = self.n_a
        u_c, u_step, u_day = (r.random(n_a) for _ in range(3))
        act = np.flatnonzero((self.a_start <= cal.as_of) & (self.a_end > ms))
        st = self._state(cal.as_of)
        S = self.project(act, t0, 36, st)
        p90 = 1 - S[:, 3]
        ctx, resp, deliv = self.offer_response(act, cal.as_of, st, p0=p90)
        self.offer_truth(act, ctx, resp, p90, st)
        # The exploration wave contacts some accounts the day after as_of: their churn follows the
        # contact (same uniform as without it, so the contact is all that differs).
        p_post = self.exploration_wave(act, resp, deliv, p90)
        churn = u_c[act] < p_post
        step_p = -np.diff(S[:, :4], axis=1)
        cum = np.cumsum(step_p, axis=1) / np.maximum(step_p.sum(axis=1), 1e-12)[:, None]
        k = np.minimum((cum < u_step[act][:, None]).sum(axis=1), 2)
        day = t0 + STEP_DAYS * k + np.floor(u_day[act] * STEP_DAYS).astype(np.int64)
        day = np.minimum(day, cal.world_end)
        self.po_bs[act] = ms
        self.po_be[act] = cal.world_end + 1
        self.po_day[act] = np.where(churn, day, BIG)
        margin = MARGIN_RATE * st["charges"][act]
        disc = (1 + MONTHLY_DISCOUNT) ** -np.arange(1, 37)
        clv = margin * (S[:, 1:] * disc[None, :]).sum(axis=1)
        self.truth["accounts"] = pd.DataFrame({
            "account_id": act, "p_churn_90d": p90, "monthly_margin": margin, "clv_36m": clv,
            "price_sensitivity": self.a_sens[act],
            # The retention segment at as_of (offers.py): who a retention offer would persuade.
            "uplift_segment": np.array(UPLIFT_SEGMENTS, dtype=object)[resp.segment],
            "kept_value": DEFAULT_ECONOMICS.kept_value(st["charges"][act]),
        })
        self.truth["clv"] = pd.DataFrame({
            "account_id": act, "monthly_margin": margin, "clv_36m": clv,
            "survival_12m": S[:, 12], "survival_36m": S[:, 36],
        })

    def offer_truth(self, act: np.ndarray, ctx: OfferContext, resp: Response, p90: np.ndarray,
                    st: dict[str, np.ndarray]) -> None:
        """``truth/offer_effects``: every active account x catalog offer x allowed channel at as_of."""
        ov = self.ov
        charges = st["charges"][act]
        kept = DEFAULT_ECONOMICS.kept_value(charges)
        acc_val = accept_value(ov, charges)  # (n, m)
        p_if_acc = churn_after(p90[:, None], resp.r_accept)
        p_if_rej = churn_after(p90[:, None], resp.r_reject)
        pref = self.a_chan[act]
        costs = DEFAULT_ECONOMICS.cost_vector()
        parts = []
        for j in range(len(ov.ids)):
            for c in np.flatnonzero(ov.channels[j]):
                pa = resp.p_accept[:, j] * channel_factor(pref, c)
                p_c = pa * p_if_acc[:, j] + (1 - pa) * p_if_rej[:, j]
                d_churn = p_c - p90
                d_margin = pa * acc_val[:, j]
                parts.append({
                    "account_id": act, "offer_id": np.full(len(act), j), "channel": np.full(len(act), c),
                    "p_accept": pa, "p_churn_if_accepted": p_if_acc[:, j], "p_churn_if_not": p_if_rej[:, j],
                    "delta_churn": d_churn, "delta_margin": d_margin, "accept_value": acc_val[:, j],
                    "kept_value": kept, "contact_cost": np.full(len(act), costs[c]),
                    "true_value": d_margin - d_churn * kept - costs[c],
                })
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self.truth["offer_effects"] = pd.DataFrame(cols)

    def exploration_wave(self, act: np.ndarray, resp: Response, deliv: np.ndarray, p90: np.ndarray) -> np.ndarray:
        """Uniform exploration the day after as_of on WAVE_SHARE of active accounts.

        Returns:
            The 90-day churn probability after as_of of every active account (``p90`` unless the
            wave contacted it).
        """
        cal = self.cal
        r = substream(self.seed, K_WAVE, 0)
        n_a = self.n_a
        u_in, u_opt, u_acc, u_accd = (r.random(n_a) for _ in range(4))
        inw = u_in[act] < WAVE_SHARE
        rows = np.flatnonzero(inw)
        acc = act[rows]
        d = deliv[rows]
        n_opt = d.sum(axis=1) + 1
        pos = np.minimum(np.floor(u_opt[acc] * n_opt).astype(np.int64), n_opt - 1)
        cum = np.cumsum(d, axis=1)
        k = np.where(pos > 0, np.argmax(cum >= np.maximum(pos, 1)[:, None], axis=1), -1)
        none = k < 0
        kk = np.maximum(k, 0)
        chan = self._channel_rows(acc, self.ov.channels[kk], None, 1.0, None)
        pa = np.where(none, 0.0, resp.p_accept[rows, kk] * channel_factor(self.a_chan[acc], chan))
        accepted = ~none & (u_acc[acc] < pa)
        day = cal.as_of + 1
        acc_day = day + np.floor(u_accd[acc] * 7).astype(np.int64)
        self.contacts.add(
            acc=acc, exp=-1, arm=-1, offer=np.where(none, -1, k), contacted=~none, channel=np.where(none, -1, chan),
            day=day, accepted=accepted, acc_day=np.where(accepted, acc_day, -1), cancel_day=-1,
            policy=1, prop=1.0 / n_opt,
        )
        r_w = np.where(none, 1.0, np.where(accepted, resp.r_accept[rows, kk], resp.r_reject[rows, kk]))
        out = p90.copy()
        out[rows] = churn_after(p90[rows], r_w)
        self.summary["exploration_wave"] = {
            "day": str(pd.Timestamp(np.datetime64(day, "D")).date()), "accounts": int(len(acc)),
            "contacted": int((~none).sum()), "accepted": int(accepted.sum()), "policy_id": "explore-uniform-v1",
        }
        return out
