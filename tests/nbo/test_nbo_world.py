"""Ranking a generated world end to end: generator -> point-in-time features -> rank_batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.rank import decisions_from_frame, rank_batch
from telco_nbo.nbo.rules import evaluate_rules
from telco_nbo.nbo.scores import Scores


@pytest.fixture(scope="module")
def world_features() -> pd.DataFrame:
    from telco_nbo.data.synthetic import generate_world
    from telco_nbo.features import build_account_features

    world = generate_world(2000, seed=3)
    return build_account_features(world.tables, pd.Timestamp(world.meta["as_of"]))


def test_rank_a_generated_world(world_features: pd.DataFrame):
    f = world_features
    catalog = load_catalog()
    ids = f["account_id"].to_numpy()
    offer_ids = [o.offer_id for o in catalog.offers]
    rng = np.random.default_rng(0)
    # Scores are explicit inputs here (the models are tested elsewhere): shaped like model output.
    scores = Scores(
        pd.DataFrame({"account_id": ids, "churn_probability": rng.beta(1.5, 10, len(ids)),
                      "clv": rng.gamma(3, 300, len(ids)), "retention_uplift": rng.normal(0.02, 0.03, len(ids))}),
        pd.DataFrame({"account_id": np.repeat(ids, len(offer_ids)), "offer_id": np.tile(offer_ids, len(ids)),
                      "propensity": rng.beta(1.2, 9, len(ids) * len(offer_ids))}),
        model_versions={"telco-churn": "test"},
    )
    out = rank_batch(f, scores, catalog, top_k=3, as_of=pd.Timestamp("2025-12-31"))
    assert len(out) == len(f) * len(offer_ids)
    top = out[out.selected]
    assert len(top) > 0.3 * len(f)  # most accounts get something
    assert not top.promotional[top.account_id.isin(f.loc[f.account_open_service_issue, "account_id"])].any()
    assert not top[top.promotional].household_id.duplicated().any()
    passed = evaluate_rules(f, catalog).passed
    row = pd.Series(np.arange(len(f)), index=f.account_id)
    col = pd.Series(np.arange(len(offer_ids)), index=offer_ids)
    assert passed[row[top.account_id].to_numpy(), col[top.offer_id].to_numpy()].all()
    # Real feature values show up in the reasons.
    assert top["reasons"].map(len).gt(0).mean() > 0.5
    decisions = decisions_from_frame(out[out.account_id.isin(ids[:50])])
    assert len(decisions) == 50
