"""The leakage test: nothing dated after ``as_of`` may change a feature.

Hypothesis appends future rows to every table of the hand-built world (usage of months not over
yet, tickets and contacts after ``as_of``, households / accounts / lines that start later) and
moves future-facing dates (end dates, resolutions, acceptances) to after ``as_of``. The line,
household and account frames must come out identical.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_features import AS_OF, _acct, _contact, _frame, _line, _ticket, _use, tiny_world

from telco_nbo import features as F
from telco_nbo.data.schema import BROADBAND_TECHS, CHANNELS, LINE_TYPES, PLAN_TIERS, SCHEMAS, TICKET_CATEGORIES
from telco_nbo.nbo.catalog import offer_grants

BASE = tiny_world()
OFFER_IDS = list(BASE["offers"]["offer_id"])
# Offers whose acceptance switches on an ownership flag: an acceptance of those after as_of is
# *used* (to turn the flag back off), so the mutation below only moves the other offers.
NEUTRAL_OFFERS = [o for o in OFFER_IDS if o not in offer_grants()]

EXPECTED = {
    build: build(BASE, AS_OF)
    for build in (F.build_account_features, F.build_line_features, F.build_household_features)
}

after_days = st.integers(min_value=1, max_value=400)


def _later(days: int, hours: int = 0) -> pd.Timestamp:
    return AS_OF + pd.Timedelta(days=days, hours=hours)


@st.composite
def future_world(draw) -> dict[str, pd.DataFrame]:
    """The base world plus rows and dates that all lie after AS_OF."""
    w = {k: v.copy() for k, v in BASE.items()}
    hh_ids = list(w["households"]["household_id"])
    acc_ids = list(w["accounts"]["account_id"])
    line_ids = list(w["lines"]["line_id"])

    # New households and accounts, created/started after AS_OF.
    new_hh = [
        {"household_id": f"H9{i}", "region": draw(st.sampled_from(["urban", "rural"])), "household_size": 2,
         "fiber_eligible": draw(st.booleans()), "fwa_eligible": False, "created_date": _later(draw(after_days))}
        for i in range(draw(st.integers(0, 2)))
    ]
    new_acc = [
        _acct(f"A9{i}", draw(st.sampled_from(hh_ids + [h["household_id"] for h in new_hh])),
              _later(draw(after_days)), contract="one_year", contract_end=_later(500))
        for i in range(draw(st.integers(0, 3)))
    ]
    all_acc = acc_ids + [a["account_id"] for a in new_acc]
    new_lines = []
    for i in range(draw(st.integers(0, 4))):
        ltype = draw(st.sampled_from(LINE_TYPES))
        new_lines.append(_line(
            f"L9{i}", draw(st.sampled_from(all_acc)), ltype, _later(draw(after_days)),
            tier=draw(st.sampled_from(PLAN_TIERS)),
            cap=10.0 if ltype == "mobile" else None,
            device=_later(draw(after_days)) if ltype == "mobile" else None,
            tech=draw(st.sampled_from(BROADBAND_TECHS)) if ltype == "broadband" else None,
            has_device_protection=draw(st.booleans()), has_travel_pack=draw(st.booleans()),
        ))
    all_lines = line_ids + [ln["line_id"] for ln in new_lines]

    # Usage of months that are not over at AS_OF (June 2024 is still running), any line.
    first_hidden = F.usage_cutoff(AS_OF)
    usage = []
    for _ in range(draw(st.integers(0, 8))):
        month = first_hidden + pd.DateOffset(months=draw(st.integers(0, 12)))
        usage.append(_use(draw(st.sampled_from(all_lines)), month,
                          gb=draw(st.floats(0, 100)), over=draw(st.floats(0, 20)), intl=50.0,
                          roam=draw(st.integers(0, 31)), dropped=draw(st.integers(0, 9)),
                          bill=draw(st.floats(0, 500))))
    tickets = [
        _ticket(f"T9{i}", draw(st.sampled_from(all_acc)), draw(st.sampled_from(TICKET_CATEGORIES)),
                _later(draw(after_days), draw(st.integers(0, 23))), None, complaint=draw(st.booleans()))
        for i in range(draw(st.integers(0, 4)))
    ]
    contacts = []
    for i in range(draw(st.integers(0, 4))):
        aid = draw(st.sampled_from(all_acc))
        hid = next(a["household_id"] for a in new_acc if a["account_id"] == aid) if aid.startswith("A9") else \
            BASE["accounts"].set_index("account_id").loc[aid, "household_id"]
        at = _later(draw(after_days), draw(st.integers(0, 23)))
        offer = draw(st.sampled_from(OFFER_IDS))
        # A future acceptance of a flag-granting offer is read (it says the tables' flag came later,
        # see NEUTRAL_OFFERS): a consistent world would show that flag on, which this one does not.
        accept = draw(st.booleans()) and offer in NEUTRAL_OFFERS
        contacts.append(_contact(f"C9{i}", aid, hid, offer, at,
                                 channel=draw(st.sampled_from(CHANNELS)), contacted=draw(st.booleans()),
                                 accepted_at=at + pd.Timedelta(days=1) if accept else None))

    def add(table: str, rows: list[dict]) -> None:
        if rows:
            # Not validated here (slow); test_mutated_world_is_still_valid checks generated worlds.
            w[table] = pd.concat([w[table], _frame(table, rows)], ignore_index=True)

    add("households", new_hh)
    add("accounts", new_acc)
    add("lines", new_lines)
    # (line_id, month) is the key of usage: keep only keys not already present.
    seen = set(zip(w["usage_monthly"]["line_id"], w["usage_monthly"]["month"]))
    fresh = []
    for row in usage:
        if (row["line_id"], row["month"]) not in seen:
            seen.add((row["line_id"], row["month"]))
            fresh.append(row)
    add("usage_monthly", fresh)
    add("support_tickets", tickets)
    add("contacts", contacts)

    # Dates of existing rows that move into the future: end dates, resolutions, acceptances.
    for table in ("accounts", "lines"):
        f = w[table]
        open_rows = f.index[f["end_date"].isna()].tolist()
        chosen = draw(st.lists(st.sampled_from(open_rows), unique=True, max_size=len(open_rows))) if open_rows else []
        f = f.copy()
        for r in chosen:
            f.loc[r, "end_date"] = max(_later(draw(after_days)), f.loc[r, "start_date"] + pd.Timedelta(days=1))
        w[table] = f
    tk = w["support_tickets"].copy()
    for r in tk.index[tk["resolved_at"].isna()]:
        if draw(st.booleans()):
            tk.loc[r, "resolved_at"] = max(_later(draw(after_days)), tk.loc[r, "opened_at"])
    w["support_tickets"] = tk
    ct = w["contacts"].copy()
    for r in ct.index[~ct["accepted"] & ct["offer_id"].isin(NEUTRAL_OFFERS) & ct["contacted"]]:
        if draw(st.booleans()):
            ct.loc[r, ["accepted", "accepted_at"]] = [True, _later(draw(after_days))]
    w["contacts"] = ct
    return w


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=future_world())
def test_future_rows_change_no_feature(world):
    for build, expected in EXPECTED.items():
        pd.testing.assert_frame_equal(build(world, AS_OF), expected, check_exact=True)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=future_world())
def test_mutated_world_is_still_valid(world):
    """The generated worlds are valid worlds (checked on a few; pandera is slow per example)."""
    assert set(world) <= set(SCHEMAS)
    for name, frame in world.items():
        checked = SCHEMAS[name].validate(frame)
        assert len(checked) == len(frame)


def test_past_rows_do_change_features():
    """The converse, so the leakage test cannot pass by ignoring everything: a May usage row counts."""
    w = {**BASE, "usage_monthly": pd.concat(
        [BASE["usage_monthly"], _frame("usage_monthly", [_use("L06", pd.Timestamp("2024-05-01"), over=1.0)])],
        ignore_index=True)}
    before = F.build_account_features(BASE, AS_OF).set_index("account_id")
    after = F.build_account_features(w, AS_OF).set_index("account_id")
    assert before.loc["A2", "line_overage_months_6m"] == 0
    assert after.loc["A2", "line_overage_months_6m"] == 1
