"""What happens after a set of contacts: a realized draw from the world's structural model.

:func:`respond` draws, for every contact of a decision table, whether the offer is accepted and
whether the account churns within 90 days, from the same causal model that wrote
``truth/offer_effects`` (:mod:`telco_nbo.data.synthetic.offers`). The same customer's churn
without the contact is drawn with the same random number (inverse-CDF coupling), so each row's
``realized_value`` is the value the contact realized against the world where it was not made;
its expectation over seeds is exactly the row's ``true_value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from telco_nbo.data.world import World
from telco_nbo.errors import DataValidationError
from telco_nbo.evaluation.value import TRUTH_TABLE, normalize_decisions, resolve


@dataclass(frozen=True)
class Realized:
    """One realized draw: per contact and in total.

    Attributes:
        rows: Per contact: ``account_id``, ``offer_id``, ``channel``, ``accepted``,
            ``churned_90d``, ``churned_90d_without_contact``, ``accept_margin``, ``contact_cost``,
            ``realized_value``, ``true_value``.
        total: Sum of ``realized_value``.
        expected: Sum of ``true_value`` (what the draw scatters around).
    """

    rows: pd.DataFrame
    total: float
    expected: float


def respond(world: World, decisions: pd.DataFrame, seed: int) -> Realized:
    """Simulate the world's response to a decision table.

    Args:
        world: A world with truth (``truth/offer_effects`` and ``truth/accounts``).
        decisions: One row per contact (a ranking is reduced to its first choices).
        seed: Random seed of this draw.

    Returns:
        The :class:`Realized` outcome.

    Raises:
        DataValidationError: The world has no offer truth, or a decision it does not know.
    """
    truth = world.truth.get(TRUTH_TABLE)
    accounts = world.truth.get("accounts")
    if truth is None or accounts is None:
        raise DataValidationError("truth", ["this world has no truth/offer_effects (generate it with telco-nbo "
                                            "data generate; imported data has no truth)"])
    rows = resolve(normalize_decisions(decisions), truth)
    p0 = accounts.set_index(accounts["account_id"].astype(str))["p_churn_90d"].reindex(rows["account_id"]).to_numpy()
    rng = np.random.default_rng(seed)
    n = len(rows)
    u_accept, u_churn = rng.random(n), rng.random(n)
    accepted = u_accept < rows["p_accept"].to_numpy()
    p_churn = np.where(accepted, rows["p_churn_if_accepted"].to_numpy(), rows["p_churn_if_not"].to_numpy())
    churned = u_churn < p_churn
    churned_without = u_churn < p0
    margin = np.where(accepted, rows["accept_value"].to_numpy(), 0.0)
    cost = rows["contact_cost"].to_numpy()
    kept = rows["kept_value"].to_numpy()
    value = margin - (churned.astype(float) - churned_without) * kept - cost
    out = pd.DataFrame({
        "account_id": rows["account_id"].to_numpy(), "offer_id": rows["offer_id"].to_numpy(),
        "channel": rows["channel"].to_numpy(), "accepted": accepted, "churned_90d": churned,
        "churned_90d_without_contact": churned_without, "accept_margin": margin, "contact_cost": cost,
        "realized_value": value, "true_value": rows["true_value"].to_numpy(),
    })
    return Realized(rows=out, total=float(value.sum()), expected=float(rows["true_value"].sum()))
