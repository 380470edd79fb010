"""Contractual CLV: the sBG model against Fader & Hardie's published example, closed forms against
brute-force sums, and per-account CLV against a loop and a geometric-series closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telco_nbo.errors import DataValidationError
from telco_nbo.models.clv import (
    ContractCLV,
    HazardClvRule,
    SBGCohortModel,
    account_clv,
    clv_constant_hazard_closed_form,
    clv_from_hazard,
    discounted_expected_lifetime,
    discounted_expected_residual_lifetime,
    fit_sbg_cohort,
    fit_sbg_individual,
    monthly_hazard_from_p90,
    sbg_cohort_log_likelihood,
    sbg_conditional_survival,
    sbg_individual_log_likelihood,
    sbg_pmf,
    sbg_retention,
    sbg_survival,
    survival_from_hazard,
)

# Fader & Hardie (2007), "How to Project Customer Retention", J. Interactive Marketing 21(1):
# % of a 1,000-customer cohort surviving at years 0..7 and the published MLEs.
REGULAR = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]
HIGH_END = [100.0, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1]


@pytest.mark.parametrize(
    ("pct", "alpha", "beta"),
    [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)],
    ids=["regular", "high_end"],
)
def test_sbg_reproduces_fader_hardie_2007(pct, alpha, beta):
    counts = np.array(pct) * 10.0  # 1,000 customers
    model = SBGCohortModel().fit(counts)
    assert model.fit_.converged
    assert round(model.alpha_, 2) == round(alpha, 2)
    assert round(model.beta_, 2) == round(beta, 2)
    # The optimum is sharp enough that even the third decimal agrees.
    assert model.alpha_ == pytest.approx(alpha, abs=6e-4)
    assert model.beta_ == pytest.approx(beta, abs=6e-4)
    # Maximum: moving either parameter lowers the likelihood.
    ll = sbg_cohort_log_likelihood(model.alpha_, model.beta_, counts)
    assert ll == pytest.approx(model.log_likelihood_)
    for da, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert sbg_cohort_log_likelihood(model.alpha_ + da, model.beta_ + db, counts) < ll


def test_individual_likelihood_equals_cohort_likelihood_on_expanded_cohort():
    counts = np.array(REGULAR) * 10.0
    lost = (counts[:-1] - counts[1:]).astype(int)
    duration = np.concatenate([np.repeat(np.arange(1, 8), lost), np.full(int(counts[-1]), 7)])
    churned = np.concatenate([np.ones(lost.sum(), bool), np.zeros(int(counts[-1]), bool)])
    for a, b in [(0.7, 1.2), (2.0, 5.0)]:
        assert sbg_individual_log_likelihood(a, b, duration, churned) == pytest.approx(
            sbg_cohort_log_likelihood(a, b, counts), rel=1e-12
        )
    ind = fit_sbg_individual(duration, churned)
    coh = fit_sbg_cohort(counts)
    assert ind.alpha == pytest.approx(coh.alpha, rel=1e-5)
    assert ind.beta == pytest.approx(coh.beta, rel=1e-5)
    assert ind.n_customers == 1000 and ind.n_churned == 759


def test_likelihood_gradient_is_exact():
    from scipy.optimize import approx_fprime

    from telco_nbo.models.clv import _negll_and_grad

    agg = (np.array([1.0, 2, 5, 9]), np.array([30.0, 20, 10, 5]), np.array([3.0, 10]), np.array([40.0, 25]))
    for x in (np.array([0.1, 0.5]), np.array([-1.0, 2.0]), np.array([2.0, 4.0])):
        numeric = approx_fprime(x, lambda z: _negll_and_grad(z, *agg)[0], 1e-7)
        np.testing.assert_allclose(_negll_and_grad(x, *agg)[1], numeric, rtol=1e-4, atol=1e-4)


def test_closed_forms_are_consistent():
    a, b = 0.704, 1.182
    t = np.arange(1, 40)
    pmf = sbg_pmf(t, a, b)
    # S(t) = 1 - sum_{u<=t} P(T=u), and P(T=1) = alpha/(alpha+beta).
    np.testing.assert_allclose(sbg_survival(t, a, b), 1 - np.cumsum(pmf), rtol=1e-10)
    assert pmf[0] == pytest.approx(a / (a + b))
    assert sbg_survival(0, a, b) == pytest.approx(1.0)
    # r(t) = S(t)/S(t-1), increasing in t (heterogeneity sorts the loyal from the rest).
    r = sbg_retention(t, a, b)
    np.testing.assert_allclose(r, sbg_survival(t, a, b) / sbg_survival(t - 1, a, b), rtol=1e-10)
    assert np.all(np.diff(r) > 0)
    # Conditional survival is the running product of retention rates from tenure n on.
    for n in (0, 3, 24):
        cs = sbg_conditional_survival(n, 12, a, b)
        np.testing.assert_allclose(cs, np.cumprod(sbg_retention(np.arange(n + 1, n + 13), a, b)), rtol=1e-10)
    both = sbg_conditional_survival(np.array([0, 24]), 12, a, b)
    assert both.shape == (2, 12) and np.all(both[1] > both[0])


@pytest.mark.parametrize("d", [0.1, 0.01])
def test_del_and_derl_match_brute_force_sums(d):
    a, b = 0.704, 1.182
    t = np.arange(0, 20000)
    brute_del = np.sum(sbg_survival(t, a, b) * (1 + d) ** -t.astype(float))
    assert discounted_expected_lifetime(a, b, d) == pytest.approx(brute_del, rel=1e-6)
    k = np.arange(1, 20000)
    for n in (0, 1, 6):
        brute = np.sum(sbg_survival(n + k, a, b) / sbg_survival(n, a, b) * (1 + d) ** -(k - 1.0))
        assert discounted_expected_residual_lifetime(a, b, d, n) == pytest.approx(brute, rel=1e-6)
    # Fader & Hardie (2010) eq. 4 special case: DERL at n=0 equals DEL - 1 scaled back by (1+d).
    assert discounted_expected_residual_lifetime(a, b, d, 0) == pytest.approx(
        (discounted_expected_lifetime(a, b, d) - 1) * (1 + d), rel=1e-9
    )


def test_individual_fit_recovers_simulated_parameters_with_censoring():
    rng = np.random.default_rng(7)
    alpha, beta, n = 1.5, 6.0, 30_000
    theta = rng.beta(alpha, beta, n)
    lifetime = rng.geometric(theta)  # periods until churn, >= 1
    observed_for = rng.integers(0, 48, n)  # staggered entry: each customer seen for 0..47 periods
    churned = lifetime <= observed_for
    duration = np.where(churned, lifetime, observed_for)
    fit = fit_sbg_individual(duration, churned)
    assert fit.alpha == pytest.approx(alpha, rel=0.1)
    assert fit.beta == pytest.approx(beta, rel=0.1)


def test_homogeneous_data_fit_the_geometric_limit():
    rng = np.random.default_rng(11)
    theta, n = 0.04, 20_000
    life = rng.geometric(theta, n)
    seen = rng.integers(0, 60, n)
    churned = life <= seen
    duration = np.where(churned, life, seen)
    fit = fit_sbg_individual(duration, churned)
    assert fit.homogeneous and fit.converged
    # The geometric MLE: churners / periods at risk.
    assert fit.mean_churn == pytest.approx(churned.sum() / duration.sum(), rel=1e-12)
    assert fit.mean_churn == pytest.approx(theta, rel=0.05)
    t = np.arange(1, 40)
    np.testing.assert_allclose(sbg_survival(t, fit.alpha, fit.beta), (1 - fit.mean_churn) ** t, rtol=1e-4)
    # Its log-likelihood is the supremum: no finite (alpha, beta) on the ridge beats it.
    for kappa in (1e2, 1e3, 1e4):
        a, b = fit.mean_churn * kappa, (1 - fit.mean_churn) * kappa
        assert sbg_individual_log_likelihood(a, b, duration, churned) < fit.log_likelihood


def test_sbg_input_errors_are_named():
    with pytest.raises(DataValidationError, match="must not increase"):
        fit_sbg_cohort([100, 80, 90])
    with pytest.raises(DataValidationError, match="nobody churned"):
        fit_sbg_cohort([100, 100, 100])
    with pytest.raises(DataValidationError, match="at least 2 periods"):
        fit_sbg_cohort([100])
    with pytest.raises(DataValidationError, match="duration >= 1"):
        fit_sbg_individual([0, 3, 4], [True, False, True])
    with pytest.raises(DataValidationError, match="no churned"):
        fit_sbg_individual([1, 3, 4], [False, False, False])
    with pytest.raises(DataValidationError, match="NaN"):
        fit_sbg_individual([1.0, np.nan], [True, False])
    with pytest.raises(DataValidationError, match="whole periods"):
        fit_sbg_individual([1.5, 2], [True, False])
    with pytest.raises(RuntimeError, match="not fitted"):
        SBGCohortModel().survival(3)


def test_clv_matches_brute_force_loop_and_closed_form():
    rng = np.random.default_rng(0)
    p90 = rng.uniform(0, 0.6, 50)
    margin = rng.uniform(5, 80, 50)
    horizon, d = 36, 0.008
    h = monthly_hazard_from_p90(p90)
    np.testing.assert_allclose((1 - h) ** 3, 1 - p90, rtol=1e-12)

    clv = clv_from_hazard(h, margin, horizon, d)
    loop = np.empty(50)
    for i in range(50):
        total, alive = 0.0, 1.0
        for t in range(1, horizon + 1):
            alive *= 1 - h[i]
            total += margin[i] * alive / (1 + d) ** t
        loop[i] = total
    np.testing.assert_allclose(clv, loop, rtol=1e-12)
    np.testing.assert_allclose(clv, clv_constant_hazard_closed_form(h, margin, horizon, d), rtol=1e-10)
    # No churn, no discount: margin times horizon.
    assert clv_from_hazard(0.0, 10.0, 12, 0.0) == pytest.approx(120.0)
    assert clv_constant_hazard_closed_form(0.0, 10.0, 12, 0.0) == pytest.approx(120.0)


def test_heterogeneity_gives_an_sbg_curve_with_a_fatter_tail():
    h = np.array([0.05, 0.2])
    const = survival_from_hazard(h, 24)
    het = survival_from_hazard(h, 24, heterogeneity=2.0)
    # Same expected first-month churn, more survivors later.
    np.testing.assert_allclose(het[:, 0], 1 - h, rtol=1e-10)
    assert np.all(het[:, 5:] > const[:, 5:])
    np.testing.assert_allclose(het[1], sbg_survival(np.arange(1, 25), 0.4, 1.6), rtol=1e-10)
    np.testing.assert_allclose(survival_from_hazard(h, 24, heterogeneity=1e9), const, rtol=1e-6)
    # Degenerate hazards stay exact.
    np.testing.assert_allclose(survival_from_hazard(np.array([0.0, 1.0]), 3, heterogeneity=2.0),
                               [[1, 1, 1], [0, 0, 0]])


@settings(max_examples=40, deadline=None)
@given(
    p=st.floats(0.0, 0.99),
    dp=st.floats(0.001, 0.5),
    m=st.floats(0.1, 200.0),
    kappa=st.one_of(st.none(), st.floats(0.5, 50.0)),
)
def test_clv_decreases_with_churn_risk_and_scales_with_margin(p, dp, m, kappa):
    p2 = min(p + dp, 1.0)
    lo, hi = clv_from_hazard(monthly_hazard_from_p90(np.array([p, p2])), m, 24, 0.01, kappa)
    assert hi <= lo + 1e-9
    assert 0 <= hi and lo <= 24 * m + 1e-9
    assert clv_from_hazard(monthly_hazard_from_p90(p), 2 * m, 24, 0.01, kappa) == pytest.approx(2 * lo)


def test_account_clv_frame_and_errors():
    df = pd.DataFrame({"account_id": ["A1", "A2"], "churn_p90": [0.1, 0.5], "monthly_margin": [30.0, 30.0]})
    out = account_clv(df, horizon=24, discount_rate=0.01)
    assert list(out.columns) == ["account_id", "monthly_hazard", "expected_lifetime_months", "clv"]
    assert out.clv.iloc[0] > out.clv.iloc[1] > 0
    assert out.expected_lifetime_months.iloc[0] < 24
    assert df.columns.tolist() == ["account_id", "churn_p90", "monthly_margin"]  # input untouched
    with pytest.raises(DataValidationError, match="duplicate account_id"):
        account_clv(pd.concat([df, df]))
    with pytest.raises(DataValidationError, match="missing column 'monthly_margin'"):
        account_clv(df.drop(columns="monthly_margin"))
    with pytest.raises(DataValidationError, match=r"churn_p90 must be a probability.*A2"):
        account_clv(df.assign(churn_p90=[0.1, 1.5]))
    with pytest.raises(DataValidationError, match="no rows"):
        account_clv(df.iloc[:0])


def _simulated_contract_book(seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, dict[str, tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    truth = {"month_to_month": (0.8, 4.0), "two_year": (0.7, 25.0)}
    frames, ys = [], []
    for seg, (a, b) in truth.items():
        n = 8000
        life = rng.geometric(rng.beta(a, b, n))
        seen = rng.integers(0, 72, n)
        churned = life <= seen
        frames.append(pd.DataFrame({"contract": seg, "tenure": np.where(churned, life, seen),
                                    "margin": rng.uniform(20, 60, n)}))
        ys.append(churned)
    return pd.concat(frames, ignore_index=True), np.concatenate(ys), truth


def test_contract_clv_recovers_segments_and_values_tenure():
    X, y, truth = _simulated_contract_book()
    model = ContractCLV(segment_col="contract", tenure_col="tenure", margin_col="margin", horizon=36)
    assert model.fit(X, y) is model
    assert list(model.params_.segment) == ["month_to_month", "two_year"]
    for seg, (a, b) in truth.items():
        fitted = model.segments_[seg]
        assert fitted.alpha_ == pytest.approx(a, rel=0.2)
        assert fitted.beta_ == pytest.approx(b, rel=0.2)
    new = pd.DataFrame({"contract": ["month_to_month", "month_to_month", "two_year"],
                        "tenure": [0, 48, 0], "margin": [30.0, 30.0, 30.0]})
    clv = model.predict(new)
    # A long-tenure customer is worth more than a new one of the same segment (selection), and a
    # two-year customer more than a month-to-month one.
    assert clv[1] > clv[0] and clv[2] > clv[0]
    # predict == margin x discounted conditional survival, row by row.
    seg = model.segments_["month_to_month"]
    expected = 30.0 * np.sum(seg.conditional_survival(48, 36) / 1.01 ** np.arange(1, 37))
    assert clv[1] == pytest.approx(expected, rel=1e-12)

    with pytest.raises(DataValidationError, match="unknown contract"):
        model.predict(new.assign(contract=["one_year", "two_year", "two_year"]))
    with pytest.raises(DataValidationError, match="missing column 'margin'"):
        model.predict(new.drop(columns="margin"))
    with pytest.raises(DataValidationError, match="min_churned"):
        ContractCLV(segment_col="contract", tenure_col="tenure", min_churned=10).fit(
            new.assign(tenure=[3, 48, 5]), np.array([True, False, False]))


def test_contract_clv_on_ibm_telco(ibm_csv):
    raw = pd.read_csv(ibm_csv)
    y = raw["Churn"].eq("Yes").to_numpy()
    model = ContractCLV(segment_col="Contract", tenure_col="tenure", margin_col="MonthlyCharges").fit(raw, y)
    p = model.params_.set_index("segment")
    assert set(p.index) == {"Month-to-month", "One year", "Two year"}
    assert all(model.segments_[s].fit_.converged for s in p.index)
    # Month-to-month customers are heterogeneous (retention rises with tenure); one- and two-year
    # customers' churn does not fall with tenure, so their fits are the geometric limit.
    assert not p.loc["Month-to-month", "homogeneous"]
    assert p.loc["Month-to-month", "alpha"] == pytest.approx(0.4226, abs=1e-3)
    assert p.loc["Month-to-month", "beta"] == pytest.approx(7.393, abs=1e-2)
    # Longer commitments retain better: the one-period retention at tenure 12 is ordered.
    r12 = {s: float(model.segments_[s].retention(13)) for s in p.index}
    assert r12["Month-to-month"] < r12["One year"] < r12["Two year"]
    clv = model.predict(raw)
    assert clv.shape == (len(raw),) and np.all(clv > 0)
    assert np.all(clv <= raw["MonthlyCharges"].to_numpy() * 36)


def test_contract_clv_long_horizon_equals_derl_and_fractional_tenure():
    X, y, _ = _simulated_contract_book(seed=4)
    d = 0.01
    model = ContractCLV(segment_col="contract", tenure_col="tenure", margin_col="margin",
                        horizon=4000, discount_rate=d).fit(X, y)
    row = pd.DataFrame({"contract": ["two_year"], "tenure": [30], "margin": [1.0]})
    seg = model.segments_["two_year"]
    assert model.predict(row)[0] == pytest.approx(seg.discounted_expected_residual_lifetime(d, 30) / (1 + d), rel=1e-6)
    # Fractional tenures (days / 30.44) land on the period grid: same fit as whole months would give.
    frac = X.assign(tenure=np.where(y, X.tenure - 0.4, X.tenure + 0.4))
    again = ContractCLV(segment_col="contract", tenure_col="tenure", margin_col="margin").fit(frac, y)
    assert again.segments_["two_year"].alpha_ == pytest.approx(seg.alpha_, rel=1e-6)
    assert again.predict(row.assign(tenure=30.7))[0] == pytest.approx(again.predict(row)[0])
    assert model.get_params()["horizon"] == 4000


def test_hazard_rule_equals_account_clv_on_the_margin_of_the_charges():
    rule = HazardClvRule.from_spec({"margin_rate": 0.4, "horizon": 24, "discount_rate": 0.01, "method": "hazard"})
    p90 = np.array([0.0, 0.05, 0.3, 1.0])
    charges = np.array([50.0, np.nan, 80.0, 20.0])
    np.testing.assert_array_equal(rule.monthly_margin(charges), [20.0, 0.0, 32.0, 8.0])
    frame = pd.DataFrame({"account_id": range(4), "churn_p90": p90, "monthly_margin": rule.monthly_margin(charges)})
    np.testing.assert_array_equal(rule.clv(p90, charges), account_clv(frame, horizon=24, discount_rate=0.01)["clv"])
    # A probability a hair outside [0, 1] (float noise of a booster) is clipped, not refused.
    assert np.isfinite(rule.clv(np.array([1.0 + 1e-7]), np.array([10.0]))).all()
