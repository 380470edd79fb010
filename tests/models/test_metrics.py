"""Classification evaluation: values against scikit-learn and brute force, invariants, round trip,
and the plots rendering to real PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from telco_nbo.errors import DataValidationError
from telco_nbo.models.metrics import (
    ClassificationEvaluation,
    evaluate_classifier,
    lift_by_decile,
    plot_calibration,
    plot_lift,
    plot_qini,
)


def _scored(seed: int = 0, n: int = 2000):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p_true = 1 / (1 + np.exp(-(-1.2 + 1.1 * x)))
    y = (rng.random(n) < p_true).astype(int)
    # A slightly over-confident model: calibration should show it.
    p = 1 / (1 + np.exp(-(-1.2 + 1.6 * x)))
    return y, p


def test_scalar_metrics_match_sklearn():
    y, p = _scored()
    ev = evaluate_classifier(y, p)
    assert ev.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ev.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert ev.log_loss == pytest.approx(log_loss(y, p), abs=1e-12)
    assert ev.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert ev.n == len(y) and ev.n_positive == y.sum() and ev.base_rate == pytest.approx(y.mean())
    assert 0.7 < ev.roc_auc < 0.85


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_bins_match_sklearn_with_counts(strategy):
    y, p = _scored(seed=1)
    ev = evaluate_classifier(y, p, calibration_bins=8, calibration_strategy=strategy)
    frac, mean = calibration_curve(y, p, n_bins=8, strategy=strategy)
    cal = ev.calibration_frame()
    np.testing.assert_allclose(cal.fraction_positive, frac, atol=1e-12)
    np.testing.assert_allclose(cal.mean_predicted, mean, atol=1e-12)
    assert cal["count"].sum() == len(y)
    # Counts are consistent with the bin means: sum(count * mean_predicted) = sum(p).
    assert (cal["count"] * cal.mean_predicted).sum() == pytest.approx(p.sum())
    assert (cal["count"] * cal.fraction_positive).sum() == pytest.approx(y.sum())


def test_lift_table_against_a_brute_force_loop():
    y, p = _scored(seed=2, n=1003)  # not divisible by 10: the first 3 deciles get 101 rows
    table = lift_by_decile(y, p)
    order = sorted(range(len(y)), key=lambda i: -p[i])
    sizes = [101] * 3 + [100] * 7
    start, seen_pos = 0, 0
    for d, size in enumerate(sizes, start=1):
        rows = order[start : start + size]
        pos = sum(y[i] for i in rows)
        seen_pos += pos
        start += size
        assert table.loc[d, "n"] == size
        assert table.loc[d, "n_positive"] == pos
        assert table.loc[d, "lift"] == pytest.approx(pos / size / y.mean())
        assert table.loc[d, "cumulative_capture"] == pytest.approx(seen_pos / y.sum())
        assert table.loc[d, "cumulative_lift"] == pytest.approx(seen_pos / start / y.mean())
        assert table.loc[d, "score_max"] == pytest.approx(max(p[i] for i in rows))
    assert table.cumulative_capture.iloc[-1] == pytest.approx(1.0)


def test_perfect_and_random_rankings():
    rng = np.random.default_rng(3)
    y = (rng.random(1000) < 0.05).astype(int)
    perfect = evaluate_classifier(y, y * 0.9 + 0.05)
    # All positives (5 % of rows) fall in decile 1: lift = 1/0.05 * (positives / 100 rows).
    assert perfect.deciles[0].cumulative_capture == 1.0
    assert perfect.deciles[0].lift == pytest.approx(y.sum() / 100 / y.mean())
    assert perfect.roc_auc == 1.0
    rand = evaluate_classifier(y, rng.random(1000))
    assert 0.3 < rand.deciles[4].cumulative_capture < 0.7


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 400), bins=st.integers(1, 12))
def test_lift_table_invariants(seed, n, bins):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    s = np.round(rng.random(n), 2)  # ties included
    t = lift_by_decile(y, s, bins=bins)
    assert t.n.sum() == n and t.n_positive.sum() == y.sum()
    assert np.all(np.diff(t.cumulative_capture) >= -1e-12)
    assert t.cumulative_capture.iloc[-1] == pytest.approx(1.0)
    # Lift averages to 1 when weighted by bin size.
    assert np.average(t.lift, weights=t.n) == pytest.approx(1.0)
    # Bins are in descending score order.
    assert np.all(t.score_min.to_numpy()[:-1] >= t.score_max.to_numpy()[1:])


def test_round_trip_and_headline():
    y, p = _scored(seed=4, n=500)
    ev = evaluate_classifier(y, p)
    back = ClassificationEvaluation.model_validate_json(ev.model_dump_json())
    assert back == ev
    head = ev.headline()
    assert head["roc_auc"] == ev.roc_auc and head["capture_top_decile"] == ev.deciles[0].cumulative_capture
    assert set(head) >= {"roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile"}


def test_input_errors():
    y, p = _scored(n=100)
    with pytest.raises(DataValidationError, match="lengths differ"):
        evaluate_classifier(y[:-1], p)
    with pytest.raises(DataValidationError, match="single class"):
        evaluate_classifier(np.zeros(100), p)
    with pytest.raises(DataValidationError, match=r"probabilities in \[0, 1\]"):
        evaluate_classifier(y, p * 3)
    with pytest.raises(DataValidationError, match="0/1 or bool"):
        evaluate_classifier(y * 2, p)
    with pytest.raises(DataValidationError, match="NaN"):
        evaluate_classifier(y, np.r_[np.nan, p[1:]])
    with pytest.raises(DataValidationError, match="no rows"):
        evaluate_classifier([], [])
    with pytest.raises(DataValidationError, match="calibration_strategy"):
        evaluate_classifier(y, p, calibration_strategy="isotonic")


def _png(fig: Figure, path) -> bytes:
    fig.savefig(path, format="png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    return data


def test_plots_render(tmp_path):
    y, p = _scored(seed=5, n=800)
    ev = evaluate_classifier(y, p)
    other = evaluate_classifier(y, np.clip(p * 0.8, 0, 1))

    cal = plot_calibration({"xgb": ev, "shrunk": other})
    assert isinstance(cal, Figure)
    ax = cal.axes[0]
    assert len(ax.get_lines()) == 3  # diagonal + two models
    assert "Brier" in ax.get_legend().get_texts()[1].get_text()
    _png(cal, tmp_path / "cal.png")

    lift = plot_lift(ev)
    assert len(lift.axes) == 2 and len(lift.axes[0].patches) == 10
    _png(lift, tmp_path / "lift.png")

    rng = np.random.default_rng(6)
    n = 1000
    true_tau = np.where(rng.random(n) < 0.4, -0.2, 0.0)
    t = rng.integers(0, 2, n)
    churn = (rng.random(n) < 0.3 + t * true_tau).astype(int)
    q = plot_qini(churn, t, {"T": true_tau + rng.normal(0, 0.1, n), "X": true_tau + rng.normal(0, 0.2, n)},
                  true_uplift=true_tau, negative_outcome=True, show_perfect=True)
    labels = [x.get_text() for x in q.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("T (Qini") and any(lb.startswith("oracle") for lb in labels)
    assert "retained" in q.axes[0].get_ylabel()
    _png(q, tmp_path / "qini.png")
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_calibration({})
