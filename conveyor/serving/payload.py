"""Prediction requests to model rows: every shape a client sends, every mistake a 400.

A client's mistake must never be a 500: the rollout's error-rate check counts 5xx, so a bad
client could roll back a healthy model. Accepted (V1 ``instances`` or ``inputs``):

- records, one object per row: ``{"instances": [{"amount": 12.5, "merchant": "grocery"}]}``;
- columns, objects of column -> list (what KServe's sklearn runtime takes):
  ``{"instances": [{"amount": [12.5, 3.0], "merchant": ["grocery", "travel"]}]}``;
- positional rows in the order of the model's metadata (numeric, then categorical):
  ``{"instances": [[12.5, "grocery"]]}``.

V2 (Open Inference Protocol): one tensor per feature, named after it, shape ``[n]`` or
``[n, 1]``; ``data`` holds exactly ``prod(shape)`` values of its ``datatype`` (numbers in range
for integer types, finite for floats, strings for BYTES).

Values: a numeric feature takes a finite number (or a numeric string); a categorical one a
string (or a number when the model was trained on numeric codes); ``null`` is a missing value,
which the model imputes as in training. Fields that are not features are ignored (clients send
keys and ids). A category the model never saw is scored as in training (an infrequent or
all-zero one-hot) and counted in ``Rows.unseen``, so monitoring can see it.

The data contract the model was trained under has the last word (``feature_spec.json``'s
``allowed`` and ``not_null``, written by prepare_features): a category outside a column's
``allowed`` list, or a null in a column the contract says is never null, is a 400, since no
such row reached training. A column without ``allowed`` is open: new values are counted.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import BadInputError

__all__ = ["Features", "Rows", "Tensor", "from_v1", "from_v2"]

# V2 datatypes: integer ranges, float types, and the one string type.
INT_RANGES = {
    **{f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    **{f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
}
FLOATS = ("FP16", "FP32", "FP64")
DATATYPES = (*INT_RANGES, *FLOATS, "BOOL", "BYTES")
MISSING_CATEGORY = "__missing__"  # the imputer's fill value, not a category a client sends
SHOWN = 3  # categories named in an error message


@dataclass(frozen=True)
class Features:
    """What the model takes: its numeric and categorical inputs, the categories it was trained
    on (from feature_spec.json; empty when unknown) and the largest batch it accepts."""

    numeric: Sequence[str]
    categorical: Sequence[str]
    categories: Mapping[str, Sequence[str]] = field(default_factory=dict)
    max_batch: int = 10_000
    allowed: Mapping[str, Sequence[str]] = field(default_factory=dict)  # the contract's
    not_null: Sequence[str] = ()  # inputs the contract says are never null

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], max_batch: int) -> "Features":
        return cls(
            list(spec.get("numeric", [])),
            list(spec.get("categorical", [])),
            {k: list(v) for k, v in spec.get("categories", {}).items()},
            max_batch,
            {k: list(v) for k, v in (spec.get("allowed") or {}).items()},
            list(spec.get("not_null") or []),
        )

    @property
    def order(self) -> list[str]:
        """Positional rows and the V2 metadata list the features in this order."""
        return [*self.numeric, *self.categorical]

    @cached_property
    def _known(self) -> dict[str, frozenset[str]]:
        return {
            col: frozenset(c for c in self.categories.get(col, ()) if c != MISSING_CATEGORY)
            for col in self.categorical
        }

    @cached_property
    def _codes(self) -> dict[str, bool]:
        return {col: bool(k) and all(map(_is_number_text, k)) for col, k in self._known.items()}

    def known(self, column: str) -> frozenset[str]:
        """The categories the model was trained on (computed once: read for every value)."""
        return self._known.get(column, frozenset())

    def codes(self, column: str) -> bool:
        """The model was trained on numeric codes for this categorical (e.g. 1, 2, 3)."""
        return self._codes.get(column, False)

    @cached_property
    def _allowed(self) -> dict[str, frozenset[str]]:
        return {col: frozenset(values) for col, values in self.allowed.items()}

    def refuse(self, column: str, values: Iterable[Any]) -> None:
        """A 400 for the first value (as typed: NaN is null) the data contract forbids: a
        null where it allows none, a category outside its ``allowed`` list."""
        allowed = self._allowed.get(column)
        never_null = column in self.not_null
        if allowed is None and not never_null:  # an open column: nothing to look at
            return
        for i, v in enumerate(values):
            if isinstance(v, float) and math.isnan(v):
                if never_null:
                    raise BadInputError(
                        f"feature {column!r} (row {i}): null, but the data contract says "
                        f"{column!r} is never null; send a value"
                    )
            elif allowed is not None and str(v) not in allowed:
                shown = ", ".join(map(repr, sorted(allowed)[:8]))
                more = f" and {len(allowed) - 8} more" if len(allowed) > 8 else ""
                raise BadInputError(
                    f"feature {column!r} (row {i}): {_show(v)} is not a value the data "
                    f"contract allows ({shown}{more})"
                )


@dataclass(frozen=True)
class Rows:
    """Model inputs typed as in training, and how many values per feature were unseen."""

    frame: pd.DataFrame
    unseen: dict[str, int]


@dataclass(frozen=True)
class Tensor:
    """One V2 input as sent: ``data`` may be flat or nested row-major."""

    name: Any
    datatype: Any
    shape: Any
    data: Any


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {"list": "a list", "dict": "an object"}.get(type(value).__name__, "not a string")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------- values


def _number(column: str, value: Any, where: str) -> float:
    """A numeric feature's value: a finite number or numeric string; None is missing."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadInputError(
            f"feature {column!r}{where}: {_show(value)} is not a number "
            "(send a finite number, or null for a missing value)"
        )
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise BadInputError(
            f"feature {column!r}{where}: {_show(value)} is not a number "
            "(send a finite number, or null for a missing value)"
        ) from None
    if not math.isfinite(number):
        raise BadInputError(
            f"feature {column!r}{where}: {_show(value)} is not finite "
            "(send a finite number, or null for a missing value)"
        )
    return number


def _category(features: Features, column: str, value: Any, where: str) -> Any:
    """A categorical feature's value: a string (or a number where the model was trained on
    numeric codes); None is missing."""
    if value is None:
        return np.nan
    codes = features.codes(column)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and codes:
        if not math.isfinite(value):
            raise BadInputError(f"feature {column!r}{where}: {_show(value)} is not finite")
        return value
    known = sorted(features.known(column))
    hint = f" such as {', '.join(map(repr, known[:SHOWN]))}" if known else ""
    raise BadInputError(
        f"feature {column!r}{where}: {_show(value)} is {_kind(value)}, not a category; "
        f"send a string{hint}, or null for a missing value"
    )


def _frame(features: Features, columns: Mapping[str, Sequence[Any]], rows: int) -> Rows:
    """Typed model inputs from column -> values (all ``rows`` long, checked by the caller)."""
    if rows > features.max_batch:
        raise BadInputError(f"batch of {rows} rows exceeds the maximum {features.max_batch}")
    missing = [c for c in features.order if c not in columns]
    if missing:
        raise BadInputError(
            f"missing feature(s) {missing}; the model needs all of {features.order}"
        )
    out = pd.DataFrame(index=range(rows))
    for col in features.numeric:
        out[col] = np.array(
            [_number(col, v, f" (row {i})") for i, v in enumerate(columns[col])], dtype=np.float64
        )
        features.refuse(col, out[col].to_numpy())  # np.float64 is a float
    unseen: dict[str, int] = {}
    for col in features.categorical:
        values = [_category(features, col, v, f" (row {i})") for i, v in enumerate(columns[col])]
        features.refuse(col, values)
        known = features.known(col)
        if known:
            count = sum(1 for v in values if isinstance(v, str | int | float) and v == v
                        and str(v) not in known)  # fmt: skip
            if count:
                unseen[col] = count
        out[col] = pd.Series(values, dtype=object)
    return Rows(out, unseen)


# ---------------------------------------------------------------------------------- V1


def _has_every_feature(features: Features, i: int, item: Any, shape: str) -> None:
    """instances[i] is an object naming every feature (``shape`` says what one looks like)."""
    if not isinstance(item, dict):
        raise BadInputError(f"instances[{i}] is a {type(item).__name__}; {shape}")
    absent = [c for c in features.order if c not in item]
    if absent:
        raise BadInputError(
            f"instances[{i}]: missing feature(s) {absent}; the model needs all of {features.order}"
        )


def _records(features: Features, instances: list[Any]) -> Rows:
    columns: dict[str, list[Any]] = {c: [] for c in features.order}
    for i, row in enumerate(instances):
        _has_every_feature(features, i, row, "every row must be an object of feature -> value")
        for col in features.order:
            value = row[col]
            if isinstance(value, list | dict):
                raise BadInputError(
                    f"instances[{i}].{col}: {_show(value)} is not one value; a row gives one "
                    "value per feature (or send every row's values as lists: one object of "
                    "column -> list)"
                )
            columns[col].append(value)
    return _frame(features, columns, len(instances))


def _columns(features: Features, instances: list[Any]) -> Rows:
    columns: dict[str, list[Any]] = {c: [] for c in features.order}
    total = 0
    for i, block in enumerate(instances):
        if not isinstance(block, dict):
            _has_every_feature(features, i, block, "in the column shape every element is an "
                               "object of column -> list")  # fmt: skip
        lengths = {c: len(block[c]) for c in features.order if isinstance(block.get(c), list)}
        scalar = [c for c in features.order if c in block and not isinstance(block[c], list)]
        if scalar:
            lists = [c for c in features.order if c in lengths]
            raise BadInputError(
                f"instances[{i}] mixes lists ({', '.join(lists[:SHOWN])}) and single values "
                f"({', '.join(scalar[:SHOWN])}); give one value per feature in each row object, "
                "or one list per feature (one value per row) in a column object"
            )
        _has_every_feature(features, i, block, "")
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{c} {n}" for c, n in lengths.items())
            raise BadInputError(
                f"instances[{i}]: columns of different lengths ({shown}); every column "
                "needs one value per row"
            )
        for col in features.order:
            for j, value in enumerate(block[col]):
                if isinstance(value, list | dict):
                    raise BadInputError(
                        f"instances[{i}].{col}[{j}]: {_show(value)} is not one value"
                    )
            columns[col].extend(block[col])
        total += next(iter(lengths.values()), 0)
    return _frame(features, columns, total)


def _positional(features: Features, instances: list[Any]) -> Rows:
    order = features.order
    columns: dict[str, list[Any]] = {c: [] for c in order}
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise BadInputError(
                f"instances[{i}] is a {type(row).__name__}; every row must be a list like "
                "instances[0]"
            )
        if len(row) != len(order):
            raise BadInputError(
                f"instances[{i}] has {len(row)} values; a positional row has exactly "
                f"{len(order)}, in this order: {order} (or send objects of feature -> value)"
            )
        for col, value in zip(order, row, strict=True):
            if isinstance(value, list | dict):
                raise BadInputError(f"instances[{i}] ({col}): {_show(value)} is not one value")
            columns[col].append(value)
    return _frame(features, columns, len(instances))


def from_v1(body: Any, features: Features) -> Rows:
    """Rows of a V1 ``:predict`` body (records, columns or positional rows)."""
    if not isinstance(body, dict):
        raise BadInputError(
            f'the body is a {type(body).__name__}; a V1 request is an object {{"instances": [...]}}'
        )
    keys = [k for k in ("instances", "inputs") if k in body]
    if len(keys) != 1:
        raise BadInputError(
            'a V1 request has exactly one of "instances" or "inputs"; got '
            f"{keys or sorted(body)[:SHOWN]}"
        )
    instances = body[keys[0]]
    if not isinstance(instances, list):
        raise BadInputError(f"{keys[0]} is a {type(instances).__name__}, not a list of rows")
    if not instances:
        return _frame(features, {c: [] for c in features.order}, 0)
    first = instances[0]
    if isinstance(first, dict):
        columnar = any(isinstance(first.get(c), list) for c in features.order)
        return _columns(features, instances) if columnar else _records(features, instances)
    if isinstance(first, list):
        return _positional(features, instances)
    raise BadInputError(
        f"{keys[0]}[0] is {_show(first)}; send rows as objects of feature -> value: "
        f'{{"instances": [{{{", ".join(f"{c!r}: ..." for c in features.order[:SHOWN])}}}]}}'
    )


# ---------------------------------------------------------------------------------- V2


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise BadInputError(f"input {name!r}: data is a {type(data).__name__}, not a list")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if isinstance(item, dict):
                raise BadInputError(f"input {name!r}: {_show(item)} in data is not a value")
            flat.append(item)
        else:
            stack.pop()
    return flat


def _tensor_values(t: Tensor, features: Features) -> tuple[str, list[Any]]:
    name = t.name
    if not isinstance(name, str) or not name:
        raise BadInputError(f"an input has name {_show(name)}; each needs a feature's name")
    if t.datatype not in DATATYPES:
        raise BadInputError(
            f"input {name!r}: datatype {_show(t.datatype)} is not one of {', '.join(DATATYPES)}"
        )
    shape = t.shape
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise BadInputError(
            f"input {name!r}: shape {_show(shape)}; a feature's tensor is [rows] or [rows, 1]"
        )
    values = _flatten(t.data, name)
    if len(values) != shape[0]:
        raise BadInputError(
            f"input {name!r}: shape {shape} needs {shape[0]} values, data has {len(values)}"
        )
    dtype = t.datatype
    if name in features.numeric:
        if dtype in ("BYTES", "BOOL"):
            raise BadInputError(
                f"input {name!r}: datatype {dtype} for a numeric feature; send FP64 (or an "
                "integer type)"
            )
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise BadInputError(f"input {name!r}: data[{i}] {_show(v)} is not a number")
            if dtype in INT_RANGES:
                low, high = INT_RANGES[dtype]
                if not isinstance(v, int) and not float(v).is_integer():
                    raise BadInputError(f"input {name!r}: data[{i}] {v!r} is not an {dtype}")
                if not low <= v <= high:
                    raise BadInputError(
                        f"input {name!r}: data[{i}] {v!r} is outside {dtype}'s range {low}..{high}"
                    )
    elif name in features.categorical and dtype != "BYTES" and not features.codes(name):
        raise BadInputError(
            f"input {name!r}: datatype {dtype} for a categorical feature; send BYTES (strings)"
        )
    return name, values


def from_v2(inputs: Any, features: Features) -> Rows:
    """Rows of a V2 ``/infer`` request's ``inputs``: one named tensor per feature."""
    if not isinstance(inputs, list) or not inputs:
        raise BadInputError(
            f"inputs must be a non-empty list of tensors, one per feature of {features.order}"
        )
    columns: dict[str, list[Any]] = {}
    for t in inputs:
        name, values = _tensor_values(t, features)
        if name in columns:
            raise BadInputError(f"input {name!r} is given twice")
        columns[name] = values
    lengths = {n: len(v) for n, v in columns.items() if n in features.order}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} {k}" for n, k in lengths.items())
        raise BadInputError(
            f"inputs of different lengths ({shown}); every feature needs one value per row"
        )
    return _frame(features, columns, next(iter(lengths.values()), 0))
