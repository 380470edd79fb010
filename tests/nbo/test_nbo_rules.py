"""Rules: each layer removes what it should, says why, and bad input is named."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from nbo_support import make_features, make_scores

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.nbo.config import NboConfig, load_nbo_config
from telco_nbo.nbo.rank import rank_batch
from telco_nbo.nbo.rules import REQUIRED_COLUMNS, default_rules, evaluate_rules

CATALOG = load_catalog()
OFFER_IDS = [o.offer_id for o in CATALOG.offers]


def one_account(**overrides) -> pd.DataFrame:
    """A plain consumer account: mobile-only, fiber address, growth stage, no issues, no contacts."""
    f = make_features(1, seed=0, p_issue=0, p_complaint=0, p_contacted=0)
    base = {
        "account_type": "consumer", "household_fiber_eligible": True, "household_fwa_eligible": False,
        "account_has_mobile": True, "account_has_broadband": False, "account_has_tv": False,
        "account_has_fixed_voice": False,
        "account_has_capped_mobile": True, "account_has_device_protection": False,
        "account_has_travel_pack": False, "account_has_mesh_wifi": False, "account_has_premium_care": False,
        "account_lifecycle_stage": "growth", "account_months_to_contract_end": np.nan,
        "account_channel_preference": "app", "account_network_tickets_180d": 0,
        "account_open_service_issue": False, "account_active_complaint": False,
    }
    for k, v in {**base, **overrides}.items():
        f[k] = pd.Series([v], dtype=f[k].dtype if k in f and not isinstance(v, float) else None)
    return f


def blocked_by(features: pd.DataFrame, config: NboConfig | None = None, timing_rule=None) -> dict[str, list[str]]:
    ev = evaluate_rules(features, CATALOG, config, timing_rule=timing_rule)
    ids = [r.rule_id for r in ev.rules]
    return {OFFER_IDS[j]: [ids[r] for r in np.flatnonzero(ev.blocked[:, 0, j])] for j in range(len(OFFER_IDS))}


def test_plain_account_gets_the_expected_eligible_set():
    b = blocked_by(one_account())
    passing = sorted(o for o, rules in b.items() if not rules)
    # RETENTION_DISCOUNT has randomized evidence of its effect: no renewal-stage rule, its effect decides.
    assert passing == ["DATA_UPSELL", "DEVICE_PROTECTION", "EXTRA_LINE", "HOME_FIBER", "RETENTION_DISCOUNT",
                       "TRAVEL_PACK"]
    assert b["HOME_FWA"] == ["ELIG_NETWORK"]
    assert b["WINBACK"] == ["ELIG_ACCOUNT_STATUS"]
    assert b["TV_STREAMING"] == ["ELIG_REQUIRES_LINE"]
    # PLAN_REVIEW has none: the conservative renewal default keeps it to the renewal window.
    assert b["PLAN_REVIEW"] == ["APPL_TIMING"]
    assert b["PREMIUM_CARE"] == ["APPL_NO_SERVICE_NEED"]


def test_eligibility_network_and_account_type():
    b = blocked_by(one_account(household_fiber_eligible=False, household_fwa_eligible=True,
                               account_type="small_business"))
    assert "ELIG_NETWORK" in b["HOME_FIBER"] and "ELIG_NETWORK" not in b["HOME_FWA"]
    assert "ELIG_ACCOUNT_TYPE" in b["EXTRA_LINE"]


def test_applicability_owned_products_and_capped_mobile():
    b = blocked_by(one_account(account_has_broadband=True, account_has_tv=True, account_has_travel_pack=True,
                               account_has_capped_mobile=False))
    assert "APPL_OWNS_LINE" in b["HOME_FIBER"]
    assert "APPL_OWNS_LINE" in b["TV_STREAMING"]
    assert "APPL_OWNS_FLAG" in b["TRAVEL_PACK"]
    assert "APPL_NO_CAPPED_MOBILE" in b["DATA_UPSELL"]


def test_open_service_issue_leaves_only_service_recovery():
    f = one_account(account_open_service_issue=True, account_has_broadband=True)
    b = blocked_by(f)
    for o in CATALOG.offers:
        if o.promotional:
            assert "SUIT_OPEN_SERVICE_ISSUE" in b[o.offer_id]
    assert b["MESH_WIFI"] == [] and b["PREMIUM_CARE"] == []


def test_active_complaint_blocks_generic_promotion_not_retention():
    b = blocked_by(one_account(account_active_complaint=True, account_lifecycle_stage="at_risk"))
    assert "SUIT_ACTIVE_COMPLAINT" in b["HOME_FIBER"]
    assert "SUIT_ACTIVE_COMPLAINT" not in b["RETENTION_DISCOUNT"]
    assert b["RETENTION_DISCOUNT"] == []


def test_default_timing_renewal_window():
    f = one_account(account_lifecycle_stage="growth", account_months_to_contract_end=2.0)
    assert "APPL_TIMING" not in blocked_by(f)["PLAN_REVIEW"]
    f = one_account(account_lifecycle_stage="growth", account_months_to_contract_end=8.0)
    assert "APPL_TIMING" in blocked_by(f)["PLAN_REVIEW"]


@dataclass
class FakeReadoutRule:
    """A timing rule as the A/B readout produces it: segment -> arm."""

    table: dict[str, str]
    segment_column: str = "account_lifecycle_stage"
    control_arm: str = "control"

    def arm_for(self, segment: object) -> str | None:
        return self.table.get(str(segment))


def test_timing_rule_from_a_readout_overrides_the_default():
    renew = one_account(account_lifecycle_stage="renewal", account_months_to_contract_end=2.5)
    # Control won in the renewal segment: no retention offer there, although the default allows it.
    assert "APPL_TIMING" in blocked_by(renew, timing_rule=FakeReadoutRule({"renewal": "control"}))["PLAN_REVIEW"]
    # "60 days before contract end" won: 2.5 months is too early, 1.5 months is right.
    rule = FakeReadoutRule({"renewal": "pre_end60"})
    assert "APPL_TIMING" in blocked_by(renew, timing_rule=rule)["PLAN_REVIEW"]
    soon = one_account(account_lifecycle_stage="renewal", account_months_to_contract_end=1.5)
    assert "APPL_TIMING" not in blocked_by(soon, timing_rule=rule)["PLAN_REVIEW"]
    # No verdict for the segment -> default rule.
    assert "APPL_TIMING" not in blocked_by(renew, timing_rule=FakeReadoutRule({}))["PLAN_REVIEW"]
    # "day 30 of tenure" won for mobile-only accounts (the readout's product_mix, rebuilt from lines).
    rule = FakeReadoutRule({"mobile_only": "day30"}, segment_column="product_mix")
    young = one_account(account_lifecycle_stage="new", account_tenure_months=1.5)
    assert blocked_by(young, timing_rule=rule)["PLAN_REVIEW"] == []
    assert "APPL_TIMING" in blocked_by(young)["PLAN_REVIEW"]  # the default keeps new accounts out
    old = one_account(account_lifecycle_stage="renewal", account_months_to_contract_end=1.0, account_tenure_months=20)
    assert "APPL_TIMING" in blocked_by(old, timing_rule=rule)["PLAN_REVIEW"]
    with pytest.raises(ConfigError, match="arm 'day_45'"):
        blocked_by(renew, timing_rule=FakeReadoutRule({"renewal": "day_45"}))


def test_timing_rule_segment_column_must_exist():
    with pytest.raises(DataValidationError, match="value_decile"):
        blocked_by(one_account(), timing_rule=FakeReadoutRule({}, segment_column="value_decile"))


def test_contact_caps_account_household_and_channel():
    b = blocked_by(one_account(account_promo_contacts_30d=1, household_promo_contacts_30d=1))
    assert "SUIT_ACCOUNT_PROMO_CAP" in b["HOME_FIBER"] and "SUIT_HOUSEHOLD_PROMO_CAP" in b["HOME_FIBER"]
    # TRAVEL_PACK goes out on app or sms only: both at their caps -> blocked; HOME_FIBER still has retail.
    b = blocked_by(one_account(account_contacts_app_30d=4, account_contacts_sms_30d=2))
    assert "SUIT_CHANNEL_CAP" in b["TRAVEL_PACK"]
    assert "SUIT_CHANNEL_CAP" not in b["HOME_FIBER"]
    cfg = NboConfig.model_validate({"caps": {"per_channel": {"app": 10, "sms": 10}}})
    assert "SUIT_CHANNEL_CAP" not in blocked_by(one_account(account_contacts_app_30d=4), cfg)["TRAVEL_PACK"]


def test_win_back_only_for_ended_accounts():
    f = one_account()
    f["account_is_active"] = False
    b = blocked_by(f)
    assert b["WINBACK"] == []
    assert all("ELIG_ACCOUNT_STATUS" in b[o] for o in OFFER_IDS if o != "WINBACK")


def test_rule_reasons_are_plain_words_per_offer():
    ev = evaluate_rules(one_account(household_fiber_eligible=False), CATALOG)
    k = [r.rule_id for r in ev.rules].index("ELIG_NETWORK")
    assert ev.reasons[k][OFFER_IDS.index("HOME_FIBER")] == "the network cannot deliver fiber at this address"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["account_open_service_issue"]), "missing columns: \\['account_open_service_issue'\\]"),
        (lambda f: pd.concat([f, f.head(1)]), "duplicate account_id"),
        (lambda f: f.assign(account_has_mobile=f["account_has_mobile"].map({True: "yes", False: "no"})),
         "'account_has_mobile' must be bool"),
        (lambda f: f.assign(account_lifecycle_stage="teenage"), "unknown values 'teenage'"),
        (lambda f: f.assign(account_promo_contacts_30d=-1), "negative counts"),
        (lambda f: f.assign(account_contacts_sms_30d="two"), "'account_contacts_sms_30d' must be numeric"),
        (lambda f: f.iloc[0:0], "no rows"),
    ],
)
def test_bad_feature_frames_are_named(mutate, message):
    with pytest.raises(DataValidationError, match=message):
        evaluate_rules(mutate(make_features(20, 1)), CATALOG)


def test_rule_columns_are_typed_by_the_contract():
    # The rules name their columns; kinds and categories come from the one column contract.
    from telco_nbo import contract
    from telco_nbo.nbo.rules import OPTIONAL_COLUMNS

    for name, kind in {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}.items():
        assert kind == contract.column(name).kind, name
    assert REQUIRED_COLUMNS["account_lifecycle_stage"] == "category"
    f = make_features(20, 1).assign(account_channel_preference="pigeon")
    allowed = list(contract.column("account_channel_preference").categories)
    with pytest.raises(DataValidationError, match=re.escape(f"'pigeon'; allowed: {allowed}")):
        evaluate_rules(f, CATALOG)


def test_required_columns_match_the_feature_builder_output():
    # The real feature builder (H3) must provide every column the rules read.
    features = pytest.importorskip("telco_nbo.features")
    from worlds import tiny_world

    world = tiny_world()
    f = features.build_account_features(world.tables, pd.Timestamp("2025-12-31"))
    assert not [c for c in REQUIRED_COLUMNS if c not in f.columns]
    evaluate_rules(f, CATALOG)  # validates without error


def test_config_yaml_round_trip_and_errors(tmp_path):
    p = tmp_path / "nbo.yaml"
    p.write_text("horizon_months: 24\nkind_weights: {retention: 1.5}\ncaps: {promo_per_household: 2}\n")
    cfg = load_nbo_config(p)
    assert cfg.horizon_months == 24 and cfg.kind_weight("retention") == 1.5 and cfg.kind_weight("upsell") == 1.0
    assert cfg.caps.promo_per_household == 2 and cfg.caps.per_channel["sms"] == 2
    p.write_text("horizon_months: 0\n")
    with pytest.raises(ConfigError, match="horizon_months"):
        load_nbo_config(p)
    p.write_text("contact_costs: {app: 1}\n")
    with pytest.raises(ConfigError, match="missing"):
        load_nbo_config(p)
    p.write_text("conflicts: [{a: 'kind:gift', b: HOME_FIBER, why: x}]\n")
    with pytest.raises(ConfigError, match="unknown offer kind"):
        load_nbo_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_nbo_config(tmp_path / "absent.yaml")


def test_conflict_table_with_unknown_offer_is_refused():
    cfg = NboConfig.model_validate({"conflicts": [{"a": "HOME_FIBRE", "b": "HOME_FWA", "why": "typo"}]})
    f = make_features(30, 2)
    with pytest.raises(ConfigError, match="HOME_FIBRE"):
        rank_batch(f, make_scores(f), config=cfg)


def test_duplicate_rule_ids_are_refused():
    rules = default_rules()
    with pytest.raises(ConfigError, match="duplicate rule ids"):
        evaluate_rules(make_features(5), CATALOG, rules=[*rules, rules[0]])


def test_timing_from_evidence_not_a_hard_coded_stage():
    """The renewal default holds only for offers nobody measured; a readout's verdict governs what it tested."""
    growth = one_account()
    assert "APPL_TIMING" not in blocked_by(growth)["RETENTION_DISCOUNT"]
    # Switched off: the default governs every retention offer again.
    strict = NboConfig.model_validate({"timing": {"evidence_decides": False}})
    assert "APPL_TIMING" in blocked_by(growth, strict)["RETENTION_DISCOUNT"]

    class Rule:
        segment_column = "account_lifecycle_stage"
        control_arm = "control"

        def __init__(self, experiment_id):
            self.experiment_id = experiment_id

        def arm_for(self, segment):
            return "control"  # "do not offer" everywhere

    # A verdict of the experiment that measured RETENTION_DISCOUNT governs it ...
    assert "APPL_TIMING" in blocked_by(growth, timing_rule=Rule("EXP-RETENTION-1"))["RETENTION_DISCOUNT"]
    # ... while a readout of another experiment governs the offers that name it (or, if none
    # does, the unmeasured ones): not an offer whose own experiment says where it pays.
    b = blocked_by(growth, timing_rule=Rule("EXP-TIMING-1"))
    assert "APPL_TIMING" not in b["RETENTION_DISCOUNT"] and "APPL_TIMING" in b["PLAN_REVIEW"]


def test_sellable_is_what_could_be_sold_not_what_should_be_now():
    """The network, account and ownership rules only: an open issue or the timing does not matter."""
    from telco_nbo.nbo.rules import sellable

    catalog = CATALOG
    ids = [o.offer_id for o in catalog.offers]
    f = one_account(account_lifecycle_stage="early", account_open_service_issue=True)
    can = sellable(f, catalog)[0]
    ev = evaluate_rules(f, catalog)
    elig = ~ev.blocked[[k for k, r in enumerate(ev.rules) if r.layer == "eligibility"]].any(axis=0)[0]
    owned = ev.blocked[[k for k, r in enumerate(ev.rules) if r.rule_id.startswith("APPL_OWNS")]].any(axis=0)[0]
    # Never more than eligibility allows, never a product already owned.
    assert not (can & ~elig).any() and not (can & owned).any()
    sold_out = ev.blocked[[k for k, r in enumerate(ev.rules) if r.rule_id == "SUIT_OPEN_SERVICE_ISSUE"]].any(axis=0)[0]
    assert (can & sold_out).any()  # blocked for now by the open issue, but sellable
