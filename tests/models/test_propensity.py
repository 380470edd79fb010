"""Churn classifier builder, Optuna search space, offer-acceptance datasets (point-in-time) and
propensity-to-own datasets (leakage rules), on a small synthetic world and the IBM table."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from telco_nbo.data.synthetic import generate_world
from telco_nbo.errors import DataValidationError
from telco_nbo.features import build_account_features
from telco_nbo.models.churn import (
    MAX_THREADS,
    check_model_frame,
    default_search_space,
    make_churn_classifier,
)
from telco_nbo.models.propensity import (
    OFFER_FEATURE_COLUMNS,
    auc_by_offer,
    make_candidate_rows,
    make_offer_dataset,
    offer_features,
    ownership_dataset,
    ownership_targets,
)

TINY = dict(n_estimators=30, max_depth=3, learning_rate=0.2)


@pytest.fixture(scope="module")
def world():
    return generate_world(1200, 5)


@pytest.fixture(scope="module")
def snapshots(world):
    """Account features at month ends, stacked with an ``as_of`` column."""
    dates = pd.date_range("2024-06-30", "2025-11-30", freq="2ME")
    frames = [build_account_features(world.tables, d).assign(as_of=d) for d in dates]
    return pd.concat(frames, ignore_index=True)


def test_churn_classifier_defaults_and_early_stopping():
    model = make_churn_classifier(n_jobs=16, max_depth=3)
    params = model.get_params()
    assert params["n_jobs"] == MAX_THREADS and params["max_depth"] == 3
    assert params["tree_method"] == "hist" and params["enable_categorical"] is True
    assert params["eval_metric"] == ["auc", "logloss"]

    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame({
        "x": rng.normal(size=n),
        "contract": pd.Categorical(rng.choice(["m2m", "1y", "2y"], n), categories=["m2m", "1y", "2y"]),
        "flag": rng.random(n) < 0.3,
    })
    y = (rng.random(n) < 1 / (1 + np.exp(-(X.x + (X.contract == "m2m") * 1.0 - 1)))).astype(int)
    clf = make_churn_classifier(n_estimators=300, learning_rate=0.3, early_stopping_rounds=5)
    clf.fit(X[:1000], y[:1000], eval_set=[(X[1000:], y[1000:])], verbose=False)
    assert clf.best_iteration < 299  # stopped early on the last metric (logloss)
    assert set(clf.evals_result()["validation_0"]) == {"auc", "logloss"}
    assert roc_auc_score(y[1000:], clf.predict_proba(X[1000:])[:, 1]) > 0.7


def test_search_space_with_a_real_optuna_trial():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1))
    for _ in range(3):
        trial = study.ask()
        params = default_search_space(trial)
        assert 2 <= params["max_depth"] <= 8 and 0.01 <= params["learning_rate"] <= 0.3
        assert set(params) == set(trial.params)
        model = make_churn_classifier(**params)
        assert model.get_params()["n_jobs"] == MAX_THREADS
        study.tell(trial, 0.5)


def test_check_model_frame_names_the_problem():
    ok = pd.DataFrame({"a": [1.0, 2.0], "b": pd.Categorical(["x", "y"]), "c": [True, False]})
    assert check_model_frame(ok) is ok
    with pytest.raises(DataValidationError, match=r"s \(object\)"):
        check_model_frame(ok.assign(s=["u", "v"]))
    with pytest.raises(DataValidationError, match="no rows"):
        check_model_frame(ok.iloc[:0])
    with pytest.raises(DataValidationError, match="duplicate column"):
        check_model_frame(pd.concat([ok, ok[["a"]]], axis=1))
    with pytest.raises(DataValidationError, match="expected a pandas DataFrame"):
        check_model_frame([[1, 2]])
    assert list(check_model_frame(np.zeros((2, 3))).columns) == ["f0", "f1", "f2"]


# ------------------------------------------------------------------------------------------------
# Offer acceptance


def test_offer_dataset_is_point_in_time(world, snapshots):
    contacts, offers = world.tables["contacts"], world.tables["offers"]
    ds = make_offer_dataset(contacts, snapshots, offers, on_missing="drop")
    made = contacts[contacts.contacted]
    assert len(ds.X) == len(ds.y) == len(ds.keys) > 0.8 * len(made)
    assert set(ds.keys.contact_id) <= set(made.contact_id)
    # Labels are the contacts' acceptances.
    acc = made.set_index("contact_id").accepted.astype(int)
    np.testing.assert_array_equal(ds.y, acc.loc[ds.keys.contact_id].to_numpy())
    # Each row uses the latest snapshot strictly before the contact (brute force on a sample).
    snap_times = np.sort(snapshots.as_of.unique())
    for i in np.random.default_rng(0).choice(len(ds.keys), 40, replace=False):
        k = ds.keys.iloc[i]
        mine = snapshots[(snapshots.account_id == k.account_id) & (snapshots.as_of < k.contacted_at)]
        latest = mine.loc[mine.as_of.idxmax()]
        assert ds.X.iloc[i]["account_tenure_months"] == pytest.approx(latest["account_tenure_months"])
        assert latest.as_of == max(t for t in snap_times if t < k.contacted_at and t in set(mine.as_of))
    # Offer attributes and channel are fixed-category features.
    for c in OFFER_FEATURE_COLUMNS + ["contact_channel"]:
        assert c in ds.X.columns
    assert list(ds.X.offer_id.cat.categories) == sorted(offers.offer_id)
    row = offers.set_index("offer_id").loc[ds.keys.offer_id.iloc[0]]
    assert ds.X.offer_monthly_margin.iloc[0] == row.monthly_margin
    # Contacts without a snapshot before them are refused by default, naming the way out.
    with pytest.raises(DataValidationError, match="on_missing='drop'"):
        make_offer_dataset(contacts, snapshots, offers)


@pytest.mark.slow
def test_offer_model_trains_scores_candidates_and_reports_auc_per_offer(world, snapshots):
    ds = make_offer_dataset(world.tables["contacts"], snapshots, world.tables["offers"], on_missing="drop")
    model = make_churn_classifier(**TINY).fit(ds.X, ds.y)
    p = model.predict_proba(ds.X)[:, 1]
    table = auc_by_offer(ds.y, p, ds.keys.offer_id, min_per_class=3)
    assert table.index[-1] == "__all__" and table.loc["__all__", "n"] == len(ds.y)
    assert table.drop(index="__all__")["n"].sum() == len(ds.y)
    for offer, row in table.drop(index="__all__").iterrows():
        m = (ds.keys.offer_id == offer).to_numpy()
        assert row.n == m.sum() and row.n_accepted == ds.y[m].sum()
        if np.isfinite(row.roc_auc):
            assert row.roc_auc == pytest.approx(roc_auc_score(ds.y[m], p[m]))
    # Serving rows: same columns and dtypes as training; all accounts x chosen offers.
    current = build_account_features(world.tables, "2025-12-31").head(25)
    cand = make_candidate_rows(current, world.tables["offers"], offer_ids=["DEVICE_PROTECTION", "TRAVEL_PACK"],
                               channel="app")
    assert len(cand.X) == 50 and cand.y is None
    assert list(cand.X.columns) == list(ds.X.columns)
    assert (cand.X.dtypes == ds.X.dtypes).all()
    assert list(cand.keys.offer_id[:2]) == ["DEVICE_PROTECTION", "TRAVEL_PACK"]
    scores = model.predict_proba(cand.X)[:, 1]
    assert np.all((scores > 0) & (scores < 1))


def test_offer_dataset_errors(world, snapshots):
    contacts, offers = world.tables["contacts"], world.tables["offers"]
    one_snapshot = snapshots[snapshots.as_of == snapshots.as_of.max()].drop(columns="as_of")
    with pytest.raises(DataValidationError, match="duplicate contact_id"):
        make_offer_dataset(pd.concat([contacts, contacts.head(1)]), one_snapshot, offers)
    with pytest.raises(DataValidationError, match="duplicate account_id"):
        make_offer_dataset(contacts, pd.concat([one_snapshot, one_snapshot.head(2)]), offers)
    with pytest.raises(DataValidationError, match="not in the offers table"):
        make_offer_dataset(contacts, one_snapshot, offers[offers.offer_id != "TRAVEL_PACK"], on_missing="drop")
    with pytest.raises(DataValidationError, match="missing column"):
        make_offer_dataset(contacts.drop(columns="accepted"), one_snapshot, offers)
    with pytest.raises(DataValidationError, match="no contacted rows"):
        make_offer_dataset(contacts.assign(contacted=False), one_snapshot, offers)
    with pytest.raises(DataValidationError, match="unknown channel"):
        offer_features(["TRAVEL_PACK"], offers, channels=["fax"])
    with pytest.raises(DataValidationError, match="lengths differ"):
        auc_by_offer([1, 0], [0.5], ["A", "B"])


# ------------------------------------------------------------------------------------------------
# Propensity to own


def test_ownership_on_the_feature_frame_excludes_the_label(world):
    feats = build_account_features(world.tables, "2025-12-31")
    targets = ownership_targets(feats)
    assert set(targets) == {"device_protection", "online_security", "streaming"}
    dp = targets["device_protection"]
    # Only accounts with a mobile line can own device protection.
    assert feats.loc[dp.index, "account_has_mobile"].all()
    assert dp.sum() == feats.account_has_device_protection.sum()
    ds = ownership_dataset(feats, "device_protection")
    assert "account_has_device_protection" not in ds.X.columns
    assert "account_monthly_charges" not in ds.X.columns and "account_has_online_security" in ds.X.columns
    assert ds.excluded["account_has_device_protection"] == "the label itself"
    np.testing.assert_array_equal(ds.y, dp.to_numpy())
    assert len(ds.X) == len(ds.y) == len(ds.index)
    keep = ownership_dataset(feats, "device_protection", drop_charges=False)
    assert "account_monthly_charges" in keep.X.columns
    with pytest.raises(DataValidationError, match="unknown add-on"):
        ownership_dataset(feats, "roaming")
    with pytest.raises(DataValidationError, match="neither an account feature frame"):
        ownership_targets(feats.drop(columns="account_has_streaming"))


@pytest.mark.slow
def test_ownership_on_ibm_telco(ibm_csv):
    raw = pd.read_csv(ibm_csv)
    targets = ownership_targets(raw)
    internet = raw.InternetService != "No"
    assert len(targets["online_security"]) == internet.sum()
    assert targets["online_security"].sum() == (raw.OnlineSecurity == "Yes").sum()
    ds = ownership_dataset(raw, "streaming")
    assert {"StreamingTV", "customerID", "Churn", "MonthlyCharges", "TotalCharges"}.isdisjoint(ds.X.columns)
    assert "StreamingMovies" in ds.X.columns and isinstance(ds.X.Contract.dtype, pd.CategoricalDtype)
    # Scoring rows encoded with the training categories; an unseen value is refused.
    again = ownership_dataset(raw.iloc[:50], "streaming", categories=ds.categories)
    for c in ds.categories:
        assert list(again.X[c].cat.categories) == list(ds.X[c].cat.categories)
    with pytest.raises(DataValidationError, match="not seen in training"):
        ownership_dataset(raw.iloc[:50].assign(Contract="Three year"), "streaming", categories=ds.categories)
    # A real signal remains without the leaky columns (measured ~0.78 with 150 trees).
    rng = np.random.default_rng(0)
    train = rng.random(len(ds.y)) < 0.7
    model = make_churn_classifier(**TINY).fit(ds.X[train], ds.y[train])
    assert roc_auc_score(ds.y[~train], model.predict_proba(ds.X[~train])[:, 1]) > 0.7
