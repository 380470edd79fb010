"""Offer propensity: datasets for P(accept | contacted, account, offer), and "propensity to own".

**Offer-conditioned acceptance model.** One classifier for all offers: each training row is a
*contact* (a promotional or service offer actually made; holdout records were never contacted and
cannot accept), its features are the account's features at contact time plus the offer's
attributes (``offer_id`` and ``offer_kind`` as categories, price, margin, term) and the contact
channel. One model shares what is common across offers (price sensitivity, engagement) and still
learns per-offer effects through ``offer_id``; it scores any (account, offer, channel) candidate
with :func:`make_candidate_rows`, the same column builder, so training and serving agree.
Quality is reported per offer with :func:`auc_by_offer`.

**Propensity to own** (data without contact history, e.g. IBM Telco): for each add-on, a
classifier of "has it" vs "does not have it" among the accounts that *could* have it, as a proxy
of who would buy it. :func:`ownership_targets` builds the targets and :func:`ownership_dataset`
the features — excluding the target's own flag (it *is* the label) and, by default, the charge
columns, which mechanically include the add-on's price (a leak that makes the model look great
and learn nothing useful).

Builders for the classifiers themselves: :func:`telco_nbo.models.churn.make_churn_classifier`
(same XGBoost defaults) and :func:`telco_nbo.models.churn.default_search_space`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from telco_nbo.data.schema import CHANNELS, OFFER_KINDS
from telco_nbo.errors import DataValidationError
from telco_nbo.features import FEATURE_COLUMNS, to_model_matrix
from telco_nbo.models.churn import check_model_frame

__all__ = [
    "OFFER_FEATURE_COLUMNS",
    "ADDONS",
    "AddOn",
    "OfferDataset",
    "OwnershipDataset",
    "offer_features",
    "make_offer_dataset",
    "make_candidate_rows",
    "auc_by_offer",
    "ownership_targets",
    "ownership_dataset",
]

OFFER_FEATURE_COLUMNS = ["offer_id", "offer_kind", "offer_monthly_price", "offer_monthly_margin", "offer_term_months"]
"""Offer attribute columns added to each row (plus ``contact_channel`` when channels are used)."""

_OFFER_REQUIRED = ("offer_id", "kind", "monthly_price", "monthly_margin", "term_months")
_CONTACT_REQUIRED = ("contact_id", "account_id", "offer_id", "contacted", "contacted_at", "accepted")
_ID_LIKE = ("account_id", "household_id", "customerID")


@dataclass(frozen=True)
class OfferDataset:
    """Rows of (account, offer[, channel]) ready for an XGBoost classifier.

    Attributes:
        X: Model matrix: account features then offer attributes (numeric / bool / category).
        y: Accepted (0/1) per row; None for candidate rows to score.
        keys: Identity of each row (``account_id``, ``offer_id``, and for contacts
            ``contact_id``, ``contacted_at``), aligned with ``X``.
    """

    X: pd.DataFrame
    y: np.ndarray | None
    keys: pd.DataFrame


def _require(frame: Any, table: str, cols: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(table, [f"expected a pandas DataFrame, got {type(frame).__name__}"])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataValidationError(table, [f"missing column(s): {', '.join(missing)}"])
    return frame


def _offer_table(offers_df: pd.DataFrame) -> pd.DataFrame:
    offers = _require(offers_df, "offers", _OFFER_REQUIRED)
    problems = []
    if offers.empty:
        problems.append("no rows")
    dup = offers.loc[offers.offer_id.duplicated(), "offer_id"].unique().tolist()
    if dup:
        problems.append(f"duplicate offer_id: {dup[:5]}")
    bad_kind = sorted(set(offers.kind.dropna()) - set(OFFER_KINDS))
    if bad_kind or offers.kind.isna().any():
        problems.append(f"kind must be one of {list(OFFER_KINDS)}; got {bad_kind or ['<missing>']}")
    for c in ("monthly_price", "monthly_margin", "term_months"):
        v = pd.to_numeric(offers[c], errors="coerce")
        if v.isna().any():
            problems.append(f"{c} must be numeric; bad for {offers.loc[v.isna(), 'offer_id'].head(5).tolist()}")
    if problems:
        raise DataValidationError("offers", problems)
    return offers.set_index("offer_id")


def offer_features(
    offer_ids: Sequence[str] | pd.Series,
    offers_df: pd.DataFrame,
    channels: Sequence[str] | pd.Series | None = None,
) -> pd.DataFrame:
    """Offer attribute columns for a sequence of offer ids (one row per id, in order).

    Categories are fixed — ``offer_id`` to the offers table's ids (sorted), ``offer_kind`` to the
    schema's kinds, ``contact_channel`` to the schema's channels — so a single serving row is
    encoded exactly like the training rows.

    Args:
        offer_ids: Offer id per row.
        offers_df: The offers table (``offer_id, kind, monthly_price, monthly_margin,
            term_months``).
        channels: Optional channel per row (adds ``contact_channel``).

    Returns:
        A frame with :data:`OFFER_FEATURE_COLUMNS` (and ``contact_channel``), RangeIndex.

    Raises:
        DataValidationError: Unknown offer ids or channels, or a malformed offers table.
    """
    offers = _offer_table(offers_df)
    ids = pd.Series(np.asarray(offer_ids, dtype=object))
    unknown = sorted(set(ids.dropna()) - set(offers.index)) + (["<missing>"] if ids.isna().any() else [])
    if unknown:
        raise DataValidationError("offers", [f"offer_id(s) not in the offers table: {unknown[:10]}"])
    cats = sorted(offers.index)
    rows = offers.loc[ids.to_numpy()]
    out = pd.DataFrame(
        {
            "offer_id": pd.Categorical(ids.to_numpy(), categories=cats),
            "offer_kind": pd.Categorical(rows["kind"].to_numpy(), categories=list(OFFER_KINDS)),
            "offer_monthly_price": pd.to_numeric(rows["monthly_price"]).to_numpy(dtype=float),
            "offer_monthly_margin": pd.to_numeric(rows["monthly_margin"]).to_numpy(dtype=float),
            "offer_term_months": pd.to_numeric(rows["term_months"]).to_numpy(dtype=float),
        }
    )
    if channels is not None:
        ch = pd.Series(np.asarray(channels, dtype=object))
        if len(ch) != len(ids):
            raise DataValidationError("contacts", [f"channels has {len(ch)} rows, offer_ids {len(ids)}"])
        bad = sorted({str(c) for c in ch.dropna()} - set(CHANNELS))
        if bad:
            raise DataValidationError("contacts", [f"unknown channel(s) {bad[:5]}; allowed: {list(CHANNELS)}"])
        out["contact_channel"] = pd.Categorical(ch.to_numpy(), categories=list(CHANNELS))
    return out


def _account_matrix(features: pd.DataFrame, feature_columns: Sequence[str] | None, time_col: str | None) -> pd.DataFrame:
    """The account part of the model matrix, row-aligned with ``features``."""
    if feature_columns is None:
        if all(c in features.columns for c in FEATURE_COLUMNS):
            return to_model_matrix(features).reset_index(drop=True)
        skip = set(_ID_LIKE) | ({time_col} if time_col else set())
        feature_columns = [c for c in features.columns if c not in skip]
    missing = [c for c in feature_columns if c not in features.columns]
    if missing:
        raise DataValidationError("features", [f"missing feature column(s): {', '.join(missing)}"])
    clash = [c for c in feature_columns if c in OFFER_FEATURE_COLUMNS or c == "contact_channel"]
    if clash:
        raise DataValidationError("features", [f"feature column(s) clash with offer attributes: {clash}"])
    return check_model_frame(features[list(feature_columns)].reset_index(drop=True), "features")


def make_offer_dataset(
    contacts_df: pd.DataFrame,
    features_df: pd.DataFrame,
    offers_df: pd.DataFrame,
    *,
    feature_columns: Sequence[str] | None = None,
    time_col: str = "as_of",
    use_channel: bool = True,
    on_missing: Literal["raise", "drop"] = "raise",
) -> OfferDataset:
    """Training rows for P(accept | contacted, account, offer[, channel]).

    Only rows with ``contacted`` true are used (holdout records were never offered anything).
    Each contact gets its account's features:

    - if ``features_df`` has a ``time_col`` column (several snapshots per account), the latest
      snapshot taken strictly *before* the contact (``pandas.merge_asof``): point-in-time, so a
      feature never describes the world after the offer was made;
    - otherwise one row per account, joined on ``account_id`` (the caller vouches that the
      snapshot predates the contacts).

    Args:
        contacts_df: The contacts table.
        features_df: Account features with ``account_id`` (e.g. from
            :func:`telco_nbo.features.build_account_features`, optionally stacked over several
            ``as_of`` with a ``time_col`` column).
        offers_df: The offers table.
        feature_columns: Account feature columns to use; default
            :data:`telco_nbo.features.FEATURE_COLUMNS` via ``to_model_matrix`` when all are
            present, otherwise every column except ids and ``time_col``.
        time_col: Snapshot time column of ``features_df`` (used only if present).
        use_channel: Add the contact channel as a categorical feature.
        on_missing: Contacts with no matching account snapshot: ``"raise"`` (default) or
            ``"drop"`` them.

    Returns:
        The dataset; ``keys`` has ``contact_id, account_id, offer_id, contacted_at``.

    Raises:
        DataValidationError: Missing columns, duplicate contact ids, duplicate accounts in a
            single snapshot, unknown offers, contacts without features (``on_missing="raise"``),
            or no contacted rows.
    """
    contacts = _require(contacts_df, "contacts", _CONTACT_REQUIRED + (("channel",) if use_channel else ()))
    features = _require(features_df, "features", ("account_id",))
    if on_missing not in ("raise", "drop"):
        raise DataValidationError("contacts", [f"on_missing must be 'raise' or 'drop', got {on_missing!r}"])
    dup = contacts.loc[contacts.contact_id.duplicated(), "contact_id"].unique().tolist()
    if dup:
        raise DataValidationError("contacts", [f"duplicate contact_id: {dup[:5]}"])
    made = contacts.loc[contacts["contacted"].astype(bool)].copy()
    if made.empty:
        raise DataValidationError("contacts", ["no contacted rows (holdout records cannot accept an offer)"])
    made["contacted_at"] = pd.to_datetime(made["contacted_at"])
    made = made.reset_index(drop=True)
    made["_row"] = np.arange(len(made))

    if time_col in features.columns:
        feats = features.copy()
        feats[time_col] = pd.to_datetime(feats[time_col])
        dupk = feats.duplicated(["account_id", time_col])
        if dupk.any():
            raise DataValidationError("features", [f"duplicate (account_id, {time_col}) rows: {int(dupk.sum())}"])
        feats["_feat_row"] = np.arange(len(feats))
        joined = pd.merge_asof(
            made.sort_values("contacted_at"), feats[["account_id", time_col, "_feat_row"]].sort_values(time_col),
            left_on="contacted_at", right_on=time_col, by="account_id", direction="backward",
            allow_exact_matches=False,
        ).sort_values("_row")
    else:
        dupa = features.account_id[features.account_id.duplicated()].unique().tolist()
        if dupa:
            raise DataValidationError(
                "features", [f"duplicate account_id {dupa[:5]} (stack snapshots with a '{time_col}' column instead)"]
            )
        index = pd.Series(np.arange(len(features)), index=features.account_id.to_numpy())
        joined = made.assign(_feat_row=made.account_id.map(index).to_numpy())
    unmatched = joined["_feat_row"].isna().to_numpy()
    if unmatched.any():
        if on_missing == "raise":
            ex = joined.loc[unmatched, "contact_id"].head(5).tolist()
            raise DataValidationError(
                "contacts",
                [f"{int(unmatched.sum())} contact(s) have no account features at contact time (e.g. {ex}); "
                 "pass on_missing='drop' to leave them out"],
            )
        joined = joined.loc[~unmatched]
        if joined.empty:
            raise DataValidationError("contacts", ["no contact has account features at contact time"])
    rows = joined["_feat_row"].to_numpy(dtype=int)
    acct = _account_matrix(features.iloc[rows], feature_columns, time_col)
    off = offer_features(joined["offer_id"].to_numpy(), offers_df, joined["channel"].to_numpy() if use_channel else None)
    X = pd.concat([acct, off], axis=1)
    y = pd.Series(joined["accepted"].to_numpy()).astype(bool).to_numpy().astype(np.int8)
    keys = pd.DataFrame(
        {
            "contact_id": joined["contact_id"].to_numpy(),
            "account_id": joined["account_id"].to_numpy(),
            "offer_id": joined["offer_id"].to_numpy(),
            "contacted_at": joined["contacted_at"].to_numpy(),
        }
    )
    return OfferDataset(X=X, y=y, keys=keys)


def make_candidate_rows(
    features_df: pd.DataFrame,
    offers_df: pd.DataFrame,
    *,
    offer_ids: Sequence[str] | None = None,
    channel: str | None = None,
    feature_columns: Sequence[str] | None = None,
) -> OfferDataset:
    """Rows to score: every account in ``features_df`` x every offer in ``offer_ids``.

    Same columns and encodings as :func:`make_offer_dataset`, so the trained classifier's
    ``predict_proba(rows.X)[:, 1]`` is P(accept) per (account, offer). Pass ``channel`` if the
    model was trained with ``use_channel=True``.

    Args:
        features_df: One row per account, with ``account_id``.
        offers_df: The offers table.
        offer_ids: Offers to score (default: all in ``offers_df``).
        channel: The channel of the hypothetical contact (one of the schema's channels).
        feature_columns: As in :func:`make_offer_dataset`.

    Returns:
        The rows (``y`` is None); ``keys`` has ``account_id, offer_id``, account-major order.
    """
    features = _require(features_df, "features", ("account_id",))
    if features.empty:
        raise DataValidationError("features", ["no rows"])
    dupa = features.account_id[features.account_id.duplicated()].unique().tolist()
    if dupa:
        raise DataValidationError("features", [f"duplicate account_id: {dupa[:5]}"])
    offers = _offer_table(offers_df)
    ids = list(offers.index) if offer_ids is None else list(offer_ids)
    if not ids:
        raise DataValidationError("offers", ["no offers to score"])
    n_acc, n_off = len(features), len(ids)
    acc_rows = np.repeat(np.arange(n_acc), n_off)
    offer_col = np.tile(np.asarray(ids, dtype=object), n_acc)
    acct = _account_matrix(features.iloc[acc_rows], feature_columns, None)
    off = offer_features(offer_col, offers_df, None if channel is None else [channel] * len(offer_col))
    keys = pd.DataFrame({"account_id": features.account_id.to_numpy()[acc_rows], "offer_id": offer_col})
    return OfferDataset(X=pd.concat([acct, off], axis=1), y=None, keys=keys)


def auc_by_offer(y: Any, score: Any, offer_ids: Any, min_per_class: int = 1) -> pd.DataFrame:
    """ROC AUC of acceptance scores within each offer (plus the pooled AUC as ``__all__``).

    A pooled AUC flatters an offer-conditioned model: it is partly earned by ranking offers with
    high acceptance above offers with low acceptance. The per-offer AUC is the one that says
    whether the model picks the right *accounts* for an offer.

    Args:
        y: Accepted (0/1) per row.
        score: Predicted P(accept) per row.
        offer_ids: Offer id per row.
        min_per_class: Minimum acceptances and refusals for an AUC (else NaN).

    Returns:
        Frame indexed by offer id (sorted; ``__all__`` last) with ``n, n_accepted,
        acceptance_rate, mean_score, roc_auc``.
    """
    y_ = np.asarray(y)
    s_ = np.asarray(score, dtype=float)
    o_ = np.asarray(offer_ids, dtype=object)
    if not (len(y_) == len(s_) == len(o_)):
        raise DataValidationError("evaluation", [f"lengths differ: y={len(y_)}, score={len(s_)}, offer_ids={len(o_)}"])
    if len(y_) == 0:
        raise DataValidationError("evaluation", ["no rows"])
    yn = pd.to_numeric(pd.Series(y_), errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isin(yn, (0.0, 1.0))):
        raise DataValidationError("evaluation", ["y must be 0/1 or bool"])
    if not np.all(np.isfinite(s_)):
        raise DataValidationError("evaluation", ["score has NaN/inf"])

    def row(mask: np.ndarray) -> dict[str, float]:
        yy, ss = yn[mask], s_[mask]
        pos = int(yy.sum())
        ok = pos >= min_per_class and (len(yy) - pos) >= min_per_class
        return {
            "n": int(len(yy)),
            "n_accepted": pos,
            "acceptance_rate": float(yy.mean()),
            "mean_score": float(ss.mean()),
            "roc_auc": float(roc_auc_score(yy, ss)) if ok else float("nan"),
        }

    offers = sorted({str(o) for o in o_})
    out = {o: row(o_.astype(str) == o) for o in offers}
    out["__all__"] = row(np.ones(len(yn), bool))
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("offer_id")


# --------------------------------------------------------------------------------------------
# Propensity to own
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddOn:
    """Where an add-on's ownership lives in each data format, and who could own it.

    Attributes:
        feature_flag: Ownership column of the account feature frame.
        eligible_if_any: Feature-frame flags of which at least one must be true for the account
            to be able to own it (the line type it attaches to).
        ibm_column: Column of the IBM Telco table ("Yes" / "No" / "No internet service").
        related: Columns that are the same product under another name (dropped with the target).
    """

    feature_flag: str
    eligible_if_any: tuple[str, ...]
    ibm_column: str
    related: tuple[str, ...] = ()


ADDONS: dict[str, AddOn] = {
    # Device protection attaches to a handset (a mobile line) in the synthetic world; in IBM
    # Telco it is an internet add-on (offered only with internet service).
    "device_protection": AddOn("account_has_device_protection", ("account_has_mobile",), "DeviceProtection"),
    "online_security": AddOn("account_has_online_security", ("account_has_broadband",), "OnlineSecurity"),
    "streaming": AddOn("account_has_streaming", ("account_has_broadband", "account_has_tv"), "StreamingTV"),
}
"""Add-ons with a propensity-to-own model, keyed by a short name."""

_IBM_NOT_ELIGIBLE = ("No internet service", "No phone service")
_CHARGE_COLUMNS = ("account_monthly_charges", "account_bill_mean_3m", "account_bill_change_3m",
                   "MonthlyCharges", "TotalCharges")
_IBM_DROP_ALWAYS = ("customerID", "Churn")


def _format(frame: pd.DataFrame) -> str:
    if all(a.feature_flag in frame.columns for a in ADDONS.values()):
        return "features"
    if all(a.ibm_column in frame.columns for a in ADDONS.values()):
        return "ibm"
    raise DataValidationError(
        "features",
        ["neither an account feature frame (account_has_device_protection, account_has_online_security, "
         "account_has_streaming) nor an IBM Telco table (DeviceProtection, OnlineSecurity, StreamingTV)"],
    )


def _flag(s: pd.Series, name: str) -> np.ndarray:
    if s.dtype == bool:
        return s.to_numpy()
    if s.isna().any():
        raise DataValidationError("features", [f"{name} has missing values"])
    v = s.map(lambda x: bool(x) if isinstance(x, (bool, np.bool_, int, np.integer, float)) else x)
    if not v.map(lambda x: isinstance(x, bool)).all():
        raise DataValidationError("features", [f"{name} must be boolean (or 0/1)"])
    return v.to_numpy(dtype=bool)


def ownership_targets(frame: pd.DataFrame, addons: Sequence[str] | None = None) -> dict[str, pd.Series]:
    """Ownership labels per add-on, over the accounts eligible to own it.

    Works on an account feature frame (flags ``account_has_*``; eligible = has the line type the
    add-on attaches to) and on the IBM Telco table (``"Yes"``/``"No"``; rows with
    ``"No internet service"`` are not eligible).

    Args:
        frame: Account feature frame or IBM Telco table.
        addons: Names from :data:`ADDONS` (default all).

    Returns:
        Add-on name -> int8 Series (1 = owns), indexed by the eligible rows of ``frame``.
    """
    fmt = _format(frame)
    names = list(ADDONS) if addons is None else list(addons)
    unknown = [a for a in names if a not in ADDONS]
    if unknown:
        raise DataValidationError("features", [f"unknown add-on(s) {unknown}; known: {list(ADDONS)}"])
    out: dict[str, pd.Series] = {}
    for name in names:
        spec = ADDONS[name]
        if fmt == "features":
            missing = [c for c in spec.eligible_if_any if c not in frame.columns]
            if missing:
                raise DataValidationError("features", [f"missing column(s) for {name} eligibility: {missing}"])
            eligible = np.zeros(len(frame), bool)
            for c in spec.eligible_if_any:
                eligible |= _flag(frame[c], c)
            y = _flag(frame[spec.feature_flag], spec.feature_flag)
            if np.any(y & ~eligible):
                raise DataValidationError(
                    "features", [f"{spec.feature_flag} is true on {int(np.sum(y & ~eligible))} account(s) "
                                 f"without any of {list(spec.eligible_if_any)}"])
        else:
            col = frame[spec.ibm_column].astype(str).str.strip()
            bad = sorted(set(col) - {"Yes", "No", *_IBM_NOT_ELIGIBLE})
            if bad:
                raise DataValidationError("ibm_telco", [f"{spec.ibm_column} has unexpected value(s) {bad[:5]}"])
            eligible = ~col.isin(_IBM_NOT_ELIGIBLE).to_numpy()
            y = (col == "Yes").to_numpy()
        out[name] = pd.Series(y[eligible].astype(np.int8), index=frame.index[eligible], name=name)
    return out


@dataclass(frozen=True)
class OwnershipDataset:
    """Features and labels of one propensity-to-own model.

    Attributes:
        addon: Add-on name.
        X: Model matrix of the eligible accounts (target and leaky columns removed).
        y: 1 = owns, aligned with ``X``.
        index: Row labels of ``X`` in the input frame.
        excluded: Columns removed and why.
        categories: Category lists used for string columns (IBM): pass back to
            :func:`ownership_dataset` when building rows to score, so encodings match.
    """

    addon: str
    X: pd.DataFrame
    y: np.ndarray
    index: pd.Index
    excluded: dict[str, str] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)


def ownership_dataset(
    frame: pd.DataFrame,
    addon: str,
    *,
    feature_columns: Sequence[str] | None = None,
    drop_charges: bool = True,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> OwnershipDataset:
    """Features and labels for the propensity-to-own model of one add-on.

    Leakage rules: the target's own ownership column is always dropped (it is the label), as are
    ids and, for IBM, ``Churn`` (an outcome, unknown when scoring). With ``drop_charges`` the
    bill columns are dropped too: a monthly charge is the sum of what the account owns, so it
    encodes the label.

    Args:
        frame: Account feature frame or IBM Telco table.
        addon: A name from :data:`ADDONS`.
        feature_columns: Columns to start from (default: ``FEATURE_COLUMNS`` for a feature frame,
            every column for IBM); exclusions apply on top.
        drop_charges: Drop bill / charge columns (see above).
        categories: For IBM string columns, the category lists to use (from a training
            dataset's ``categories``); default: the sorted values seen in ``frame``.

    Returns:
        The dataset over the accounts eligible for the add-on.
    """
    if addon not in ADDONS:
        raise DataValidationError("features", [f"unknown add-on {addon!r}; known: {list(ADDONS)}"])
    fmt = _format(frame)
    y = ownership_targets(frame, [addon])[addon]
    spec = ADDONS[addon]
    rows = frame.loc[y.index]
    excluded: dict[str, str] = {}
    target = spec.feature_flag if fmt == "features" else spec.ibm_column
    excluded[target] = "the label itself"
    for c in spec.related:
        excluded[c] = "same product as the label"
    if drop_charges:
        for c in _CHARGE_COLUMNS:
            if c in frame.columns:
                excluded[c] = "charges include the add-on's price"
    if fmt == "features":
        cols = list(FEATURE_COLUMNS) if feature_columns is None else list(feature_columns)
        if feature_columns is None and all(c in rows.columns for c in FEATURE_COLUMNS):
            X = to_model_matrix(rows)
            cols = list(X.columns)  # the contract's features, then an import's account_x_ columns
        else:
            missing = [c for c in cols if c not in rows.columns]
            if missing:
                raise DataValidationError("features", [f"missing feature column(s): {', '.join(missing)}"])
            X = rows[cols]
        X = X[[c for c in cols if c not in excluded]]
        cats: dict[str, list[str]] = {}
    else:
        for c in _IBM_DROP_ALWAYS:
            if c in frame.columns:
                excluded[c] = "identifier" if c == "customerID" else "an outcome, unknown when scoring"
        cols = list(frame.columns) if feature_columns is None else list(feature_columns)
        keep = [c for c in cols if c not in excluded]
        X, cats = _ibm_matrix(rows[keep], categories)
    X = check_model_frame(X.reset_index(drop=True), "features")
    return OwnershipDataset(addon=addon, X=X, y=y.to_numpy(), index=y.index, excluded=excluded, categories=cats)


def _ibm_matrix(raw: pd.DataFrame, categories: Mapping[str, Sequence[str]] | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """IBM columns -> numeric / category (TotalCharges' blanks -> NaN; strings -> fixed categories)."""
    out: dict[str, pd.Series] = {}
    cats: dict[str, list[str]] = {}
    problems = []
    for c in raw.columns:
        s = raw[c]
        if c == "TotalCharges" or (s.dtype == object and pd.to_numeric(s.str.strip().replace("", np.nan), errors="coerce").notna().mean() > 0.95):
            out[c] = pd.to_numeric(s.astype(str).str.strip().replace("", np.nan), errors="coerce")
        elif s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype):
            values = s.astype(object).where(s.notna(), None)
            known = list(categories[c]) if categories and c in categories else sorted({str(v) for v in values.dropna()})
            unseen = sorted({str(v) for v in values.dropna()} - set(known))
            if unseen:
                problems.append(f"column {c} has value(s) not seen in training: {unseen[:5]}")
                continue
            cats[c] = known
            out[c] = pd.Series(pd.Categorical(values, categories=known), index=raw.index)
        else:
            out[c] = s
    if problems:
        raise DataValidationError("ibm_telco", problems)
    return pd.DataFrame(out, index=raw.index), cats
