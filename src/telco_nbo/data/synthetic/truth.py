"""The truth after as_of: churn, CLV.

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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.synthetic._base import BIG, K_POST, MARGIN_RATE, MONTHLY_DISCOUNT, STEP_DAYS, substream


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
        churn = u_c[act] < p90
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
        })
        self.truth["clv"] = pd.DataFrame({
            "account_id": act, "monthly_margin": margin, "clv_36m": clv,
            "survival_12m": S[:, 12], "survival_36m": S[:, 36],
        })
