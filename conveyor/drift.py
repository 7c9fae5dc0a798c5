"""Profiles and PSI: the one definition of "this column's distribution" used everywhere.

Bins come from the reference (quantile edges, open outer bins; top categories plus "other"),
empty bins are floored, and missing values get a bin of their own, so a surge of nulls counts
as drift. Equal-width bins over reference + current under-report drift on long-tailed columns.
"""

import math
from typing import Any

import numpy as np
import pandas as pd

PSI_FLOOR = 1e-4
PROFILE_VERSION = 1
STABLE, MODERATE = 0.1, 0.25


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _round(x: float) -> float:
    return float(round(float(x), 10))


def profile_column(series: pd.Series, bins: int = 10, max_categories: int = 50) -> dict[str, Any]:
    """Statistics and reference bins of one column."""
    total = len(series)
    missing = series.isna()
    n_missing = int(missing.sum())
    present = series[~missing]
    base: dict[str, Any] = {"count": total, "nulls": n_missing}
    if _is_numeric(series):
        values = present.to_numpy(dtype=np.float64)
        if len(values):
            qs = np.quantile(values, [0.01, 0.5, 0.99])
            base.update(
                kind="numeric",
                mean=_round(values.mean()),
                std=_round(values.std()),
                min=_round(values.min()),
                p01=_round(qs[0]),
                p50=_round(qs[1]),
                p99=_round(qs[2]),
                max=_round(values.max()),
            )
            inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
            # Bin with the edges as stored: current_fractions() reads the rounded ones, and a
            # value on an edge must fall on the same side in both, or identical data drifts.
            edges = np.unique(np.asarray([_round(e) for e in inner], dtype=np.float64))
        else:
            base.update(kind="numeric")
            edges = np.array([], dtype=np.float64)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        base["bins"] = {
            "edges": [_round(e) for e in edges],
            "fractions": [_round(c / total) for c in counts] if total else [],
            "missing": _round(n_missing / total) if total else 0.0,
        }
        return base
    freq = present.astype(str).value_counts(sort=False)
    freq = freq.sort_values(ascending=False, kind="stable")
    top = freq.iloc[:max_categories].sort_index()
    other = int(freq.iloc[max_categories:].sum())
    base.update(kind="categorical", distinct=len(freq))
    base["bins"] = {
        "categories": [str(c) for c in top.index],
        "fractions": [_round(c / total) for c in top.to_numpy()] + [_round(other / total)],
        "missing": _round(n_missing / total) if total else 0.0,
    }
    return base


def profile_frame(df: pd.DataFrame, columns: list[str] | None = None, bins: int = 10) -> dict:
    """Profile of the given columns (default: all), in the JSON shape validate_data reads."""
    cols = columns if columns is not None else list(df.columns)
    return {
        "version": PROFILE_VERSION,
        "rows": len(df),
        "columns": {c: profile_column(df[c], bins=bins) for c in cols},
    }


def current_fractions(spec: dict[str, Any], series: pd.Series) -> np.ndarray:
    """Fractions of ``series`` in the reference bins of ``spec`` (missing bin last)."""
    total = len(series)
    if total == 0:
        return np.zeros(len(spec["bins"]["fractions"]) + 1)
    missing = series.isna()
    n_missing = int(missing.sum())
    present = series[~missing] if n_missing else series
    if spec["kind"] == "numeric":
        edges = np.asarray(spec["bins"]["edges"], dtype=np.float64)
        values = pd.to_numeric(present, errors="coerce").to_numpy(dtype=np.float64)
        values = values[~np.isnan(values)]
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    else:
        cats = spec["bins"]["categories"]
        codes = pd.Categorical(present.astype(str), categories=cats).codes  # -1 = not a top cat
        counts = np.bincount(codes + 1, minlength=len(cats) + 1)
        counts = np.concatenate([counts[1:], counts[:1]])  # "other" goes last, as in the spec
    return np.append(counts, n_missing) / total


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index with floored bins (so empty bins do not divide by zero)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def column_psi(spec: dict[str, Any], series: pd.Series) -> float:
    """PSI of ``series`` against the reference column profile ``spec``."""
    expected = np.append(np.asarray(spec["bins"]["fractions"]), spec["bins"]["missing"])
    value = psi(expected, current_fractions(spec, series))
    return 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value


def band(value: float) -> str:
    """Conventional PSI band: stable < 0.1 <= moderate <= 0.25 < major."""
    if value < STABLE:
        return "stable"
    return "moderate" if value <= MODERATE else "major"
