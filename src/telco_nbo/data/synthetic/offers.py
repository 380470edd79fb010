"""The causal model of every catalog offer: who accepts, and what a contact does to churn and margin.

Every contact the world writes (the retention experiment, campaigns, logged exploration) is
simulated from this model, and ``truth/offer_effects`` holds its values at ``as_of`` for every
active account x catalog offer x allowed channel. One place, so the truth and the simulation
cannot drift apart.

The structure (account ``a``, offer ``o``, channel ``c``, at a day ``t``)
---------------------------------------------------------------------------
* **Acceptance**: ``p_accept = base(a, o) x channel(c)``, where ``channel`` is 1 on the account's
  preferred channel and :data:`OTHER_CHANNEL_FACTOR` (0.7) on another channel the offer allows
  (customers answer on the channel they chose; a common finding of channel-preference studies),
  and 0 where the world cannot deliver the offer (:func:`deliverable`: network at the address,
  required / excluded lines, data cap, ownership flags, account type, active account).
* **Churn**: a contact multiplies the account's monthly churn hazard for :data:`EFFECT_DAYS`
  (90) days by ``r_accept(a, o)`` if the offer is accepted and by ``r_reject(a, o)`` if not
  (``r = 1``: no effect). With the no-contact 90-day survival ``S = 1 - p0`` and proportional
  hazards, the 90-day churn after the contact is ``1 - S^r``, so
  ``p_churn_contacted = p_accept (1 - S^r_accept) + (1 - p_accept)(1 - S^r_reject)`` and
  ``delta_churn = p_churn_contacted - p0``.
* **Margin**: an accepted offer earns its catalog ``monthly_margin`` plus ``bill_change x`` the
  account's monthly bill (plan review: -8 % of the bill, which the world's bills apply) for
  ``months_o = min(term, 12)`` months, or 6 for an offer without a term, discounted at 1 % a
  month: ``delta_margin = p_accept x accept_value(a, o)``
  (:mod:`telco_nbo.evaluation.economics`, shared with the evaluation and off-policy estimates).
* **Value of one contact**: ``true_value = delta_margin - delta_churn x V_a - cost(c)``, where
  ``V_a = margin_a x annuity(36)`` is what a kept customer is worth (36 months of its margin,
  discounted; the same horizon as ``truth/clv``) and ``cost(c)`` the cost of a contact on the
  channel (the engine's default costs). Every term is observable in a data folder (acceptance in
  ``contacts``, churn in ``accounts.end_date``, the bill in ``accounts.monthly_charges``), so a
  logged contact's realized value has exactly this expectation: off-policy estimates and the
  truth measure the same thing.

Who responds to what (the grounding)
------------------------------------
Sensitivity to an offer is *not* a function of churn risk: the segments below are set by price
sensitivity, contract stage, tenure, engagement and service problems, so high-risk lost causes and
mid-risk persuadables both exist (Ascarza 2018, "Retention futility: targeting high-risk customers
might be ineffective", JMR).

* Retention segments (:func:`retention_segments`): **lost cause** -- an open complaint, or a
  weak-coverage household with a coverage ticket in the last 3 months (they leave over service
  a discount cannot fix); **persuadable** -- at a decision point (month-to-month, out of contract
  or within 90 days of its end), price sensitive (``price_z > 0.1`` or trait ``> 0.5``), tenure
  under 4 years; **sleeping dog** -- tenure >= 4 years on an old, expensive plan
  (``price_z > 0.1``), not an app user, no open ticket: a reminder that they pay too much prompts
  them to shop around; **sure thing** -- everyone else.
* RETENTION_DISCOUNT: accept .40 / .15 / .04 / .10 (persuadable / sure thing / lost cause /
  sleeping dog); accepted: hazard x .25 (persuadable), x .85 (sure thing); not accepted: sleeping
  dogs x 1.8. The discount costs its margin for its whole term (12 months).
* PLAN_REVIEW: accept .35 / .12 / .05 / .08; accepted: the bill drops 8 % and the hazard x .60
  (persuadable) or x .95; not accepted: sleeping dogs x 1.6 and persuadables x 1.1 -- published
  field experiments of plan-recommendation campaigns saw churn *rise* among those reminded of
  their plan (Ascarza, Iyengar & Schleicher 2016, "The perils of proactive churn prevention using
  plan recommendations", JMR).
* Bundles are sticky: HOME_FIBER / HOME_FWA accepted -> hazard x exp(-0.5 - 0.15) (the hazard's
  own bundle and extra-line terms); EXTRA_LINE and TV_STREAMING x exp(-0.15). Acceptance .14 / .02
  and .09 / .015 (household without / with broadband), .04 + .05 min(gap, 3) where the household
  has more people than lines (else .01), .08 for households of 3+ (else .05).
* DATA_UPSELL: acceptance by overage months in the last 3 (0/1/2/3 -> .01 .10 .28 .40); accepted
  after 2+ overage months ends the bill shock: hazard x .70.
* TRAVEL_PACK: .25 + .01 min(roaming days, 20) after roaming, else .01; DEVICE_PROTECTION: .30
  (.40 in the handset-launch scenario) with a handset bought in the last 60 days, else .02,
  accepted hazard x .95. Neither changes churn otherwise.
* Service recovery works where service failed: MESH_WIFI accepted by .35 after a coverage ticket
  (else .02) and, for a weak-coverage household, hazard x .45 (else x .95); PREMIUM_CARE accepted
  by .15 after network / coverage tickets or with an open issue (else .01), hazard x .50 with an
  open complaint or issue, x .70 after recent tickets.
* Promotions in the wrong moment hurt: a promotional (not service-recovery) contact with an open
  complaint x 1.3 if not accepted, with an open service issue halves acceptance and x 1.15 if not
  accepted; any promotional contact to a sleeping dog that is not accepted x 1.25 (1.8 / 1.6 for
  the retention offers above).
* An offer the model does not name (an operator's own catalog entry) is accepted at
  :data:`GENERIC_ACCEPT` by kind and has no effect on churn beyond the rules above.
* Scenario ``offer_fatigue``: retention offers to small-business accounts that are not lost
  causes raise 90-day churn by ``FATIGUE_HARM`` whether accepted or not.

Targets this model is calibrated to (measured in ``benchmarks/bench_world.py``, recorded in
``benchmarks/RESULTS.md``): persuadables 15-25 % of the retention target (accounts at a decision
point); the average retention effect a few points of churn; the oracle's value >= +5 per active
account; "retention offer to the riskiest" at its best budget at most half the oracle's value;
contacting everyone clearly negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telco_nbo.data.schema import CHANNELS
from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS, Economics

EFFECT_DAYS = 90
"""Days a contact's effect on the churn hazard lasts (the decision window of the 90-day label)."""
OTHER_CHANNEL_FACTOR = 0.7
GENERIC_ACCEPT: dict[str, float] = {
    "cross_sell": 0.03, "upsell": 0.03, "add_on": 0.03, "retention": 0.05, "win_back": 0.0, "service_recovery": 0.03,
}
PERSUADABLE, SURE_THING, LOST_CAUSE, SLEEPING_DOG = range(4)
SENSITIVE_PRICE_Z = 0.25
SENSITIVE_TRAIT = 1.2


@dataclass(frozen=True)
class OfferVectors:
    """Catalog facts the model needs, one entry per offer (catalog order)."""

    ids: np.ndarray
    kind: np.ndarray
    promotional: np.ndarray
    monthly_margin: np.ndarray
    term_months: np.ndarray
    channels: np.ndarray  # (m, n_channels) bool: allowed channels
    eligibility: tuple  # the catalog's Eligibility per offer

    @classmethod
    def from_catalog(cls, catalog) -> OfferVectors:  # noqa: ANN001 - a nbo.catalog.Catalog
        """Build the vectors from a :class:`~telco_nbo.nbo.catalog.Catalog`."""
        offers = list(catalog.offers)
        chan = np.zeros((len(offers), len(CHANNELS)), bool)
        for i, o in enumerate(offers):
            for ch in o.channels:
                chan[i, CHANNELS.index(ch)] = True
        return cls(
            ids=np.array([o.offer_id for o in offers], dtype=object),
            kind=np.array([o.kind for o in offers], dtype=object),
            promotional=np.array([o.promotional for o in offers], bool),
            monthly_margin=np.array([o.monthly_margin for o in offers], float),
            term_months=np.array([o.term_months for o in offers], np.int64),
            channels=chan,
            eligibility=tuple(o.eligibility for o in offers),
        )


@dataclass(frozen=True)
class OfferContext:
    """What the model reads about each account at day ``t`` (arrays of one length).

    Attributes: contract ``kind`` (0 month-to-month, 1 one-year, 2 two-year in contract, 3 out
    of contract), ``days_to_end``, ``tenure_years``, ``price_z``, ``sensitivity`` (trait),
    ``complaint`` / ``open_issue`` (open now), ``app_user``, ``small_business``, ``active``,
    household ``weak_coverage`` / ``fiber`` / ``fwa`` / ``household_size`` / ``household_broadband``
    / ``line_gap`` (people minus lines), 3-month ``coverage_tickets`` / ``network_tickets`` /
    ``overage_months`` / ``roaming_days``, ``new_device`` (handset in the last 60 days), line
    ownership ``has_<type>`` and ``capped_mobile``, ownership ``flags`` (name -> bool array) and
    the monthly ``bill``.
    """

    kind: np.ndarray
    days_to_end: np.ndarray
    tenure_years: np.ndarray
    price_z: np.ndarray
    sensitivity: np.ndarray
    complaint: np.ndarray
    open_issue: np.ndarray
    app_user: np.ndarray
    small_business: np.ndarray
    active: np.ndarray
    weak_coverage: np.ndarray
    fiber: np.ndarray
    fwa: np.ndarray
    household_size: np.ndarray
    household_broadband: np.ndarray
    line_gap: np.ndarray
    coverage_tickets: np.ndarray
    network_tickets: np.ndarray
    overage_months: np.ndarray
    roaming_days: np.ndarray
    new_device: np.ndarray
    has_mobile: np.ndarray
    has_broadband: np.ndarray
    has_tv: np.ndarray
    has_fixed_voice: np.ndarray
    capped_mobile: np.ndarray
    flags: dict
    bill: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    def take(self, idx: np.ndarray) -> OfferContext:
        """The context of a subset of rows."""
        vals = {k: (v[idx] if isinstance(v, np.ndarray) else {f: a[idx] for f, a in v.items()})
                for k, v in self.__dict__.items()}
        return OfferContext(**vals)


def retention_segments(ctx: OfferContext) -> np.ndarray:
    """Uplift segment per account: 0 persuadable, 1 sure thing, 2 lost cause, 3 sleeping dog."""
    lost = ctx.complaint | (ctx.weak_coverage & (ctx.coverage_tickets > 0))
    decision = (ctx.kind == 0) | (ctx.kind == 3) | ((ctx.days_to_end >= 0) & (ctx.days_to_end <= 90))
    sensitive = (ctx.price_z > SENSITIVE_PRICE_Z) | (ctx.sensitivity > SENSITIVE_TRAIT)
    pers = ~lost & decision & sensitive & (ctx.tenure_years < 4)
    dog = ~lost & ~pers & (ctx.tenure_years >= 4) & (ctx.price_z > 0.1) & ~ctx.app_user & ~ctx.open_issue
    return np.where(lost, LOST_CAUSE, np.where(pers, PERSUADABLE, np.where(dog, SLEEPING_DOG, SURE_THING)))


def deliverable(ctx: OfferContext, offers: OfferVectors) -> np.ndarray:
    """``(n, m)``: the world can deliver offer ``j`` to account ``i`` (address, lines, flags, type).

    Policy rules (lifecycle stage, timing, contact caps, guardrails) are the engine's business,
    not the world's: this is only what could physically be accepted.
    """
    n, m = len(ctx), len(offers.ids)
    out = np.ones((n, m), bool)
    lines = {"mobile": ctx.has_mobile, "broadband": ctx.has_broadband, "tv": ctx.has_tv,
             "fixed_voice": ctx.has_fixed_voice}
    for j, el in enumerate(offers.eligibility):
        ok = np.ones(n, bool)
        if el.network == "fiber":
            ok &= ctx.fiber
        elif el.network == "fwa":
            ok &= ctx.fwa & ~ctx.fiber
        if el.requires_line is not None:
            ok &= lines[el.requires_line]
        if el.excludes_line is not None:
            ok &= ~lines[el.excludes_line]
        if el.requires_capped_mobile:
            ok &= ctx.capped_mobile
        if el.excludes_flag is not None:
            ok &= ~ctx.flags.get(el.excludes_flag, np.zeros(n, bool))
        if el.account_types is not None:
            sb_ok = "small_business" in el.account_types
            cons_ok = "consumer" in el.account_types
            ok &= np.where(ctx.small_business, sb_ok, cons_ok)
        ok &= ctx.active if el.requires_active else ~ctx.active
        out[:, j] = ok
    return out


@dataclass(frozen=True)
class Response:
    """The model's answer for ``n`` accounts x ``m`` offers (channel factor not applied)."""

    p_accept: np.ndarray  # on the preferred channel; 0 where not deliverable
    r_accept: np.ndarray
    r_reject: np.ndarray
    segment: np.ndarray  # (n,) retention segment


def respond_model(ctx: OfferContext, offers: OfferVectors, *, scenario: str | None = None,
                  fatigue_harm: float = 0.05, p0: np.ndarray | None = None,
                  handset_launch: bool = False) -> Response:
    """Acceptance and hazard multipliers of every offer for every account (module docstring).

    Args:
        ctx: The accounts' context at the contact day.
        offers: Catalog vectors.
        scenario: The world's scenario (``offer_fatigue`` changes retention offers).
        fatigue_harm: Added 90-day churn under offer fatigue.
        p0: No-contact 90-day churn probability per account (needed for offer fatigue only).
        handset_launch: Device protection's strong-need acceptance is .40 instead of .30.

    Returns:
        The :class:`Response`.
    """
    n, m = len(ctx), len(offers.ids)
    seg = retention_segments(ctx)
    p = np.zeros((n, m))
    ra = np.ones((n, m))
    rr = np.ones((n, m))
    pick = lambda *v: np.asarray(v, float)[seg]  # noqa: E731 - by retention segment
    for j, oid in enumerate(offers.ids):
        kind = offers.kind[j]
        if oid == "RETENTION_DISCOUNT":
            p[:, j], ra[:, j], rr[:, j] = pick(.50, .15, .04, .10), pick(.25, .85, 1, 1), pick(.85, 1, 1, 1.8)
        elif oid == "PLAN_REVIEW":
            p[:, j], ra[:, j], rr[:, j] = pick(.35, .12, .05, .08), pick(.60, .95, 1, 1), pick(1.1, 1, 1, 1.6)
        elif oid in ("HOME_FIBER", "HOME_FWA"):
            strong, weak = (.14, .02) if oid == "HOME_FIBER" else (.09, .015)
            p[:, j] = np.where(~ctx.household_broadband, strong, weak)
            ra[:, j] = np.exp(-0.5 - 0.15)
        elif oid == "EXTRA_LINE":
            p[:, j] = np.where(ctx.line_gap >= 1, 0.04 + 0.05 * np.minimum(ctx.line_gap, 3), 0.01)
            ra[:, j] = np.exp(-0.15)
        elif oid == "TV_STREAMING":
            p[:, j] = np.where(ctx.household_size >= 3, 0.08, 0.05)
            ra[:, j] = np.exp(-0.15)
        elif oid == "DATA_UPSELL":
            p[:, j] = np.array([0.01, 0.10, 0.28, 0.40])[np.clip(ctx.overage_months, 0, 3).astype(int)]
            ra[:, j] = np.where(ctx.overage_months >= 2, 0.70, 1.0)
        elif oid == "TRAVEL_PACK":
            p[:, j] = np.where(ctx.roaming_days > 0, 0.25 + 0.01 * np.minimum(ctx.roaming_days, 20), 0.01)
        elif oid == "DEVICE_PROTECTION":
            p[:, j] = np.where(ctx.new_device, 0.40 if handset_launch else 0.30, 0.02)
            ra[:, j] = 0.95
        elif oid == "MESH_WIFI":
            p[:, j] = np.where(ctx.coverage_tickets > 0, 0.35, 0.02)
            ra[:, j] = np.where(ctx.weak_coverage, 0.45, 0.95)
        elif oid == "PREMIUM_CARE":
            signal = (ctx.coverage_tickets + ctx.network_tickets) > 0
            p[:, j] = np.where(signal | ctx.open_issue, 0.15, 0.01)
            ra[:, j] = np.where(ctx.complaint | ctx.open_issue, 0.50, np.where(signal, 0.70, 1.0))
        else:
            p[:, j] = GENERIC_ACCEPT.get(str(kind), 0.03)
        if offers.promotional[j]:
            # The wrong moment: during an open issue acceptance halves and a refusal irritates;
            # with an open complaint a promotion pushes the customer out; sleeping dogs wake up.
            p[:, j] = np.where(ctx.open_issue, 0.5 * p[:, j], p[:, j])
            rr[:, j] = np.where(ctx.open_issue, rr[:, j] * 1.15, rr[:, j])
            if kind != "retention":
                rr[:, j] = np.where(ctx.complaint, rr[:, j] * 1.3, rr[:, j])
                rr[:, j] = np.where(seg == SLEEPING_DOG, rr[:, j] * 1.25, rr[:, j])
        if scenario == "offer_fatigue" and kind == "retention" and p0 is not None:
            tired = ctx.small_business & (seg != LOST_CAUSE)
            r_f = fatigue_multiplier(p0, fatigue_harm)
            ra[:, j] = np.where(tired, r_f, ra[:, j])
            rr[:, j] = np.where(tired, r_f, rr[:, j])
    p = np.where(deliverable(ctx, offers), np.clip(p, 0.0, 1.0), 0.0)
    return Response(p_accept=p, r_accept=ra, r_reject=rr, segment=seg)


def fatigue_multiplier(p0: np.ndarray, harm: float) -> np.ndarray:
    """Hazard multiplier that turns 90-day churn ``p0`` into ``min(1, p0 + harm)``."""
    s = np.clip(1 - np.asarray(p0, float), 1e-12, 1.0)
    target = np.clip(1 - np.asarray(p0, float) - harm, 1e-9, 1.0)
    return np.log(target) / np.minimum(np.log(s), -1e-12)


def channel_factor(preferred: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Acceptance factor of sending on ``channel`` (index) to accounts preferring ``preferred``."""
    return np.where(np.asarray(channel) == np.asarray(preferred), 1.0, OTHER_CHANNEL_FACTOR)


def churn_after(p0: np.ndarray, r: np.ndarray) -> np.ndarray:
    """90-day churn probability when the hazard is multiplied by ``r`` (proportional hazards)."""
    s = np.clip(1 - np.asarray(p0, float), 0.0, 1.0)
    return 1 - s ** np.asarray(r, float)


def accept_value(offers: OfferVectors, bill: np.ndarray, economics: Economics = DEFAULT_ECONOMICS) -> np.ndarray:
    """``(n, m)`` margin an acceptance earns over its months, discounted (:mod:`telco_nbo.evaluation.economics`)."""
    return economics.accept_value(offers.ids, offers.monthly_margin, offers.term_months,
                                  np.asarray(bill, float)[:, None])
