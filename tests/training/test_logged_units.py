"""Logged randomized contacts as rows for per-offer effects: point in time, outcome window, selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telco_nbo.training.data import prepare_logged

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def world():
    from telco_nbo.data.synthetic import generate_world

    return generate_world(3000, seed=11)


def test_rows_are_logged_choices_whose_outcome_is_known(world) -> None:
    lf = prepare_logged(world.tables, AS_OF, horizon_days=90)
    ct = world.tables["contacts"]
    n = len(lf.action)
    assert n > 1000 and len(lf.features) == n == len(lf.churned) == len(lf.household_ids)
    # Only choices made at least the horizon before as_of: their 90 days are over by then.
    assert (lf.contacted_at <= np.datetime64(AS_OF - pd.Timedelta(days=90))).all()
    # Never an experiment's enrolment; every row from a logging policy.
    logged = ct[ct["policy_id"].notna() & ct["experiment_id"].isna()]
    assert set(lf.policy_ids) <= set(logged["policy_id"]) and "" in set(lf.action)
    # Features strictly before the contact.
    assert (lf.feature_dates < lf.contacted_at).all()
    # The outcome: the account ended within (contacted_at, contacted_at + 90 days].
    end = pd.to_datetime(world.tables["accounts"].set_index("account_id")["end_date"]).reindex(
        lf.features["account_id"]).to_numpy()
    expect = ~np.isnat(end) & (end > lf.contacted_at) & (end <= lf.contacted_at + np.timedelta64(90, "D"))
    np.testing.assert_array_equal(lf.churned, expect.astype(np.int8))
    # The account was active when contacted (an ended account is nobody to offer to).
    assert not ((~np.isnat(end)) & (end <= lf.contacted_at)).any()


def test_a_not_contacted_choice_is_the_empty_action(world) -> None:
    lf = prepare_logged(world.tables, AS_OF)
    ct = world.tables["contacts"]
    chosen_none = ct[ct["policy_id"].notna() & ~ct["contacted"].astype(bool)]
    assert (lf.action == "").sum() <= len(chosen_none) and (lf.action == "").sum() > 0
    assert set(lf.action[lf.action != ""]) <= set(ct["offer_id"].dropna())
    # Acceptance only where an offer was made; some were accepted, most not.
    assert not lf.accepted[lf.action == ""].any() and 0 < lf.accepted.mean() < 0.5


def test_no_logs_no_rows(world) -> None:
    tables = dict(world.tables)
    tables["contacts"] = tables["contacts"].drop(columns=["policy_id", "propensity"])
    assert prepare_logged(tables, AS_OF) is None
    # Nothing old enough to know its outcome.
    assert prepare_logged(world.tables, pd.Timestamp("2025-01-15")) is None


def test_features_of_a_household_subset_are_the_full_frames_rows(world) -> None:
    """An account's features read only its household's rows: the subset the logs use changes nothing."""
    from telco_nbo.features import build_account_features
    from telco_nbo.training.data import tables_of_households

    t = pd.Timestamp("2025-06-01")
    full = build_account_features(world.tables, t, data_as_of=AS_OF).set_index("account_id")
    hh = world.tables["households"]["household_id"].iloc[::7]
    sub = build_account_features(tables_of_households(world.tables, hh), t, data_as_of=AS_OF).set_index("account_id")
    assert 0 < len(sub) < len(full)
    pd.testing.assert_frame_equal(sub, full.loc[sub.index], check_dtype=False)


def test_only_the_policies_asked_for(world) -> None:
    lf = prepare_logged(world.tables, AS_OF, policies=["explore-uniform-v1"])
    assert set(lf.policy_ids) == {"explore-uniform-v1"}
