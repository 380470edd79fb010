"""Eligibility, applicability and suitability rules, evaluated as accounts x offers matrices.

Every rule answers one question for all accounts and all offers at once: "does this rule remove
offer j for account i?" — a boolean numpy matrix of shape ``(n_accounts, n_offers)``, built from an
account vector and an offer vector (an outer product), never from a Python loop over accounts.
Each rule carries an id, a layer and a plain-words reason per offer, so a suppressed offer always
says which rule removed it and why.

Layers, in the order they are reported:

- **eligibility**: can the company sell it here at all (network at the address, account type,
  account status — win-back only for ended accounts, the base product the offer attaches to);
- **applicability**: does it make sense for this account now (not already owned, lifecycle stage,
  the timing rule — retention offers only in the renewal window or when at risk, or the timing an
  A/B readout chose for the account's segment);
- **suitability**: may we contact them about it (no promotion while a service issue is open, no
  generic promotion with an active complaint, contact caps per account, household and channel).

The household rules (one promotional offer per household, no conflicting offers across a
household's accounts) need the offers' values, so they run after scoring, in
:mod:`telco_nbo.nbo.arbitration`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from telco_nbo import contract
from telco_nbo.data.schema import ACCOUNT_TYPES, CHANNELS
from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.nbo.catalog import Catalog, Offer
from telco_nbo.nbo.config import NboConfig, TimingWindow
from telco_nbo.vocabulary import DAYS_PER_MONTH, LIFECYCLE_STAGES

FEATURES_TABLE = "account_features"

Layer = Literal["eligibility", "applicability", "suitability", "value", "household", "selection"]
LAYERS: tuple[str, ...] = ("eligibility", "applicability", "suitability", "value", "household", "selection")

# Columns of the account feature frame the default rules read; their kinds (and categories) are
# those of the column contract. (The frame may carry many more: the model features.)
REQUIRED_COLUMNS: dict[str, str] = contract.kinds([
    "account_id",
    "household_id",
    "account_type",
    "household_fiber_eligible",
    "household_fwa_eligible",
    "account_has_mobile",
    "account_has_broadband",
    "account_has_tv",
    "account_has_fixed_voice",
    "account_has_capped_mobile",
    "account_has_device_protection",
    "account_has_travel_pack",
    "account_has_mesh_wifi",
    "account_has_online_security",
    "account_has_streaming",
    "account_has_premium_care",
    "account_lifecycle_stage",
    "account_open_service_issue",
    "account_network_tickets_180d",
    "account_active_complaint",
    "account_months_to_contract_end",
    "account_channel_preference",
    *(f"account_contacts_{c}_30d" for c in CHANNELS),
    "account_promo_contacts_30d",
    "household_promo_contacts_30d",
])
"""Columns the default rules need -> their kind in :mod:`telco_nbo.contract`."""

OPTIONAL_COLUMNS: dict[str, str] = contract.kinds([
    # Absent -> every row is an active account (the feature builder only emits active accounts).
    "account_is_active",
    # Needed only when a timing arm bounds tenure.
    "account_tenure_months",
])
"""Columns the default rules read when present -> their kind."""

_VOCAB: dict[str, tuple[str, ...]] = {
    name: contract.column(name).categories
    for name, kind in {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}.items()
    if kind == "category"
}

_FLAG_WORDS = {
    "has_device_protection": "device protection",
    "has_travel_pack": "a travel pack",
    "has_mesh_wifi": "mesh Wi-Fi",
    "has_online_security": "online security",
    "has_streaming": "streaming",
    "has_premium_care": "premium care",
}
_NETWORK_WORDS = {"fiber": "fiber", "fwa": "5G fixed-wireless", "any_home": "home internet (fiber or 5G)"}


def _examples(values: pd.Series | pd.Index, n: int = 5) -> str:
    return ", ".join(repr(v) for v in list(values[:n]))


def validate_features(features: pd.DataFrame) -> None:
    """Check an account feature frame against what the rules need.

    Args:
        features: One row per account (see the feature contract).

    Raises:
        DataValidationError: Naming every problem found (missing column, wrong type, duplicate or
            null id, unknown category, negative or missing count).
    """
    if not isinstance(features, pd.DataFrame):
        raise DataValidationError(FEATURES_TABLE, [f"expected a pandas DataFrame, got {type(features).__name__}"])
    if len(features) == 0:
        raise DataValidationError(FEATURES_TABLE, ["no rows: nothing to rank"])
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        problems.append(f"missing columns: {missing}")
    for col, kind in {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}.items():
        if col not in features.columns:
            continue
        s = features[col]
        if kind in ("id", "category"):
            if s.isna().any():
                problems.append(f"column '{col}' has nulls in rows {_examples(s.index[s.isna()])}")
                continue
            if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
                    or isinstance(s.dtype, pd.CategoricalDtype)):
                problems.append(f"column '{col}' must be text, got dtype {s.dtype}")
                continue
            if col in _VOCAB:
                bad = ~s.astype(str).isin(_VOCAB[col])
                if bad.any():
                    problems.append(
                        f"column '{col}' has unknown values {_examples(pd.Index(s[bad].unique()))}; "
                        f"allowed: {list(_VOCAB[col])}"
                    )
        elif kind == "bool":
            if not (pd.api.types.is_bool_dtype(s) and not s.isna().any()):
                problems.append(f"column '{col}' must be bool without nulls, got dtype {s.dtype}")
        elif kind in ("count", "float_nan"):
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                problems.append(f"column '{col}' must be numeric, got dtype {s.dtype}")
                continue
            if kind == "count":
                if s.isna().any():
                    problems.append(f"column '{col}' has nulls in rows {_examples(s.index[s.isna()])}")
                elif (s < 0).any():
                    problems.append(f"column '{col}' has negative counts in rows {_examples(s.index[s < 0])}")
    if "account_id" in features.columns:
        dup = features["account_id"].duplicated(keep=False)
        if dup.any():
            problems.append(f"duplicate account_id: {_examples(pd.Index(features.loc[dup, 'account_id'].unique()))}")
    if problems:
        raise DataValidationError(FEATURES_TABLE, problems)


@runtime_checkable
class TimingRule(Protocol):
    """Which timing arm won for a segment (from an A/B readout); ``None`` means "no verdict".

    Implemented by :mod:`telco_nbo.experiments` (declared here so the ranking does not import it).
    An implementation may also expose ``segment_column`` (the feature column its segments come from).
    """

    def arm_for(self, segment: str) -> str | None:
        """Return the winning arm for ``segment``, or ``None`` to fall back to the default rule."""
        ...


@dataclass(frozen=True)
class OfferTable:
    """The catalog as aligned numpy vectors, one entry per offer (catalog order)."""

    offers: tuple[Offer, ...]
    ids: np.ndarray
    kind: np.ndarray
    promotional: np.ndarray
    complexity: np.ndarray
    channel_mask: np.ndarray  # (m, n_channels) bool: offer may go out on channel
    _where_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> OfferTable:
        """Build the vectors from a validated catalog."""
        offers = tuple(catalog.offers)
        return cls(
            offers=offers,
            ids=np.array([o.offer_id for o in offers], dtype=object),
            kind=np.array([o.kind for o in offers], dtype=object),
            promotional=np.array([o.promotional for o in offers], dtype=bool),
            complexity=np.array([o.complexity for o in offers], dtype=object),
            channel_mask=np.array([[c in o.channels for c in CHANNELS] for o in offers], dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.offers)

    def where(self, pred: Callable[[Offer], bool]) -> np.ndarray:
        """Return the boolean offer vector of ``pred`` over the catalog.

        Results of closure-free predicates are cached by their code and default arguments: the
        rules ask the same questions of the (frozen) catalog on every call, and on the one-account
        API path answering them again would cost more than the rule arithmetic itself.
        """
        key = None
        if getattr(pred, "__closure__", True) is None:
            key = (pred.__code__, pred.__defaults__)  # type: ignore[attr-defined]
            try:
                hit = self._where_cache.get(key)
            except TypeError:  # unhashable default arguments: do not cache
                key, hit = None, None
            if hit is not None:
                return hit
        out = np.array([bool(pred(o)) for o in self.offers], dtype=bool)
        out.flags.writeable = False  # shared between calls: nobody may change it
        if key is not None:
            self._where_cache[key] = out
        return out


def as_columns(features: pd.DataFrame | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return a feature frame as column name -> numpy array (a mapping is returned as a dict).

    The rules and the ranking work on plain arrays: the scoring API ranks one account per request,
    where pandas' per-call overhead would cost more than the arithmetic.
    """
    if isinstance(features, pd.DataFrame):
        return {str(c): features[c].to_numpy() for c in features.columns}
    return {str(c): np.asarray(v) for c, v in features.items()}


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees: the feature columns, the catalog vectors, the policy config, a timing rule.

    ``features`` may be a DataFrame or a mapping of column name -> numpy array (all of one length);
    a DataFrame is turned into arrays once, on construction.
    """

    features: Mapping[str, np.ndarray]
    offers: OfferTable
    config: NboConfig
    timing_rule: TimingRule | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.features, dict):
            object.__setattr__(self, "features", as_columns(self.features))

    @property
    def n(self) -> int:
        """Number of accounts."""
        first = next(iter(self.features.values()), None)
        return 0 if first is None else len(first)

    def has(self, name: str) -> bool:
        """Whether the features carry a column."""
        return name in self.features

    def col(self, name: str, rule_id: str = "") -> np.ndarray:
        """Return a feature column as a numpy array, or raise naming the missing column."""
        try:
            return self.features[name]
        except KeyError:
            who = f" (needed by rule {rule_id})" if rule_id else ""
            raise DataValidationError(FEATURES_TABLE, [f"missing column '{name}'{who}"]) from None

    def flag(self, name: str, rule_id: str = "") -> np.ndarray:
        """Return a bool feature column as a numpy bool array."""
        return self.col(name, rule_id).astype(bool)

    def active(self) -> np.ndarray:
        """Whether each account is active (all are unless ``account_is_active`` says otherwise)."""
        if self.has("account_is_active"):
            return self.flag("account_is_active")
        return np.ones(self.n, dtype=bool)


@dataclass(frozen=True)
class Rule:
    """One rule: removes offer j for account i where ``blocks(ctx)[i, j]`` is True.

    Attributes:
        rule_id: Stable id shown in every suppression (e.g. ``SUIT_OPEN_SERVICE_ISSUE``).
        layer: eligibility, applicability or suitability.
        description: What the rule enforces, for documentation and audit.
        blocks: ``RuleContext -> (n_accounts, n_offers)`` bool matrix.
        reason: ``Offer -> str``, the plain-words reason shown when it removes that offer.
    """

    rule_id: str
    layer: Layer
    description: str
    blocks: Callable[[RuleContext], np.ndarray] = field(repr=False)
    reason: Callable[[Offer], str] = field(repr=False)


def _outer(account: np.ndarray, offer: np.ndarray) -> np.ndarray:
    return np.logical_and.outer(account.astype(bool), offer.astype(bool))


# ---- eligibility --------------------------------------------------------------------------------


def _status(ctx: RuleContext) -> np.ndarray:
    active = ctx.active()
    needs_active = ctx.offers.where(lambda o: o.eligibility.requires_active)
    return _outer(~active, needs_active) | _outer(active, ~needs_active)


def _network(ctx: RuleContext) -> np.ndarray:
    fiber = ctx.flag("household_fiber_eligible")
    fwa = ctx.flag("household_fwa_eligible")
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for need, ok in (("fiber", fiber), ("fwa", fwa), ("any_home", fiber | fwa)):
        out |= _outer(~ok, ctx.offers.where(lambda o, need=need: o.eligibility.network == need))
    return out


def _account_type(ctx: RuleContext) -> np.ndarray:
    acct = ctx.col("account_type").astype(str)
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for t in ACCOUNT_TYPES:
        excluded = ctx.offers.where(
            lambda o, t=t: o.eligibility.account_types is not None and t not in o.eligibility.account_types
        )
        out |= _outer(acct == t, excluded)
    return out


def _requires_line(ctx: RuleContext) -> np.ndarray:
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for line in ("mobile", "broadband", "tv", "fixed_voice"):
        needs = ctx.offers.where(lambda o, line=line: o.eligibility.requires_line == line)
        if needs.any():
            out |= _outer(~ctx.flag(f"account_has_{line}"), needs)
    return out


# ---- applicability ------------------------------------------------------------------------------


def _owns_line(ctx: RuleContext) -> np.ndarray:
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for line in ("mobile", "broadband", "tv", "fixed_voice"):
        excl = ctx.offers.where(lambda o, line=line: o.eligibility.excludes_line == line)
        if excl.any():
            out |= _outer(ctx.flag(f"account_has_{line}"), excl)
    return out


def _owns_flag(ctx: RuleContext) -> np.ndarray:
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for flag in _FLAG_WORDS:
        excl = ctx.offers.where(lambda o, flag=flag: o.eligibility.excludes_flag == flag)
        if excl.any():
            out |= _outer(ctx.flag(f"account_{flag}"), excl)
    return out


def _capped_mobile(ctx: RuleContext) -> np.ndarray:
    needs = ctx.offers.where(lambda o: o.eligibility.requires_capped_mobile)
    return _outer(~ctx.flag("account_has_capped_mobile"), needs)


def _service_need(ctx: RuleContext) -> np.ndarray:
    signal = ctx.flag("account_open_service_issue") | (ctx.col("account_network_tickets_180d").astype(float) > 0)
    return _outer(~signal, ctx.offers.where(lambda o: o.eligibility.requires_service_signal))


def _lifecycle(ctx: RuleContext) -> np.ndarray:
    stage = ctx.col("account_lifecycle_stage").astype(str)
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    for s in LIFECYCLE_STAGES:
        excluded = ctx.offers.where(
            lambda o, s=s: o.eligibility.lifecycle is not None and s not in o.eligibility.lifecycle
        )
        out |= _outer(stage == s, excluded)
    return out


def segment_values(ctx: RuleContext, column: str) -> np.ndarray:
    """Return each account's level of an A/B segment column.

    A feature column of that name wins; otherwise the readout's own segment definitions are
    rebuilt from features: ``product_mix`` (mobile_only = only mobile lines, bundle = mobile and
    broadband, home_only = the rest; from the household's lines, the timing experiment's unit, when
    the household columns are there), ``lifecycle_stage``, ``region``.

    Raises:
        DataValidationError: Neither the column nor a way to rebuild it is in the features.
    """
    if ctx.has(column):
        return ctx.col(column)
    if column == "product_mix":
        grain = "household" if all(ctx.has(f"household_has_{t}") for t in ("mobile", "broadband", "tv",
                                                                             "fixed_voice")) else "account"
        has = {t: ctx.flag(f"{grain}_has_{t}", "APPL_TIMING") for t in ("mobile", "broadband", "tv", "fixed_voice")}
        only_mob = has["mobile"] & ~(has["broadband"] | has["tv"] | has["fixed_voice"])
        return np.select([only_mob, has["mobile"] & has["broadband"]], ["mobile_only", "bundle"], "home_only")
    aliases = {"lifecycle_stage": "account_lifecycle_stage", "region": "household_region"}
    return ctx.col(aliases.get(column, column), "APPL_TIMING")


def timing_allowed(ctx: RuleContext, *, default: bool = True) -> np.ndarray:
    """Return, per account, whether timing-governed offers may go out now.

    Where an A/B readout picked an arm for the account's segment, that arm's window decides.
    Elsewhere the default holds: with ``default`` the conservative rule (the contract ends within
    ``renewal_window_months`` or the stage is one of ``default_stages``); without it, no restriction
    (for offers whose own randomized evidence decides where they pay, see :func:`_timing`).

    Raises:
        ConfigError: The timing rule names an arm the config has no window for.
    """
    tcfg = ctx.config.timing
    months_to_end = ctx.col("account_months_to_contract_end").astype(float)
    if default:
        stage = ctx.col("account_lifecycle_stage").astype(str)
        with np.errstate(invalid="ignore"):
            in_window = months_to_end <= tcfg.renewal_window_months  # NaN (month-to-month) -> False
        default_stages = set(tcfg.default_stages)
        # A set lookup per account: np.isin sorts, which costs more than the lookups on the API's few rows.
        allowed = in_window | np.fromiter((s in default_stages for s in stage.tolist()), dtype=bool,
                                          count=len(stage))
    else:
        allowed = np.ones(ctx.n, dtype=bool)
    if ctx.timing_rule is None:
        return allowed
    seg_col = getattr(ctx.timing_rule, "segment_column", None) or tcfg.segment_column
    segments = np.asarray(segment_values(ctx, seg_col)).astype(str)
    out = allowed.copy()
    for seg in sorted(np.unique(segments).tolist()):
        arm = ctx.timing_rule.arm_for(seg)
        if arm is None:
            continue
        window = tcfg.arms.get(arm)
        if window is None and arm == getattr(ctx.timing_rule, "control_arm", None):
            # The readout's control arm won: "do not make this offer" in that segment.
            window = TimingWindow(never=True)
        if window is None:
            raise ConfigError(
                f"timing rule picked arm '{arm}' for segment '{seg}' but the NBO config has no "
                f"timing window for it; known arms: {sorted(tcfg.arms)}"
            )
        rows = segments == seg
        ok = np.full(ctx.n, not window.never, dtype=bool)
        with np.errstate(invalid="ignore"):
            if window.min_tenure_days is not None or window.max_tenure_days is not None:
                tenure_days = ctx.col("account_tenure_months", "APPL_TIMING").astype(float) * DAYS_PER_MONTH
                if window.min_tenure_days is not None:
                    ok &= tenure_days >= window.min_tenure_days
                if window.max_tenure_days is not None:
                    ok &= tenure_days <= window.max_tenure_days
            if window.max_days_to_contract_end is not None:
                ok &= months_to_end * DAYS_PER_MONTH <= window.max_days_to_contract_end
        out[rows] = ok[rows]
    return out


def timing_groups(offers: OfferTable, config: NboConfig, timing_rule: TimingRule | None) -> tuple[np.ndarray, np.ndarray]:
    """Split the timing-governed offers by the evidence that times them.

    * The readout's verdicts govern the offers its experiment tested (``effect_evidence`` names the
      rule's ``experiment_id``); when no offer names that experiment, the governed offers without
      randomized evidence of their own (for them a timing readout is the best evidence there is;
      an offer whose own experiment measured its effect per account is not overruled by a
      readout of another offer).
    * Without a verdict, an offer with randomized evidence of its own effect (its ``effect_evidence``
      names ``config.uplift_experiment``) is timed by that evidence -- its per-account effect, in the
      value -- and not by the conservative renewal default (``timing.evidence_decides``); every
      other governed offer keeps the default.

    Returns:
        ``(by_verdict, by_default)``: ``(m,)`` masks of offers the readout's verdicts govern and of
        offers the default governs where no verdict applies (a verdict-governed offer without its
        own evidence is in both).
    """
    # Asked on every request with the same (frozen) config and rule: computed once per pair.
    key = ("timing_groups", id(config), id(timing_rule))
    hit = offers._where_cache.get(key)
    if hit is not None and hit[0] is config and hit[1] is timing_rule:
        return hit[2]
    kinds = frozenset(config.timing.offer_kinds)
    governed = offers.where(lambda o: o.kind in kinds)
    evidenced = offers.where(lambda o: config.uplift_experiment in o.effect_evidence)
    exp = getattr(timing_rule, "experiment_id", None) if timing_rule is not None else None
    tested = offers.where(lambda o: exp is not None and exp in o.effect_evidence)
    by_default = governed & ~(evidenced if config.timing.evidence_decides else np.zeros(len(offers), dtype=bool))
    by_verdict = governed & tested if tested.any() else by_default.copy()
    for v in (by_verdict, by_default):
        v.flags.writeable = False
    offers._where_cache[key] = (config, timing_rule, (by_verdict, by_default))
    return by_verdict, by_default


def _timing(ctx: RuleContext) -> np.ndarray:
    by_verdict, by_default = timing_groups(ctx.offers, ctx.config, ctx.timing_rule)
    out = np.zeros((ctx.n, len(ctx.offers)), dtype=bool)
    # Offers the default governs: the default, overridden by a verdict where they are verdict-governed.
    both = by_default & by_verdict
    if both.any():
        out |= _outer(~timing_allowed(ctx), both)
    only_default = by_default & ~by_verdict
    if only_default.any():
        no_rule = RuleContext(ctx.features, ctx.offers, ctx.config, None)
        out |= _outer(~timing_allowed(no_rule), only_default)
    only_verdict = by_verdict & ~by_default
    if only_verdict.any() and ctx.timing_rule is not None:
        out |= _outer(~timing_allowed(ctx, default=False), only_verdict)
    return out


# ---- suitability --------------------------------------------------------------------------------


def _open_service_issue(ctx: RuleContext) -> np.ndarray:
    return _outer(ctx.flag("account_open_service_issue"), ctx.offers.promotional)


def _active_complaint(ctx: RuleContext) -> np.ndarray:
    generic = ctx.offers.where(lambda o, kinds=frozenset(ctx.config.complaint_blocked_kinds): o.kind in kinds)
    return _outer(ctx.flag("account_active_complaint"), generic)


def _account_promo_cap(ctx: RuleContext) -> np.ndarray:
    used = ctx.col("account_promo_contacts_30d").astype(float)
    return _outer(used >= ctx.config.caps.promo_per_account, ctx.offers.promotional)


def _household_promo_cap(ctx: RuleContext) -> np.ndarray:
    used = ctx.col("household_promo_contacts_30d").astype(float)
    return _outer(used >= ctx.config.caps.promo_per_household, ctx.offers.promotional)


def channel_available(ctx: RuleContext) -> np.ndarray:
    """Return ``(n_accounts, n_channels)``: channel still below its 30-day contact cap."""
    caps = ctx.config.caps.per_channel
    cols = []
    for c in CHANNELS:
        used = ctx.col(f"account_contacts_{c}_30d").astype(float)
        cap = caps.get(c)  # type: ignore[call-overload]
        cols.append(np.ones(ctx.n, dtype=bool) if cap is None else used < cap)
    return np.column_stack(cols)


def _channel_cap(ctx: RuleContext) -> np.ndarray:
    avail = channel_available(ctx)
    # Offer is blocked when none of its channels is still available: (n,c) x (m,c) -> (n,m).
    reachable = (avail.astype(np.int8) @ ctx.offers.channel_mask.T.astype(np.int8)) > 0
    return ~reachable


def default_rules() -> list[Rule]:
    """Return the built-in rules, in reporting order (eligibility, applicability, suitability)."""
    return [
        Rule("ELIG_ACCOUNT_STATUS", "eligibility",
             "Win-back offers go only to ended accounts; every other offer only to active ones.",
             _status,
             lambda o: ("win-back is only for accounts that have left" if not o.eligibility.requires_active
                        else "the account has ended: only win-back offers apply")),
        Rule("ELIG_NETWORK", "eligibility",
             "The network must be able to deliver the product at the household's address.",
             _network,
             lambda o: f"the network cannot deliver {_NETWORK_WORDS.get(o.eligibility.network or '', '')} "
                       "at this address"),
        Rule("ELIG_ACCOUNT_TYPE", "eligibility", "The offer is sold to some account types only.",
             _account_type,
             lambda o: f"only for {' / '.join(o.eligibility.account_types or [])} accounts"),
        Rule("ELIG_REQUIRES_LINE", "eligibility", "The offer attaches to a product the account must have.",
             _requires_line,
             lambda o: f"needs a {o.eligibility.requires_line} line on the account"),
        Rule("APPL_OWNS_LINE", "applicability", "No offer of a product line already owned.", _owns_line,
             lambda o: f"already has a {o.eligibility.excludes_line} line"),
        Rule("APPL_OWNS_FLAG", "applicability", "No offer of an add-on already owned.", _owns_flag,
             lambda o: f"already has {_FLAG_WORDS.get(o.eligibility.excludes_flag or '', '')}"),
        Rule("APPL_NO_CAPPED_MOBILE", "applicability",
             "A bigger data plan needs a mobile line with a data cap.", _capped_mobile,
             lambda o: "no capped mobile plan to enlarge (unlimited already, or no mobile line)"),
        Rule("APPL_NO_SERVICE_NEED", "applicability",
             "Service recovery follows a service problem: an open issue or network tickets in 6 months.",
             _service_need,
             lambda o: "no open service issue and no network or coverage tickets in the last 6 months"),
        Rule("APPL_LIFECYCLE", "applicability", "Offered only in some lifecycle stages.", _lifecycle,
             lambda o: f"offered only in lifecycle stages {', '.join(o.eligibility.lifecycle or [])}"),
        Rule("APPL_TIMING", "applicability",
             "Retention-type offers at the timing an A/B readout chose for the account's segment; "
             "elsewhere an offer with randomized evidence of its effect goes where that effect pays, "
             "and one without only in the renewal window or when at risk.",
             _timing,
             lambda o: "not the right time: retention offers go out in the renewal window, when the "
                       "account is at risk, or when the A/B-tested timing for its segment says so"),
        Rule("SUIT_OPEN_SERVICE_ISSUE", "suitability",
             "No promotional offer while a service issue is open: fix first, only service recovery.",
             _open_service_issue,
             lambda o: "a service issue is open: fix it first (only service recovery offers)"),
        Rule("SUIT_ACTIVE_COMPLAINT", "suitability",
             "No generic promotion to an account with an active complaint.", _active_complaint,
             lambda o: "the account has an active complaint: no generic promotion"),
        Rule("SUIT_ACCOUNT_PROMO_CAP", "suitability",
             "Cap on promotional contacts per account per 30 days.", _account_promo_cap,
             lambda o: "the account reached its cap of promotional contacts in the last 30 days"),
        Rule("SUIT_HOUSEHOLD_PROMO_CAP", "suitability",
             "Cap on promotional contacts per household per 30 days.", _household_promo_cap,
             lambda o: "the household reached its cap of promotional contacts in the last 30 days"),
        Rule("SUIT_CHANNEL_CAP", "suitability",
             "Contact caps per channel per 30 days: an offer needs one of its channels below its cap.",
             _channel_cap,
             lambda o: f"every channel of this offer ({', '.join(o.channels)}) reached its 30-day contact cap"),
    ]


@dataclass(frozen=True)
class RuleEvaluation:
    """The result of running rules over accounts x offers.

    Attributes:
        rules: The rules, in evaluation order.
        blocked: ``(n_rules, n_accounts, n_offers)`` bool: rule r removes offer j for account i.
        reasons: ``(n_rules, n_offers)`` object array of reason texts.
    """

    rules: tuple[Rule, ...]
    blocked: np.ndarray
    reasons: np.ndarray

    @property
    def passed(self) -> np.ndarray:
        """``(n_accounts, n_offers)``: no rule removes the offer."""
        if len(self.rules) == 0:
            return np.ones(self.blocked.shape[1:], dtype=bool)
        return ~self.blocked.any(axis=0)


def check_rules(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """Return the rules as a tuple, or raise :class:`ConfigError` on duplicate ids."""
    rules = tuple(rules)
    ids = [r.rule_id for r in rules]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"duplicate rule ids: {dup}")
    return rules


def rule_reasons(rules: Sequence[Rule], offers: OfferTable) -> np.ndarray:
    """``(n_rules, n_offers)`` reason texts (they depend on the offer only: computed once)."""
    reasons = np.empty((len(rules), len(offers)), dtype=object)
    for k, rule in enumerate(rules):
        reasons[k] = [rule.reason(o) for o in offers.offers]
    return reasons


def blocked_matrix(ctx: RuleContext, rules: Sequence[Rule]) -> np.ndarray:
    """Run the rules on a context: ``(n_rules, n_accounts, n_offers)`` bool.

    Raises:
        ConfigError: A rule returned a matrix of the wrong shape.
    """
    shape = (ctx.n, len(ctx.offers))
    blocked = np.zeros((len(rules), *shape), dtype=bool)
    for k, rule in enumerate(rules):
        m = np.asarray(rule.blocks(ctx))
        if m.shape != shape:
            raise ConfigError(f"rule {rule.rule_id} returned shape {m.shape}, expected {shape}")
        blocked[k] = m
    return blocked


def evaluate_rules(
    features: pd.DataFrame,
    catalog: Catalog,
    config: NboConfig | None = None,
    rules: Sequence[Rule] | None = None,
    timing_rule: TimingRule | None = None,
) -> RuleEvaluation:
    """Run every rule over every account and offer.

    Args:
        features: Account feature frame (validated here).
        catalog: The offer catalog.
        config: Policy config; defaults if ``None``.
        rules: Rules to apply; :func:`default_rules` if ``None``.
        timing_rule: Optional A/B-derived timing rule for the applicability layer.

    Returns:
        The per-rule removal matrices and reason texts.

    Raises:
        DataValidationError: The feature frame breaks the contract.
        ConfigError: Duplicate rule ids, or a rule returned a matrix of the wrong shape.
    """
    validate_features(features)
    config = config or NboConfig()
    rules = check_rules(default_rules() if rules is None else rules)
    offers = OfferTable.from_catalog(catalog)
    ctx = RuleContext(as_columns(features), offers, config, timing_rule)
    return RuleEvaluation(rules, blocked_matrix(ctx, rules), rule_reasons(rules, offers))


SELLABLE_RULES = ("ELIG_ACCOUNT_STATUS", "ELIG_NETWORK", "ELIG_ACCOUNT_TYPE", "ELIG_REQUIRES_LINE",
                  "APPL_OWNS_LINE", "APPL_OWNS_FLAG", "APPL_NO_CAPPED_MOBILE")
"""The rules that say whether an offer can be sold to an account at all (network, account, lines
and products owned), as opposed to whether it should be now (timing, need, suitability, caps)."""


def sellable(features: pd.DataFrame | Mapping[str, np.ndarray], catalog: Catalog) -> np.ndarray:
    """``(n, m)``: offer ``j`` could be sold to account ``i`` (none of :data:`SELLABLE_RULES` blocks it).

    What a logging policy could have chosen for an account: the per-offer effects compare an
    offer's logged contacts with the not-contacted accounts it was sellable to
    (:func:`telco_nbo.models.offer_effects.estimate_offer_effects`).
    """
    rules = [r for r in default_rules() if r.rule_id in SELLABLE_RULES]
    ctx = RuleContext(as_columns(features), OfferTable.from_catalog(catalog), NboConfig())
    return ~blocked_matrix(ctx, rules).any(axis=0)
