"""The generator: holds one run's arrays; its stages live in the mixin modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.data.schema import CHANNELS, REGIONS
from telco_nbo.data.synthetic._base import (
    BB,
    BIG,
    CAMPAIGN_OFFERS,
    MOB,
    P_RESIGN,
    PRICE_RISE_REGION,
    RETENTION_OFFER,
    STEP_DAYS,
    TIMING_OFFER,
    Calendar,
    ContactChunks,
    Events,
    pick_by_weight,
    sigmoid,
)
from telco_nbo.data.synthetic.assemble import AssemblyStage
from telco_nbo.data.synthetic.campaigns import CampaignStage
from telco_nbo.data.synthetic.experiments import RetentionStage
from telco_nbo.data.synthetic.hazard import hazard_logit
from telco_nbo.data.synthetic.monthly import MonthlyStage
from telco_nbo.data.synthetic.offers import OfferVectors
from telco_nbo.data.synthetic.population import PopulationStage
from telco_nbo.data.synthetic.timing import TimingStage
from telco_nbo.data.synthetic.truth import TruthStage
from telco_nbo.errors import ConfigError
from telco_nbo.nbo.catalog import catalog_frame, load_catalog


class WorldGenerator(PopulationStage, TimingStage, MonthlyStage, RetentionStage, TruthStage, CampaignStage, AssemblyStage):
    """One generation run: holds the arrays; methods are the stages (called in a fixed order)."""

    def __init__(self, n: int, seed: int, cal: Calendar, scenario: str | None, catalog: Any) -> None:
        self.n, self.seed, self.cal, self.scenario = n, seed, cal, scenario
        self.catalog = catalog if catalog is not None else load_catalog()
        self.offers = catalog_frame(self.catalog)
        ids = list(self.offers["offer_id"])
        for need in (RETENTION_OFFER, TIMING_OFFER):
            if need not in ids:
                raise ConfigError(f"the offer catalog has no '{need}' offer, which the synthetic experiments use")
        self.offer_ids = ids
        self.offer_index = {o: i for i, o in enumerate(ids)}
        self.campaign_offers = [o for o in CAMPAIGN_OFFERS if o in self.offer_index]
        chan = np.zeros((len(ids), len(CHANNELS)), bool)
        for i, chs in enumerate(self.offers["channels"]):
            for ch in chs.split(","):
                chan[i, CHANNELS.index(ch)] = True
        self.offer_channels = chan
        self.offer_price = self.offers["monthly_price"].to_numpy(float)
        self.ov = OfferVectors.from_catalog(self.catalog)
        self.events = Events()
        self.contacts = ContactChunks()
        self.usage: list[dict[str, np.ndarray]] = []
        self.tickets: list[dict[str, np.ndarray]] = []
        self.truth: dict[str, pd.DataFrame] = {}
        self.summary: dict[str, Any] = {}
        rise_from = int(cal.month_starts[cal.month_of(cal.as_of)]) if scenario == "price_rise" else BIG
        if scenario == "price_rise":
            k = int(cal.month_of(cal.as_of)) - 2
            rise_from = int(cal.month_starts[k])
        self.rise_from = rise_from
        self.rise_region = REGIONS.index(PRICE_RISE_REGION)

    # ---------------------------------------------------------------- set-up (sequential rng)

    def _state(self, t: int) -> dict[str, np.ndarray]:
        """Per-account state at day ``t`` from the current line arrays (active at ``t``)."""
        L = self.L
        act = (L.start <= t) & (L.end > t)
        hh_of_line = self.a_hh[L.acc]
        n_hh_lines = np.bincount(hh_of_line[act], minlength=self.n)
        hh_bb = np.bincount(hh_of_line[act & (L.typ == BB)], minlength=self.n) > 0
        hh_mob = np.bincount(hh_of_line[act & (L.typ == MOB)], minlength=self.n) > 0
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
            h_o = sigmoid(self._logit(idx, t, cend, st, shock))
            h_r = sigmoid(self._logit(idx, t, renewed, st, shock))
            s_o[k + 1] = s_o[k] * (1 - h_o)
            s_r[k + 1] = s_r[k] * (1 - h_r)
        p_r = np.where(self.a_resign_ok[idx], P_RESIGN, 0.0)
        return (p_r * s_r + (1 - p_r) * s_o).T

    # ---------------------------------------------------------------- timing cohort (closed form)

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
        alt = pick_by_weight(allowed.astype(float), uu)
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

    def _next_month(self, days: np.ndarray) -> np.ndarray:
        return (np.asarray(days).astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]").astype(np.int64)

    # ---------------------------------------------------------------- after as_of
