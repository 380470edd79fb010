"""Uplift metrics against scikit-uplift and brute force; T- and X-learners on a synthetic experiment
with known effects."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.models import uplift as U

# sklift 0.5.1 calls sklearn's deprecated stable_cumsum (FutureWarning on every curve).
pytestmark = pytest.mark.filterwarnings("ignore:Function stable_cumsum is deprecated:FutureWarning")

with warnings.catch_warnings():
    # sklift 0.5.1 imports sklearn's deprecated stable_cumsum (FutureWarning on import).
    warnings.simplefilter("ignore")
    import sklift.metrics as SK


def _experiment(seed: int, n: int = 600, share: float = 0.5, ties: bool = False, effect: float = 0.15):
    rng = np.random.default_rng(seed)
    t = (rng.random(n) < share).astype(int)
    x = rng.normal(size=n)
    p = 0.3 + effect * t * (x > 0) - 0.05 * t * (x < -1)
    y = (rng.random(n) < p).astype(int)
    score = x + rng.normal(scale=0.7, size=n)
    if ties:
        score = np.round(score, 1)
    return y, score, t


CASES = [
    pytest.param(dict(seed=0), id="balanced"),
    pytest.param(dict(seed=1, ties=True), id="ties"),
    pytest.param(dict(seed=2, share=0.2, n=997), id="unbalanced-odd-n"),
    pytest.param(dict(seed=3, effect=-0.1), id="harmful"),
]


@pytest.mark.parametrize("case", CASES)
def test_curves_and_scores_match_sklift(case):
    y, s, t = _experiment(**case)
    for ours, theirs in [(U.qini_curve, SK.qini_curve), (U.uplift_curve, SK.uplift_curve)]:
        (xa, va), (xb, vb) = ours(y, s, t), theirs(y, s, t)
        np.testing.assert_allclose(xa, xb, atol=1e-9)
        np.testing.assert_allclose(va, vb, atol=1e-9)
    for ours, theirs in [(U.perfect_qini_curve, SK.perfect_qini_curve), (U.perfect_uplift_curve, SK.perfect_uplift_curve)]:
        (xa, va), (xb, vb) = ours(y, t), theirs(y, t)
        np.testing.assert_allclose(xa, xb, atol=1e-9)
        np.testing.assert_allclose(va, vb, atol=1e-9)
    assert U.qini_auc_score(y, s, t) == pytest.approx(SK.qini_auc_score(y, s, t), abs=1e-9)
    assert U.uplift_auc_score(y, s, t) == pytest.approx(SK.uplift_auc_score(y, s, t), abs=1e-9)
    total = y[t == 1].sum() - (t == 1).sum() * y[t == 0].sum() / (t == 0).sum()
    if total > 0:
        assert U.qini_auc_score(y, s, t, negative_effect=False) == pytest.approx(
            SK.qini_auc_score(y, s, t, negative_effect=False), abs=1e-9
        )
    else:
        # sklift fails here with an opaque sklearn "x is neither increasing nor decreasing".
        with pytest.raises(DataValidationError, match="positive overall incremental response"):
            U.qini_auc_score(y, s, t, negative_effect=False)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bins", [10, 7])
def test_uplift_by_decile_matches_sklift(case, bins):
    y, s, t = _experiment(**case)
    ours = U.uplift_by_decile(y, s, t, bins=bins)
    theirs = SK.uplift_by_percentile(y, s, t, bins=bins, std=True)
    np.testing.assert_array_equal(ours["n_treatment"].to_numpy(), theirs["n_treatment"].to_numpy())
    np.testing.assert_array_equal(ours["n_control"].to_numpy(), theirs["n_control"].to_numpy())
    for a, b in [("rate_treatment", "response_rate_treatment"), ("rate_control", "response_rate_control"),
                 ("uplift", "uplift"), ("std_uplift", "std_uplift")]:
        np.testing.assert_allclose(ours[a].to_numpy(), theirs[b].to_numpy(), atol=1e-9)
    assert list(ours.index) == list(range(1, bins + 1))
    assert ours[["n_treatment", "n_control"]].to_numpy().sum() == len(y)


def test_qini_against_brute_force():
    y, s, t = _experiment(seed=5, n=300)  # continuous scores: one point per row
    order = np.argsort(-s)
    q = [0.0]
    for k in range(1, len(y) + 1):
        top = order[:k]
        nt, nc = t[top].sum(), (1 - t[top]).sum()
        yt, yc = (y[top] * t[top]).sum(), (y[top] * (1 - t[top])).sum()
        q.append(yt - yc * nt / nc if nc else yt)
    x, qc = U.qini_curve(y, s, t)
    np.testing.assert_allclose(x, np.arange(len(y) + 1))
    np.testing.assert_allclose(qc, q, atol=1e-9)
    # Area by an explicit trapezoid loop minus the random line's triangle.
    area = sum((q[k] + q[k - 1]) / 2 for k in range(1, len(q))) - len(y) * q[-1] / 2
    assert U.qini_area(y, s, t) == pytest.approx(area, abs=1e-9)
    # The curve ends at the whole population's incremental responders.
    assert qc[-1] == pytest.approx(y[t == 1].sum() - y[t == 0].sum() * t.sum() / (1 - t).sum())


def test_evaluate_uplift_orientation_oracle_and_round_trip():
    rng = np.random.default_rng(9)
    n = 4000
    true_tau = np.where(rng.random(n) < 0.3, -0.25, 0.02)  # churn effect: 30 % persuadable
    t = rng.integers(0, 2, n)
    churn = (rng.random(n) < 0.35 + t * true_tau).astype(int)
    noisy = true_tau + rng.normal(scale=0.1, size=n)

    ev = U.evaluate_uplift(churn, t, noisy, true_uplift=true_tau, negative_outcome=True)
    assert ev.outcome == "retained"
    # negative_outcome flips to retention: identical to passing 1 - churn and -tau by hand.
    assert ev.qini_coefficient == pytest.approx(U.qini_auc_score(1 - churn, -noisy, t), abs=1e-12)
    assert ev.auuc == pytest.approx(SK.uplift_auc_score(1 - churn, -noisy, t), abs=1e-9)
    assert ev.observed_ate == pytest.approx((1 - churn[t == 1]).mean() - (1 - churn[t == 0]).mean())
    assert ev.observed_ate > 0
    assert ev.oracle_qini_coefficient == pytest.approx(U.qini_auc_score(1 - churn, -true_tau, t), abs=1e-12)
    assert 0.5 < ev.qini_share_of_oracle <= 1.2
    assert ev.qini_share_of_oracle == pytest.approx(ev.qini_area / ev.oracle_qini_area)
    assert ev.tau_spearman > 0.5 and ev.tau_rmse == pytest.approx(0.1, rel=0.1)
    dec = ev.deciles_frame()
    assert len(dec) == 10 and dec["mean_true_uplift"].iloc[0] > dec["mean_true_uplift"].iloc[-1]
    # The oracle ranking scored against itself is exactly 100 % of the oracle.
    assert U.evaluate_uplift(churn, t, true_tau, true_uplift=true_tau, negative_outcome=True).qini_share_of_oracle == 1.0

    back = U.UpliftEvaluation.model_validate_json(ev.model_dump_json())
    assert back == ev


def test_metric_input_errors():
    y, s, t = _experiment(seed=0, n=50)
    with pytest.raises(DataValidationError, match="lengths differ"):
        U.qini_curve(y[:-1], s, t)
    with pytest.raises(DataValidationError, match="no control rows"):
        U.qini_auc_score(y, s, np.ones_like(t))
    with pytest.raises(DataValidationError, match="treatment must be binary"):
        U.uplift_curve(y, s, t * 2)
    with pytest.raises(DataValidationError, match="NaN"):
        U.qini_area(y, np.r_[np.nan, s[1:]], t)
    with pytest.raises(DataValidationError, match="bins"):
        U.uplift_by_decile(y, s, t, bins=len(y))
    with pytest.raises(DataValidationError, match="no rows"):
        U.qini_curve([], [], [])


# ------------------------------------------------------------------------------------------------
# Learners


def _churn_experiment(seed: int, n: int, share: float = 0.5):
    """A retention campaign: offers cut churn for young month-to-month accounts, push out
    long-tenure ones with no complaints (sleeping dogs), do nothing for the rest."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "account_tenure_months": rng.integers(0, 72, n).astype(float),
            "account_monthly_charges": rng.uniform(20, 110, n),
            "account_complaints_180d": rng.poisson(0.3, n).astype(float),
            "account_contract_type": pd.Categorical(
                rng.choice(["month_to_month", "one_year", "two_year"], n, p=[0.55, 0.25, 0.2]),
                categories=["month_to_month", "one_year", "two_year"],
            ),
            "noise": rng.normal(size=n),
        }
    )
    m2m = (X.account_contract_type == "month_to_month").to_numpy()
    base = 1 / (1 + np.exp(-(-1.2 + 1.2 * m2m - 0.02 * X.account_tenure_months + 0.5 * X.account_complaints_180d)))
    tau = np.where(m2m & (X.account_tenure_months < 24), -0.25, 0.0)
    tau = np.where((X.account_tenure_months > 48) & (X.account_complaints_180d == 0), 0.08, tau)
    t = (rng.random(n) < share).astype(int)
    p = np.clip(base + t * tau, 0.01, 0.99)
    y = (rng.random(n) < p).astype(int)
    true_tau = np.clip(base + tau, 0.01, 0.99) - np.clip(base, 0.01, 0.99)
    return X, t, y, true_tau


SMALL = dict(n_estimators=60, max_depth=3, learning_rate=0.1, min_child_weight=5.0)


@pytest.fixture(scope="module")
def experiment():
    return _churn_experiment(seed=21, n=8000)


@pytest.mark.parametrize(
    "learner",
    [U.TLearner(**SMALL), U.XLearner(**SMALL), U.XLearner(**SMALL, propensity="model")],
    ids=["T", "X-share", "X-model"],
)
def test_learners_recover_the_effect_ranking(experiment, learner):
    X, t, y, true_tau = experiment
    train = np.arange(len(X)) < 5000
    model = clone(learner).fit(X[train], t[train], y[train])
    tau = model.predict(X[~train])
    assert tau.shape == ((~train).sum(),) and np.all(np.isfinite(tau))
    # Sign convention: the offer lowers churn on average here, so tau is negative on average.
    assert tau.mean() < 0
    np.testing.assert_array_equal(model.retention_uplift(X[~train]), -tau)
    ev = U.evaluate_uplift(y[~train], t[~train], tau, true_uplift=true_tau[~train], negative_outcome=True)
    # Measured (seed 21): T 0.60 / 0.80, X 0.69 / 0.91 (Spearman / share of the oracle's Qini);
    # the true effect has only three levels, which caps the rank correlation.
    assert ev.tau_spearman > 0.45
    assert ev.qini_share_of_oracle > 0.6
    assert ev.deciles[0].uplift > ev.deciles[-1].uplift
    # Persuadables (true tau = -0.25) score well below sleeping dogs (true tau > 0).
    assert tau[true_tau[~train] < -0.1].mean() < tau[true_tau[~train] > 0].mean() - 0.1


def test_t_learner_outcomes_and_column_order(experiment):
    X, t, y, _ = experiment
    model = U.TLearner(**SMALL).fit(X, t, y)
    mu0, mu1 = model.predict_outcomes(X.iloc[:100])
    np.testing.assert_allclose(model.predict(X.iloc[:100]), mu1 - mu0)
    assert np.all((mu0 >= 0) & (mu0 <= 1) & (mu1 >= 0) & (mu1 <= 1))
    shuffled = X.iloc[:100][X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(model.predict(shuffled), mu1 - mu0)
    assert model.treated_share_ == pytest.approx(t.mean())
    assert model.get_params()["n_estimators"] == 60


def test_x_learner_blend_uses_the_propensity(experiment):
    X, t, y, _ = experiment
    model = U.XLearner(**SMALL, propensity=0.3).fit(X.iloc[:3000], t[:3000], y[:3000])
    tau0, tau1 = model.predict_effects(X.iloc[:50])
    np.testing.assert_allclose(model.predict(X.iloc[:50]), 0.3 * tau0 + 0.7 * tau1, rtol=1e-6)
    assert model.propensity_ == 0.3 and model.propensity_model_ is None


@pytest.mark.parametrize("learner", [U.TLearner(**SMALL), U.XLearner(**SMALL, propensity=0.3)], ids=["T", "X"])
def test_effect_from_the_learners_own_parts_equals_predict(experiment, learner):
    # What a compiled scorer does: predict each effect model itself, let the learner combine.
    X, t, y, _ = experiment
    model = clone(learner).fit(X.iloc[:3000], t[:3000], y[:3000])
    model.calibration_ = (0.01, 0.6)
    rows = X.iloc[:200]
    # Each part as the learner's own predict reads it (probabilities; effects as float64).
    parts = [m.predict_proba(rows)[:, 1] if hasattr(m, "predict_proba") else m.predict(rows).astype(float)
             for m in model.effect_models()]
    np.testing.assert_array_equal(model.effect_from_parts(parts, calibrated=False), model.predict(rows))
    np.testing.assert_array_equal(model.effect_from_parts(parts), model.predict_calibrated(rows))


def test_effect_models_refuse_what_cannot_be_compiled(experiment):
    X, t, y, _ = experiment
    with pytest.raises(ConfigError, match="not fitted"):
        U.TLearner(**SMALL).effect_models()
    per_row = U.XLearner(**SMALL, propensity="model").fit(X.iloc[:3000], t[:3000], y[:3000])
    with pytest.raises(ConfigError, match="propensity model"):
        per_row.effect_models()


def test_learner_input_errors(experiment):
    X, t, y, _ = experiment
    Xs, ts, ys = X.iloc[:400], t[:400], y[:400]
    with pytest.raises(DataValidationError, match="numeric, bool or category"):
        U.TLearner(**SMALL).fit(Xs.assign(account_contract_type=Xs.account_contract_type.astype(str)), ts, ys)
    with pytest.raises(DataValidationError, match="lengths differ"):
        U.TLearner(**SMALL).fit(Xs, ts[:-1], ys)
    with pytest.raises(DataValidationError, match="control arm has only one outcome class"):
        U.TLearner(**SMALL).fit(Xs, ts, np.where(ts == 0, 0, ys))
    with pytest.raises(DataValidationError, match="treated arm has 0 rows"):
        U.XLearner(**SMALL).fit(Xs, np.zeros(400), ys)
    with pytest.raises(DataValidationError, match="propensity must be"):
        U.XLearner(**SMALL, propensity=1.5).fit(Xs, ts, ys)
    with pytest.raises(RuntimeError, match="not fitted"):
        U.TLearner().predict(Xs)
    fitted = U.TLearner(**SMALL).fit(Xs, ts, ys)
    with pytest.raises(DataValidationError, match="missing feature column"):
        fitted.predict(Xs.drop(columns="noise"))


def test_true_gain_share_oracle_random_and_reversed() -> None:
    from telco_nbo.models.uplift import true_gain_curve, true_gain_share

    rng = np.random.default_rng(3)
    tau = rng.normal(0.0, 0.05, 4000)
    assert true_gain_share(tau, tau) == pytest.approx(1.0)
    assert true_gain_share(-tau, tau) < -0.99  # the reversed ranking is the worst one
    shares = [true_gain_share(rng.random(tau.size), tau) for _ in range(20)]
    assert abs(np.mean(shares)) < 0.05  # random rankings average 0
    noisy = tau + rng.normal(0.0, 0.05, tau.size)
    assert 0.3 < true_gain_share(noisy, tau) < 0.95
    # Brute force: the curve is the running sum of true effects in score order.
    curve = true_gain_curve(noisy, tau)
    order = sorted(range(tau.size), key=lambda i: -noisy[i])
    assert curve[10] == pytest.approx(sum(tau[i] for i in order[:10]))


def test_calibration_shrinks_overstated_effects_to_the_observed_ones() -> None:
    from telco_nbo.models.uplift import apply_calibration, calibration_from_holdout

    rng = np.random.default_rng(0)
    n = 40_000
    true_tau = rng.uniform(-0.10, 0.0, n)
    # A learner that doubles the effects and adds noise: the largest estimates overstate the most.
    pred = 2 * true_tau + rng.normal(0, 0.02, n)
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.2 + t * true_tau).astype(int)
    a, b = calibration_from_holdout(pred, t, y)
    assert 0.3 < b < 0.65  # ~0.5 undoes the doubling (less: the noise also flattens it)
    cal = apply_calibration(pred, (a, b))
    assert abs(cal.mean() - true_tau.mean()) < 0.01
    top = pred < np.quantile(pred, 0.1)  # the picks: raw estimates overstate them, calibrated far less
    assert abs(cal[top].mean() - true_tau[top].mean()) < 0.5 * abs(pred[top].mean() - true_tau[top].mean())
    # never stretched, never reversed
    a2, b2 = calibration_from_holdout(-pred, t, y)
    assert b2 == 0.0 and abs(a2 - (y[t == 1].mean() - y[t == 0].mean())) < 1e-12
    assert apply_calibration(pred, None) is not None and np.allclose(apply_calibration(pred, None), pred)
