"""Contact budget and channel capacity: which of a ranking's contacts a campaign can afford.

A batch ranking gives every account its best offers under the per-account and per-household rules.
A campaign then has limits the ranking cannot see one account at a time: a contact budget (how
many customers to contact at all) and a capacity per channel (call-center seats this week, shop
appointments). This step picks, among the ranked offers, one contact per account so that the total
expected value is the largest the limits allow:

    maximize    sum_i sum_o v_io x_io
    subject to  sum_o x_io <= 1                       (one contact per account: its first offer)
                sum_{io on channel c} x_io <= cap_c   (each limited channel)
                sum_io x_io <= budget
                0 <= x_io <= 1

where ``o`` runs over the account's ranked offers (each already passed every rule, the value floor
and the household step, so any one of them may stand alone). The constraint rows are two laminar
families (accounts; channels inside the budget), so the matrix is totally unimodular and the
linear program's vertex optimum is integral: scipy's HiGHS solves it exactly, and its dual values
are the shadow prices of the limits -- what one more seat or one more contact would be worth. The
binding limit is the one with the largest shadow price.

An account whose first offer loses its channel may be contacted with a later one on a channel with
room (it then becomes rank 1); offers ranked above the chosen one, and every offer of an account
not contacted, are suppressed with ``CAP_CHANNEL`` or ``CAP_BUDGET`` (layer ``capacity``). Offers
ranked below the chosen one stay as its alternatives. Freed household room is not offered to
other accounts of the household (the household step is not re-run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, sparse

from telco_nbo.errors import ConfigError
from telco_nbo.nbo.config import CapacityConfig

CAPACITY_LAYER = "capacity"
CAP_CHANNEL = "CAP_CHANNEL"
CAP_BUDGET = "CAP_BUDGET"
_REASONS = {
    CAP_CHANNEL: "the campaign's {channel} capacity went to contacts of higher value",
    CAP_BUDGET: "the campaign's contact budget went to contacts of higher value",
}


@dataclass(frozen=True)
class Limit:
    """One limit of the campaign and how it was used.

    Attributes:
        name: ``budget`` or ``channel:<name>``.
        capacity: The limit.
        used: Contacts it carries after the step.
        wanted: Contacts the ranking had for it before the step (first offers).
        shadow_price: Expected value one more unit of it would add (0 when it has room).
        binding: Whether it is full and worth more (shadow price > 0).
    """

    name: str
    capacity: int
    used: int
    wanted: int
    shadow_price: float
    binding: bool


@dataclass(frozen=True)
class CapacityReport:
    """What the capacity step did.

    Attributes:
        contacts_before: Accounts with a first offer before the step.
        contacts_after: Accounts contacted after it.
        value_before: Sum of the first offers' decision values before the step.
        value_after: Sum of the chosen contacts' values after it.
        moved: Accounts contacted with a later offer (their first offer's channel was full).
        limits: Each limit, the budget first.
        binding: Names of the binding limits, most valuable first.
        method: ``"lp"`` or ``"lp-decomposed"`` (both exact, see :func:`solve_contacts`), or
            ``"none"`` (no limit configured, or every first offer fits).
    """

    contacts_before: int
    contacts_after: int
    value_before: float
    value_after: float
    moved: int
    limits: list[Limit] = field(default_factory=list)
    binding: list[str] = field(default_factory=list)
    method: str = "lp"

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    def lines(self) -> list[str]:
        """A few sentences for a person."""
        if self.method == "none":
            return []
        out = [f"Capacity: {self.contacts_after:,} of {self.contacts_before:,} ranked contacts fit the campaign's "
               f"limits ({self.value_after:,.0f} of {self.value_before:,.0f} expected value; {self.moved:,} moved "
               "to a later offer on another channel)."]
        for lim in self.limits:
            state = f"binding, one more is worth {lim.shadow_price:,.2f}" if lim.binding else "has room"
            out.append(f"  {lim.name}: {lim.used:,} / {lim.capacity:,} used ({lim.wanted:,} wanted) - {state}")
        return out


def _value_column(frame: pd.DataFrame) -> str:
    return "decision_value" if "decision_value" in frame.columns else "expected_value"


def apply_capacity(frame: pd.DataFrame, capacity: CapacityConfig) -> tuple[pd.DataFrame, CapacityReport]:
    """Fit a ranking to a contact budget and channel capacities (see the module docstring).

    Args:
        frame: A ranking (:func:`telco_nbo.nbo.rank.rank_batch`'s long frame).
        capacity: The limits; with none set the frame is returned unchanged.

    Returns:
        ``(frame, report)``: a new frame (ranks renumbered, dropped offers suppressed in layer
        ``capacity``) and what the step did.

    Raises:
        ConfigError: The solver failed (it should not on these problems).
    """
    value_col = _value_column(frame)
    sel = frame["selected"].fillna(False).to_numpy(bool)
    rank = pd.to_numeric(frame["rank"], errors="coerce").to_numpy(float)
    first = sel & (rank == 1)
    before_value = float(frame.loc[first, value_col].sum())
    limits = {c: int(n) for c, n in capacity.per_channel.items()}
    if capacity.max_contacts is None and not limits or not sel.any():
        return frame, CapacityReport(int(first.sum()), int(first.sum()), before_value, before_value, 0, method="none")

    chan_all = frame["channel"].to_numpy()
    wanted_ok = all(int((first & (chan_all == c)).sum()) <= n for c, n in limits.items())
    if wanted_ok and (capacity.max_contacts is None or int(first.sum()) <= capacity.max_contacts):
        # Every first offer fits: nothing to choose (and nothing binds).
        lims = [Limit(f"channel:{c}", n, int((first & (chan_all == c)).sum()), int((first & (chan_all == c)).sum()),
                      0.0, False) for c, n in sorted(limits.items())]
        if capacity.max_contacts is not None:
            lims.insert(0, Limit("budget", capacity.max_contacts, int(first.sum()), int(first.sum()), 0.0, False))
        return frame, CapacityReport(int(first.sum()), int(first.sum()), before_value, before_value, 0, lims, [],
                                     "lp")

    rows = np.flatnonzero(sel)
    acc_codes, acc = np.unique(frame["account_id"].to_numpy()[rows].astype(str), return_inverse=True)
    chan = frame["channel"].to_numpy()[rows].astype(str)
    value = frame[value_col].to_numpy(float)[rows]
    n_var, n_acc = len(rows), len(acc_codes)
    limited = sorted(limits)
    # Each option's limit index (-1: an unlimited channel); the budget is the last limit.
    names = [f"channel:{c}" for c in limited]
    lim_of = np.full(n_var, -1, dtype=np.int64)
    for k, c in enumerate(limited):
        lim_of[chan == c] = k
    caps = np.array([limits[c] for c in limited], dtype=float)
    budget = None if capacity.max_contacts is None else float(capacity.max_contacts)
    if budget is not None:
        names.append("budget")
    # Ties: a hair of preference for the earlier-ranked offer, so equal values keep the ranking's order.
    obj_value = value - 1e-9 * np.nan_to_num(rank[rows], nan=0.0)
    x, duals, method = solve_contacts(obj_value, acc, n_acc, lim_of, caps, budget)
    chosen = x > 0.5

    # ---- the new frame -------------------------------------------------------------------------
    out = frame.copy()
    chosen_rank = np.full(n_acc, np.inf)
    np.minimum.at(chosen_rank, acc[chosen], rank[rows][chosen])
    contacted = np.isfinite(chosen_rank)
    full = {c for c, n in limits.items() if (chan[chosen] == c).sum() >= n}
    drop = (rank[rows] < chosen_rank[acc]) | ~contacted[acc]
    new_rank = rank[rows] - (chosen_rank[acc] - 1)  # the chosen offer becomes 1, later ones follow
    drop_rows = rows[drop]
    why_channel = np.array([c in full for c in chan[drop]])
    rid = np.where(why_channel, CAP_CHANNEL, CAP_BUDGET)
    sel_col = out["selected"].to_numpy(bool).copy()
    sel_col[drop_rows] = False
    out["selected"] = sel_col
    rank_col = out["rank"].astype("Int64").copy()
    keep_rows = rows[~drop]
    rank_col.iloc[keep_rows] = new_rank[~drop].astype(np.int64)
    rank_col.iloc[drop_rows] = pd.NA
    out["rank"] = rank_col
    chan_col = out["channel"].to_numpy(object).copy()
    chan_col[drop_rows] = None
    out["channel"] = chan_col
    for col, vals in (("layer", np.full(len(drop_rows), CAPACITY_LAYER, dtype=object)), ("rule_id", rid),
                      ("reason", [_REASONS[r].format(channel=c) for r, c in zip(rid, chan[drop], strict=True)])):
        colv = out[col].to_numpy(object).copy()
        colv[drop_rows] = vals
        out[col] = colv
    if "value_removed" in out.columns:
        vr = out["value_removed"].to_numpy(float).copy()
        vr[drop_rows] = np.maximum(value[drop], 0.0)
        out["value_removed"] = vr
    if "reasons" in out.columns:
        reasons = out["reasons"].to_numpy(object).copy()
        reasons[drop_rows] = None
        out["reasons"] = reasons

    # ---- the report ----------------------------------------------------------------------------
    first_rows = rank[rows] == 1
    report_limits = []
    for k, name in enumerate(names):
        if name == "budget":
            wanted, used = int(first_rows.sum()), int(chosen.sum())
        else:
            c = name.split(":", 1)[1]
            wanted, used = int((first_rows & (chan == c)).sum()), int((chosen & (chan == c)).sum())
        cap_k = budget if name == "budget" else caps[k]
        price = float(max(duals[k], 0.0))
        report_limits.append(Limit(name, int(cap_k), used, wanted, price, bool(price > 1e-9 and used >= cap_k)))
    report_limits.sort(key=lambda lim: (lim.name != "budget", lim.name))
    binding = [lim.name for lim in sorted(report_limits, key=lambda lim: -lim.shadow_price) if lim.binding]
    moved = int((chosen & (rank[rows] > 1)).sum())
    return out, CapacityReport(int(first_rows.sum()), int(chosen.sum()), before_value, float(value[chosen].sum()),
                               moved, report_limits, binding, method)


EXACT_LP_OPTIONS = 20_000
"""Up to this many options the whole linear program is solved at once; above, by decomposition."""


def _lp(value: np.ndarray, acc: np.ndarray, n_acc: int, lim_of: np.ndarray, caps: np.ndarray,
        budget: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The linear program on these options: ``(x, duals)``, duals per limit (channels, then the budget)."""
    n_var = len(value)
    blocks = [sparse.csr_matrix((np.ones(n_var), (acc, np.arange(n_var))), shape=(n_acc, n_var))]
    rhs = [np.ones(n_acc)]
    for k in range(len(caps)):
        blocks.append(sparse.csr_matrix((lim_of == k).astype(float)[None, :]))
    rhs.append(np.asarray(caps, float))
    if budget is not None:
        blocks.append(sparse.csr_matrix(np.ones((1, n_var))))
        rhs.append(np.array([budget], float))
    a_ub = sparse.vstack(blocks, format="csr")
    b_ub = np.concatenate(rhs)
    # Interior point with crossover returns a vertex -- integral here, see the module docstring.
    res = optimize.linprog(-value, A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs-ipm")
    if res.status != 0:
        raise ConfigError(f"the capacity step's solver failed: {res.message}")
    x = res.x
    if np.any((x > 1e-6) & (x < 1 - 1e-6)):  # pragma: no cover - a vertex is integral; a face is not
        res = optimize.milp(-value, constraints=optimize.LinearConstraint(a_ub, -np.inf, b_ub),
                            integrality=np.ones(n_var), bounds=optimize.Bounds(0, 1))
        if res.status != 0:
            raise ConfigError(f"the capacity step's solver failed: {res.message}")
        return res.x > 0.5, np.zeros(len(b_ub) - n_acc)
    return x > 0.5, -np.asarray(res.ineqlin.marginals)[n_acc:]  # >= 0: value of one more unit


def _reduced(value: np.ndarray, lim_of: np.ndarray, duals: np.ndarray, has_budget: bool) -> np.ndarray:
    """Each option's value net of the prices of the limits it uses."""
    k = len(duals) - int(has_budget)
    price = np.r_[duals[:k], 0.0][lim_of]  # lim_of -1 -> the appended 0
    return value - price - (duals[-1] if has_budget else 0.0)


def solve_contacts(value: np.ndarray, acc: np.ndarray, n_acc: int, lim_of: np.ndarray, caps: np.ndarray,
                   budget: float | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Pick at most one option per account, within the limits, with the largest total value.

    Small problems are one linear program. Large ones are decomposed, with a certificate:

    1. prices of the limits are estimated from the program on a sample of accounts (limits scaled);
    2. an account whose best option, net of those prices, clears 0 and its second best by a margin
       is fixed to it; one whose every option is clearly below 0 is left out;
    3. the program is solved on the rest, with what the fixed accounts left of each limit;
    4. its prices must make every fixed choice optimal too (each fixed account's option is still
       its best net value and >= 0; each left-out account's are <= 0). Then they are prices of
       the whole program and satisfy complementary slackness with the combined choice, so the
       choice is optimal (LP duality). Otherwise the margin grows and it is tried again; in the
       end the whole program is solved.

    Args:
        value: ``(n_var,)`` value of each option.
        acc: ``(n_var,)`` account index of each option, in ``[0, n_acc)``.
        n_acc: Accounts.
        lim_of: ``(n_var,)`` index of the limited channel the option uses, -1 for none.
        caps: ``(k,)`` capacity of each limited channel.
        budget: Contacts at most, or ``None``.

    Returns:
        ``(chosen, duals, method)``: ``(n_var,)`` bool, the shadow price of each limit (channels,
        then the budget), and ``"lp"`` or ``"lp-decomposed"``.
    """
    has_budget = budget is not None
    if len(value) <= EXACT_LP_OPTIONS:
        x, duals = _lp(value, acc, n_acc, lim_of, caps, budget)
        return x, duals, "lp"
    rng = np.random.default_rng(0)
    sample = np.zeros(n_acc, dtype=bool)
    sample[rng.choice(n_acc, size=min(n_acc, EXACT_LP_OPTIONS // 3), replace=False)] = True
    on = sample[acc]
    _, sacc = np.unique(acc[on], return_inverse=True)
    frac = sample.sum() / n_acc
    # Whole-number limits keep the sample's program integral (a fractional limit makes its optimum a face).
    _, duals = _lp(value[on], sacc, int(sample.sum()), lim_of[on], np.floor(caps * frac),
                   None if budget is None else float(np.floor(budget * frac)))
    scale = float(np.median(np.abs(value))) or 1.0
    for margin in (0.05 * scale, 0.2 * scale, 0.8 * scale):
        r = _reduced(value, lim_of, duals, has_budget)
        order = np.lexsort((-r, acc))  # by account, best net value first
        first_of = np.r_[0, np.flatnonzero(np.diff(acc[order])) + 1]
        best = order[first_of]
        best_r = r[best]
        second = np.full(n_acc, -np.inf)
        counts = np.diff(np.r_[first_of, len(order)])
        has2 = counts > 1
        second[acc[best][has2]] = r[order[first_of[has2] + 1]]
        a_best = acc[best]
        fix_in = np.zeros(n_acc, bool)
        fix_out = np.zeros(n_acc, bool)
        fix_in[a_best] = (best_r > margin) & (best_r - second[a_best] > margin)
        fix_out[a_best] = best_r < -margin
        chosen = np.zeros(len(value), bool)
        chosen[best[fix_in[a_best]]] = True
        used = np.bincount(lim_of[chosen][lim_of[chosen] >= 0], minlength=len(caps)).astype(float)
        left_caps = caps - used
        left_budget = None if budget is None else budget - chosen.sum()
        if (left_caps < 0).any() or (left_budget is not None and left_budget < 0):
            continue  # the estimated prices are too low: fix fewer
        rest = ~(fix_in | fix_out)[acc]
        if rest.sum() > 0.6 * len(value):
            break
        if rest.any():
            _, racc = np.unique(acc[rest], return_inverse=True)
            xr, d_rest = _lp(value[rest], racc, int(racc.max()) + 1, lim_of[rest], left_caps, left_budget)
            chosen[np.flatnonzero(rest)[xr]] = True
        else:
            d_rest = duals
        # The certificate: the final prices make every fixed decision optimal.
        r2 = _reduced(value, lim_of, d_rest, has_budget)
        best2 = np.full(n_acc, -np.inf)
        np.maximum.at(best2, acc, r2)
        fixed_in_opts = chosen & ~rest
        ok_in = np.all(r2[fixed_in_opts] >= np.maximum(best2[acc[fixed_in_opts]], 0.0) - 1e-7)
        ok_out = np.all(best2[fix_out] <= 1e-7)
        if ok_in and ok_out:
            return chosen, d_rest, "lp-decomposed"
        duals = d_rest
    x, duals = _lp(value, acc, n_acc, lim_of, caps, budget)
    return x, duals, "lp"


def report_from_dict(d: dict) -> CapacityReport:
    """Rebuild a :class:`CapacityReport` from :meth:`CapacityReport.to_dict`."""
    return CapacityReport(**{**d, "limits": [Limit(**lim) for lim in d.get("limits", [])]})


__all__ = ["report_from_dict", "CAPACITY_LAYER", "CAP_BUDGET", "CAP_CHANNEL", "CapacityReport", "Limit", "apply_capacity"]
