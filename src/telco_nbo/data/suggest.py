"""Draft a flat mapping from a table's column names, types and values (``data suggest-mapping``).

The draft is meant to import as it is: a column is mapped to a field only when its name says so
*and* its values fit the field (numbers for a number field, recognisable values for a true/false
or category field); everything else is listed under ``passthrough`` (typed) or ``drop`` (with the
reason), so the user reads in one file what will happen to every column and edits from there.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from telco_nbo.data.mapping import FIELDS, FlatMapping, infer_column
from telco_nbo.errors import DataValidationError

_TRUE_WORDS = {"yes", "y", "true", "t", "1", "churn", "churned", "left", "lost", "gone", "exited", "cancelled"}
_FALSE_WORDS = {"no", "n", "false", "f", "0", "stayed", "active", "retained", "current", "no internet service",
                "no phone service"}

# Field -> name pattern (on the column name made lower-case with single underscores).
_NAME_PATTERNS: dict[str, str] = {
    "customer_id": r"^(customer|cust|account|acct|subscriber|client|user)?_?(id|number|no)$|^customerid$",
    "tenure_months": r"tenure|months?_active|months_with|lifetime_months",
    "monthly_charges": r"monthly_(charge|fee|bill|amount|spend)s?|mrc|arpu",
    "total_charges": r"^total_charges?$|lifetime_(billed|charges?)",
    "contract": r"contract|plan_term|commitment",
    "payment_method": r"payment|pays_by|pay_method",
    "paperless_billing": r"paperless|e_?bill",
    "phone_service": r"^phone_?service$|^has_phone$",
    "multiple_lines": r"multiple_lines|extra_(mobile|line)",
    "internet_service": r"internet_service|home_internet|broadband_type",
    "senior_citizen": r"senior",
    "partner": r"partner|spouse|married",
    "dependents": r"dependents|kids|children",
    "online_security": r"online_security|security_pack",
    "online_backup": r"online_backup",
    "device_protection": r"device_(protection|care|insurance)",
    "tech_support": r"tech_support|premium_(support|care)",
    "streaming_tv": r"streaming_tv|tv_pack",
    "streaming_movies": r"streaming_movies|movie_pack",
    "gender": r"^(gender|sex)$",
    "region": r"region|area_type|urbanicity",
    "intl_minutes": r"(intl|international).*min",
    "data_gb": r"data_(gb|usage|volume)|^gb_used",
    "roaming_days": r"roaming_days|days_roaming",
    "dropped_calls": r"dropped_calls|call_drops",
    "bill_amount": r"^bill(_amount)?$|last_bill",
    "support_calls": r"service_calls|support_calls|care_calls|custserv|cust_serv|(number|num|n)_tickets|^tickets$",
    "complaints": r"complaints?",
}

_CATEGORY_KEYWORDS: dict[str, list[tuple[str, str]]] = {
    "contract": [(r"month", "month_to_month"), (r"\b(one|1)\b|12", "one_year"), (r"\b(two|2)\b|24", "two_year")],
    "payment_method": [(r"electronic|e-?check", "electronic_check"), (r"mail|cheque|check", "mailed_check"),
                       (r"bank|transfer|debit", "bank_transfer"), (r"credit|card", "credit_card")],
    "internet_service": [(r"dsl", "dsl"), (r"fib|ftth", "fiber"), (r"cable", "cable"), (r"fwa|fixed wireless", "fwa"),
                         (r"^(no|none)$", "none")],
    "region": [(r"^suburb", "suburban"), (r"urban|city", "urban"), (r"rural|country", "rural")],
}


def _slug(name: str) -> str:
    # camelCase words apart first ("MultipleLines" -> multiple_lines, "customerID" -> customer_id).
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    return re.sub(r"[^0-9a-z]+", "_", spaced.lower()).strip("_")


def _values(text: pd.Series) -> pd.Series:
    s = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    return s[s.notna() & (s != "")].astype(str)


def _bool_map(vals: pd.Series) -> dict[str, bool] | None:
    distinct = sorted(set(vals))
    if not distinct or len(distinct) > 3:
        return None
    out = {}
    for v in distinct:
        low = v.casefold()
        if low in _TRUE_WORDS:
            out[v] = True
        elif low in _FALSE_WORDS:
            out[v] = False
        else:
            return None
    return out


def _category_map(field: str, vals: pd.Series) -> dict[str, str] | None:
    out = {}
    for v in sorted(set(vals)):
        low = v.casefold()
        if low in FIELDS[field].vocabulary:
            out[v] = low
            continue
        hit = [target for pattern, target in _CATEGORY_KEYWORDS.get(field, []) if re.search(pattern, low)]
        if not hit:
            return None
        out[v] = hit[0]
    return out


def _is_count(vals: pd.Series) -> bool:
    num = pd.to_numeric(vals, errors="coerce")
    return bool(len(num)) and num.notna().all() and (num >= 0).all() and (num == np.floor(num)).all()


def _is_amount(vals: pd.Series) -> bool:
    num = pd.to_numeric(vals, errors="coerce")
    return bool(len(num)) and num.notna().all() and (num >= 0).all()


def _target_map(vals: pd.Series, column: str) -> dict[str, bool]:
    known = _bool_map(vals)
    if known is not None and len(set(known.values())) == 2:
        return known
    distinct = vals.value_counts()
    if len(distinct) != 2:
        raise DataValidationError(
            "target", [f"column '{column}' must hold two values (churned or not), it holds {len(distinct)}: "
                       f"{', '.join(map(repr, distinct.index[:5]))}"])
    # Two unknown words: churn is the rarer outcome in any telco book; say so in the file.
    return {str(distinct.index[-1]): True, str(distinct.index[0]): False}


def suggest_mapping(flat: pd.DataFrame, target: str, name: str = "my_data") -> dict[str, Any]:
    """Draft a mapping for a flat table (all cells text).

    Args:
        flat: The table as read (:func:`telco_nbo.data.importers.read_flat_file`).
        target: The churn column.
        name: The mapping's name.

    Returns:
        The mapping as a dict (valid :class:`FlatMapping`), with a ``notes`` list kept apart under
        the key ``_notes`` for the YAML comments.

    Raises:
        DataValidationError: The target column is missing or does not hold two values.
    """
    if target not in flat.columns:
        raise DataValidationError("target", [f"no column '{target}'; columns are: {', '.join(map(str, flat.columns))}"])
    notes: list[str] = []
    columns: dict[str, str] = {"churn": target}
    values: dict[str, dict[str, Any]] = {}
    units: dict[str, str] = {}
    tvals = _values(flat[target])
    churn_map = _target_map(tvals, target)
    if _bool_map(tvals) is None:
        values["churn"] = churn_map
        notes.append(f"churn: '{target}' value {[k for k, v in churn_map.items() if v][0]!r} (the rarer) read as churned")
    taken = {target}
    for col in flat.columns:
        if col in taken:
            continue
        slug = _slug(col)
        vals = _values(flat[col])
        for field, pattern in _NAME_PATTERNS.items():
            if field in columns or not re.search(pattern, slug):
                continue
            spec = FIELDS[field]
            ok = False
            if spec.kind == "id":
                ok = len(vals) == len(flat) and vals.is_unique
            elif spec.kind == "int":
                ok = _is_count(vals) and len(vals) == len(flat)
            elif spec.kind == "float":
                ok = _is_amount(vals) and len(vals) == len(flat)
            elif spec.kind == "float_or_blank":
                ok = pd.to_numeric(vals, errors="coerce").notna().all()
            elif spec.kind == "bool":
                vmap = _bool_map(vals)
                ok = vmap is not None and len(vals) == len(flat)
            elif spec.kind == "category":
                vmap = _category_map(field, vals)
                ok = vmap is not None and len(vals) == len(flat)
                if ok:
                    values[field] = vmap
            elif spec.kind == "text":
                ok = True
            if field == "data_gb" and ok and re.search(r"mb", slug):
                units[field] = "mb"
            if ok:
                columns[field] = str(col)
                taken.add(col)
                break
    passthrough: dict[str, str] = {}
    drop: dict[str, str] = {}
    for col in flat.columns:
        if col in taken:
            continue
        kind, reason = infer_column(flat[col])
        if kind is None:
            drop[str(col)] = reason
        else:
            passthrough[str(col)] = kind
    if "customer_id" not in columns:
        notes.append("no id column found: the import numbers the accounts by row")
    draft: dict[str, Any] = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "my_data",
        "description": f"draft from telco-nbo data suggest-mapping (target {target})",
        "columns": columns,
    }
    if values:
        draft["values"] = values
    if units:
        draft["units"] = units
    draft["passthrough"] = passthrough
    draft["drop"] = drop
    FlatMapping.model_validate(draft)  # the draft must load as it is
    draft["_notes"] = notes
    return draft


def mapping_yaml(draft: dict[str, Any]) -> str:
    """The draft as commented YAML (notes first; Yes/No keys quoted by the dumper)."""
    import yaml

    body = {k: v for k, v in draft.items() if k != "_notes"}
    head = ["# Draft mapping written by `telco-nbo data suggest-mapping`: check it, then",
            "#   telco-nbo data import-csv FILE --mapping THIS.yaml --out DIR",
            "# columns: field -> your column (telco-nbo data fields lists every field, its unit and default)",
            "# passthrough: kept as account features account_x_<name>; drop: left out, with the reason."]
    head += [f"# note: {n}" for n in draft.get("_notes", [])]
    return "\n".join(head) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


__all__ = ["mapping_yaml", "suggest_mapping"]
