"""What each rule removed, estimated and true; predicted against true on the contacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telco_nbo.evaluation.evaluate import predicted_vs_true, rule_values


def frames():
    ranking = pd.DataFrame({
        "account_id": ["A1", "A1", "A2", "A2", "A3"],
        "offer_id": ["X", "Y", "X", "Y", "X"],
        "selected": [True, False, False, True, False],
        "rank": pd.array([1, None, None, 1, None], dtype="Int64"),
        "channel": ["app", None, None, "email", None],
        "expected_value": [10.0, np.nan, np.nan, 4.0, np.nan],
        "uplift": [0.0, np.nan, np.nan, 0.02, np.nan],
        "rule_id": [None, "SUIT_A", "HH_ONE_PROMO", None, "SUIT_A"],
        "layer": [None, "suitability", "household", None, "suitability"],
        "value_removed": [np.nan, 3.0, 7.0, np.nan, 0.0],
    })
    truth = pd.DataFrame({
        "account_id": ["A1", "A1", "A1", "A2", "A2", "A2", "A3", "A3"],
        "offer_id": ["X", "Y", "Y", "X", "Y", "Y", "X", "X"],
        "channel": ["app", "app", "email", "app", "email", "app", "app", "email"],
        "true_value": [12.0, -1.0, 2.5, 6.0, 3.0, 1.0, -4.0, -2.0],
        "delta_churn": [0.0, 0.0, 0.0, 0.0, -0.01, -0.01, 0.0, 0.0],
    })
    return ranking, truth


def test_rule_values_count_each_pair_once_at_its_best_channel():
    ranking, truth = frames()
    out = rule_values(ranking, truth)
    # SUIT_A removed A1/Y (best channel 2.5) and A3/X (best -2 -> 0); HH_ONE_PROMO removed A2/X (6).
    assert out["SUIT_A"] == {"layer": "suitability", "offers": 2, "estimated": 3.0, "true": 2.5}
    assert out["HH_ONE_PROMO"]["true"] == 6.0 and out["HH_ONE_PROMO"]["estimated"] == 7.0
    assert list(out) == ["HH_ONE_PROMO", "SUIT_A"]  # most true value first
    assert rule_values(ranking.drop(columns="value_removed"), truth) == {}


def test_predicted_vs_true_on_the_contacts():
    ranking, truth = frames()
    out = predicted_vs_true(ranking, truth)
    assert out["contacts"] == 2
    assert out["mean_predicted_value"] == pytest.approx(7.0) and out["mean_true_value"] == pytest.approx(7.5)
    assert out["value_ratio"] == pytest.approx(7.0 / 7.5)
    # Only A2/Y is valued on an effect on churn: predicted 0.02, true 0.01.
    assert out["effect_contacts"] == 1 and out["effect_ratio"] == pytest.approx(2.0)
    # Over both contacts: predicted (0 + 0.02) / 2, true (0 + 0.01) / 2.
    assert out["mean_predicted_effect_all"] == pytest.approx(0.01)
    assert out["mean_true_effect_all"] == pytest.approx(0.005)
