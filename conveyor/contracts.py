"""Data contracts: declare what a batch must look like, then check all of it at once.

Every check runs (no first-fail) and each violation names the column, the check, how many rows
broke it, the bound, and a few example values. Checks are vectorised column by column with no
copy of the table, so a multi-million-row batch validates in about one pass over its memory
(see bench/validate.py: the contract is checked faster than pandera or Great Expectations
checking the same rules).
"""

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from conveyor import distributions
from conveyor.config import StrictModel, load_model, model_from_yaml
from conveyor.errors import BadInputError, ContractViolationError
from conveyor.tables import (
    iter_frames,
    probe_table,
    read_json_object,
    sha256_file,
)

__all__ = [
    "Contract",
    "check_batch",
    "contract_from_yaml",
    "enforce",
    "load_contract",
    "load_profile",
    "render_markdown",
    "render_text",
    "validate",
    "write_profile",
]


DType = Literal["int", "float", "string", "bool", "datetime"]
EXAMPLES = 5


class ColumnRule(StrictModel):
    """What every value of one column must be; each broken rule is a violation."""

    dtype: DType = Field(
        description="the type of every non-null value; text that reads as it (e.g. '3', an "
        "ISO 8601 date) counts, anything else is a dtype violation"
    )
    nullable: bool = Field(
        False,
        description="false: each null is a not_null violation, and the model server refuses a "
        "null for this input (HTTP 400)",
    )
    required: bool = Field(
        True,
        description="false: the column may be absent from the batch (its rules are then "
        "skipped); true: an absent column is a violation",
    )
    min: float | None = Field(
        None,
        description="smallest value allowed, inclusive (int and float columns); a smaller one "
        "is a range violation",
    )
    max: float | None = Field(
        None,
        description="largest value allowed, inclusive (int and float columns); a larger one is "
        "a range violation",
    )
    allowed: list[str | int | bool] | None = Field(
        None,
        description="the only values allowed, nulls aside; another is an allowed_values "
        "violation, and the model server refuses it for a categorical input (HTTP 400)",
    )
    unique: bool = Field(
        False, description="true: a non-null value that appears twice is a unique violation"
    )
    max_psi: float | None = Field(None, gt=0, description="drift bound overriding the default")

    @model_validator(mode="after")
    def _bounds(self) -> "ColumnRule":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        if (self.min is not None or self.max is not None) and self.dtype not in ("int", "float"):
            raise ValueError(f"min/max apply to int and float columns, not {self.dtype}")
        flags = [v for v in self.allowed or [] if isinstance(v, bool)]
        if self.dtype == "string" and flags:
            raise ValueError(
                f"allowed: {flags} were read from YAML as booleans (unquoted yes/no, on/off, "
                "true/false), and a string column never holds them: quote the values, e.g. "
                "allowed: ['Yes', 'No']"
            )
        return self


class RowCount(StrictModel):
    """How many rows a batch may have (a row_count violation otherwise)."""

    min: int = Field(1, ge=0, description="fewest rows a batch may have")
    max: int | None = Field(
        None, ge=1, description="most rows a batch may have; null: no upper bound"
    )

    @model_validator(mode="after")
    def _order(self) -> "RowCount":
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is less than min ({self.min})")
        return self


class Freshness(StrictModel):
    """How recent the newest timestamp of a batch must be (a freshness violation otherwise)."""

    column: str = Field(description="a declared datetime column; its newest value dates the batch")
    max_age_days: float = Field(
        gt=0,
        description="how many days (fractions allowed) the newest value may be older than "
        "the time of validation",
    )


class DriftRule(StrictModel):
    """How far a batch may drift from the reference profile, checked when one is given."""

    max_psi: float = Field(
        0.25,
        gt=0,
        description="a column whose PSI against the reference profile is above this is a "
        "drift violation; a column's own max_psi overrides it",
    )
    columns: list[str] | None = Field(
        None, description="columns to check against the reference; default: all profiled"
    )


class Contract(StrictModel):
    name: str = Field(description="the contract's name, in the validation report and errors")
    version: int | str = Field(1, description="the contract's version, reported beside its name")
    columns: dict[str, ColumnRule] = Field(
        min_length=1,
        description="the declared columns and their rules; every column the pipeline config "
        "names must be declared here",
    )
    key: list[str] = Field(
        default_factory=list,
        description="declared columns that together identify a row: a repeated combination is "
        "a unique_key violation (checked when all of them are in the batch)",
    )
    rows: RowCount = Field(RowCount(), description="bounds on the batch's row count")
    freshness: Freshness | None = Field(
        None, description="how recent the newest timestamp must be; null: not checked"
    )
    drift: DriftRule = Field(
        DriftRule(),
        description="PSI bounds against a reference profile, checked only when validate_data "
        "is given one",
    )
    allow_extra_columns: bool = Field(
        True,
        description="false: a column the contract does not declare is an extra_columns violation",
    )

    @model_validator(mode="after")
    def _references(self) -> "Contract":
        for col in self.key:
            if col not in self.columns:
                raise ValueError(f"key column {col!r} is not declared under columns")
        if self.freshness is not None:
            rule = self.columns.get(self.freshness.column)
            if rule is None or rule.dtype != "datetime":
                raise ValueError(
                    f"freshness.column {self.freshness.column!r} must be a declared datetime column"
                )
        return self


def load_contract(path: str | os.PathLike[str]) -> Contract:
    return load_model(Contract, path, "data contract")


def contract_from_yaml(text: str, source: str = "contract") -> Contract:
    return model_from_yaml(Contract, text, source)


def load_profile(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A reference profile written by ``conveyor profile`` or prepare_features."""
    profile = read_json_object(path, "reference profile")
    if not isinstance(profile.get("columns"), dict):
        raise BadInputError(f"{path}: reference profile has no 'columns' mapping")
    return profile


# --------------------------------------------------------------------------------- checking


class _Examples:
    """Up to EXAMPLES distinct offending values, JSON-friendly, in row order, from the first
    ``EXAMPLES * 20`` offending rows: the same ones whether the table comes whole or in batches."""

    LOOK = EXAMPLES * 20

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.seen = 0

    def add(self, values: Any, mask: np.ndarray) -> None:
        if len(self.values) == EXAMPLES or self.seen >= self.LOOK:
            return
        idx = np.flatnonzero(mask)[: self.LOOK - self.seen]
        self.seen += len(idx)
        arr = values.iloc[idx] if isinstance(values, pd.Series) else values[idx]
        for v in list(arr):
            item = _jsonable(v)
            if item not in self.values:
                self.values.append(item)
            if len(self.values) == EXAMPLES:
                break


def _jsonable(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    if isinstance(v, float | int | str | bool):
        return v
    return str(v)


class _Collector:
    def __init__(self) -> None:
        self.violations: list[dict[str, Any]] = []

    def add(
        self,
        column: str | None,
        check: str,
        bad: int,
        bound: Any,
        found: Any = None,
        examples: list[Any] | None = None,
    ) -> None:
        target = f"column {column!r}" if column else "table"
        msg = f"{target}: {check} failed for {bad} row(s); expected {bound}"
        if found is not None:
            msg += f", found {found}"
        if examples:
            msg += f"; e.g. {', '.join(repr(e) for e in examples)}"
        self.violations.append(
            {
                "column": column,
                "check": check,
                "bad_count": int(bad),
                "bound": bound,
                "found": found,
                "examples": examples or [],
                "message": msg,
            }
        )


def _coerce(series: pd.Series, dtype: DType, nulls: np.ndarray) -> tuple[Any, np.ndarray]:
    """Values in the declared type, and a mask of non-null values that are not of it.

    Numbers arrive as float when a CSV column has gaps, and as strings when a file mixes types;
    both are read leniently, and only values that cannot be the declared type are errors.
    """
    kind = series.dtype.kind
    if dtype in ("int", "float"):
        if kind in "iu":
            return series.to_numpy(), np.zeros(len(series), dtype=bool)
        if kind == "f":
            values = series.to_numpy()
            if dtype == "int":
                with np.errstate(invalid="ignore"):
                    bad = ~nulls & (values != np.floor(values))
                return values, bad
            return values, np.zeros(len(series), dtype=bool)
        if kind == "b":
            return series.to_numpy(dtype=np.float64), ~nulls
        numeric = pd.to_numeric(series, errors="coerce")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~nulls & np.isnan(values)
        if dtype == "int":
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(values) & (values != np.floor(values))
        return values, bad
    if dtype == "string":
        if kind in "OSU" or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype):
            if kind == "O" and pd.api.types.infer_dtype(series, skipna=True) not in (
                "string",
                "empty",
            ):
                # Only a column that is not all text pays for the per-value type check.
                is_str = np.fromiter(
                    (isinstance(v, str) for v in series.to_numpy()), dtype=bool, count=len(series)
                )
                return series, ~nulls & ~is_str
            return series, np.zeros(len(series), dtype=bool)
        return series, ~nulls
    if dtype == "datetime":
        if kind == "M":
            return series, np.zeros(len(series), dtype=bool)
        if kind in "OSU" or isinstance(series.dtype, pd.StringDtype):
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
            return parsed, ~nulls & parsed.isna().to_numpy()
        return series, ~nulls
    # bool
    if kind == "b":
        return series, np.zeros(len(series), dtype=bool)
    if kind in "iuf":
        values = series.to_numpy(dtype=np.float64)
        return series, ~nulls & ~np.isin(values, [0.0, 1.0])
    lowered = series.astype(str).str.lower()
    return series, ~nulls & ~lowered.isin(["true", "false", "0", "1"]).to_numpy()


class _Count:
    """Offending rows of one check, summed over batches, with their examples."""

    def __init__(self) -> None:
        self.bad = 0
        self.examples = _Examples()

    def add(self, values: Any, mask: np.ndarray) -> None:
        n = int(mask.sum())
        if n:
            self.bad += n
            self.examples.add(values, mask)


def _key_hashes(frame: pd.DataFrame) -> np.ndarray:
    """64-bit hashes of each row of ``frame``; numbers hashed as float64, so a key read as
    int in one batch and as float (a CSV batch with a gap) in another still collides."""
    cols = {
        c: frame[c].astype(np.float64) if frame[c].dtype.kind in "iuf" else frame[c]
        for c in frame.columns
    }
    return pd.util.hash_pandas_object(pd.DataFrame(cols), index=False).to_numpy()


def _repeated(hashes: list[np.ndarray]) -> np.ndarray:
    """The hash values that occur more than once (sorted)."""
    if not hashes:
        return np.array([], dtype=np.uint64)
    h = np.concatenate(hashes)
    hashes.clear()
    h.sort()
    return np.unique(h[1:][h[1:] == h[:-1]])


def _common_dtype(dtypes: list[Any]) -> str:
    """The dtype pandas gives a column whose batches were read with ``dtypes`` (a CSV batch
    may read as int where another has a gap and reads as float)."""
    if len(dtypes) == 1:
        return str(dtypes[0])
    if all(isinstance(d, np.dtype) and d.kind in "iuf" for d in dtypes):
        return str(np.result_type(*dtypes))
    return "object"


class _ColumnState:
    """Everything the contract asks of one column, accumulated batch by batch."""

    def __init__(self, name: str, rule: ColumnRule) -> None:
        self.name, self.rule = name, rule
        self.dtypes: list[Any] = []
        self.bad_type, self.out_of_range, self.unknown = _Count(), _Count(), _Count()
        self.nulls = 0
        self.low, self.high = np.inf, -np.inf
        self.hashes: list[np.ndarray] = []
        self.repeated = np.array([], dtype=np.uint64)
        self.duplicates = _Count()
        self.newest: Any = None
        self.allowed = pd.Index(rule.allowed) if rule.allowed is not None else None

    def add(self, series: pd.Series) -> None:
        rule = self.rule
        if series.dtype not in self.dtypes:
            self.dtypes.append(series.dtype)
        nulls = series.isna().to_numpy()  # computed once: the most expensive step on text
        values, bad_type = _coerce(series, rule.dtype, nulls)
        self.bad_type.add(series, bad_type)
        self.nulls += int(nulls.sum())
        if rule.min is not None or rule.max is not None:
            arr = np.asarray(values, dtype=np.float64)
            n = len(arr)
            with np.errstate(invalid="ignore"):
                low = arr < rule.min if rule.min is not None else np.zeros(n, dtype=bool)
                high = arr > rule.max if rule.max is not None else np.zeros(n, dtype=bool)
            self.out_of_range.add(series, low | high)
            if n and not np.isnan(arr).all():
                self.low = min(self.low, float(np.nanmin(arr)))
                self.high = max(self.high, float(np.nanmax(arr)))
        if self.allowed is not None:
            ok = series.isin(self.allowed).to_numpy()
            self.unknown.add(series, ~ok & ~nulls & ~bad_type)
        if rule.unique:
            self.hashes.append(_key_hashes(series[~nulls].to_frame()))
        if rule.dtype == "datetime" and isinstance(values, pd.Series):
            newest = values.max()
            if not pd.isna(newest) and (self.newest is None or newest > self.newest):
                self.newest = newest

    def candidates(self, series: pd.Series) -> pd.Series:
        """The batch's non-null values whose hash repeats somewhere in the table."""
        present = series[series.notna().to_numpy()]
        return present[np.isin(_key_hashes(present.to_frame()), self.repeated)]

    def report(self, out: _Collector) -> None:
        rule, name = self.rule, self.name
        if self.bad_type.bad:
            found = _common_dtype(self.dtypes)
            out.add(
                name, "dtype", self.bad_type.bad, rule.dtype, found, self.bad_type.examples.values
            )
        if not rule.nullable and self.nulls:
            out.add(name, "not_null", self.nulls, "no nulls", f"{self.nulls} null(s)")
        if self.out_of_range.bad:
            lo = "-inf" if rule.min is None else f"{rule.min:g}"
            hi = "inf" if rule.max is None else f"{rule.max:g}"
            found = f"min {self.low:g}, max {self.high:g}"
            out.add(
                name, "range", self.out_of_range.bad, f"[{lo}, {hi}]", found,
                self.out_of_range.examples.values,
            )  # fmt: skip
        if self.unknown.bad:
            assert self.allowed is not None
            out.add(
                name, "allowed_values", self.unknown.bad,
                f"one of {len(self.allowed)} allowed value(s)", "unknown value(s)",
                self.unknown.examples.values,
            )  # fmt: skip
        if self.duplicates.bad:
            out.add(
                name, "unique", self.duplicates.bad, "unique values", "duplicates",
                self.duplicates.examples.values,
            )  # fmt: skip


def _exact_duplicates(found: _Count, parts: list[Any], label: Any) -> None:
    """Among the rows whose hash repeats (``parts``, in row order), the ones whose value truly
    repeats: a hash collision never becomes a violation."""
    if not parts:
        return
    rows = pd.concat(parts, ignore_index=True)
    dup = rows.duplicated(keep=False).to_numpy()
    found.add(label(rows), dup)


Frames = Callable[[], Iterable[pd.DataFrame]]


def validate(
    df: pd.DataFrame,
    contract: Contract,
    reference: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    source: str = "",
) -> dict[str, Any]:
    """Check ``df`` against ``contract`` (and the reference profile, when given).

    Returns the report: ``{"passed": bool, "violations": [...], "drift": {...}, ...}``.
    Never raises on bad data; see :func:`enforce` for the failing form.
    """
    return validate_frames(lambda: iter([df]), contract, reference, as_of, source)


def validate_frames(
    frames: Frames,
    contract: Contract,
    reference: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    source: str = "",
) -> dict[str, Any]:
    """:func:`validate` of a table read in batches: ``frames()`` yields them in row order
    (at least one, maybe empty), and is called a second time only when a unique column or the
    key has a repeated hash, to find which values truly repeat. Memory is one batch plus 8
    bytes per row for each unique column and the key; the report is the one :func:`validate`
    gives for the whole table."""
    out = _Collector()
    now = as_of or datetime.now()
    rows = 0
    present: list[str] = []
    states: dict[str, _ColumnState] = {}
    key = list(contract.key)
    key_hashes: list[np.ndarray] = []
    profiled = reference.get("columns", {}) if reference is not None else {}
    wanted = (contract.drift.columns or [c for c in profiled if c in contract.columns]) if (
        reference is not None
    ) else []  # fmt: skip
    drift_counts: dict[str, np.ndarray] = {}
    for i, df in enumerate(frames()):
        if i == 0:
            present = list(df.columns)
            states = {n: _ColumnState(n, r) for n, r in contract.columns.items() if n in present}
            if not all(k in present for k in key):
                key = []
        rows += len(df)
        for name, state in states.items():
            state.add(df[name])
        if key and len(df):
            key_hashes.append(_key_hashes(df[key]))
        for col in wanted:
            if col in profiled and col in present:
                counts = distributions.current_counts(profiled[col], df[col])
                drift_counts[col] = drift_counts.get(col, 0) + counts

    # Second pass, only when some hash repeats: which rows truly repeat, in row order.
    for state in states.values():
        state.repeated = _repeated(state.hashes)
    unique = [s for s in states.values() if len(s.repeated)]
    repeated_keys = _repeated(key_hashes) if key else np.array([], dtype=np.uint64)
    key_label = (lambda r: r[key[0]]) if len(key) == 1 else (
        lambda r: r[key].astype(str).agg("|".join, axis=1)
    )  # fmt: skip
    key_rows = _Count()
    if unique or len(repeated_keys):
        parts: dict[str, list[Any]] = {s.name: [] for s in unique}
        key_parts: list[pd.DataFrame] = []
        for df in frames():
            for state in unique:
                parts[state.name].append(state.candidates(df[state.name]))
            if len(repeated_keys) and len(df):
                key_parts.append(df.loc[np.isin(_key_hashes(df[key]), repeated_keys), key])
        for state in unique:
            _exact_duplicates(state.duplicates, parts.pop(state.name), lambda r: r)
        _exact_duplicates(key_rows, key_parts, key_label)

    if rows < contract.rows.min or (contract.rows.max is not None and rows > contract.rows.max):
        hi = contract.rows.max if contract.rows.max is not None else "inf"
        out.add(None, "row_count", rows, f"between {contract.rows.min} and {hi} rows", rows)
    for name, rule in contract.columns.items():
        if name in states:
            states[name].report(out)
        elif rule.required:
            out.add(name, "required", rows, "column present", "missing column")
    if not contract.allow_extra_columns:
        extra = [c for c in present if c not in contract.columns]
        if extra:
            out.add(None, "extra_columns", len(extra), "only declared columns", extra)
    if key_rows.bad:
        out.add(
            ",".join(key), "unique_key", key_rows.bad, "unique key", "duplicate keys",
            key_rows.examples.values,
        )  # fmt: skip

    fresh = contract.freshness
    if fresh is not None and fresh.column in states:
        newest = states[fresh.column].newest
        limit = pd.Timestamp(now) - pd.Timedelta(days=fresh.max_age_days)
        if newest is None or newest < limit:
            age = "no timestamps" if newest is None else f"newest {newest.isoformat()}"
            out.add(
                fresh.column, "freshness", rows,
                f"newest within {fresh.max_age_days:g} days (>= {limit.isoformat()})", age,
            )  # fmt: skip

    drift_report: dict[str, Any] = {}
    for col in wanted:
        if col not in profiled:
            out.add(col, "drift", 0, "a reference profile for the column", "not in reference")
            continue
        if col not in present:
            continue  # already reported as a missing column
        own = contract.columns.get(col)
        bound = (own.max_psi if own and own.max_psi else None) or contract.drift.max_psi
        value = distributions.psi_of_counts(profiled[col], drift_counts[col], rows)
        drift_report[col] = {
            "psi": round(value, 6), "max_psi": bound, "band": distributions.band(value)
        }  # fmt: skip
        if value > bound:
            out.add(col, "drift", rows, f"PSI <= {bound:g}", f"PSI {value:.3f}")

    return {
        "contract": contract.name,
        "contract_version": contract.version,
        "source": source,
        "rows": rows,
        "columns": len(present),
        "as_of": now.isoformat(timespec="seconds"),
        "passed": not out.violations,
        "violation_count": len(out.violations),
        "violations": out.violations,
        "drift": drift_report,
    }


def enforce(report: dict[str, Any]) -> None:
    """Raise ContractViolationError (exit 4) when the report has violations."""
    if not report["passed"]:
        lines = [v["message"] for v in report["violations"]]
        raise ContractViolationError(
            f"{report['contract']}: {len(lines)} contract violation(s) in {report['rows']} rows:\n"
            + "\n".join(f"  - {line}" for line in lines),
            report,
        )


def render_markdown(report: dict[str, Any]) -> str:
    """The validation report as Markdown, for the KFP UI."""
    status = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"# Data validation: {status}",
        "",
        f"Contract `{report['contract']}` v{report['contract_version']}, "
        f"{report['rows']} rows x {report['columns']} columns, checked {report['as_of']}.",
        "",
    ]
    if report["violations"]:
        lines += [
            "| column | check | bad rows | expected | found | examples |",
            "|---|---|---:|---|---|---|",
        ]
        for v in report["violations"]:
            ex = ", ".join(f"`{e!r}`" for e in v["examples"])
            lines.append(
                f"| {v['column'] or '(table)'} | {v['check']} | {v['bad_count']} | "
                f"{v['bound']} | {v['found'] if v['found'] is not None else ''} | {ex} |"
            )
    else:
        lines.append("No violations.")
    if report["drift"]:
        lines += ["", "## Drift against the reference profile", ""]
        lines += ["| column | PSI | bound | band |", "|---|---:|---:|---|"]
        for col, d in sorted(report["drift"].items(), key=lambda kv: -kv[1]["psi"]):
            lines.append(f"| {col} | {d['psi']:.4f} | {d['max_psi']:g} | {d['band']} |")
    return "\n".join(lines) + "\n"


def render_text(report: dict[str, Any]) -> str:
    """Short terminal form of the report."""
    head = (
        f"{report['contract']}: {'PASSED' if report['passed'] else 'FAILED'} "
        f"({report['rows']} rows, {report['violation_count']} violation(s))"
    )
    body = [f"  - {v['message']}" for v in report["violations"]]
    drifted = [f"  drift {c}: PSI {d['psi']:.4f} ({d['band']})" for c, d in report["drift"].items()]
    return "\n".join([head, *body, *drifted])


def check_batch(
    data_path: str | os.PathLike[str],
    contract: Contract,
    reference_path: str | os.PathLike[str] | None = None,
    as_of: datetime | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Validate a batch (file or Dataset folder) read in batches of rows, so memory stays flat
    for a Parquet table of any size; returns the table's path and the report (with its
    sha256)."""
    reference = load_profile(reference_path) if reference_path else None
    table = probe_table(data_path)
    report = validate_frames(lambda: iter_frames(table), contract, reference, as_of, str(table))
    report["data_sha256"] = sha256_file(table)
    return table, report


def write_profile(
    data: str | os.PathLike[str], out: str | os.PathLike[str], columns: str | None, bins: int
) -> dict[str, Any]:
    """``conveyor profile``: the reference profile of a table (statistics and bins per
    column, ``columns`` comma-separated or all) written to ``out``; read in row batches and
    numeric columns one at a time, so memory stays bounded for a Parquet table of any size."""
    from conveyor.tables import column_names, write_json

    have = column_names(data)
    chosen = columns.split(",") if columns else None
    if chosen:
        missing = [c for c in chosen if c not in have]
        if missing:
            raise BadInputError(f"--columns: {missing} not in {data}")
    profile = distributions.profile_frames(lambda cols: iter_frames(data, cols), chosen, bins)
    if not profile["rows"]:
        raise BadInputError(f"{data}: no rows (a header only?); a reference profile needs rows")
    profile["source"] = str(data)
    write_json(profile, out)
    return profile
