"""Adding an offer is a YAML edit: no offer id is written in Python, every offer fact is in the catalog.

The fast tests rank drawn accounts with a catalog written to ``tmp_path``; the integration test
trains champions on a small world (which never saw the new offer) and ranks it with that catalog
through ``telco-nbo rank --catalog`` and through the service over real HTTP.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from nbo_support import make_features, make_scores
from serving_support import Server, trained_store
from typer.testing import CliRunner

from telco_nbo.cli import app
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.evaluation.economics import DEFAULT_ECONOMICS, Economics
from telco_nbo.nbo.catalog import (
    bill_changes,
    evidenced_retention_offer,
    load_catalog,
    offer_grants,
)
from telco_nbo.nbo.config import NboConfig
from telco_nbo.nbo.rank import PRIOR_REASON, Policy, rank_batch
from telco_nbo.nbo.signals import need_reasons_arrays

NEW_ID = "SMART_HOME_KIT"
NEED_TEXT = "home broadband, {household_size:int} people at home"
PRIOR = 0.35


def _shipped() -> dict:
    return yaml.safe_load(resources.files("telco_nbo.nbo").joinpath("catalog.yaml").read_text())


def new_offer(**changes: object) -> dict:
    """An offer the shipped catalog and every trained model have never seen."""
    offer = {
        "offer_id": NEW_ID,
        "kind": "add_on",
        "product": "Smart home starter kit",
        "monthly_price": 9.0,
        "monthly_margin": 30.0,
        "term_months": 0,
        "channels": ["app", "email"],
        "eligibility": {"requires_line": "broadband"},
        "message": "Add the {product} for {price} a month, {term}.",
        "acceptance_prior": PRIOR,
        "needs": [{"when": [{"feature": "account_has_broadband", "op": "true"}], "say": NEED_TEXT}],
    }
    offer.update(changes)
    return {k: v for k, v in offer.items() if v is not None}


def write_catalog(tmp_path: Path, offer: dict | None = None, **top: object) -> Path:
    """The shipped catalog plus ``offer`` (default :func:`new_offer`) as a YAML file in ``tmp_path``."""
    raw = _shipped()
    raw["offers"].append(offer or new_offer())
    raw.update(top)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _need_text(size: float) -> str:
    return NEED_TEXT.replace("{household_size:int}", str(int(round(size))))


# ---- fast: the decision layer with drawn accounts ------------------------------------------------


def test_a_new_offer_from_yaml_is_ranked_on_its_prior_with_reasons(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    f = make_features(600, seed=4)
    # Scores as a model that never saw the offer gives them: no rows for it.
    scores = make_scores(f, load_catalog(), seed=4)
    out = rank_batch(f, scores, catalog, top_k=3)
    new = out[(out.offer_id == NEW_ID) & out.selected]
    assert len(new) > 0
    assert (new.propensity == PRIOR).all()
    # No effect is borrowed: acceptance x margin only, minus the contact.
    assert (new.uplift == 0).all() and (new.retention_value == 0).all()
    assert np.allclose(new.expected_value, PRIOR * 30.0 * new.margin_months - new.contact_cost)
    size = f.set_index("account_id")["household_size"]
    for _, row in new.iterrows():
        assert row["reasons"][0] == _need_text(size[row["account_id"]])
        assert PRIOR_REASON.format(p=PRIOR) in row["reasons"]
        assert "35%" in PRIOR_REASON.format(p=PRIOR)
    # Offers a model scored never carry the prior's reason.
    others = out[(out.offer_id != NEW_ID) & out.selected]
    assert not any(PRIOR_REASON.format(p=PRIOR) in r for r in others.reasons)


def test_without_a_prior_an_unscored_offer_is_still_refused(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, new_offer(acceptance_prior=None)))
    f = make_features(200, seed=1)
    with pytest.raises(DataValidationError, match=f"no propensity .*{NEW_ID}"):
        rank_batch(f, make_scores(f, load_catalog(), seed=1), catalog)


def test_a_model_score_wins_over_the_prior(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    f = make_features(300, seed=2)
    out = rank_batch(f, make_scores(f, catalog, seed=2), catalog, top_k=None)
    new = out[(out.offer_id == NEW_ID) & out.selected]
    assert len(new) and (new.propensity != PRIOR).all()
    assert not any(PRIOR_REASON.format(p=PRIOR)[:20] in " ".join(r) for r in new.reasons)


def test_catalog_conflicts_and_needs_are_checked_on_load(tmp_path: Path) -> None:
    bad = _shipped()["conflicts"] + [{"a": "HOME_FIBRE", "b": NEW_ID, "why": "typo"}]
    with pytest.raises(ConfigError, match="conflict names unknown offer_id 'HOME_FIBRE'"):
        load_catalog(write_catalog(tmp_path, conflicts=bad))
    for need, words in (
        ({"when": [{"feature": "household_size", "op": "~", "value": 1}], "say": "x"}, "op"),
        ({"when": [{"feature": "household_size", "op": ">=", "value": 1}], "say": "{household_size:pct2}"}, "format"),
        ({"when": [{"feature": "household_size", "op": ">="}], "say": "x"}, "exactly one of value or other"),
        ({"when": [{"feature": "account_has_tv", "op": "true", "value": 1}], "say": "x"}, "no value or other"),
        ({"when": [{"feature": "househld_size", "op": ">=", "value": 3}], "say": "x"}, r"unknown column\(s\) \['househld_size'\]"),
        ({"when": [{"feature": "household_size", "op": ">=", "value": 3}], "say": "{people}"}, r"\['people'\]"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_catalog(write_catalog(tmp_path, new_offer(needs=[need])))
    with pytest.raises(ConfigError, match="acceptance_prior"):
        load_catalog(write_catalog(tmp_path, new_offer(acceptance_prior=1.5)))


def test_a_catalog_conflict_between_new_offers_holds_in_a_household(tmp_path: Path) -> None:
    conflicts = _shipped()["conflicts"] + [{"a": NEW_ID, "b": NEW_ID, "why": "one kit per home"}]
    catalog = load_catalog(write_catalog(tmp_path, conflicts=conflicts))
    f = make_features(600, seed=4)
    free = NboConfig(caps={"promo_per_household": 5, "promo_per_account": 5}, conflicts=[])
    out = rank_batch(f, make_scores(f, load_catalog(), seed=4), catalog, free, top_k=3)
    new = out[out.offer_id == NEW_ID]
    assert not new[new.selected].household_id.duplicated().any()
    assert new.reason.fillna("").str.startswith("one kit per home: the household already gets").any()


def test_offer_facts_come_from_the_catalog(tmp_path: Path) -> None:
    own = load_catalog(write_catalog(tmp_path, new_offer(bill_change=-0.05, grants_flag="has_streaming")))
    assert offer_grants(own)[NEW_ID] == "has_streaming" and Economics.from_catalog(own).bill_changes()[NEW_ID] == -0.05
    value = Economics.from_catalog(own).accept_value(np.array([NEW_ID]), np.array([30.0]), np.array([0]), np.array([100.0]))
    assert value[0] == pytest.approx((30.0 - 0.05 * 100.0) * DEFAULT_ECONOMICS.annuity(6))
    shipped = load_catalog()
    assert offer_grants(shipped) == {o.offer_id: o.grants_flag for o in shipped.offers if o.grants_flag}
    assert set(offer_grants(shipped).values()) == {"has_device_protection", "has_travel_pack", "has_mesh_wifi",
                                                   "has_premium_care"}
    assert bill_changes(shipped) == {o.offer_id: o.bill_change for o in shipped.offers if o.bill_change}
    assert DEFAULT_ECONOMICS.bill_changes() == bill_changes(shipped)
    evidenced = evidenced_retention_offer(shipped)
    assert shipped.get(evidenced).kind == "retention" and shipped.get(evidenced).effect_evidence
    no_evidence = shipped.model_copy(update={"offers": [o.model_copy(update={"effect_evidence": []})
                                                        for o in shipped.offers]})
    with pytest.raises(ConfigError, match="no retention offer with effect_evidence"):
        evidenced_retention_offer(no_evidence)


def test_need_formats_render_as_the_reasons_always_read() -> None:
    # One row per kind of text the shipped catalog's needs print, checked word for word.
    policy = Policy.build()
    kinds = {o.offer_id: o.kind for o in policy.offers.offers}
    by_kind = {k: next(i for i, kk in kinds.items() if kk == k) for k in ("retention", "upsell", "cross_sell")}
    rows = [by_kind["retention"], by_kind["upsell"], by_kind["cross_sell"]]
    cols = {
        "account_months_to_contract_end": np.array([2.0, np.nan, np.nan]),
        "account_lifecycle_stage": np.array(["at_risk", None, None], dtype=object),
        "churn_probability": np.array([0.234, 0.0, 0.0]),
        "uplift": np.array([0.0341, 0.0, 0.0]),
        "line_data_cap_util_3m": np.array([np.nan, 0.834, np.nan]),
        "account_bill_change_3m": np.array([np.nan, 1.25, np.nan]),
        "line_overage_months_6m": np.array([np.nan, np.nan, np.nan]),
        "household_size": np.array([np.nan, np.nan, 4.0]),
        "account_n_mobile_lines": np.array([np.nan, np.nan, 2.0]),
    }
    texts = need_reasons_arrays(cols, np.array(rows, dtype=object), np.array([kinds[r] for r in rows], dtype=object),
                                policy.signals)
    assert texts[0] == ["contract ends in 61 days", "at risk (complaint, repeated overage or a long-open ticket)",
                        "churn risk 23% in the next 3 months", "an offer is expected to cut churn risk by 3.4 points"]
    assert texts[1] == ["uses 83% of the data allowance (3-month mean)", "bill up 25% on its 3-month average"]
    assert texts[2] == ["4 people in the household"]  # the first cross-sell (home internet)


# ---- integration: trained champions that never saw the offer, batch rank and the service ---------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trained_store(tmp_path_factory.mktemp("offers-from-yaml"))


@pytest.mark.slow
@pytest.mark.integration
def test_a_new_offer_from_yaml_is_ranked_with_reasons_by_batch_rank_and_the_service(
        store: dict, tmp_path: Path) -> None:
    path = write_catalog(tmp_path)
    out = tmp_path / "ranking.parquet"
    res = CliRunner().invoke(app, ["rank", "--data", str(store["data"]), "--out", str(out), "--catalog", str(path),
                                   "--tracking-uri", store["uri"], "--top-k", "3"])
    assert res.exit_code == 0, res.output
    ranking = pd.read_parquet(out)
    new = ranking[(ranking.offer_id == NEW_ID) & ranking.selected]
    assert len(new) > 0
    assert (new.propensity == PRIOR).all()
    for reasons in new.reasons:
        assert list(reasons)[0].startswith("home broadband, ") and PRIOR_REASON.format(p=PRIOR) in list(reasons)

    srv = Server.cli(store, tmp_path, extra=["--catalog", str(path)])
    try:
        srv.wait_ready()
        for account in new.account_id.astype(str).head(5):
            r = httpx.post(srv.url + "/rank", json={"account_id": account, "top_k": 3},
                           headers={"X-API-Key": "test-key"}, timeout=30)
            assert r.status_code == 200, r.text
            (d,) = r.json()["decisions"]
            offered = {o["offer_id"]: o for o in d["offers"]}
            assert NEW_ID in offered
            batch = new[new.account_id.astype(str) == account].iloc[0]
            assert offered[NEW_ID]["rank"] == int(batch["rank"])
            # The same need and prior reasons (batch rank also appends the churn model's SHAP reasons).
            said = offered[NEW_ID]["reasons"]
            assert said[0] == list(batch["reasons"])[0] and PRIOR_REASON.format(p=PRIOR) in said
            assert offered[NEW_ID]["value"]["propensity"] == pytest.approx(PRIOR)
    finally:
        srv.stop()
