"""Benchmark of the validate_data engine against pandera, Great Expectations and a numpy floor.

Why this exists: ``conveyor.contracts`` claims to check a data contract in about one pass over
the table's memory, faster than pandera or Great Expectations checking the same rules. This
script measures that claim instead of asserting it. It checks one contract
(examples/fraud/contract.yaml) with four engines on the same table, each engine in its own
fresh subprocess so peak memory is not shared:

* ``conveyor``  - ``conveyor.contracts.validate(df, contract, reference=None, as_of=...)``
* ``pandera``   - a ``pandera.pandas.DataFrameSchema`` built from the contract, ``lazy=True``
* ``gx``        - a Great Expectations 1.x ``ExpectationSuite`` built from the contract,
  validated on an ephemeral-context pandas dataframe batch
* ``baseline``  - the floor: per column, the cheapest vectorised ops touching each value once
  (null count, min/max, isin on allowed sets, duplicated on the key, max of the timestamp)

Drift (PSI) is not part of the comparison: conveyor is called with ``reference=None``.

Run: ``make bench`` (or ``.venv/bin/python bench/validate.py --help``). Tables are cached in
bench/out/ (gitignored); results are written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from results import machine  # bench/ is sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
CONTRACT = ROOT / "examples" / "fraud" / "contract.yaml"
ENGINES = ("baseline", "conveyor", "pandera", "gx")
SEED = 7
MIB = 1024 * 1024

# Normalised check kinds, so the engines' failure reports can be compared on a corrupt batch.
KINDS = (
    "required",
    "dtype",
    "not_null",
    "range",
    "allowed_values",
    "unique",
    "unique_key",
    "row_count",
    "freshness",
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- data


def data_paths(rows: int, mode: str) -> tuple[Path, Path]:
    """Table file and its JSON sidecar (as_of, rows, mode).

    The corrupt batch has a column of mixed floats and strings, which Parquet cannot store, so
    it is pickled; the clean batches are Parquet.
    """
    stem = f"fraud_{rows // 1000}k" if rows % 1_000_000 else f"fraud_{rows // 1_000_000}m"
    if mode != "clean":
        stem += f"_{mode}"
    suffix = ".parquet" if mode == "clean" else ".pkl"
    return OUT / f"{stem}{suffix}", OUT / f"{stem}.json"


def prepare(rows: int, mode: str) -> None:
    """Generate the table once (in this process) and write it with its sidecar."""
    from conveyor.sample import default_as_of, generate

    path, meta = data_paths(rows, mode)
    as_of = default_as_of()
    log(f"generating {rows:,} rows ({mode}) -> {path.relative_to(ROOT)}")
    t0 = time.perf_counter()
    df = generate(rows=rows, seed=SEED, as_of=as_of, mode=mode)  # type: ignore[arg-type]
    log(f"  generated in {time.perf_counter() - t0:.1f}s; writing")
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_pickle(tmp)
    os.replace(tmp, path)
    meta.write_text(
        json.dumps({"rows": rows, "mode": mode, "seed": SEED, "as_of": as_of.isoformat()})
    )


def ensure_data(rows: int, mode: str) -> Path:
    """Generate in a child process so this (parent) process stays small.

    A child inherits the parent's peak RSS in ru_maxrss across fork/exec, so the parent must
    never hold a big table.
    """
    path, meta = data_paths(rows, mode)
    if path.exists() and meta.exists():
        log(f"reusing {path.relative_to(ROOT)}")
        return path
    cmd = [sys.executable, __file__, "--prepare", str(rows), "--mode", mode]
    subprocess.run(cmd, check=True)
    return path


def load(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    df = pd.read_pickle(path)
    assert isinstance(df, pd.DataFrame)
    return df


# ---------------------------------------------------------------------------------- engines
# Each builder takes (contract, as_of) and returns a function df -> normalised summary:
# {"passed": bool, "failures": [{"column", "kind", "count"}]}; count None = not reported.


def _fail(column: str | None, kind: str, count: int | None) -> dict[str, Any]:
    return {"column": column, "kind": kind, "count": None if count is None else int(count)}


def build_conveyor(contract: Any, as_of: datetime) -> Callable[[pd.DataFrame], dict[str, Any]]:
    from conveyor.contracts import validate

    def run(df: pd.DataFrame) -> dict[str, Any]:
        report = validate(df, contract, reference=None, as_of=as_of)
        fails = [_fail(v["column"], v["check"], v["bad_count"]) for v in report["violations"]]
        for f in fails:
            if f["kind"] == "unique_key":
                f["column"] = ",".join(contract.key)
            if f["kind"] == "row_count":
                f["count"] = None  # conveyor reports the row count itself, not bad rows
        return {"passed": bool(report["passed"]), "failures": fails}

    return run


NUMERIC = {"int": ("i", "u"), "float": ("i", "u", "f")}


def build_baseline(contract: Any, as_of: datetime) -> Callable[[pd.DataFrame], dict[str, Any]]:
    """The floor: the cheapest vectorised op per rule; exact counts only on the failure path."""
    limit = (
        pd.Timestamp(as_of) - pd.Timedelta(days=contract.freshness.max_age_days)
        if contract.freshness
        else None
    )

    def run(df: pd.DataFrame) -> dict[str, Any]:
        fails: list[dict[str, Any]] = []
        n = len(df)
        if n < contract.rows.min or (contract.rows.max is not None and n > contract.rows.max):
            fails.append(_fail(None, "row_count", None))
        for name, rule in contract.columns.items():
            if name not in df.columns:
                if rule.required:
                    fails.append(_fail(name, "required", n))
                continue
            s = df[name]
            kind = s.dtype.kind
            # dtype: O(1) on the dtype, except object columns (one C-level pass)
            dtype_ok = True
            if rule.dtype in NUMERIC:
                dtype_ok = kind in NUMERIC[rule.dtype]
                if not dtype_ok:
                    bad = s.notna() & pd.to_numeric(s, errors="coerce").isna()
                    fails.append(_fail(name, "dtype", bad.sum()))
            elif rule.dtype == "string":
                dtype_ok = kind == "O" and pd.api.types.infer_dtype(s, skipna=True) in (
                    "string",
                    "empty",
                )
                if not dtype_ok:
                    bad = s.notna() & ~s.map(lambda v: isinstance(v, str))
                    fails.append(_fail(name, "dtype", bad.sum()))
            elif rule.dtype == "datetime":
                dtype_ok = kind == "M"
                if not dtype_ok:
                    fails.append(_fail(name, "dtype", None))
            elif rule.dtype == "bool":
                dtype_ok = kind == "b"
                if not dtype_ok:
                    fails.append(_fail(name, "dtype", None))
            if not rule.nullable:
                nulls = int(s.isna().sum())
                if nulls:
                    fails.append(_fail(name, "not_null", nulls))
            if rule.min is not None or rule.max is not None:
                arr = (
                    s.to_numpy()
                    if dtype_ok
                    else pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
                )
                lo, hi = np.nanmin(arr), np.nanmax(arr)
                if (rule.min is not None and lo < rule.min) or (
                    rule.max is not None and hi > rule.max
                ):
                    with np.errstate(invalid="ignore"):
                        bad = np.zeros(len(arr), dtype=bool)
                        if rule.min is not None:
                            bad |= arr < rule.min
                        if rule.max is not None:
                            bad |= arr > rule.max
                    fails.append(_fail(name, "range", bad.sum()))
            if rule.allowed is not None:
                bad = ~s.isin(rule.allowed) & s.notna()
                n_bad = int(bad.sum())
                if n_bad:
                    fails.append(_fail(name, "allowed_values", n_bad))
            if rule.unique:
                dup = s.duplicated(keep=False) & s.notna()
                if dup.any():
                    fails.append(_fail(name, "unique", dup.sum()))
        if contract.key and all(k in df.columns for k in contract.key):
            keys = df[contract.key[0]] if len(contract.key) == 1 else df[contract.key]
            dup = keys.duplicated(keep=False)
            if dup.any():
                fails.append(_fail(",".join(contract.key), "unique_key", dup.sum()))
        if limit is not None and contract.freshness.column in df.columns:
            column = df[contract.freshness.column]
            newest = column.max() if column.dtype.kind == "M" else pd.NaT
            if pd.isna(newest) or newest < limit:
                fails.append(_fail(contract.freshness.column, "freshness", None))
        return {"passed": not fails, "failures": fails}

    return run


PANDERA_DTYPES: dict[str, Any] = {
    "int": "int64",
    "float": "float64",
    "string": str,
    "bool": bool,
    "datetime": "datetime64[ns]",
}


def build_pandera(contract: Any, as_of: datetime) -> Callable[[pd.DataFrame], dict[str, Any]]:
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    columns: dict[str, Any] = {}
    for name, rule in contract.columns.items():
        checks = []
        if rule.min is not None and rule.max is not None:
            checks.append(pa.Check.in_range(rule.min, rule.max))
        elif rule.min is not None:
            checks.append(pa.Check.ge(rule.min))
        elif rule.max is not None:
            checks.append(pa.Check.le(rule.max))
        if rule.allowed is not None:
            checks.append(pa.Check.isin(rule.allowed))
        if contract.freshness is not None and name == contract.freshness.column:
            limit = pd.Timestamp(as_of) - pd.Timedelta(days=contract.freshness.max_age_days)
            checks.append(pa.Check(lambda s, limit=limit: s.max() >= limit, name="freshness"))
        columns[name] = pa.Column(
            PANDERA_DTYPES[rule.dtype],
            checks=checks,
            nullable=rule.nullable,
            unique=rule.unique,
            required=rule.required,
        )
    lo, hi = contract.rows.min, contract.rows.max
    schema = pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(lambda df: lo <= len(df) and (hi is None or len(df) <= hi), name="row_count")
        ],
        unique=list(contract.key) or None,
        strict=not contract.allow_extra_columns,
    )

    def kind_of(check: str) -> str:
        check = str(check)
        if check.startswith("dtype("):
            return "dtype"
        if check == "not_nullable":
            return "not_null"
        if check.startswith(("in_range", "greater_than", "less_than")):
            return "range"
        if check.startswith("isin"):
            return "allowed_values"
        if check == "field_uniqueness":
            return "unique"
        if check == "multiple_fields_uniqueness":
            return "unique_key"
        if check == "column_in_dataframe":
            return "required"
        return check

    def run(df: pd.DataFrame) -> dict[str, Any]:
        try:
            # inplace=True: no coercion is configured, so pandera's defensive copy of the whole
            # frame (inplace=False) would only add time and memory; this is its best setting.
            schema.validate(df, lazy=True, inplace=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
            fails = []
            for (column, check), group in cases.groupby(["column", "check"], dropna=False):
                kind = kind_of(check)
                if kind == "unique_key" or (
                    kind == "unique" and len(contract.key) == 1 and column == contract.key[0]
                ):
                    kind, column = "unique_key", ",".join(contract.key)
                if kind == "row_count":
                    column = None
                element = group["index"].notna().any()
                count = len(group) if element else None
                # a check that raised (e.g. comparing str with float) is reported as its error
                raised = (
                    not element and group["failure_case"].astype(str).str.contains("Error").any()
                )
                fail = _fail(None if pd.isna(column) else column, kind, count)
                fails.append({**fail, "error": bool(raised)})
            return {"passed": False, "failures": fails}
        return {"passed": True, "failures": []}

    return run


GX_TYPES: dict[str, list[str]] = {
    "int": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "int"],
    "float": ["float32", "float64", "float", "int8", "int16", "int32", "int64", "int"],
    "string": ["str"],
    "bool": ["bool", "boolean"],
    "datetime": ["datetime64", "datetime64[ns]", "Timestamp"],
}
GX_KINDS = {
    "expect_column_to_exist": "required",
    "expect_column_values_to_be_in_type_list": "dtype",
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_between": "range",
    "expect_column_values_to_be_in_set": "allowed_values",
    "expect_column_values_to_be_unique": "unique",
    "expect_compound_columns_to_be_unique": "unique_key",
    "expect_table_row_count_to_be_between": "row_count",
    "expect_column_max_to_be_between": "freshness",
}


def build_gx(contract: Any, as_of: datetime) -> Callable[[pd.DataFrame], dict[str, Any]]:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("bench")
    asset = source.add_dataframe_asset("fraud")
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=f"{contract.name}-v{contract.version}")
    suite.add_expectation(
        gxe.ExpectTableRowCountToBeBetween(min_value=contract.rows.min, max_value=contract.rows.max)
    )
    for name, rule in contract.columns.items():
        if rule.required:
            suite.add_expectation(gxe.ExpectColumnToExist(column=name))
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=GX_TYPES[rule.dtype])
        )
        if not rule.nullable:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if rule.min is not None or rule.max is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=rule.min, max_value=rule.max
                )
            )
        if rule.allowed is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=name, value_set=rule.allowed)
            )
        if rule.unique and [name] != list(contract.key):
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=name))
    if len(contract.key) == 1:
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=contract.key[0]))
    elif contract.key:
        suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=contract.key))
    if contract.freshness is not None:
        limit = as_of - timedelta(days=contract.freshness.max_age_days)
        suite.add_expectation(
            gxe.ExpectColumnMaxToBeBetween(column=contract.freshness.column, min_value=limit)
        )
    suite = context.suites.add(suite)

    def run(df: pd.DataFrame) -> dict[str, Any]:
        batch = batch_def.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite)  # default result_format: SUMMARY (counts + examples)
        fails = []
        for r in result.results:
            if r.success:
                continue
            cfg = r.expectation_config
            kind = GX_KINDS.get(cfg.type, cfg.type) if cfg else "unknown"
            column = cfg.kwargs.get("column") if cfg else None
            if kind == "unique_key" or (kind == "unique" and [column] == list(contract.key)):
                kind, column = "unique_key", ",".join(contract.key)
            count = (r.result or {}).get("unexpected_count")
            info = r.exception_info or {}
            # one entry, or one per metric: {metric_id: {"raised_exception": ...}}
            entries = [info, *(x for x in info.values() if isinstance(x, dict))]
            raised = any(bool(e.get("raised_exception")) for e in entries)
            fails.append({**_fail(column, kind, count), "error": raised})
        return {"passed": bool(result.success), "failures": fails}

    return run


BUILDERS: dict[str, Callable[[Any, datetime], Callable[[pd.DataFrame], dict[str, Any]]]] = {
    "baseline": build_baseline,
    "conveyor": build_conveyor,
    "pandera": build_pandera,
    "gx": build_gx,
}


# ----------------------------------------------------------------------------------- worker


def proc_status() -> dict[str, int]:
    """VmRSS / VmHWM in KiB."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def release_memory() -> None:
    """Hand freed heap back to the OS, so 'RSS after load' is the table, not allocator slack."""
    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # pyarrow is optional for pickled inputs
        pass
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM and ru_maxrss) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def worker(engine: str, path: Path, repeats: int) -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from conveyor.contracts import load_contract

    contract = load_contract(CONTRACT)
    meta = json.loads(path.with_suffix(".json").read_text())
    as_of = datetime.fromisoformat(meta["as_of"])
    run = BUILDERS[engine](contract, as_of)  # imports the engine before the table is measured

    release_memory()
    rss_before = proc_status()["VmRSS"]
    t0 = time.perf_counter()
    df = load(path)
    load_s = time.perf_counter() - t0
    table_bytes = int(df.memory_usage(deep=True).sum())
    table_shallow = int(df.memory_usage(deep=False).sum())
    run(df.head(2000))  # warm-up: lazy imports and caches, off the clock and off the peak
    release_memory()
    rss_after = proc_status()["VmRSS"]
    peak_reset = reset_peak()
    log(
        f"{engine}: loaded {len(df):,} rows in {load_s:.1f}s; table {table_bytes / MIB:,.0f} MiB "
        f"(deep), RSS +{(rss_after - rss_before) / 1024:,.0f} MiB"
    )

    times: list[float] = []
    summary: dict[str, Any] = {}
    for i in range(repeats):
        t0 = time.perf_counter()
        summary = run(df)
        times.append(time.perf_counter() - t0)
        log(f"{engine}: run {i + 1}/{repeats}: {times[-1]:.2f}s passed={summary['passed']}")

    status = proc_status()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = max(status["VmHWM"], ru_maxrss) if peak_reset else ru_maxrss
    result = {
        "engine": engine,
        "rows": len(df),
        "columns": df.shape[1],
        "mode": meta["mode"],
        "times": times,
        "best": min(times),
        "load_s": load_s,
        "table_bytes": table_bytes,
        "table_shallow_bytes": table_shallow,
        "rss_before_load_kib": rss_before,
        "rss_after_load_kib": rss_after,
        "peak_kib": peak,
        "ru_maxrss_kib": ru_maxrss,
        "peak_reset": peak_reset,
        "extra_kib": peak - rss_after,
        "summary": summary,
    }
    print("RESULT " + json.dumps(result, default=str), flush=True)


def cpu_busy(interval: float = 1.0) -> float:
    """CPUs' worth of time spent busy over ``interval`` (from /proc/stat), 0 when unknown."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    cpus = len(os.sched_getaffinity(0))
    busy = (total1 - total0) - (idle1 - idle0)
    return cpus * busy / max(total1 - total0, 1)


def wait_quiet(limit: float = 0.3, patience: float = 180) -> float:
    """Wait (up to ``patience`` s) until other processes use under ``limit`` CPUs."""
    busy = cpu_busy()
    deadline = time.monotonic() + patience
    while busy > limit and time.monotonic() < deadline:
        log(f"machine busy ({busy:.1f} CPUs used by other processes); waiting")
        time.sleep(5)
        busy = cpu_busy()
    return busy


def spawn(engine: str, path: Path, repeats: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", engine, "--data", str(path)]
    cmd += ["--repeats", str(repeats)]
    busy = wait_quiet()
    log(f"--- {engine} on {path.name} ({repeats} run(s), timeout {timeout:.0f}s)")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{engine}: timed out after {timeout:.0f}s")
        return {"engine": engine, "timeout": timeout, "wall": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        log(
            f"{engine}: worker failed (exit {proc.returncode}); if an import failed, install the "
            "peers with `make bench` (a `make venv` re-sync removes them)"
        )
        return {"engine": engine, "error": f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["wall"] = time.perf_counter() - t0
    result["busy_before"] = busy
    return result


# ---------------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("pandas", "numpy", "pyarrow", "pandera", "great_expectations"):
        try:
            out[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def fmt_s(r: dict[str, Any]) -> str:
    if "timeout" in r:
        return f"> {r['timeout']:.0f} (timeout)"
    if "error" in r:
        return r["error"]
    n = len(r["times"])
    return f"{r['best']:.2f}" + (f" (best of {n})" if n > 1 else " (1 run)")


def size_table(results: list[dict[str, Any]]) -> list[str]:
    base = next((r for r in results if r["engine"] == "baseline" and "best" in r), None)
    lines = [
        "| engine | seconds | x baseline | peak extra MiB | extra / table (deep) "
        "| extra / table (resident) | passed |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "best" not in r:
            lines.append(f"| {r['engine']} | {fmt_s(r)} | - | - | - | - | - |")
            continue
        ratio = f"{r['best'] / base['best']:.1f}x" if base else "-"
        extra = r["extra_kib"] * 1024
        resident = (r["rss_after_load_kib"] - r["rss_before_load_kib"]) * 1024
        lines.append(
            f"| {r['engine']} | {fmt_s(r)} | {ratio} | {extra / MIB:,.0f} "
            f"| {extra / r['table_bytes']:.2f}x | {extra / max(resident, 1):.2f}x "
            f"| {r['summary']['passed']} |"
        )
    return lines


def table_line(results: list[dict[str, Any]]) -> str:
    r = next((r for r in results if "table_bytes" in r), None)
    if r is None:
        return ""
    resident = (r["rss_after_load_kib"] - r["rss_before_load_kib"]) * 1024
    return (
        f"Table: {r['rows']:,} rows x {r['columns']} columns; `memory_usage(deep=True)` "
        f"{r['table_bytes'] / MIB:,.0f} MiB (numeric buffers + pointer arrays "
        f"{r['table_shallow_bytes'] / MIB:,.0f} MiB); resident after load "
        f"+{resident / MIB:,.0f} MiB RSS."
    )


def goals(results: list[dict[str, Any]]) -> list[str]:
    by = {r["engine"]: r for r in results}
    conv = by.get("conveyor", {})
    base = by.get("baseline", {})
    if "best" not in conv:
        return ["- conveyor did not finish; no goal can be assessed."]
    out = []
    peers = []
    for peer in ("pandera", "gx"):
        p = by.get(peer, {})
        if "best" in p:
            ok = conv["best"] < p["best"]
            peers.append(ok)
            out.append(
                f"- conveyor faster than {peer}: **{'PASS' if ok else 'FAIL'}** "
                f"({conv['best']:.2f}s vs {p['best']:.2f}s, {p['best'] / conv['best']:.1f}x)"
            )
        elif "timeout" in p:
            out.append(
                f"- conveyor faster than {peer}: **PASS** ({conv['best']:.2f}s vs "
                f"> {p['timeout']:.0f}s timeout)"
            )
        else:
            out.append(f"- conveyor faster than {peer}: not measured ({p.get('error', 'missing')})")
    if "best" in base:
        ratio = conv["best"] / base["best"]
        out.append(
            f"- conveyor within 2x of the baseline pass: **{'PASS' if ratio <= 2 else 'FAIL'}** "
            f"({conv['best']:.2f}s vs {base['best']:.2f}s = {ratio:.1f}x)"
        )
    extra = conv["extra_kib"] * 1024
    resident = (conv["rss_after_load_kib"] - conv["rss_before_load_kib"]) * 1024
    deep = extra / conv["table_bytes"]
    out.append(
        f"- conveyor peak extra memory under 2x the table size: "
        f"**{'PASS' if deep < 2 else 'FAIL'}** ({extra / MIB:,.0f} MiB = {deep:.2f}x "
        f"`memory_usage(deep=True)`; {extra / max(resident, 1):.2f}x the table's resident RSS)"
    )
    return out


# The faults conveyor.sample._corrupt injects: (column, check kind).
INJECTED = (
    ("amount", "range"),
    ("channel", "allowed_values"),
    ("merchant_category", "not_null"),
    ("customer_age", "dtype"),
    ("id", "unique_key"),
    ("merchant_risk_score", "range"),
    ("event_time", "freshness"),
)


def corrupt_verdict(results: list[dict[str, Any]]) -> str:
    """One sentence: did every engine find every injected fault, with the same counts?"""
    parts = []
    counts: dict[tuple[str, str], set[int]] = {}
    for r in results:
        if "summary" not in r:
            parts.append(f"{r['engine']} did not finish")
            continue
        got = {(str(f["column"]), f["kind"]): f["count"] for f in r["summary"]["failures"]}
        missed = [f"{c} {k}" for c, k in INJECTED if (c, k) not in got]
        found = len(INJECTED) - len(missed)
        parts.append(
            f"{r['engine']} found {found}/{len(INJECTED)}"
            + (f" (missed: {', '.join(missed)})" if missed else "")
        )
        for key in INJECTED:
            if key[1] != "freshness" and got.get(key) is not None:
                counts.setdefault(key, set()).add(int(got[key]))
    differ = [f"{c} {k}" for (c, k), v in counts.items() if len(v) > 1]
    same = (
        "bad-row counts differ for: " + ", ".join(differ)
        if differ
        else "every reported bad-row count agrees across engines"
    )
    return f"Injected faults found: {'; '.join(parts)}; {same}."


def corrupt_table(results: list[dict[str, Any]]) -> list[str]:
    engines = [r["engine"] for r in results]
    found: dict[tuple[str, str], dict[str, str]] = {}
    for r in results:
        if "summary" not in r:
            continue
        for f in r["summary"]["failures"]:
            key = (str(f["column"] or "(table)"), f["kind"])
            cell = "yes" if f["count"] is None else f"{f['count']:,}"
            if f.get("error"):
                cell += " (raised)"
            found.setdefault(key, {})[r["engine"]] = cell
    lines = [
        "| column | check | " + " | ".join(engines) + " |",
        "|---|---|" + "---:|" * len(engines),
    ]
    order = {k: i for i, k in enumerate(KINDS)}
    for (column, kind), cells in sorted(
        found.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))
    ):
        row = " | ".join(cells.get(e, "-") for e in engines)
        lines.append(f"| {column} | {kind} | {row} |")
    totals = " | ".join(
        str(len(r["summary"]["failures"])) if "summary" in r else fmt_s(r) for r in results
    )
    lines.append(f"| **failed checks** | | {totals} |")
    return lines


def busy_max(
    sizes: list[tuple[int, list[dict[str, Any]]]],
    corrupt: tuple[int, list[dict[str, Any]]] | None,
) -> str:
    runs = [r for _, rs in [*sizes, *([corrupt] if corrupt else [])] for r in rs]
    busy = [r["busy_before"] for r in runs if "busy_before" in r]
    return f"{max(busy):.2f}" if busy else "n/a"


def write_results(
    sizes: list[tuple[int, list[dict[str, Any]]]],
    corrupt: tuple[int, list[dict[str, Any]]] | None,
    args: argparse.Namespace,
    started: float,
) -> None:
    v = versions()
    lines = [
        "# validate_data benchmark: conveyor vs pandera vs Great Expectations",
        "",
        "Generated by `bench/validate.py`; do not edit by hand. Reproduce with `make bench`",
        f"(this run: `{' '.join(['.venv/bin/python', 'bench/validate.py', *sys.argv[1:]])}`).",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}; {platform.system()} {platform.release()}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Total benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min; "
        f"other load: at most {busy_max(sizes, corrupt)} CPUs busy in the second before "
        "each engine started (the script waits for a quiet machine)",
        "",
        "## What is measured",
        "",
        "One contract, `examples/fraud/contract.yaml`, checked by four engines on the same table",
        "(`conveyor.sample.generate(rows, seed=7)`, 20 columns, read from Parquet). The pandera",
        "schema and the GX suite are built programmatically from the loaded contract: declared",
        "dtype, nullability, min/max range, allowed values, key uniqueness, column presence, row",
        "count, freshness (newest `event_time` >= as_of - 7 days). **Drift (PSI) is not compared:",
        "conveyor is called with `reference=None`**, and the peers have no drift check.",
        "",
        "- **conveyor**: `conveyor.contracts.validate(df, contract, reference=None, as_of=...)`.",
        "- **pandera**: `pandera.pandas.DataFrameSchema(...).validate(df, lazy=True, "
        "inplace=True)` (inplace: no coercion is configured, so the default defensive copy "
        "would only cost time and memory).",
        "- **gx**: Great Expectations ephemeral context, pandas data source, dataframe asset, "
        "whole-dataframe batch, `batch.validate(suite)` with the default SUMMARY result format.",
        "- **baseline**: the floor, one vectorised op per rule: dtype from the column dtype "
        "(`infer_dtype` for object columns), null count, `nanmin`/`nanmax` against the bounds, "
        "`isin` on allowed sets, `Series.duplicated` on the key, `max` of the timestamp. Exact "
        "bad-row counts only on the failure path.",
        "",
        "Each engine runs in its own fresh subprocess: imports and contract/schema/suite setup, "
        "load, a warm-up on 2,000 rows, then the timed runs (`time.perf_counter`, best of N). "
        "*Peak extra memory* = peak RSS during the timed runs minus RSS after load (the kernel "
        "peak mark is reset after load via `/proc/self/clear_refs`, so the Parquet read's own "
        "peak is excluded; `ru_maxrss` is recorded too). *Table size* is "
        "`df.memory_usage(deep=True).sum()`, as asked; it counts every string object once per "
        "row, but the Parquet reader shares one object per distinct string, so the resident "
        "table is much smaller - the ratio to resident RSS is shown as well.",
        "",
    ]
    for rows, results in sizes:
        lines += [f"## Clean batch, {rows:,} rows", "", table_line(results), ""]
        lines += size_table(results)
        lines += [""]
    if sizes:
        rows, results = sizes[-1]
        lines += [f"## Goals (at {rows:,} rows)", "", *goals(results), ""]
    if corrupt is not None:
        rows, results = corrupt
        lines += [
            f"## Sanity check: corrupt batch, {rows:,} rows",
            "",
            '`generate(rows, seed=7, mode="corrupt")` injects one fault of each kind (7 in all). '
            "Cells are the bad-row counts each engine reported for that (column, check); `yes` = "
            "reported without a row count (aggregate checks); `(raised)` = the check raised an "
            "exception, which the engine reports as a failure; `-` = not reported.",
            "",
            *corrupt_table(results),
            "",
            corrupt_verdict(results),
            "",
            "The one expected difference is `customer_age` range: that column is object dtype "
            "(floats mixed with "
            "the string `unknown`). conveyor and the baseline coerce it to numbers, flag the "
            "strings as dtype errors and find every number inside [18, 120]; pandera and GX "
            "compare the raw objects with the bounds, raise a TypeError and report the range "
            "check as failed. conveyor reports freshness with the whole batch (all rows) as bad.",
            "",
        ]
    lines += [
        "## Differences in semantics",
        "",
        "- Types: conveyor reads leniently (an int column satisfies `float`, integral floats "
        "satisfy `int`, numeric strings are parsed); pandera checks the exact dtype "
        "(`int64`, `float64`, `str` per value, `datetime64[ns]`), GX checks a type list "
        "(per value for object columns). On these tables all engines agree.",
        "- Row count and freshness are custom `Check`s in pandera (it has no built-ins); in GX "
        "they are `ExpectTableRowCountToBeBetween` and `ExpectColumnMaxToBeBetween`.",
        "- Reports: conveyor gives counts plus up to 5 example values per violation; pandera "
        "(lazy) returns every failing row; GX SUMMARY returns counts and partial lists.",
        "",
    ]
    RESULTS.write_text("\n".join(lines) + _other_benchmarks())
    log(f"wrote {RESULTS.relative_to(ROOT)}")


def _other_benchmarks() -> str:
    """The sections other benchmarks wrote (headings naming their script), kept as they are:
    this script owns only the validation part at the top of RESULTS.md."""
    if not RESULTS.is_file():
        return ""
    old = RESULTS.read_text().splitlines()
    start = next(
        (i for i, line in enumerate(old)
         if line.startswith("## ") and "(bench/" in line and "bench/validate.py" not in line),
        None,
    )  # fmt: skip
    return "" if start is None else "\n" + "\n".join(old[start:]) + "\n"


# ------------------------------------------------------------------------------------ main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5_000_000, help="large clean batch (0 = skip)")
    p.add_argument("--small-rows", type=int, default=500_000, help="small clean + corrupt batch")
    p.add_argument("--repeats-small", type=int, default=3)
    p.add_argument("--repeats-large", type=int, default=3, help="baseline and conveyor")
    p.add_argument("--repeats-large-peers", type=int, default=3, help="pandera and gx")
    p.add_argument("--timeout", type=float, default=900, help="per engine subprocess, seconds")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--no-corrupt", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    # internal entry points
    p.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="clean", help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.prepare:
        prepare(args.prepare, args.mode)
        return
    if args.worker:
        worker(args.worker, args.data, args.repeats)
        return

    started = time.perf_counter()
    engines = [e for e in args.engines.split(",") if e]
    plan = [(args.small_rows, args.repeats_small, args.repeats_small)]
    if args.rows:
        plan.append((args.rows, args.repeats_large, args.repeats_large_peers))
    sizes: list[tuple[int, list[dict[str, Any]]]] = []
    for rows, reps, peer_reps in plan:
        path = ensure_data(rows, "clean")
        results = []
        for engine in engines:
            n = reps if engine in ("baseline", "conveyor") else peer_reps
            results.append(spawn(engine, path, n, args.timeout))
        sizes.append((rows, results))
        print("\n".join(["", f"clean, {rows:,} rows", *size_table(results), ""]), flush=True)
    corrupt = None
    if not args.no_corrupt:
        path = ensure_data(args.small_rows, "corrupt")
        results = [spawn(engine, path, 1, args.timeout) for engine in engines]
        corrupt = (args.small_rows, results)
        print("\n".join(["", "corrupt", *corrupt_table(results), ""]), flush=True)
    if sizes:
        print("\n".join(["", *goals(sizes[-1][1]), ""]), flush=True)
    if not args.no_write:
        write_results(sizes, corrupt, args, started)


if __name__ == "__main__":
    main()
