"""Every offer's effect on churn, from logged randomized contacts: several offers as several treatments.

The retention experiment measures one offer. The other offers' effects come from the contact
logs: rows of ``contacts`` with a ``policy_id`` and a logged ``propensity`` (randomized choices,
e.g. an exploration policy drawing uniformly among "no contact" and the deliverable offers). Each
logged unit is an account, the action chosen (an offer, or no contact) and whether the account
churned within the horizon after the contact.

The model: a relative effect per offer on the churn probability
-----------------------------------------------------------------
For unit ``i`` with a baseline (no-contact) churn probability ``b_i``, the expected churn after
action ``a`` is::

    E[churned_i | a] = c x b_i x (1 + rho_a)        rho_none = 0

``c`` absorbs the baseline model's miscalibration on the logged population (estimated from the
no-contact units); ``rho_a`` is offer ``a``'s relative change in churn (``-0.3``: a contact with
it removes 30 % of the account's churn risk). This is relative-risk ("modified Poisson")
regression: a Poisson GLM with a log link, offset ``log b_i`` and one indicator per offer
(Zou 2004, *Am. J. Epidemiol.* 159:702), with standard errors clustered by household (robust to
the binary outcome and to accounts of one household). Indirect standardization by a baseline risk
model is what makes a few thousand randomized contacts per offer enough: the regression compares
observed with expected churn rather than raw rates of differently composed groups.

Why relative: a contact changes churn through the customer's reasons to leave (a bundle makes
leaving costlier, a fixed coverage problem removes a reason), so its effect scales with the
account's risk; in survival terms a hazard ratio, the usual structural assumption. Applied to an
account with churn probability ``p``, the effect on churn is ``rho x p`` with standard error
``se(rho) x p``. Offers with fewer than ``min_contacts`` logged contacts get no estimate (they stay
valued on acceptance x margin and explored), and so does every offer when the logs hold fewer than
``min_control`` no-contact units.

Shrinkage across offers
-----------------------
A few thousand contacts per offer measure a relative effect to about +-0.1, while offers usually
move churn by a few per cent: the largest of a dozen noisy estimates is mostly noise (the winner's
curse again, across offers). So decisions use an empirical-Bayes estimate: a normal prior
``rho_j ~ N(0, tau^2)`` centred on "no effect", with ``tau^2`` estimated from the spread of the
estimates beyond their sampling noise (method of moments, floored at 0; the DerSimonian-Laird idea
around 0 rather than around the mean, because the mean itself shares the control units' noise).
Each offer's effect is then its posterior mean ``rho_j tau^2 / (tau^2 + se_j^2)`` with posterior
standard deviation ``sqrt(tau^2 se_j^2 / (tau^2 + se_j^2))``: where the estimates spread no more
than their noise, ``tau^2 = 0`` and every offer counts as having no effect on churn.

Why per contact, not per acceptance
-----------------------------------
Only the contact is randomized; acceptance is the customer's choice after it. Acceptors churn
less for reasons of their own (an engaged customer buys add-ons; one about to leave does not), so
comparing them with their baseline credits the offer with who they are. On the demo world the
same regression with acceptors as the "treatment" finds a roaming pack that has no effect on
churn cutting its acceptors' churn by 28 % (+-24 %), and an extra line -48 % where the truth is
-13 % (``benchmarks/bench_offer_effects.py``). The per-contact (intention-to-treat) effect is the
one the randomization identifies, and it is what a decision to contact buys.

The heterogeneity this does not see (a per-offer effect that differs by segment at equal risk)
is averaged over the accounts the logging policies contacted; the account-level uplift model of a
randomized experiment is the place for that, where one exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from telco_nbo.errors import DataValidationError

NO_CONTACT = ""
"""The action of a logged unit that was not contacted."""
MIN_CONTACTS = 200
MIN_CONTROL = 200
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
        expected_churned: Their churn expected without contact (baseline x ``c``).
        shrunk: The empirical-Bayes effect decisions use (module docstring).
        shrunk_se: Its posterior standard deviation.
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


@dataclass(frozen=True)
class OfferEffects:
    """Per-offer relative effects on churn, estimated from logged randomized contacts.

    Attributes:
        effects: Offer id -> its :class:`OfferEffect` (offers with enough logged contacts only).
        n_units: Logged units used (contacted with an estimated offer, or not contacted; every
            logged unit when nothing could be estimated).
        n_control: Not-contacted units.
        baseline_ratio: ``c``: observed / baseline-predicted churn of the not-contacted units.
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
        p = np.clip(np.asarray(churn, dtype=float), 0.0, 1.0)
        rho = np.array([self.effects[o].shrunk if o in self.effects else np.nan for o in offer_ids])
        se = np.array([self.effects[o].shrunk_se if o in self.effects else np.nan for o in offer_ids])
        return np.clip(-p[:, None] * rho[None, :], -1.0, 1.0), p[:, None] * se[None, :]

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
                 "shrunk": e.shrunk, "shrunk_se": e.shrunk_se}
                for e in sorted(self.effects.values(), key=lambda e: e.offer_id)]


def estimate_offer_effects(
    action: Sequence[str] | np.ndarray,
    churned: Sequence[bool] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    horizon_days: int,
    policies: Sequence[str] = (),
    min_contacts: int = MIN_CONTACTS,
    min_control: int = MIN_CONTROL,
) -> OfferEffects:
    """Relative effect of each offer on churn from logged units (module docstring).

    Args:
        action: ``(n,)`` offer id, or :data:`NO_CONTACT` for a unit that was not contacted.
        churned: ``(n,)`` churned within the horizon after the contact.
        baseline: ``(n,)`` predicted no-contact churn probability over the horizon (from features
            dated before the contact).
        groups: ``(n,)`` cluster of each unit (household).
        horizon_days: The outcome window (recorded).
        policies: The logging policies (recorded).
        min_contacts: Fewest logged contacts for an offer to get an estimate.
        min_control: Fewest not-contacted units for any estimate.

    Returns:
        The effects (empty when there are too few not-contacted units).

    Raises:
        DataValidationError: Inputs of different lengths, or baselines outside [0, 1] / NaN.
    """
    import statsmodels.api as sm

    a = np.asarray(action, dtype=object)
    y = np.asarray(churned, dtype=float)
    b = np.asarray(baseline, dtype=float)
    g = np.asarray(groups, dtype=object)
    if not (len(a) == len(y) == len(b) == len(g)):
        raise DataValidationError("contacts", [f"logged units: lengths differ (action {len(a)}, churned {len(y)}, "
                                               f"baseline {len(b)}, groups {len(g)})"])
    if len(b) and (not np.isfinite(b).all() or b.min() < 0 or b.max() > 1):
        raise DataValidationError("contacts", ["logged units: baseline churn probabilities must be in [0, 1]"])
    control = a == NO_CONTACT
    offers, counts = np.unique(a[~control].astype(str), return_counts=True)
    too_few = {str(o): int(c) for o, c in zip(offers, counts, strict=True) if c < min_contacts}
    kept = [str(o) for o, c in zip(offers, counts, strict=True) if c >= min_contacts]
    empty = OfferEffects({}, int(len(a)), int(control.sum()), float("nan"), int(horizon_days),
                         tuple(policies), too_few | ({} if control.sum() >= min_control else
                                                     {str(o): int(c) for o, c in zip(offers, counts, strict=True)}))
    if control.sum() < min_control or y[control].sum() == 0 or not kept:
        return empty
    rows = control | np.isin(a.astype(str), kept)
    a, y, b, g = a[rows], y[rows], np.clip(b[rows], BASELINE_FLOOR, 1.0), g[rows]
    exog = np.column_stack([np.ones(len(a))] + [(a == o).astype(float) for o in kept])
    _, cluster = np.unique(g.astype(str), return_inverse=True)
    fit = sm.GLM(y, exog, family=sm.families.Poisson(), offset=np.log(b)).fit(
        cov_type="cluster", cov_kwds={"groups": cluster})
    params, bse = np.asarray(fit.params), np.asarray(fit.bse)
    c = float(np.exp(params[0]))
    rho = np.expm1(params[1:])
    se = np.exp(params[1:]) * bse[1:]
    shrunk, shrunk_se, tau = shrink_to_zero(rho, se)
    effects = {}
    for k, o in enumerate(kept):
        beta, se_beta = float(params[k + 1]), float(bse[k + 1])
        sel = a == o
        effects[o] = OfferEffect(
            offer_id=o, relative_effect=float(rho[k]), se=float(se[k]),
            ci95=(float(np.expm1(beta - 1.96 * se_beta)), float(np.expm1(beta + 1.96 * se_beta))),
            n_contacts=int(sel.sum()), n_churned=int(y[sel].sum()), expected_churned=float(c * b[sel].sum()),
            shrunk=float(shrunk[k]), shrunk_se=float(shrunk_se[k]),
        )
    return OfferEffects(effects, int(len(a)), int(control.sum()), c, int(horizon_days), tuple(policies), too_few,
                        float(tau))


def shrink_to_zero(estimate: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Empirical-Bayes shrinkage of estimates toward 0 under a normal prior ``N(0, tau^2)``.

    ``tau^2`` is the method-of-moments estimate ``max(0, mean(estimate^2) - mean(se^2))``: the
    spread of the estimates around "no effect" beyond their sampling variance.

    Args:
        estimate: ``(k,)`` estimates.
        se: ``(k,)`` their standard errors.

    Returns:
        Posterior means, posterior standard deviations, and ``tau``.
    """
    est = np.asarray(estimate, dtype=float)
    var = np.asarray(se, dtype=float) ** 2
    if not len(est):
        return est, var, 0.0
    tau2 = max(0.0, float(np.mean(est ** 2) - np.mean(var)))
    if tau2 == 0.0:
        return np.zeros_like(est), np.zeros_like(est), 0.0
    weight = tau2 / (tau2 + var)
    return est * weight, np.sqrt(weight * var), float(np.sqrt(tau2))


__all__ = ["MIN_CONTACTS", "MIN_CONTROL", "NO_CONTACT", "OfferEffect", "OfferEffects", "estimate_offer_effects",
           "shrink_to_zero"]
