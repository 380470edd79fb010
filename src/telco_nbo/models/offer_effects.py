"""Every offer's effect on churn, from logged randomized contacts: several offers as several treatments.

The retention experiment measures one offer. The other offers' effects come from the contact
logs: rows of ``contacts`` with a ``policy_id`` and a logged ``propensity`` (randomized choices,
e.g. an exploration policy drawing uniformly among "no contact" and the deliverable offers). Each
logged unit is an account, the action chosen (an offer, or no contact) and whether the account
churned within the horizon after the contact.

The model: a relative effect per offer on the churn probability
-----------------------------------------------------------------
For unit ``i`` with a baseline (no-contact) churn probability ``b_i``, the expected churn after
offer ``j`` is compared with no contact *among the units offer j was available to* (stratum ``j``)::

    E[churned_i | no contact] = c_j x b_i        E[churned_i | offer j] = c_j x b_i x (1 + rho_j)

``c_j`` absorbs the baseline model's miscalibration on the stratum (estimated from its
not-contacted units); ``rho_j`` is the offer's relative change in churn (``-0.3``: a contact with
it removes 30 % of the account's churn risk). The comparison group matters: offers go to different
accounts (fiber where fiber is built, service recovery after tickets), and a baseline model is
miscalibrated differently on each of them, so comparing an offer's contacts with *all*
not-contacted units reads those differences as effects. Within a stratum a randomized logging
policy makes contacts and controls exchangeable (weights ``1 / propensity`` keep them so for a
non-uniform policy); the baseline only sharpens the comparison. This is relative-risk ("modified
Poisson") regression: a Poisson GLM with a log link, offset ``log b_i``, an intercept and an
indicator per stratum (Zou 2004, *Am. J. Epidemiol.* 159:702), fitted on the stacked strata, with
standard errors clustered by household (robust to the binary outcome, to accounts of one household
and to a control counted in several strata). Indirect standardization by a baseline risk model is
what makes a few thousand randomized contacts per offer enough.

Why relative: a contact changes churn through the customer's reasons to leave (a bundle makes
leaving costlier, a fixed coverage problem removes a reason), so its effect scales with the
account's risk; in survival terms a hazard ratio, the usual structural assumption. Applied to an
account with churn probability ``p``, the effect on churn is ``rho x p`` with standard error
``se(rho) x p``. Offers with fewer than ``min_contacts`` logged contacts, or fewer than
``min_control`` not-contacted units they were available to, get no estimate (they stay valued on
acceptance x margin and explored).

Shrinkage across offers
-----------------------
A few thousand contacts per offer measure a relative effect to about +-0.1, while offers usually
move churn by a few per cent: the largest of a dozen noisy estimates is mostly noise (the winner's
curse again, across offers). So decisions use an empirical-Bayes estimate, on the log scale of the
regression: a normal prior ``beta_j ~ N(0, tau^2)`` centred on "no effect", the estimates
``beta_hat ~ N(beta, Sigma)`` with ``Sigma`` the regression's full (household-clustered) covariance,
and ``tau^2`` chosen by maximum marginal likelihood (``beta_hat ~ N(0, tau^2 I + Sigma)``). The full
covariance matters: every offer is compared with the same not-contacted units, so their noise
moves all estimates together, and a shift common to all offers is the controls' noise, not a
spread of true effects (a per-offer variance alone would read it as one, and shrink too little).
The posterior mean ``tau^2 (tau^2 I + Sigma)^-1 beta_hat`` and its standard deviations are the
effects decisions use (``shrunk``, ``shrunk_se``, back on the relative scale); where the estimates
spread no more than their noise, ``tau^2 = 0`` and every offer counts as having no effect on churn.

Evidence before use
-------------------
Shrinkage alone was not enough: with a dozen offers, ``tau`` is itself estimated from a dozen
noisy numbers and comes out positive by chance, and a plan review estimated to cut churn by 10 %
(truly +3 %) was then sent to thousands of risky accounts, costing 4 % and 10 % of the policy's
true value on two of three 100k-household worlds (1,104,921 -> 1,056,318 and 1,096,760 ->
991,005; the session's policy benchmark before this test existed). So an
offer's effect counts in decisions only when it passes Holm's test of "no effect" across the
offers estimated together (family-wise 5 %, ``evidence``); it then counts at its shrunk value.
An offer that does not pass is valued as having no effect on churn, and its reasons say the logs
measured it without finding one. The estimates, intervals and p-values are all kept and logged.

Why per contact, not per acceptance
-----------------------------------
Only the contact is randomized; acceptance is the customer's choice after it. Acceptors churn
less for reasons of their own (an engaged customer buys add-ons; one about to leave does not), so
comparing them with their baseline credits the offer with who they are. On the demo world the
same regression with acceptors as the "treatment" finds the data upsell cutting its acceptors'
churn by 66 % (+-17 %) where the truth is 25 % (``benchmarks/bench_offer_effects.py``; over every
logging policy, before the strata, a roaming pack with no effect on churn looked like -28 %). The
per-contact (intention-to-treat) effect is the one the randomization identifies, and it is what a
decision to contact buys: its 95 % intervals covered the true effect for 33 of 34 offer x world
pairs on three 100k-household worlds.

The heterogeneity this does not see (a per-offer effect that differs by segment at equal risk)
is averaged over the accounts the logging policies contacted; the account-level uplift model of a
randomized experiment is the place for that, where one exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from telco_nbo.errors import DataValidationError

NO_CONTACT = ""
"""The action of a logged unit that was not contacted."""
MIN_CONTACTS = 200
MIN_CONTROL = 200
EVIDENCE_ALPHA = 0.05
"""Family-wise error of the test an offer's effect must pass before decisions count it."""
BASELINE_FLOOR = 1e-4
"""Baseline churn probabilities are floored here (the offset is their log)."""


@dataclass(frozen=True)
class OfferEffect:
    """One offer's estimated relative effect on churn.

    Attributes:
        offer_id: The offer.
        relative_effect: ``rho``: relative change of the churn probability a contact causes.
        se: Standard error of ``rho`` (delta method on the log scale, household-clustered).
        ci95: 95 % interval of ``rho`` (from the log scale, so asymmetric).
        n_contacts: Logged contacts with the offer.
        n_churned: Of them, churned within the horizon.
        expected_churned: Their churn expected without contact (baseline x the offer's controls'
            observed / expected ratio).
        shrunk: The empirical-Bayes effect decisions use (module docstring).
        shrunk_se: Its posterior standard deviation.
        n_control: Not-contacted units it was available to (its comparison group).
        p_value: Two-sided p-value of "no effect".
        evidence: The effect passed Holm's test across the offers estimated together (family-wise
            ``alpha``); only then do decisions count it (``shrunk``), otherwise ``shrunk`` is 0.
    """

    offer_id: str
    relative_effect: float
    se: float
    ci95: tuple[float, float]
    n_contacts: int
    n_churned: int
    expected_churned: float
    shrunk: float = 0.0
    shrunk_se: float = 0.0
    n_control: int = 0
    p_value: float = float("nan")
    evidence: bool = False


@dataclass(frozen=True)
class OfferEffects:
    """Per-offer relative effects on churn, estimated from logged randomized contacts.

    Attributes:
        effects: Offer id -> its :class:`OfferEffect` (offers with enough logged contacts only).
        n_units: Logged units used (contacted with an estimated offer, or not contacted; every
            logged unit when nothing could be estimated).
        n_control: Not-contacted units.
        baseline_ratio: Observed / baseline-predicted churn of all not-contacted units (each
            offer's comparison uses its own controls' ratio).
        horizon_days: The outcome window after a contact.
        policies: The logging policies whose rows were used.
        too_few: Offer id -> logged contacts, for offers below ``min_contacts``.
        tau: The prior's standard deviation of effects across offers (0: no offer stands out).
    """

    effects: dict[str, OfferEffect]
    n_units: int
    n_control: int
    baseline_ratio: float
    horizon_days: int
    policies: tuple[str, ...] = ()
    too_few: dict[str, int] = field(default_factory=dict)
    tau: float = 0.0

    def uplift(self, churn: np.ndarray, offer_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each offer's drop in churn probability for accounts with churn probability ``churn``.

        Args:
            churn: ``(n,)`` churn probability over the horizon.
            offer_ids: ``(m,)`` offers, in the caller's order.

        Returns:
            ``(n, m)`` uplift ``-rho x churn`` with the shrunk ``rho`` (clipped to [-1, 1]; positive
            = fewer churn) and its standard error ``sd(rho) x churn``; NaN for offers without an
            estimate.
        """
        return uplift_from(churn, *self.vectors(offer_ids))

    def vectors(self, offer_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(m,)`` shrunk relative effects and their standard deviations (NaN: no estimate)."""
        rho = np.array([self.effects[o].shrunk if o in self.effects else np.nan for o in offer_ids], dtype=float)
        sd = np.array([self.effects[o].shrunk_se if o in self.effects else np.nan for o in offer_ids], dtype=float)
        return rho, sd

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready dict (saved in the uplift model's spec)."""
        out = asdict(self)
        out["effects"] = {k: {**asdict(v), "ci95": list(v.ci95)} for k, v in self.effects.items()}
        out["policies"] = list(self.policies)
        out["baseline_ratio"] = None if not np.isfinite(self.baseline_ratio) else self.baseline_ratio  # strict JSON
        return out

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> OfferEffects | None:
        """Inverse of :meth:`to_spec` (``None`` for a model saved without per-offer effects)."""
        if not spec:
            return None
        effects = {k: OfferEffect(**{**v, "ci95": tuple(v["ci95"])}) for k, v in spec["effects"].items()}
        return cls(effects=effects, n_units=int(spec["n_units"]), n_control=int(spec["n_control"]),
                   baseline_ratio=float("nan") if spec["baseline_ratio"] is None else float(spec["baseline_ratio"]),
                   horizon_days=int(spec["horizon_days"]),
                   policies=tuple(spec.get("policies", ())), too_few=dict(spec.get("too_few", {})),
                   tau=float(spec.get("tau", 0.0)))

    def table(self) -> list[dict[str, Any]]:
        """One row per estimated offer (for reports and the run's artifact)."""
        return [{"offer_id": e.offer_id, "relative_effect": e.relative_effect, "se": e.se,
                 "ci_low": e.ci95[0], "ci_high": e.ci95[1], "n_contacts": e.n_contacts,
                 "n_churned": e.n_churned, "expected_churned": e.expected_churned,
                 "shrunk": e.shrunk, "shrunk_se": e.shrunk_se, "n_control": e.n_control,
                 "p_value": e.p_value, "evidence": e.evidence}
                for e in sorted(self.effects.values(), key=lambda e: e.offer_id)]


def uplift_from(churn: np.ndarray, rho: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, m)`` drop in churn ``-rho x churn`` (clipped to [-1, 1]) and its error ``sd x churn``."""
    p = np.clip(np.asarray(churn, dtype=float), 0.0, 1.0)[:, None]
    return np.clip(-p * np.asarray(rho)[None, :], -1.0, 1.0), p * np.asarray(sd)[None, :]


def estimate_offer_effects(
    action: Sequence[str] | np.ndarray,
    churned: Sequence[bool] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    horizon_days: int,
    available: Mapping[str, np.ndarray] | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    policies: Sequence[str] = (),
    min_contacts: int = MIN_CONTACTS,
    min_control: int = MIN_CONTROL,
    alpha: float = EVIDENCE_ALPHA,
) -> OfferEffects:
    """Relative effect of each offer on churn from logged units (module docstring).

    Each offer is compared with the not-contacted units it was *available* to (it could have
    been chosen for them): under a randomized logging policy those are exchangeable with the units
    that got it, whatever the baseline model gets wrong. The offers' comparisons are fitted as one
    stacked regression (an intercept and an effect per offer; a not-contacted unit appears once per
    offer available to it), so the household-clustered covariance carries the shared controls.

    Args:
        action: ``(n,)`` offer id, or :data:`NO_CONTACT` for a unit that was not contacted.
        churned: ``(n,)`` churned within the horizon after the contact.
        baseline: ``(n,)`` predicted no-contact churn probability over the horizon (from features
            dated before the contact).
        groups: ``(n,)`` cluster of each unit (household).
        horizon_days: The outcome window (recorded).
        available: Offer id -> ``(n,)`` bool, the offer could have been chosen for the unit;
            default (or an offer missing here): every unit.
        weights: ``(n,)`` inverse of the logged probability of the action taken (default 1):
            each offer's contacts and controls then both stand for the units it was available to.
        policies: The logging policies (recorded).
        min_contacts: Fewest logged contacts for an offer to get an estimate.
        min_control: Fewest not-contacted units an offer was available to, for its estimate.
        alpha: Family-wise error of the evidence test (Holm) that decides which effects count.

    Returns:
        The effects; offers without enough data are listed in ``too_few`` with their contacts.

    Raises:
        DataValidationError: Inputs of different lengths, baselines outside [0, 1] / NaN, or
            weights that are not positive and finite.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import SpecificationWarning

    a = np.asarray(action, dtype=object)
    y = np.asarray(churned, dtype=float)
    b = np.asarray(baseline, dtype=float)
    g = np.asarray(groups, dtype=object)
    n = len(a)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if not (n == len(y) == len(b) == len(g) == len(w)):
        raise DataValidationError("contacts", [f"logged units: lengths differ (action {n}, churned {len(y)}, "
                                               f"baseline {len(b)}, groups {len(g)}, weights {len(w)})"])
    if n and (not np.isfinite(b).all() or b.min() < 0 or b.max() > 1):
        raise DataValidationError("contacts", ["logged units: baseline churn probabilities must be in [0, 1]"])
    if n and (not np.isfinite(w).all() or w.min() <= 0):
        raise DataValidationError("contacts", ["logged units: weights must be positive and finite "
                                               "(the inverse of a logged propensity in (0, 1])"])
    control = a == NO_CONTACT
    offers, counts = np.unique(a[~control].astype(str), return_counts=True)
    too_few: dict[str, int] = {}
    kept, strata = [], []
    for o, count in zip(offers.tolist(), counts.tolist(), strict=True):
        mask = None if available is None else available.get(o)
        ctrl = control & (np.ones(n, bool) if mask is None else np.asarray(mask, dtype=bool))
        treated = a == o
        if count < min_contacts or ctrl.sum() < min_control or y[ctrl].sum() == 0 or y[treated].sum() == 0:
            too_few[o] = int(count)
            continue
        kept.append(o)
        strata.append(np.flatnonzero(treated | ctrl))
    c_all = float(y[control] @ w[control] / max(b[control] @ w[control], 1e-12)) if control.any() else float("nan")
    if not kept:
        return OfferEffects({}, n, int(control.sum()), c_all, int(horizon_days), tuple(policies), too_few)
    idx = np.concatenate(strata)
    stratum = np.repeat(np.arange(len(kept)), [len(s) for s in strata])
    exog = np.zeros((len(idx), 2 * len(kept)))
    exog[np.arange(len(idx)), 2 * stratum] = 1.0
    is_treated = a[idx] == np.array(kept, dtype=object)[stratum]
    exog[np.flatnonzero(is_treated), 2 * stratum[is_treated] + 1] = 1.0
    _, cluster = np.unique(g[idx].astype(str), return_inverse=True)
    with warnings.catch_warnings():
        # statsmodels warns that clustered errors are "not fully supported" with var_weights; the
        # intervals' coverage under inverse-propensity weights is tested (test_offer_effects.py).
        warnings.simplefilter("ignore", category=SpecificationWarning)
        fit = sm.GLM(y[idx], exog, family=sm.families.Poisson(),
                     offset=np.log(np.clip(b[idx], BASELINE_FLOOR, 1.0)),
                     var_weights=None if weights is None else w[idx]).fit(cov_type="cluster",
                                                                          cov_kwds={"groups": cluster})
    params, full_cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    beta, cov = params[1::2], full_cov[1::2, 1::2]
    se_beta = np.sqrt(np.diag(cov))
    post_mean, post_sd, tau = shrink_to_zero(beta, cov)
    from scipy.stats import norm
    from statsmodels.stats.multitest import multipletests

    p_values = 2 * norm.sf(np.abs(beta / se_beta))
    evidence = multipletests(p_values, alpha=alpha, method="holm")[0]
    effects = {}
    for k, o in enumerate(kept):
        sel = idx[(stratum == k) & is_treated]
        effects[o] = OfferEffect(
            offer_id=o, relative_effect=float(np.expm1(beta[k])), se=float(np.exp(beta[k]) * se_beta[k]),
            ci95=(float(np.expm1(beta[k] - 1.96 * se_beta[k])), float(np.expm1(beta[k] + 1.96 * se_beta[k]))),
            n_contacts=int(len(sel)), n_churned=int(y[sel].sum()),
            expected_churned=float(np.exp(params[2 * k]) * b[sel].sum()),
            # Back on the relative scale (delta method for the standard deviation).
            shrunk=float(np.expm1(post_mean[k])) if evidence[k] else 0.0,
            shrunk_se=float(np.exp(post_mean[k]) * post_sd[k]) if evidence[k] else 0.0,
            n_control=int(((stratum == k) & ~is_treated).sum()),
            p_value=float(p_values[k]), evidence=bool(evidence[k]),
        )
    return OfferEffects(effects, n, int(control.sum()), c_all, int(horizon_days), tuple(policies), too_few,
                        float(tau))


def shrink_to_zero(estimate: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Empirical-Bayes shrinkage of correlated estimates toward 0 under a prior ``N(0, tau^2 I)``.

    ``estimate ~ N(theta, cov)``, ``theta ~ N(0, tau^2 I)``; ``tau^2`` maximizes the marginal
    likelihood ``estimate ~ N(0, tau^2 I + cov)`` (scipy's bounded scalar minimizer), floored at 0.
    With a diagonal ``cov`` of equal variances ``v`` this is ``max(0, mean(estimate^2) - v)``.

    Args:
        estimate: ``(k,)`` estimates.
        cov: ``(k, k)`` their covariance (or ``(k,)`` variances: independent estimates).

    Returns:
        Posterior means ``tau^2 (tau^2 I + cov)^-1 estimate``, posterior standard deviations
        (square roots of the diagonal of ``tau^2 I - tau^4 (tau^2 I + cov)^-1``), and ``tau``.
    """
    from scipy.optimize import minimize_scalar

    est = np.asarray(estimate, dtype=float)
    k = len(est)
    if k == 0:
        return est, est, 0.0
    S = np.asarray(cov, dtype=float)
    S = np.diag(S) if S.ndim == 1 else S
    eye = np.eye(k)

    def neg_log_lik(t2: float) -> float:
        sign, logdet = np.linalg.slogdet(t2 * eye + S)
        return 0.5 * (logdet + est @ np.linalg.solve(t2 * eye + S, est)) if sign > 0 else np.inf

    upper = max(float(np.mean(est ** 2)), 1e-12) * 4.0
    best = minimize_scalar(neg_log_lik, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10})
    tau2 = float(best.x) if best.fun < neg_log_lik(0.0) else 0.0
    if tau2 <= 1e-12:
        return np.zeros(k), np.zeros(k), 0.0
    inv = np.linalg.inv(tau2 * eye + S)
    mean = tau2 * inv @ est
    post_cov = tau2 * eye - tau2 ** 2 * inv
    return mean, np.sqrt(np.clip(np.diag(post_cov), 0.0, None)), float(np.sqrt(tau2))


__all__ = ["EVIDENCE_ALPHA", "MIN_CONTACTS", "MIN_CONTROL", "NO_CONTACT", "OfferEffect", "OfferEffects", "estimate_offer_effects",
           "shrink_to_zero", "uplift_from"]
