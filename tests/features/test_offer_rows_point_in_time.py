"""Propensity training rows see the account as it was before the contact, not its outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telco_nbo.data.synthetic import generate_world
from telco_nbo.features import build_account_features
from telco_nbo.nbo.catalog import offer_grants
from telco_nbo.training.data import prepare_offers


@pytest.fixture(scope="module")
def world():
    return generate_world(1500, seed=21)


@pytest.fixture(scope="module")
def rows(world):
    as_of = pd.Timestamp(world.meta["as_of"])
    return prepare_offers(world.tables, as_of)


def test_no_row_owns_what_its_own_offer_grants(rows):
    """An accepted add-on's flag is set by that acceptance: it must be off in the row that predicts it."""
    off = rows.keys["offer_id"].to_numpy()
    checked = 0
    for offer_id, flag in offer_grants().items():
        col = f"account_{flag}"
        m = off == offer_id
        if not m.any() or col not in rows.X.columns:
            continue
        assert not rows.X.loc[m & (rows.y == 1), col].astype(bool).any(), offer_id
        checked += int((m & (rows.y == 1)).sum())
    assert checked > 0


def test_the_bill_does_not_carry_the_accepted_line(rows):
    """A cross-sell's price is in the accounts table's charges after it was accepted, never in its own row."""
    off = rows.keys["offer_id"].to_numpy()
    gap = rows.X["account_monthly_charges"].astype(float) - rows.X["account_bill_mean_3m"].astype(float)
    for offer_id in ("HOME_FIBER", "EXTRA_LINE", "TV_STREAMING"):
        acc = (off == offer_id) & (rows.y == 1)
        if acc.sum() >= 5:
            assert gap[acc].median() == pytest.approx(gap[(off == offer_id) & (rows.y == 0)].median(), abs=5.0)


def test_features_at_the_datas_own_date_are_unchanged(world):
    as_of = pd.Timestamp(world.meta["as_of"])
    plain = build_account_features(world.tables, as_of)
    same = build_account_features(world.tables, as_of, data_as_of=as_of)
    pd.testing.assert_frame_equal(plain, same)
    # Earlier, the charges are the lines active then, at their prices.
    t = as_of - pd.Timedelta(days=200)
    early = build_account_features(world.tables, t, data_as_of=as_of).set_index("account_id")
    lines = world.tables["lines"]
    active = (lines["start_date"] <= t) & (lines["end_date"].isna() | (lines["end_date"] > t))
    by_lines = lines.loc[active].groupby("account_id")["monthly_price"].sum()
    acc = world.tables["accounts"].set_index("account_id")
    # Accounts still active at the data's date with the same lines then and now keep their stated charges;
    # the others are the sum of their lines' prices at t.
    common = early.index.intersection(by_lines.index)
    ended = acc.loc[common, "end_date"].notna()
    np.testing.assert_allclose(early.loc[common[~ended.to_numpy()], "account_monthly_charges"],
                               by_lines.loc[common[~ended.to_numpy()]], atol=0.05)
