"""Training data preparation: pure functions from a world's tables to model-ready frames.

Nothing here reads or writes files or talks to MLflow: the pipeline loads the world (which
validates it), calls these, and only then opens a run. So a malformed or insufficient data folder
fails here, before any run exists.

Point-in-time rules:

- **churn**: features at ``as_of``; label = the account ends in ``(as_of, as_of + 90 days]``.
- **uplift**: the randomized retention experiment (``EXP-RETENTION-1``): features as of the day
  before each enrolment's ``contacted_at`` (``T0 - 1``), treatment = the arm is not the
  experiment's control arm, outcome = the account ends in ``[T0, T0 + 90 days]``.
- **propensity**: every contact actually made gets the account's features from the latest
  snapshot strictly before the contact (:func:`telco_nbo.models.propensity.make_offer_dataset`).

Splits are by **household** (accounts of one household share address, payer and fate), decided by
a seeded hash of the household id: the same household always lands on the same side, whatever
the row order or the other rows, so two runs on the same data share the same holdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.errors import DataValidationError

# The features and models (XGBoost, scikit-learn: ~6 s to import) are imported inside the functions
# that need them, as in the training steps that import this module (see training/steps.py).

RETENTION_EXPERIMENT = "EXP-RETENTION-1"
_DAY = pd.Timedelta(days=1)


def household_split(household_ids: np.ndarray | pd.Series, fraction: float, seed: int, salt: str = "holdout") -> np.ndarray:
    """Boolean mask: True for rows whose household falls in the ``fraction`` side.

    A seeded 64-bit hash of ``(salt, seed, household_id)`` mapped to [0, 1): stable across row
    orders and subsets (see module docstring).
    """
    return household_share(household_ids, seed, salt) < fraction


def household_share(household_ids: np.ndarray | pd.Series, seed: int, salt: str = "holdout") -> np.ndarray:
    """The value in [0, 1) that :func:`household_split` compares with its ``fraction``, per row.

    Kept per row instead of the household id when the fraction is decided later (the Dask
    trainers' samples): 8 bytes instead of a Python string.
    """
    ids = pd.Series(np.asarray(household_ids, dtype=object)).astype(str)
    key = f"{salt}:{seed}".encode().ljust(16, b"#")[:16].decode()
    h = pd.util.hash_pandas_object(ids, index=False, hash_key=key).to_numpy(dtype=np.uint64)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


@dataclass(frozen=True)
class LabelledFrame:
    """Rows of one model: account features, model matrix, target and identity.

    Attributes:
        features: The account feature frame (all columns, decision columns included).
        X: The model matrix (:func:`telco_nbo.features.to_model_matrix`).
        y: Target per row (int8).
        account_ids: Account id per row.
        household_ids: Household id per row (the split unit).
        as_of: Feature date (churn) or the latest feature date (uplift).
        dropped_features: Model features left out because they held a single value.
    """

    features: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    account_ids: np.ndarray
    household_ids: np.ndarray
    as_of: pd.Timestamp
    dropped_features: tuple[str, ...] = ()


def _need_both_classes(y: np.ndarray, table: str, what: str) -> None:
    if len(y) == 0:
        raise DataValidationError(table, [f"no rows to train the {what} model on"])
    if y.min() == y.max():
        raise DataValidationError(table, [f"the {what} label has a single class ({int(y[0])}) in {len(y):,} rows"])


def prepare_churn(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    horizon_days: int = 90,
    observed_until: object = None,
    drop_constant: bool = False,
) -> LabelledFrame:
    """Features at ``as_of`` and the churn label over the next ``horizon_days``.

    Args:
        tables: The world's tables.
        as_of: Feature date.
        horizon_days: Label window.
        observed_until: Last date the data covers (``meta["world_end"]``); a label window reaching
            past it raises instead of silently labelling late churners as stayers.
        drop_constant: Leave out model features with a single value in these rows (imported
            data: a feature only its default fills); they are listed in ``dropped_features``.

    Raises:
        DataValidationError: No active account, or a single label class.
        ConfigError: The label window is not observed.
    """
    from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix

    feats = build_account_features(tables, as_of)
    labels = make_churn_labels(tables, as_of, horizon_days, observed_until=observed_until)
    if not np.array_equal(feats["account_id"].to_numpy(), labels["account_id"].to_numpy()):
        # Both are sorted by account id over the same active accounts; anything else is a bug.
        raise RuntimeError("features and labels are not aligned")
    y = labels["churned"].to_numpy(dtype=np.int8)
    _need_both_classes(y, "accounts", "churn")
    X = to_model_matrix(feats)
    dropped: tuple[str, ...] = ()
    if drop_constant:
        from telco_nbo.features import constant_columns

        dropped = tuple(constant_columns(X))
        if len(dropped) == X.shape[1]:
            raise DataValidationError("accounts", ["every model feature has a single value: nothing to learn from"])
        X = X.drop(columns=list(dropped))
    return LabelledFrame(
        features=feats,
        X=X,
        y=y,
        account_ids=feats["account_id"].to_numpy(dtype=object),
        household_ids=feats["household_id"].to_numpy(dtype=object),
        as_of=as_of,
        dropped_features=dropped,
    )


@dataclass(frozen=True)
class UpliftFrame(LabelledFrame):
    """The experiment's enrolments with features at ``T0 - 1``.

    Attributes:
        treatment: 1 = treated arm, 0 = control, per row.
        contacted_at: Enrolment date ``T0`` per row.
        true_tau: The generator's true effect on churn per row (synthetic worlds), else None.
    """

    treatment: np.ndarray = None  # type: ignore[assignment]
    contacted_at: np.ndarray = None  # type: ignore[assignment]
    true_tau: np.ndarray | None = None


def prepare_uplift(
    tables: Mapping[str, pd.DataFrame],
    truth: Mapping[str, pd.DataFrame] | None = None,
    experiment_id: str = RETENTION_EXPERIMENT,
    horizon_days: int = 90,
    min_per_arm: int = 20,
    drop_constant: bool = False,
) -> UpliftFrame:
    """Enrolments of a randomized retention experiment as uplift training rows.

    Args:
        tables: The world's tables (``contacts`` and ``experiments`` are read).
        truth: The world's truth (``truth["retention"]`` gives the true ``tau``), or None.
        experiment_id: The experiment.
        horizon_days: Outcome window after ``T0``.
        min_per_arm: Fewest rows per arm worth fitting.
        drop_constant: Leave out model features with a single value in these rows (imported
            data); they are listed in ``dropped_features``.

    Raises:
        DataValidationError: No such experiment or enrolments, an arm too small, or accounts
            enrolled twice.
    """
    from telco_nbo.features import build_account_features, make_churn_labels, to_model_matrix

    contacts = tables.get("contacts")
    experiments = tables.get("experiments")
    if contacts is None or experiments is None or experiment_id not in set(experiments["experiment_id"]):
        raise DataValidationError(
            "experiments",
            [f"no experiment {experiment_id!r} in this data folder: uplift needs a randomized retention "
             "experiment (contacts with experiment_id, arm, contacted)"],
        )
    exp = experiments.loc[experiments["experiment_id"] == experiment_id].iloc[0]
    enrol = contacts.loc[contacts["experiment_id"] == experiment_id, ["account_id", "household_id", "arm", "contacted_at"]]
    problems = []
    if enrol.empty:
        problems.append(f"experiment {experiment_id} has no enrolments in contacts")
    dup = enrol["account_id"].duplicated()
    if dup.any():
        problems.append(f"accounts enrolled more than once: {enrol.loc[dup, 'account_id'].head(5).tolist()}")
    if problems:
        raise DataValidationError("contacts", problems)
    enrol = enrol.assign(contacted_at=pd.to_datetime(enrol["contacted_at"]).dt.normalize())
    parts = []
    for t0, group in enrol.groupby("contacted_at", sort=True):
        day_before = pd.Timestamp(t0) - _DAY
        feats = build_account_features(tables, day_before)
        # Window (T0 - 1, T0 + horizon]: an account leaving on T0 itself counts as churned.
        labels = make_churn_labels(tables, day_before, horizon_days + 1)
        frame = feats.assign(churned=labels["churned"].to_numpy())
        joined = group.drop(columns=["household_id"]).merge(frame, on="account_id", how="inner", validate="one_to_one")
        parts.append(joined.assign(_t0=pd.Timestamp(t0)))
    rows = pd.concat(parts, ignore_index=True).sort_values("account_id", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise DataValidationError("contacts", [f"no enrolled account of {experiment_id} was active the day before enrolment"])
    treatment = (rows["arm"].astype(str) != str(exp["control_arm"])).to_numpy().astype(np.int8)
    y = rows["churned"].to_numpy(dtype=np.int8)
    for arm, name in ((1, "treated"), (0, "control")):
        n = int((treatment == arm).sum())
        if n < min_per_arm:
            problems.append(f"{experiment_id}: the {name} arm has {n} enrolments (< {min_per_arm})")
        elif len(np.unique(y[treatment == arm])) < 2:
            problems.append(f"{experiment_id}: the {name} arm has a single outcome class")
    if problems:
        raise DataValidationError("contacts", problems)
    true_tau = None
    if truth is not None and "retention" in truth:
        tt = truth["retention"].set_index("account_id")["tau"]
        mapped = rows["account_id"].map(tt)
        if mapped.notna().all():
            true_tau = mapped.to_numpy(dtype=float)
    X = to_model_matrix(rows)
    dropped: tuple[str, ...] = ()
    if drop_constant:
        from telco_nbo.features import constant_columns

        dropped = tuple(constant_columns(X))
        X = X.drop(columns=list(dropped))
    return UpliftFrame(
        features=rows.drop(columns=["arm", "churned", "_t0"]),
        X=X,
        dropped_features=dropped,
        y=y,
        account_ids=rows["account_id"].to_numpy(dtype=object),
        household_ids=rows["household_id"].to_numpy(dtype=object),
        as_of=pd.Timestamp(rows["_t0"].max()),
        treatment=treatment,
        contacted_at=rows["_t0"].to_numpy(),
        true_tau=true_tau,
    )


@dataclass(frozen=True)
class OfferFrame:
    """Contacts made, as offer-acceptance training rows.

    Attributes:
        X: Account features at contact time + offer attributes.
        y: Accepted (0/1).
        keys: ``contact_id, account_id, offer_id, contacted_at`` per row.
        household_ids: Household per row (the split unit).
        offers: The offers table used (saved with the model).
        snapshots: The feature dates used.
    """

    X: pd.DataFrame
    y: np.ndarray
    keys: pd.DataFrame
    household_ids: np.ndarray
    offers: pd.DataFrame
    snapshots: list[pd.Timestamp]


def has_contact_history(tables: Mapping[str, pd.DataFrame]) -> bool:
    """Whether the data holds offers actually made (imported flat tables have none)."""
    contacts = tables.get("contacts")
    return contacts is not None and len(contacts) > 0 and bool(contacts["contacted"].astype(bool).any())


def snapshot_dates(contacted_at: pd.Series, max_snapshots: int = 24) -> list[pd.Timestamp]:
    """Feature dates for contacts: the day before the busiest contact days, plus month starts.

    A contact uses the latest snapshot strictly before it. Campaign contacts cluster on a few days
    (month ends); a snapshot the day before each of those keeps their features fresh. Other days
    fall back to the first of their month (at most a month old, never after the contact).
    """
    days = pd.to_datetime(contacted_at).dt.normalize()
    counts = days.value_counts()
    busy = counts[counts >= max(1, int(0.01 * len(days)))].sort_values(ascending=False).index[:max_snapshots]
    dates = {pd.Timestamp(d) - _DAY for d in busy}
    dates |= {pd.Timestamp(d) for d in days.dt.to_period("M").dt.start_time.unique()}
    # The first of a month is "strictly before" only for contacts after the 1st; contacts on the
    # 1st fall back to the day before it.
    dates |= {pd.Timestamp(d) - _DAY for d in days[days.dt.day == 1].unique()}
    return sorted(dates)


def prepare_offers(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp,
                   dates: list[pd.Timestamp] | None = None, *, both_classes: bool = True) -> OfferFrame:
    """Offer-acceptance rows from every contact made up to ``as_of`` (point-in-time features).

    Contacts after ``as_of`` are left out: their acceptances may not be known yet.

    ``dates``: the feature snapshot dates; default :func:`snapshot_dates` of these contacts. A
    partition of a larger world passes the whole world's dates (Dask training), so each contact
    gets the snapshot it gets in-process. ``both_classes=False`` skips the two-class check (a
    partition may hold one class; the whole training set is checked instead).

    Raises:
        DataValidationError: No contact made before ``as_of``, or a single outcome class.
    """
    from telco_nbo.features import build_account_features
    from telco_nbo.models.propensity import make_offer_dataset

    contacts = tables["contacts"]
    made = contacts.loc[contacts["contacted"].astype(bool) & (pd.to_datetime(contacts["contacted_at"]) <= as_of)]
    if made.empty:
        raise DataValidationError("contacts", [f"no offer was made on or before {as_of.date()}: no propensity data"])
    dates = snapshot_dates(made["contacted_at"]) if dates is None else sorted(pd.Timestamp(d) for d in dates)
    # data_as_of: the accounts' stated charges are the data's own date's; each row gets its own date's.
    snaps = [build_account_features(tables, d, data_as_of=as_of).assign(as_of=d) for d in dates]
    stacked = pd.concat(snaps, ignore_index=True)
    ds = make_offer_dataset(made, stacked, tables["offers"], use_channel=False, on_missing="drop")
    y = np.asarray(ds.y, dtype=np.int8)
    if both_classes:
        _need_both_classes(y, "contacts", "propensity")
    hh = made.set_index("contact_id")["household_id"].reindex(ds.keys["contact_id"]).to_numpy(dtype=object)
    return OfferFrame(X=ds.X, y=y, keys=ds.keys, household_ids=hh, offers=tables["offers"].copy(), snapshots=dates)


@dataclass(frozen=True)
class LoggedFrame:
    """Logged randomized choices with a known outcome, as rows for per-offer effects.

    Attributes:
        features: Account features from the latest snapshot strictly before each contact.
        action: Offer id, or ``""`` for a unit that was not contacted.
        accepted: The contact's offer was accepted (False for a unit not contacted). Not a
            treatment: acceptance is chosen by the customer after the contact (see
            :mod:`telco_nbo.models.offer_effects` for why effects are estimated per contact).
        churned: The account ended within the horizon after the contact (0/1).
        household_ids: Household per row (the cluster of the standard errors).
        contacted_at: Date of the choice.
        policy_ids: Logging policy per row.
        propensity: The logged probability of the action taken.
        horizon_days: The outcome window.
        feature_dates: The snapshot date of each row's features (strictly before ``contacted_at``).
    """

    features: pd.DataFrame
    action: np.ndarray
    accepted: np.ndarray
    churned: np.ndarray
    household_ids: np.ndarray
    contacted_at: np.ndarray
    policy_ids: np.ndarray
    propensity: np.ndarray
    horizon_days: int
    feature_dates: np.ndarray


def tables_of_households(tables: Mapping[str, pd.DataFrame], household_ids: Any) -> dict[str, pd.DataFrame]:
    """The rows of these households in every table (households, accounts, their lines, the lines'
    usage, the accounts' tickets and contacts); tables without a household link are kept whole.

    Features of an account read only its own household's rows, so they are the same on the subset
    (tested); building them for the few households of the logged units is much cheaper.
    """
    hh = pd.Index(pd.unique(np.asarray(household_ids, dtype=object)))
    out = dict(tables)
    accounts = tables["accounts"]
    out["accounts"] = accounts[accounts["household_id"].isin(hh)]
    acc = pd.Index(out["accounts"]["account_id"])
    if "households" in tables:
        out["households"] = tables["households"][tables["households"]["household_id"].isin(hh)]
    if "lines" in tables:
        out["lines"] = tables["lines"][tables["lines"]["account_id"].isin(acc)]
        if "usage_monthly" in tables:
            out["usage_monthly"] = tables["usage_monthly"][tables["usage_monthly"]["line_id"].isin(out["lines"]["line_id"])]
    for name in ("support_tickets", "contacts"):
        if name in tables and "account_id" in tables[name].columns:
            out[name] = tables[name][tables[name]["account_id"].isin(acc)]
    return out


def prepare_logged(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp, horizon_days: int = 90,
                   policies: Any = None) -> LoggedFrame | None:
    """Logged choices whose outcome window closed by ``as_of``, with point-in-time features.

    A logged unit is a ``contacts`` row outside any experiment with a ``policy_id`` and a
    ``propensity`` (a randomized choice among offers and "no contact"), made on or before
    ``as_of - horizon_days`` so its outcome, ``churned`` = the account ended in
    ``(contacted_at, contacted_at + horizon_days]``, is known at ``as_of``; the account must be
    active when contacted. Features come from the latest snapshot strictly before the contact
    (:func:`snapshot_dates`), with charges rolled back from ``as_of`` as for the propensity rows,
    built on the logged households' rows only (:func:`tables_of_households`).

    ``policies``: keep only these logging policies' rows (default: every one).

    Returns:
        The rows, or ``None`` when the data has no such logged unit.
    """
    from telco_nbo.features import build_account_features

    contacts = tables.get("contacts")
    if contacts is None or "policy_id" not in contacts.columns or "propensity" not in contacts.columns:
        return None
    at = pd.to_datetime(contacts["contacted_at"])
    in_exp = contacts["experiment_id"].notna() if "experiment_id" in contacts.columns else pd.Series(False, index=contacts.index)
    sel = (contacts["policy_id"].notna() & contacts["propensity"].notna() & ~in_exp
           & (at <= pd.Timestamp(as_of) - pd.Timedelta(days=int(horizon_days))))
    if policies is not None:
        sel &= contacts["policy_id"].isin(list(policies))
    logs = contacts.loc[sel, ["account_id", "household_id", "offer_id", "contacted", "accepted", "policy_id",
                              "propensity"]].assign(
        contacted_at=at[sel].dt.normalize())
    if logs.empty:
        return None
    accounts = tables["accounts"].set_index("account_id")
    logs = logs[logs["account_id"].isin(accounts.index)]
    start = pd.to_datetime(accounts["start_date"]).reindex(logs["account_id"]).to_numpy()
    end = pd.to_datetime(accounts["end_date"]).reindex(logs["account_id"]).to_numpy()
    t = logs["contacted_at"].to_numpy()
    active = (start <= t) & (np.isnat(end) | (end > t))
    logs = logs[active].reset_index(drop=True)
    end = end[active]
    if logs.empty:
        return None
    t = logs["contacted_at"].to_numpy()
    churned = (~np.isnat(end) & (end > t) & (end <= t + np.timedelta64(int(horizon_days), "D"))).astype(np.int8)
    dates = snapshot_dates(logs["contacted_at"])
    mine = tables_of_households(tables, logs["household_id"])
    snaps = pd.concat([build_account_features(mine, d, data_as_of=as_of).assign(_snap=d) for d in dates],
                      ignore_index=True)
    order = np.argsort(logs["contacted_at"].to_numpy(), kind="stable")
    left = logs.iloc[order].assign(_row=order)
    joined = pd.merge_asof(left, snaps.drop(columns=["household_id"], errors="ignore").sort_values("_snap"),
                           left_on="contacted_at", right_on="_snap", by="account_id",
                           allow_exact_matches=False, direction="backward")
    joined = joined[joined["_snap"].notna()].sort_values("_row", kind="stable")
    if joined.empty:
        return None
    rows = joined["_row"].to_numpy()
    contacted = logs["contacted"].astype(bool).to_numpy()[rows]
    action = np.where(contacted, logs["offer_id"].astype(object).to_numpy()[rows], "").astype(object)
    return LoggedFrame(
        features=joined.drop(columns=["_row", "_snap", "offer_id", "contacted", "accepted", "policy_id", "propensity",
                                      "contacted_at"])
        .reset_index(drop=True),
        action=action,
        accepted=contacted & logs["accepted"].fillna(False).astype(bool).to_numpy()[rows],
        churned=churned[rows],
        household_ids=logs["household_id"].to_numpy(dtype=object)[rows],
        contacted_at=t[rows],
        policy_ids=logs["policy_id"].astype(str).to_numpy()[rows],
        propensity=logs["propensity"].to_numpy(dtype=float)[rows],
        horizon_days=int(horizon_days),
        feature_dates=joined["_snap"].to_numpy(),
    )
