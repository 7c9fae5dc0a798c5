"""Data contracts: declare what a batch must look like, then check all of it at once.

Every check runs (no first-fail) and each violation names the column, the check, how many rows
broke it, the bound, and a few example values. Checks are vectorised column by column with no
copy of the table, so a multi-million-row batch validates in about one pass over its memory
(see bench/validate.py: the contract is checked faster than pandera or Great Expectations
checking the same rules).
"""

import os
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from conveyor import distributions
from conveyor.config import StrictModel, load_model, model_from_yaml
from conveyor.errors import BadInputError, ContractViolationError
from conveyor.tables import (
    read_json_object,
    read_table,
    resolve_table,
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


def _examples(values: Any, mask: np.ndarray) -> list[Any]:
    """Up to EXAMPLES distinct offending values, JSON-friendly, in row order."""
    idx = np.flatnonzero(mask)[: EXAMPLES * 20]
    arr = values.iloc[idx] if isinstance(values, pd.Series) else values[idx]
    out: list[Any] = []
    for v in list(arr):
        item = _jsonable(v)
        if item not in out:
            out.append(item)
        if len(out) == EXAMPLES:
            break
    return out


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


def _check_column(
    out: _Collector, name: str, series: pd.Series, rule: ColumnRule
) -> pd.Series | None:
    nulls = series.isna().to_numpy()  # computed once: the most expensive step on text columns
    values, bad_type = _coerce(series, rule.dtype, nulls)
    n_bad = int(bad_type.sum())
    if n_bad:
        out.add(
            name,
            "dtype",
            n_bad,
            rule.dtype,
            str(series.dtype),
            _examples(series, bad_type),
        )
    if not rule.nullable:
        n_null = int(nulls.sum())
        if n_null:
            out.add(name, "not_null", n_null, "no nulls", f"{n_null} null(s)")
    if rule.min is not None or rule.max is not None:
        arr = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            low = arr < rule.min if rule.min is not None else np.zeros(len(arr), dtype=bool)
            high = arr > rule.max if rule.max is not None else np.zeros(len(arr), dtype=bool)
        out_of_range = low | high
        bad = int(out_of_range.sum())
        if bad:
            lo = "-inf" if rule.min is None else f"{rule.min:g}"
            hi = "inf" if rule.max is None else f"{rule.max:g}"
            found = f"min {np.nanmin(arr):g}, max {np.nanmax(arr):g}"
            out.add(name, "range", bad, f"[{lo}, {hi}]", found, _examples(series, out_of_range))
    if rule.allowed is not None:
        allowed = pd.Index(rule.allowed)
        ok = series.isin(allowed).to_numpy()
        unknown = ~ok & ~nulls & ~bad_type
        bad = int(unknown.sum())
        if bad:
            out.add(
                name,
                "allowed_values",
                bad,
                f"one of {len(allowed)} allowed value(s)",
                "unknown value(s)",
                _examples(series, unknown),
            )
    if rule.unique:
        dup = series.duplicated(keep=False).to_numpy() & ~nulls
        bad = int(dup.sum())
        if bad:
            out.add(name, "unique", bad, "unique values", "duplicates", _examples(series, dup))
    if rule.dtype == "datetime":
        return values if isinstance(values, pd.Series) else None
    return None


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
    out = _Collector()
    rows = len(df)
    now = as_of or datetime.now()
    if rows < contract.rows.min or (contract.rows.max is not None and rows > contract.rows.max):
        hi = contract.rows.max if contract.rows.max is not None else "inf"
        out.add(None, "row_count", rows, f"between {contract.rows.min} and {hi} rows", rows)

    present = set(df.columns)
    datetimes: dict[str, pd.Series] = {}
    for name, rule in contract.columns.items():
        if name not in present:
            if rule.required:
                out.add(name, "required", rows, "column present", "missing column")
            continue
        parsed = _check_column(out, name, df[name], rule)
        if parsed is not None:
            datetimes[name] = parsed
    if not contract.allow_extra_columns:
        extra = [c for c in df.columns if c not in contract.columns]
        if extra:
            out.add(None, "extra_columns", len(extra), "only declared columns", extra)

    key = [k for k in contract.key if k in present]
    if key and len(key) == len(contract.key) and rows:
        dup = df.duplicated(subset=key, keep=False).to_numpy()
        bad = int(dup.sum())
        if bad:
            keys = df[key[0]] if len(key) == 1 else df[key].astype(str).agg("|".join, axis=1)
            out.add(
                ",".join(key),
                "unique_key",
                bad,
                "unique key",
                "duplicate keys",
                _examples(keys, dup),
            )

    if contract.freshness is not None and contract.freshness.column in datetimes:
        column = contract.freshness.column
        newest = datetimes[column].max()
        limit = pd.Timestamp(now) - pd.Timedelta(days=contract.freshness.max_age_days)
        if pd.isna(newest) or newest < limit:
            age = "no timestamps" if pd.isna(newest) else f"newest {newest.isoformat()}"
            out.add(
                column,
                "freshness",
                rows,
                f"newest within {contract.freshness.max_age_days:g} days (>= {limit.isoformat()})",
                age,
            )

    drift_report: dict[str, Any] = {}
    if reference is not None:
        drift_report = _check_drift(out, df, contract, reference)

    return {
        "contract": contract.name,
        "contract_version": contract.version,
        "source": source,
        "rows": rows,
        "columns": len(df.columns),
        "as_of": now.isoformat(timespec="seconds"),
        "passed": not out.violations,
        "violation_count": len(out.violations),
        "violations": out.violations,
        "drift": drift_report,
    }


def _check_drift(
    out: _Collector, df: pd.DataFrame, contract: Contract, reference: dict[str, Any]
) -> dict[str, Any]:
    profiled = reference.get("columns", {})
    wanted = contract.drift.columns or [c for c in profiled if c in contract.columns]
    result: dict[str, Any] = {}
    for col in wanted:
        if col not in profiled:
            out.add(col, "drift", 0, "a reference profile for the column", "not in reference")
            continue
        if col not in df.columns:
            continue  # already reported as a missing column
        rule = contract.columns.get(col)
        bound = (rule.max_psi if rule and rule.max_psi else None) or contract.drift.max_psi
        value = distributions.column_psi(profiled[col], df[col])
        result[col] = {"psi": round(value, 6), "max_psi": bound, "band": distributions.band(value)}
        if value > bound:
            out.add(col, "drift", len(df), f"PSI <= {bound:g}", f"PSI {value:.3f}")
    return result


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
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a batch (file or Dataset folder) and validate it; the report carries its sha256."""
    reference = load_profile(reference_path) if reference_path else None
    table = resolve_table(data_path)
    df = read_table(table)
    report = validate(df, contract, reference, as_of, source=str(table))
    report["data_sha256"] = sha256_file(table)
    return df, report


def write_profile(
    data: str | os.PathLike[str], out: str | os.PathLike[str], columns: str | None, bins: int
) -> dict[str, Any]:
    """``conveyor profile``: the reference profile of a table (statistics and bins per
    column, ``columns`` comma-separated or all) written to ``out``."""
    from conveyor import distributions
    from conveyor.tables import read_table, write_json

    df = read_table(data)
    if df.empty:
        raise BadInputError(f"{data}: no rows (a header only?); a reference profile needs rows")
    chosen = columns.split(",") if columns else None
    if chosen:
        missing = [c for c in chosen if c not in df.columns]
        if missing:
            raise BadInputError(f"--columns: {missing} not in {data}")
    profile = distributions.profile_frame(df, chosen, bins=bins)
    profile["source"] = str(data)
    write_json(profile, out)
    return profile
