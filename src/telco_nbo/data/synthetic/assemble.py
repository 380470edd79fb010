"""Assembly: the generator's arrays -> the eight tables and the truth frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telco_nbo.data.schema import (
    ACCOUNT_TYPES,
    CHANNELS,
    columns,
    CONTRACT_TYPES,
    LINE_TYPES,
    PAYMENT_METHODS,
    PLAN_TIERS,
    REGIONS,
    TICKET_CATEGORIES,
)
from telco_nbo.data.synthetic._base import (
    BIG,
    make_ids,
    RETENTION_EXPERIMENT_ID,
    RETENTION_OFFER,
    RETENTION_SHARE,
    RETENTION_WINDOW_DAYS,
    TECHS,
    TIMING_ARMS,
    TIMING_EXPERIMENT_ID,
    TIMING_OFFER,
    to_datetime64,
    POLICIES,
)
from telco_nbo.data.world import World


class AssemblyStage:
    """Assembly stage (mixed into the generator)."""


    # ---------------------------------------------------------------- assembly

    def assemble(self) -> World:
        cal, L = self.cal, self.L
        n, n_a = self.n, self.n_a
        hh_ids = make_ids("H", n, 7)
        acc_ids = make_ids("A", n_a, 7)
        # households
        h_created = np.full(n, BIG, np.int64)
        np.minimum.at(h_created, self.a_hh, self.a_start)
        households = pd.DataFrame({
            "household_id": hh_ids,
            "region": np.array(REGIONS, dtype=object)[self.h_region],
            "household_size": self.h_size.astype(np.int64),
            "fiber_eligible": self.h_fiber.astype(bool),
            "fwa_eligible": self.h_fwa.astype(bool),
            "created_date": to_datetime64(h_created),
        })
        # lines: drop cross-sell lines that never started (account gone first); sort by account, start
        keep = np.flatnonzero(L.end > L.start)
        order = keep[np.lexsort((keep, L.start[keep], L.acc[keep]))]
        new_pos = np.full(L.n, -1, np.int64)
        new_pos[order] = np.arange(len(order))
        line_ids = make_ids("L", len(order), 8)
        # account snapshot at as_of (or at its end): list charges of the lines active then
        snap = np.minimum(self.a_end - 1, cal.as_of)
        l_snap = snap[L.acc]
        l_act = (L.start <= l_snap) & (L.end > l_snap)
        rise = self._price_factor(cal.as_of, np.arange(L.n))
        price_now = np.round(L.price * rise, 2)
        charges = np.bincount(L.acc[l_act], weights=price_now[l_act], minlength=n_a)
        pcare = self.a_pcare & (self.a_pcare_to > cal.as_of) | ((self.a_pcare_from <= cal.as_of) & (self.a_pcare_to > cal.as_of))
        a_end_missing = self.a_end >= BIG
        cend_missing = self.a_term == 0
        accounts = pd.DataFrame({
            "account_id": acc_ids,
            "household_id": hh_ids[self.a_hh],
            "account_type": np.array(ACCOUNT_TYPES, dtype=object)[self.a_sb.astype(int)],
            "start_date": to_datetime64(self.a_start),
            "end_date": to_datetime64(np.where(a_end_missing, 0, self.a_end), a_end_missing),
            "contract_type": np.array(CONTRACT_TYPES, dtype=object)[self.a_ct],
            "contract_end_date": to_datetime64(np.where(cend_missing, 0, self.a_cend), cend_missing),
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
        end_missing = L.end[o] >= BIG
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
            "start_date": to_datetime64(L.start[o]),
            "end_date": to_datetime64(np.where(end_missing, 0, L.end[o]), end_missing),
            "plan_tier": np.array(PLAN_TIERS, dtype=object)[L.tier[o]],
            "data_cap_gb": cap_now[o].astype(float),
            "monthly_price": price_now[o].astype(float),
            "broadband_tech": np.where(L.tech[o] >= 0, np.array(TECHS, dtype=object)[np.maximum(L.tech[o], 0)], None),
            "device_purchase_date": to_datetime64(np.maximum(dev, 0), dev < 0),
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
            "month": to_datetime64(u["month"][ok][uo]),
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
                "ticket_id": make_ids("T", len(to), 8),
                "account_id": acc_ids[t["acc"]],
                "line_id": np.where(t_line >= 0, line_ids[np.maximum(t_line, 0)], None),
                "category": np.array(TICKET_CATEGORIES, dtype=object)[t["cat"]],
                "opened_at": to_datetime64(t["opened"]),
                "resolved_at": to_datetime64(np.where(res_missing, 0, t["resolved"]), res_missing),
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
            "contact_id": make_ids("C", len(co), 8),
            "account_id": acc_ids[c["acc"]],
            "household_id": hh_ids[self.a_hh[c["acc"]]],
            "offer_id": np.where(c["offer"] >= 0, np.array(self.offer_ids, dtype=object)[np.maximum(c["offer"], 0)], None),
            "experiment_id": exp_names[np.where(c["exp"] < 0, 2, c["exp"])],
            "arm": arm_names.astype(object),
            "contacted": c["contacted"].astype(bool),
            "channel": np.where(c["channel"] >= 0, np.array(CHANNELS, dtype=object)[np.maximum(c["channel"], 0)], None),
            "contacted_at": to_datetime64(c["day"]),
            "accepted": c["accepted"].astype(bool),
            "accepted_at": to_datetime64(np.maximum(c["acc_day"], 0), acc_missing),
            "cancelled_at": to_datetime64(np.maximum(c["cancel_day"], 0), can_missing),
            "policy_id": np.where(c["policy"] >= 0, np.array(POLICIES, dtype=object)[np.maximum(c["policy"], 0)], None),
            "propensity": c["prop"].astype(float),
        })
        ti = self.t_info
        timing_end = int((ti["cend"] + 90).max()) if len(ti["hh"]) else cal.as_of
        timing_start = cal.cohort_lo
        experiments = pd.DataFrame({
            "experiment_id": [RETENTION_EXPERIMENT_ID, TIMING_EXPERIMENT_ID],
            "name": ["Retention discount, randomized holdout", "Offer timing: day 30 vs 60 days before contract end"],
            "unit": ["account", "household"],
            "start_date": to_datetime64(np.array([cal.t0, timing_start])),
            "end_date": to_datetime64(np.array([cal.t0 + RETENTION_WINDOW_DAYS, timing_end])),
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
        oe = self.truth["offer_effects"]
        # Categoricals: ~3-4M rows on a 100k-household world would otherwise hold a Python string
        # per id; the order is account, offer (catalog), channel.
        oe_order = np.lexsort((oe["channel"].to_numpy(), oe["offer_id"].to_numpy(), oe["account_id"].to_numpy()))
        oe = oe.iloc[oe_order].reset_index(drop=True)
        act_ids = np.unique(oe["account_id"].to_numpy())
        oe.insert(0, "account_id_", pd.Categorical.from_codes(np.searchsorted(act_ids, oe["account_id"].to_numpy()),
                                                              categories=acc_ids[act_ids]))
        oe = oe.drop(columns="account_id").rename(columns={"account_id_": "account_id"})
        oe["offer_id"] = pd.Categorical.from_codes(oe["offer_id"].to_numpy(), categories=list(self.offer_ids))
        oe["channel"] = pd.Categorical.from_codes(oe["channel"].to_numpy(), categories=list(CHANNELS))
        truth["offer_effects"] = oe
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
