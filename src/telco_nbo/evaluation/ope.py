"""Off-policy evaluation: a policy's value from logged randomized contacts (IPS, SNIPS, doubly robust).

The logs (``contacts`` rows with ``policy_id`` and ``propensity``) say, per logged unit ``i``,
which action ``a_i`` the logging policy took (an offer, or no contact), with what probability
``p_i``, and what it earned: ``r_i`` (:func:`logged_outcomes`, valued with the same
:mod:`~telco_nbo.evaluation.economics` as the truth). For a target policy that would take
``pi_i`` there, the estimates of its value *relative to contacting nobody*, per logged unit, are:

* IPS: ``mean_i [ (1{a_i = pi_i} - 1{a_i = none}) r_i / p_i ]``;
* self-normalized IPS: ``sum w r / sum w`` for the policy minus the same for "no contact"
  (``w = 1{a = action} / p``), which trades a little bias for much less variance;
* doubly robust: ``mean_i [ q_i(pi_i) - q_i(none) + 1{a_i = pi_i} (r_i - q_i(a_i)) / p_i -
  1{a_i = none} (r_i - q_i(none)) / p_i ]`` with an outcome model ``q``; unbiased whatever ``q``
  is when the propensities are the logged ones, and a good ``q`` narrows the interval.

Intervals: normal for IPS and DR (the per-unit terms are i.i.d.), percentile bootstrap for SNIPS.
Each estimate is per logged unit; ``scale`` (e.g. the number of active accounts, of which the
logged units are a random sample) turns it into a total.

These estimators are short and standard (Dudik, Langford & Li 2011, "Doubly robust policy
evaluation and learning"); they are written here rather than taken from ``obp``, which is
unmaintained, and are tested on cases with a known answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, norm

from telco_nbo.errors import DataValidationError
from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS, Economics

NONE = ""
"""The action "no contact" in action arrays."""


@dataclass(frozen=True)
class OpeEstimate:
    """One estimator's answer.

    Attributes:
        estimate: Value relative to no contact, times ``scale``.
        ci95: 95 % interval of ``estimate``.
        per_unit: ``estimate / scale``.
        n: Logged units used.
        matched: Units where the logged action equals the policy's.
    """

    estimate: float
    ci95: tuple[float, float]
    per_unit: float
    n: int
    matched: int


@dataclass(frozen=True)
class OpeResult:
    """IPS, SNIPS and DR estimates of one policy."""

    ips: OpeEstimate
    snips: OpeEstimate
    dr: OpeEstimate

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {k: asdict(getattr(self, k)) for k in ("ips", "snips", "dr")}


def _check(action: np.ndarray, propensity: np.ndarray, reward: np.ndarray, target: np.ndarray) -> None:
    n = len(action)
    if not (len(propensity) == len(reward) == len(target) == n):
        raise DataValidationError("logs", ["action, propensity, reward and target must have one entry per unit"])
    if n == 0:
        raise DataValidationError("logs", ["no logged unit to estimate from"])
    p = np.asarray(propensity, float)
    if not np.all(np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        raise DataValidationError("logs", ["propensities must be in (0, 1]"])
    if not np.all(np.isfinite(np.asarray(reward, float))):
        raise DataValidationError("logs", ["rewards must be finite"])


def _normal_ci(terms: np.ndarray, scale: float) -> tuple[float, tuple[float, float]]:
    m = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("inf")
    z = float(norm.ppf(0.975))
    return m * scale, ((m - z * se) * scale, (m + z * se) * scale)


def ope_estimates(action: np.ndarray, propensity: np.ndarray, reward: np.ndarray, target: np.ndarray, *,
                  q: dict[str, np.ndarray] | None = None, scale: float = 1.0, n_resamples: int = 1000,
                  seed: int = 0) -> OpeResult:
    """IPS, SNIPS and DR estimates of a target policy's value over "no contact".

    Args:
        action: Logged action per unit (offer id, or :data:`NONE` / None for no contact).
        propensity: Probability the logging policy gave the logged action.
        reward: Realized reward of the logged action.
        target: The target policy's action per unit (same coding).
        q: Outcome model for DR: action -> ``(n,)`` predicted reward of that action per unit; it
            must hold every action in ``action`` and ``target`` and :data:`NONE`. ``None``: no
            model (DR then equals IPS).
        scale: Multiplies the per-unit estimates (e.g. active accounts, for a total).
        n_resamples: Bootstrap resamples for SNIPS.
        seed: Bootstrap seed.

    Returns:
        The :class:`OpeResult`.

    Raises:
        DataValidationError: Mismatched lengths, propensities outside (0, 1], non-finite rewards,
            or an outcome model missing an action.
    """
    a = np.array([NONE if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x) for x in action], object)
    t = np.array([NONE if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x) for x in target], object)
    p = np.asarray(propensity, float)
    r = np.asarray(reward, float)
    _check(a, p, r, t)
    n = len(a)
    hit = (a == t).astype(float)
    base = (a == NONE).astype(float)
    ips_terms = (hit - base) * r / p
    ips, ips_ci = _normal_ci(ips_terms, scale)

    def snips_stat(h: np.ndarray, b: np.ndarray, rr: np.ndarray, pp: np.ndarray, axis: int = -1) -> np.ndarray:
        wh, wb = h / pp, b / pp
        sh, sb = wh.sum(axis=axis), wb.sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            vh = np.where(sh > 0, (wh * rr).sum(axis=axis) / np.where(sh > 0, sh, 1), 0.0)
            vb = np.where(sb > 0, (wb * rr).sum(axis=axis) / np.where(sb > 0, sb, 1), 0.0)
        return vh - vb

    snips = float(snips_stat(hit, base, r, p)) * scale
    if n > 1 and (hit.any() or base.any()):
        bs = bootstrap((hit, base, r, p), snips_stat, paired=True, vectorized=True, n_resamples=n_resamples,
                       confidence_level=0.95, method="percentile", random_state=np.random.default_rng(seed))
        snips_ci = (float(bs.confidence_interval.low) * scale, float(bs.confidence_interval.high) * scale)
    else:
        snips_ci = (float("-inf"), float("inf"))
    if q is None:
        dr, dr_ci, dr_terms = ips, ips_ci, ips_terms
    else:
        needed = set(a) | set(t) | {NONE}
        missing = sorted(x or "no contact" for x in needed if x not in q)
        if missing:
            raise DataValidationError("logs", [f"the outcome model has no prediction for {missing}"])
        qa = np.empty(n)
        qt = np.empty(n)
        for act in needed:
            qa[a == act] = np.asarray(q[act], float)[a == act]
            qt[t == act] = np.asarray(q[act], float)[t == act]
        q0 = np.asarray(q[NONE], float)
        dr_terms = qt - q0 + hit * (r - qa) / p - base * (r - q0) / p
        dr, dr_ci = _normal_ci(dr_terms, scale)
    matched = int(hit.sum())
    return OpeResult(
        ips=OpeEstimate(ips, ips_ci, ips / scale if scale else 0.0, n, matched),
        snips=OpeEstimate(snips, snips_ci, snips / scale if scale else 0.0, n, matched),
        dr=OpeEstimate(dr, dr_ci, float(dr_terms.mean()), n, matched),
    )


def logged_outcomes(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp, *,
                    economics: Economics = DEFAULT_ECONOMICS, window_days: int = 90,
                    policy_id: str | None = None) -> pd.DataFrame:
    """The logged randomized choices made after ``as_of`` and what each earned within the window.

    A logged unit is a ``contacts`` row with a ``policy_id`` and ``propensity`` dated after
    ``as_of`` (the decision window that follows the date the policy ranks at), an account active
    at ``as_of``. Its reward is ``accepted x accept_value - churned x kept_value - cost``, churned
    meaning the account ended in ``(as_of, as_of + window_days]`` (:mod:`.economics`).

    Args:
        tables: The data folder's tables (``contacts``, ``accounts``, ``offers``).
        as_of: The date the evaluated policy decides at.
        economics: Valuation constants.
        window_days: Outcome window after ``as_of``.
        policy_id: Only this logging policy's rows (default: every logged row).

    Returns:
        One row per logged unit: ``account_id``, ``action`` (offer id or ""), ``channel``,
        ``propensity``, ``accepted``, ``churned``, ``reward``, ``bill``, ``policy_id``.
    """
    as_of = pd.Timestamp(as_of)
    ct = tables["contacts"]
    if "policy_id" not in ct.columns or "propensity" not in ct.columns:
        return pd.DataFrame(columns=["account_id", "action", "channel", "propensity", "accepted", "churned",
                                     "reward", "bill", "policy_id"])
    end = as_of + pd.Timedelta(days=window_days)
    at = pd.to_datetime(ct["contacted_at"])
    sel = ct["policy_id"].notna() & (at > as_of) & (at <= end)
    if policy_id is not None:
        sel &= ct["policy_id"] == policy_id
    logs = ct.loc[sel].copy()
    acc = tables["accounts"].set_index("account_id")
    logs = logs[logs["account_id"].isin(acc.index)]
    a = acc.loc[logs["account_id"]]
    active = (a["start_date"].to_numpy() <= np.datetime64(as_of)) & (a["end_date"].isna().to_numpy()
                                                                    | (a["end_date"].to_numpy() > np.datetime64(as_of)))
    logs, a = logs[active], a[active]
    ended = a["end_date"]
    churned = (ended.notna() & (ended > as_of) & (ended <= end)).to_numpy()
    bill = a["monthly_charges"].to_numpy(float)
    offers = tables["offers"].set_index("offer_id")
    action = logs["offer_id"].fillna(NONE).astype(str).to_numpy()
    has = action != NONE
    margin = np.zeros(len(logs))
    if has.any():
        o = offers.loc[action[has]]
        margin[has] = economics.accept_value(action[has], o["monthly_margin"].to_numpy(float),
                                             o["term_months"].to_numpy(float), bill[has])
    accepted = logs["accepted"].astype(bool).to_numpy()
    cost = economics.cost(logs["channel"].where(logs["contacted"].astype(bool), None).to_numpy())
    reward = accepted * margin - churned * economics.kept_value(bill) - cost
    return pd.DataFrame({
        "account_id": logs["account_id"].to_numpy(), "action": action, "channel": logs["channel"].to_numpy(),
        "propensity": logs["propensity"].to_numpy(float), "accepted": accepted, "churned": churned,
        "reward": reward, "bill": bill, "accept_value": margin, "kept_value": economics.kept_value(bill),
        "cost": cost, "policy_id": logs["policy_id"].to_numpy(),
    })


def outcome_model(logs: pd.DataFrame, actions: list[str], offers: pd.DataFrame, *,
                  churn_probability: np.ndarray | None = None, economics: Economics = DEFAULT_ECONOMICS,
                  folds: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """A cross-fitted outcome model ``q`` for the doubly robust estimate.

    ``q_i(a) = P(accept | a) x accept_value_i(a) - cost(a) - P(churn)_i x kept_value_i``, with the
    acceptance rate and the contact cost of each action taken from the other folds' logs, and the
    churn probability the account's predicted one when given (e.g. the churn champion's, from the
    ranking), else the other folds' churn rate. Simple on purpose: DR is unbiased with the logged
    propensities whatever ``q`` is; ``q`` only narrows the interval.

    Args:
        logs: From :func:`logged_outcomes`.
        actions: Actions to predict (offer ids; "no contact" is always added).
        offers: The catalog table (``offer_id``, ``monthly_margin``, ``term_months``).
        churn_probability: Per logged unit, a predicted 90-day churn probability.
        economics: Valuation constants.
        folds: Cross-fitting folds.
        seed: Fold assignment seed.

    Returns:
        Action -> ``(n,)`` predicted reward.
    """
    n = len(logs)
    fold = np.random.default_rng(seed).integers(0, folds, n)
    act = logs["action"].to_numpy(object)
    acc = logs["accepted"].to_numpy(float)
    churned = logs["churned"].to_numpy(float)
    cost_logged = logs["cost"].to_numpy(float)
    bill = logs["bill"].to_numpy(float)
    kept = economics.kept_value(bill)

    def other_folds_mean(values: np.ndarray, mask: np.ndarray, default: float) -> np.ndarray:
        out = np.empty(n)
        for f in range(folds):
            other = (fold != f) & mask
            out[fold == f] = values[other].mean() if other.any() else default
        return out

    if churn_probability is None:
        p_churn = other_folds_mean(churned, np.ones(n, bool), float(churned.mean()) if n else 0.0)
    else:
        p_churn = np.asarray(churn_probability, float)
    q: dict[str, np.ndarray] = {NONE: -p_churn * kept}
    cat = offers.set_index("offer_id")
    for a in sorted(set(actions) - {NONE}):
        is_a = act == a
        rate = other_folds_mean(acc, is_a, 0.0)
        cost = other_folds_mean(cost_logged, is_a, 0.0)
        if a in cat.index:
            o = cat.loc[a]
            av = economics.accept_value(np.array([a] * n, object), np.full(n, float(o["monthly_margin"])),
                                        np.full(n, float(o["term_months"])), bill)
        else:
            av = np.zeros(n)
        q[a] = rate * av - cost - p_churn * kept
    return q
