"""One XGBoost booster compiled for numpy input: its feature order, category codes and fast predict.

:class:`CompiledBooster` reads, once, how a booster's input row is built from feature columns
(model feature order, categories coded with the booster's *own* stored category lists, booleans
as 0/1, missing as NaN, offer attributes for account x offer rows) and then predicts with
XGBoost's dense in-place prediction on a float32 matrix: no pandas, no DMatrix.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telco_nbo.errors import ConfigError, DataValidationError
from telco_nbo.scoring.offers import OFFER_ATTRIBUTES


def booster_of(model: Any) -> Any:
    """The Booster of a model (an XGBoost sklearn wrapper, or already a Booster)."""
    return model.get_booster() if hasattr(model, "get_booster") else model


def _iteration_range(model: Any) -> tuple[int, int]:
    # The sklearn wrapper predicts with the best iteration after early stopping: match it.
    best = getattr(model, "best_iteration", None) if hasattr(model, "get_booster") else None
    return (0, int(best) + 1) if best is not None else (0, 0)


def _stored_categories(booster: Any) -> dict[str, list[str]]:
    try:
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
    except Exception:  # noqa: BLE001 - a model saved without categories
        return {}
    return {n: [str(v) for v in arr.to_pylist()] for n, arr in stored if arr is not None}


@dataclass
class CompiledBooster:
    """One booster and the recipe of its input matrix.

    Attributes:
        model: The loaded model (sklearn wrapper or Booster).
        booster: Its Booster.
        names: Input feature names, in order.
        categories: Feature index -> {value: code} for categorical inputs.
        offer_columns: Feature index -> offer attribute name (rows are account x offer).
        iteration_range: Trees used (the sklearn wrapper's best iteration).
    """

    model: Any
    booster: Any
    names: list[str]
    categories: dict[int, dict[str, int]]
    offer_columns: dict[int, str]
    iteration_range: tuple[int, int]
    _direct: Any = field(default=None, repr=False, compare=False)
    _numeric: list[int] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def compile(cls, model: Any) -> CompiledBooster:
        """Read a model's feature names, types and stored categories.

        Raises:
            ConfigError: The model has no feature names, or a categorical feature without its
                stored categories (its codes could not be rebuilt from values).
        """
        booster = booster_of(model)
        names = list(booster.feature_names or [])
        if not names:
            raise ConfigError("model has no feature names: it must be trained on a DataFrame")
        types = list(booster.feature_types or ["float"] * len(names))
        stored = _stored_categories(booster)
        cats: dict[int, dict[str, int]] = {}
        for j, (n, t) in enumerate(zip(names, types, strict=True)):
            if t == "c":
                if n not in stored:
                    raise ConfigError(f"categorical feature {n} has no stored categories in the model")
                cats[j] = {v: k for k, v in enumerate(stored[n])}
        offer_cols = {j: n for j, n in enumerate(names) if n in OFFER_ATTRIBUTES}
        return cls(model, booster, names, cats, offer_cols, _iteration_range(model))

    def __getstate__(self) -> dict[str, Any]:
        # The direct-predict handle holds ctypes pointers into this process: rebuilt after unpickling.
        return {**self.__dict__, "_direct": None}

    @property
    def per_offer(self) -> bool:
        """Whether rows are account x offer pairs."""
        return bool(self.offer_columns)

    @property
    def uses_direct_predict(self) -> bool:
        """Whether predictions go through :class:`DirectPredict` (known after the first predict)."""
        return isinstance(self._direct, DirectPredict)

    def same_as(self, other: CompiledBooster) -> bool:
        """Whether ``other`` is the very same model (same inputs, trees and iteration range)."""
        return self.names == other.names and self.iteration_range == other.iteration_range and \
            bytes(self.booster.save_raw("ubj")) == bytes(other.booster.save_raw("ubj"))

    def known_categories(self, name: str) -> set[str]:
        """The values of categorical input ``name`` the model saw in training (empty if none)."""
        if name not in self.names:
            return set()
        return set(self.categories.get(self.names.index(name), {}))

    def matrix(self, columns: Mapping[str, np.ndarray], n: int, offers: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Build the float32 input: ``(n, F)``, or ``(n * m, F)`` account-major when per offer.

        Raises:
            DataValidationError: A model input column is missing or not numeric.
        """
        m = 1
        if self.per_offer:
            if offers is None:
                raise ConfigError("a per-offer model needs the offer attributes")
            m = len(next(iter(offers.values())))
        out = np.empty((n, m, len(self.names)), dtype=np.float32)
        if self._numeric is None:
            self._numeric = [j for j in range(len(self.names)) if j not in self.categories and j not in self.offer_columns]
        try:
            num = [columns[self.names[j]] for j in self._numeric]
        except KeyError:
            missing = [c for j, c in enumerate(self.names) if j not in self.offer_columns and c not in columns]
            raise DataValidationError("features", [f"missing model columns: {', '.join(missing)}"]) from None
        if num:
            try:
                # One conversion for every numeric column (a request's few rows make the per-column
                # numpy calls, not the data, the cost); None in an object column becomes NaN.
                block = np.array(num, dtype=np.float32).T
            except (TypeError, ValueError):  # a non-numeric value: name its column
                block = np.stack([self._encode(j, np.asarray(v), self.names[j])
                                  for j, v in zip(self._numeric, num, strict=True)], axis=1)
            out[:, :, self._numeric] = block[:, None, :]
        for j, attr in self.offer_columns.items():
            out[:, :, j] = self._encode(j, offers[attr], self.names[j])[None, :]  # type: ignore[index]
        for j in self.categories:
            if j in self.offer_columns:
                continue
            name = self.names[j]
            if name not in columns:
                raise DataValidationError("features", [f"missing model columns: {name}"])
            out[:, :, j] = self._encode(j, columns[name], name)[:, None]
        return out.reshape(n * m, len(self.names))

    def _encode(self, j: int, values: np.ndarray, name: str) -> np.ndarray:
        values = np.asarray(values)
        if j in self.categories:
            mapping = self.categories[j]
            # Unseen or missing categories go down XGBoost's missing-value branch, as in training.
            return np.array([mapping.get(str(v), np.nan) if v is not None else np.nan for v in values.tolist()],
                            dtype=np.float32)
        if values.dtype == object:
            try:
                return np.array([np.nan if v is None else float(v) for v in values.tolist()], dtype=np.float32)
            except (TypeError, ValueError):
                raise DataValidationError("features", [f"column {name} must be numeric"]) from None
        return values.astype(np.float32)

    def set_threads(self, nthread: int) -> None:
        """Set XGBoost's threads for this booster (0 = all cores).

        Set once, not per call: changing a booster parameter makes XGBoost reconfigure the model
        on the next prediction, which costs more than predicting one account.
        """
        self.booster.set_param({"nthread": int(nthread)})

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Transformed prediction (probability for classifiers) of a float32 matrix."""
        if self._direct is None:
            self._direct = DirectPredict.build(self.booster, self.iteration_range) or False
        if self._direct:
            return self._direct(X)
        return np.asarray(self.booster.inplace_predict(X, iteration_range=self.iteration_range), dtype=float)


class DirectPredict:
    """``Booster.inplace_predict`` on a dense float32 matrix, through XGBoost's C API directly.

    Why: for the few rows of an API request, ``inplace_predict`` costs ~0.41 ms per call, of which
    ~0.26 ms is Python (data-type dispatch, JSON arguments rebuilt on every call, an array class
    defined per call to read the output back); the C call itself (``XGBoosterPredictFromDense``,
    a documented function of XGBoost's C API) is ~0.15 ms. A ranking makes four such calls
    (measured with XGBoost 3.2 on this machine; see benchmarks/RESULTS.md "Serving"). This makes
    the same call with the arguments built once and copies the result out. If the library's
    internals it needs are absent (another XGBoost release), :meth:`build` returns None and
    ``inplace_predict`` is used; tests check both give the same numbers.
    """

    def __init__(self, lib: Any, check: Any, handle: Any, args: bytes, ulong: Any):
        self._lib, self._check, self._handle, self._args, self._ulong = lib, check, handle, args, ulong

    @classmethod
    def build(cls, booster: Any, iteration_range: tuple[int, int]) -> DirectPredict | None:
        """The direct call for ``booster``, or None where this XGBoost release lacks its internals."""
        try:
            # XGBoost's loaded library handle lives in its core module; imported here so another
            # layout only disables this path instead of breaking the import of the package.
            from xgboost.core import _LIB, _check_call, c_bst_ulong
        except ImportError:  # pragma: no cover - another XGBoost layout
            return None
        args = json.dumps({"type": 0, "training": False, "iteration_begin": int(iteration_range[0]),
                           "iteration_end": int(iteration_range[1]), "missing": float("nan"),
                           "strict_shape": False, "cache_id": 0}).encode()
        return cls(_LIB, _check_call, booster.handle, args, c_bst_ulong)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        rows, cols = X.shape
        iface = (f'{{"data": [{X.__array_interface__["data"][0]}, true], "shape": [{rows}, {cols}], '
                 f'"strides": null, "typestr": "<f4", "version": 3}}').encode()
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        preds = ctypes.POINTER(ctypes.c_float)()
        self._check(self._lib.XGBoosterPredictFromDense(self._handle, iface, self._args, None, ctypes.byref(shape),
                                                        ctypes.byref(dims), ctypes.byref(preds)))
        size = 1
        for d in range(dims.value):
            size *= int(shape[d])
        # The result lives in a buffer the booster reuses on its next call: copy it out now.
        buf = np.empty(size, dtype=np.float32)
        ctypes.memmove(buf.__array_interface__["data"][0], preds, 4 * size)
        out = buf.astype(float)
        return out.reshape(tuple(int(shape[d]) for d in range(dims.value))) if dims.value > 1 else out


__all__ = ["CompiledBooster", "DirectPredict", "booster_of"]
