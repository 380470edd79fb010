"""SHAP values, additivity, global figures and reason codes on a small synthetic dataset."""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification

from telco_nbo import explain as E
from telco_nbo.errors import DataValidationError

NUMERIC = [
    "account_months_to_contract_end",
    "line_overage_months_6m",
    "account_open_tickets",
    "account_tenure_months",
    "account_monthly_charges",
    "mystery_score",
]

# The model features of the account feature contract (features.py); each must have a phrase.
CONTRACT_FEATURES = [
    "household_n_accounts", "household_n_lines", "household_n_products", "household_size", "household_region",
    "account_tenure_months", "account_contract_type", "account_payment_method", "account_paperless_billing",
    "account_senior_citizen", "account_has_partner", "account_has_dependents", "account_monthly_charges",
    "account_months_to_contract_end", "account_open_tickets", "account_tickets_90d", "account_complaints_180d",
    "account_billing_tickets_180d", "account_network_tickets_180d", "account_bill_mean_3m", "account_bill_change_3m",
    "account_n_lines", "account_n_mobile_lines", "account_offers_accepted_365d", "account_contacts_90d",
    "line_overage_months_6m", "line_data_gb_mean_3m", "line_data_cap_util_3m", "line_roaming_days_3m",
    "line_intl_minutes_3m", "line_dropped_calls_3m", "line_device_age_months", "line_max_plan_tier",
]  # fmt: skip


def _frame(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=n, n_features=len(NUMERIC), n_informative=4, random_state=seed)
    df = pd.DataFrame(X, columns=NUMERIC)
    rng = np.random.default_rng(seed)
    df["account_contract_type"] = pd.Categorical(rng.choice(["month_to_month", "one_year", "two_year"], n))
    df["household_region"] = pd.Categorical(rng.choice(["urban", "suburban", "rural"], n))
    df["account_paperless_billing"] = rng.random(n) < 0.5
    # Signal in the categoricals so their contributions are not zero, and some missing values.
    y = np.where(df["account_contract_type"] == "month_to_month", 1, y)
    df.loc[rng.random(n) < 0.05, "account_months_to_contract_end"] = np.nan
    return df, y


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return _frame()


@pytest.fixture(scope="module")
def clf(data: tuple[pd.DataFrame, np.ndarray]) -> xgb.XGBClassifier:
    X, y = data
    return xgb.XGBClassifier(n_estimators=40, max_depth=3, enable_categorical=True, n_jobs=1, random_state=0).fit(X, y)


def test_contributions_sum_to_margin_and_match_predict_proba(clf, data):
    X, _ = data
    sv = E.shap_values(clf, X)
    total = sv.values.sum(axis=1).to_numpy() + sv.base_value
    np.testing.assert_allclose(total, sv.margin, atol=1e-4)
    # The margin is the model's own: its sigmoid is predict_proba.
    np.testing.assert_allclose(1 / (1 + np.exp(-sv.margin)), clf.predict_proba(X)[:, 1], atol=1e-5)
    assert E.check_additivity(clf, X) <= 1e-4
    assert list(sv.values.columns) == list(X.columns)


def test_fast_encoding_equals_xgboost_pandas_path(clf, data):
    X, _ = data
    # Shuffle category order, pass strings instead of categories: XGBoost re-codes by name, so must we.
    X2 = X.copy()
    X2["account_contract_type"] = X2["account_contract_type"].cat.reorder_categories(["two_year", "one_year", "month_to_month"])
    X2["household_region"] = X2["household_region"].astype(str)
    ours = E.shap_values(clf, X2).values.to_numpy()
    reference = clf.get_booster().predict(xgb.DMatrix(X, enable_categorical=True), pred_contribs=True)[:, :-1]
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_matches_shap_tree_explainer(clf, data):
    import shap

    X, _ = data
    Xn = X.drop(columns=["account_contract_type", "household_region"])
    _, y = data
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(Xn, y)
    expected = shap.TreeExplainer(model).shap_values(Xn.iloc[:100])
    np.testing.assert_allclose(E.shap_values(model, Xn.iloc[:100]).values.to_numpy(), expected, atol=1e-4)


def test_early_stopped_model_is_explained_at_its_best_iteration(data):
    X, y = data
    model = xgb.XGBClassifier(
        n_estimators=300, learning_rate=0.3, max_depth=4, early_stopping_rounds=5, enable_categorical=True, n_jobs=1
    ).fit(X.iloc[:500], y[:500], eval_set=[(X.iloc[500:], y[500:])], verbose=False)
    assert model.best_iteration < 299
    sv = E.shap_values(model, X.iloc[500:])
    np.testing.assert_allclose(1 / (1 + np.exp(-sv.margin)), model.predict_proba(X.iloc[500:])[:, 1], atol=1e-5)


def test_regressor_additivity(data):
    X, y = data
    reg = xgb.XGBRegressor(n_estimators=30, max_depth=3, enable_categorical=True, n_jobs=1).fit(X, y * 10.0)
    sv = E.shap_values(reg, X)
    np.testing.assert_allclose(sv.values.sum(axis=1) + sv.base_value, reg.predict(X), atol=1e-4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.floats(-5, 5) | st.just(float("nan")),
            st.floats(-5, 5),
            st.sampled_from(["month_to_month", "one_year", "two_year"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_additivity_property_on_arbitrary_rows(clf, data, rows):
    X, _ = data
    frame = X.iloc[: len(rows)].copy()
    frame["account_months_to_contract_end"] = [r[0] for r in rows]
    frame["mystery_score"] = [r[1] for r in rows]
    frame["account_contract_type"] = pd.Categorical([r[2] for r in rows])
    frame["account_paperless_billing"] = [r[3] for r in rows]
    assert E.check_additivity(clf, frame) <= 1e-4


def test_reason_codes_are_the_top_signed_contributions(clf, data):
    X, _ = data
    sv = E.shap_values(clf, X.iloc[:50])
    reasons = E.reason_codes(clf, X.iloc[:50], k=3)
    assert len(reasons) == 50
    for i, row in enumerate(reasons):
        assert len(row) == 3
        expected = sv.values.iloc[i].abs().sort_values(ascending=False).index[:3].tolist()
        assert [r.feature for r in row] == expected
        for r in row:
            assert r.contribution == pytest.approx(sv.values.iloc[i][r.feature], abs=1e-6)
            assert r.direction == ("raises" if r.contribution > 0 else "lowers")
            assert r.phrase and r.sentence.endswith(f"{r.direction} churn risk")
        assert abs(row[0].contribution) >= abs(row[1].contribution) >= abs(row[2].contribution)


def test_reason_codes_direction_filter_and_extra_columns(clf, data):
    X, _ = data
    framed = X.iloc[:20].assign(account_id=[f"A{i}" for i in range(20)])
    raises = E.reason_codes(clf, framed, k=5, direction="raises")
    assert all(r.contribution > 0 and r.direction == "raises" for row in raises for r in row)
    lowers = E.reason_codes(clf, framed, k=2, direction="lowers", outcome="upgrade propensity")
    assert all(r.contribution < 0 and r.outcome == "upgrade propensity" for row in lowers for r in row)


def test_reason_values_are_json_safe(clf, data):
    X, _ = data
    row = X[X["account_months_to_contract_end"].isna()].iloc[[0]]
    reasons = E.reason_codes(clf, row, k=len(X.columns))[0]
    payload = json.loads(json.dumps([r.to_dict() for r in reasons]))
    by_feature = {r["feature"]: r for r in payload}
    if "account_months_to_contract_end" in by_feature:
        assert by_feature["account_months_to_contract_end"]["value"] is None
        assert by_feature["account_months_to_contract_end"]["phrase"] == "no contract end date (month-to-month)"


def test_phrases_read_like_the_spec():
    P = E.REASON_PHRASES
    assert P["account_months_to_contract_end"](34 / E.DAYS_PER_MONTH) == "contract ends in 34 days"
    assert P["account_months_to_contract_end"](7.0) == "contract ends in 7 months"
    assert P["line_overage_months_6m"](3) == "3 months of data overage in the last 6"
    assert P["line_overage_months_6m"](1) == "1 month of data overage in the last 6"
    assert P["line_overage_months_6m"](0) == "no data overage in the last 6 months"
    assert P["account_open_tickets"](2) == "2 open support tickets"
    assert P["account_open_tickets"](1) == "1 open support ticket"
    assert P["account_contract_type"]("month_to_month") == "month-to-month contract"
    assert P["account_tenure_months"](4) == "tenure of 4 months"
    assert P["account_tenure_months"](30) == "tenure of 2.5 years"
    assert P["account_paperless_billing"](True) == "paperless billing"
    assert P["line_max_plan_tier"](3) == "unlimited plan"
    assert P["account_bill_change_3m"](1.25) == "bill up 25% against the 3-month average"
    assert E.generic_phrase("mystery_score", 1.5) == "mystery_score = 1.5"
    assert E.generic_phrase("mystery_flag", np.nan) == "mystery_flag = missing"


def test_every_contract_feature_has_a_phrase():
    missing = [f for f in CONTRACT_FEATURES if f not in E.REASON_PHRASES]
    assert not missing, f"features without a phrase: {missing}"
    try:
        from telco_nbo.features import FEATURE_COLUMNS
    except ImportError:
        FEATURE_COLUMNS = []
    uncovered = [f for f in FEATURE_COLUMNS if f not in E.REASON_PHRASES]
    assert not uncovered, f"features.FEATURE_COLUMNS without a phrase: {uncovered}"


def test_phrase_errors_fall_back_to_generic(clf, data):
    X, _ = data
    broken = {"account_months_to_contract_end": lambda v: int("not a number")}
    reasons = E.reason_codes(clf, X.iloc[:30], k=len(X.columns), phrases=broken)
    texts = [r.phrase for row in reasons for r in row if r.feature == "account_months_to_contract_end"]
    assert texts and all(t.startswith("account_months_to_contract_end = ") for t in texts)


def test_bad_input_is_named(clf, data):
    X, _ = data
    with pytest.raises(DataValidationError, match="account_open_tickets"):
        E.reason_codes(clf, X.drop(columns=["account_open_tickets"]))
    with pytest.raises(DataValidationError, match="no rows"):
        E.reason_codes(clf, X.iloc[:0])
    with pytest.raises(DataValidationError, match="mystery_score"):
        E.reason_codes(clf, X.iloc[:3].assign(mystery_score="high"))


def test_one_row_is_fast(clf, data):
    X, _ = data
    one = X.iloc[[7]]
    E.reason_codes(clf, one)  # warm the per-model encoder cache
    timings = []
    for _ in range(30):
        t0 = time.perf_counter()
        E.reason_codes(clf, one)
        timings.append(time.perf_counter() - t0)
    median_ms = statistics.median(timings) * 1000
    # ~2-3 ms on an idle core; the bound leaves room for a loaded shared CI machine.
    assert median_ms < 40, f"one-row reason codes took {median_ms:.1f} ms"


def test_global_figures(clf, data):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    X, _ = data
    open_before = set(plt.get_fignums())
    figs = E.global_figures(clf, X, n_dependence=2, max_rows=300)
    assert {"shap_beeswarm", "shap_bar"} <= set(figs)
    dependence = [k for k in figs if k.startswith("shap_dependence_")]
    sv = E.shap_values(clf, X.sample(n=300, random_state=0).sort_index())
    assert dependence == [f"shap_dependence_{f}" for f in E.top_features(sv, 2)]
    assert all(isinstance(f, Figure) for f in figs.values())
    assert set(plt.get_fignums()) == open_before  # detached from pyplot
    import io

    for fig in figs.values():
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getbuffer().nbytes > 5_000
