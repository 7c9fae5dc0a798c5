"""Profiles and PSI: the one definition of "this column's distribution" used everywhere.

Bins come from the reference (quantile edges, open outer bins; top categories plus "other"),
empty bins are floored, and missing values get a bin of their own, so a surge of nulls counts
as drift. Equal-width bins over reference + current under-report drift on long-tailed columns.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "band",
    "column_psi",
    "counts_below_grid",
    "current_counts",
    "current_fractions",
    "ecdf_grid",
    "is_numeric",
    "kolmogorov_sf",
    "ks_of_counts",
    "ks_pvalue",
    "ks_statistic",
    "numeric_counts",
    "numeric_fractions",
    "profile_column",
    "profile_frame",
    "profile_frames",
    "psi",
    "psi_of_counts",
    "sorted_present",
]


PSI_FLOOR = 1e-4
# Below this effective sample size n*m/(n+m) the KS p-value is scipy's exact one-sample
# distribution (as before); from it on, the asymptotic form with Stephens' correction is within
# 5% of it for every p >= 1e-6 (tests/test_distributions.py checks both claims).
KS_EXACT_BELOW = 100
PROFILE_VERSION = 1
ECDF_POINTS = 100
STABLE, MODERATE = 0.1, 0.25


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _round(x: float) -> float:
    return float(round(float(x), 10))


def sorted_present(series: pd.Series) -> np.ndarray:
    """The column's non-missing values as sorted float64: one sort serves quantiles, bins and
    the ECDF (numpy's SIMD sort costs less than one ``np.quantile`` call on a large column)."""
    return _sorted_present(_as_float(series))


def _as_float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _sorted_present(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)  # NaN sorts last
    return values[: len(values) - int(np.count_nonzero(np.isnan(values)))]


def _quantiles(sorted_values: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``np.quantile(..., method="linear")`` on an already sorted array, without re-sorting."""
    pos = qs * (len(sorted_values) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(sorted_values) - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    return a + (b - a) * (pos - lo)


def _counts_below(sorted_values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How many values are strictly below each point (the ECDF's left limit, times n)."""
    return np.searchsorted(sorted_values, points, side="left")


def profile_column(
    series: pd.Series, bins: int = 10, max_categories: int = 50, ecdf_points: int = ECDF_POINTS
) -> dict[str, Any]:
    """Statistics and reference bins of one column.

    Numeric columns also keep an ECDF on a grid of reference quantiles (``ecdf``), so a KS
    statistic can be computed against a profile without the reference rows.
    """
    total = len(series)
    if not is_numeric(series):
        return _profile_categorical(series, total, max_categories)
    return _profile_numeric(sorted_present(series), total, bins, ecdf_points)


def _profile_numeric(values: np.ndarray, total: int, bins: int, ecdf_points: int) -> dict:
    """The numeric profile of ``values`` (sorted, non-missing) out of ``total`` rows."""
    n_missing = total - len(values)
    base: dict[str, Any] = {"count": total, "nulls": n_missing, "kind": "numeric"}
    if len(values):
        qs = _quantiles(values, np.array([0.01, 0.5, 0.99]))
        base.update(
            mean=_round(values.mean()),
            std=_round(values.std()),
            min=_round(values[0]),
            p01=_round(qs[0]),
            p50=_round(qs[1]),
            p99=_round(qs[2]),
            max=_round(values[-1]),
        )
        inner = _quantiles(values, np.linspace(0, 1, bins + 1)[1:-1])
        # Bin with the edges as stored: current_fractions() reads the rounded ones, and a
        # value on an edge must fall on the same side in both, or identical data drifts.
        edges = np.unique(np.asarray([_round(e) for e in inner], dtype=np.float64))
        grid = np.union1d(
            edges, [_round(q) for q in _quantiles(values, np.linspace(0, 1, ecdf_points + 1))]
        )
        base["ecdf"] = {
            "x": [float(x) for x in grid],
            "below": [_round(c / len(values)) for c in _counts_below(values, grid)],
        }
    else:
        edges = np.array([], dtype=np.float64)
    below = _counts_below(values, edges)
    counts = np.diff(np.concatenate([[0], below, [len(values)]]))
    base["bins"] = {
        "edges": [float(e) for e in edges],
        "fractions": [_round(c / total) for c in counts] if total else [],
        "missing": _round(n_missing / total) if total else 0.0,
    }
    return base


def _profile_categorical(series: pd.Series, total: int, max_categories: int) -> dict[str, Any]:
    n_missing = int(series.isna().sum())
    return _categorical_profile(_value_counts(series), n_missing, total, max_categories)


def _value_counts(series: pd.Series) -> pd.Series:
    """Counts of the non-missing values as text, in order of first appearance."""
    present = series.dropna() if series.hasnans else series
    return present.astype(str).value_counts(sort=False)


def _categorical_profile(
    freq: pd.Series, n_missing: int, total: int, max_categories: int
) -> dict[str, Any]:
    freq = freq.sort_values(ascending=False, kind="stable")
    top = freq.iloc[:max_categories].sort_index()
    other = int(freq.iloc[max_categories:].sum())
    return {
        "count": total,
        "nulls": n_missing,
        "kind": "categorical",
        "distinct": len(freq),
        "bins": {
            "categories": [str(c) for c in top.index],
            "fractions": [_round(c / total) for c in top.to_numpy()] + [_round(other / total)],
            "missing": _round(n_missing / total) if total else 0.0,
        },
    }


def profile_frame(df: pd.DataFrame, columns: list[str] | None = None, bins: int = 10) -> dict:
    """Profile of the given columns (default: all), in the JSON shape validate_data reads."""
    cols = columns if columns is not None else list(df.columns)
    return {
        "version": PROFILE_VERSION,
        "rows": len(df),
        "columns": {c: profile_column(df[c], bins=bins) for c in cols},
    }


def profile_frames(
    read: Callable[[list[str] | None], Iterable[pd.DataFrame]],
    columns: list[str] | None = None,
    bins: int = 10,
) -> dict:
    """:func:`profile_frame` of a table read in row batches (``read(columns)`` yields them,
    ``tables.iter_frames``): categories are counted batch by batch, and each numeric column is
    then read alone, since exact quantiles need all its values (8 bytes a row, one column at a
    time). The same profile as the whole table in memory."""
    rows = 0
    numeric: dict[str, bool] = {}
    counts: dict[str, dict[str, int]] = {}
    missing: dict[str, int] = {}
    for frame in read(columns):
        if columns is None:
            columns = [str(c) for c in frame.columns]
        rows += len(frame)
        for c in columns:
            series = frame[c]
            numeric.setdefault(c, is_numeric(series))
            if numeric[c]:
                continue
            missing[c] = missing.get(c, 0) + int(series.isna().sum())
            seen = counts.setdefault(c, {})
            for value, n in _value_counts(series).items():
                seen[str(value)] = seen.get(str(value), 0) + int(n)
    out: dict[str, Any] = {}
    for c in (columns or []) if rows else []:  # no rows: nothing to profile (caller says so)
        if not numeric[c]:
            freq = pd.Series(counts[c], dtype=np.int64)
            out[c] = _categorical_profile(freq, missing[c], rows, 50)
            continue
        parts = [_as_float(f[c]) for f in read([c])]
        values = np.concatenate(parts) if parts else np.array([], dtype=np.float64)
        parts.clear()
        out[c] = _profile_numeric(_sorted_present(values), rows, bins, ECDF_POINTS)
    return {"version": PROFILE_VERSION, "rows": rows, "columns": out}


def current_fractions(spec: dict[str, Any], series: pd.Series) -> np.ndarray:
    """Fractions of ``series`` in the reference bins of ``spec`` (missing bin last)."""
    total = len(series)
    if total == 0:
        return np.zeros(len(spec["bins"]["fractions"]) + 1)
    return current_counts(spec, series) / total


def current_counts(spec: dict[str, Any], series: pd.Series) -> np.ndarray:
    """Row counts of ``series`` in the reference bins of ``spec`` (missing bin last).

    Counts, not fractions, so a table read in batches adds its batches' counts and gets the
    same PSI as the whole table in memory."""
    if spec["kind"] == "numeric":
        values = sorted_present(series)
        return np.append(numeric_counts(spec, values), len(series) - len(values))
    missing = series.isna()
    n_missing = int(missing.sum())
    present = series[~missing] if n_missing else series
    cats = spec["bins"]["categories"]
    codes = pd.Categorical(present.astype(str), categories=cats).codes  # -1 = not a top cat
    counts = np.bincount(codes + 1, minlength=len(cats) + 1)
    counts = np.concatenate([counts[1:], counts[:1]])  # "other" goes last, as in the spec
    return np.append(counts, n_missing)


def numeric_counts(spec: dict[str, Any], sorted_values: np.ndarray) -> np.ndarray:
    """How many of the sorted, non-missing values fall in each reference bin."""
    edges = np.asarray(spec["bins"]["edges"], dtype=np.float64)
    below = _counts_below(sorted_values, edges)
    return np.diff(np.concatenate([[0], below, [len(sorted_values)]]))


def numeric_fractions(spec: dict[str, Any], sorted_values: np.ndarray, total: int) -> np.ndarray:
    """Bin fractions of already sorted, non-missing values (``total`` counts the missing)."""
    counts = numeric_counts(spec, sorted_values)
    return np.append(counts, total - len(sorted_values)) / total


def ks_statistic(spec: dict[str, Any], sorted_values: np.ndarray) -> float | None:
    """Largest ECDF gap between the reference (on its quantile grid) and sorted values.

    Evaluated at the reference's grid points, so it can under-read the exact two-sample KS
    statistic by at most the largest reference mass between two grid points (1/ECDF_POINTS
    for a continuous column). None for a profile without an ECDF or no values.
    """
    grid = ecdf_grid(spec)
    if grid is None or not len(sorted_values):
        return None
    return ks_of_counts(spec, _counts_below(sorted_values, grid), len(sorted_values))


def ecdf_grid(spec: dict[str, Any]) -> np.ndarray | None:
    """The reference's ECDF grid points; None for a profile without an ECDF."""
    ecdf = spec.get("ecdf")
    return np.asarray(ecdf["x"], dtype=np.float64) if ecdf else None


def counts_below_grid(grid: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """How many of the sorted values lie below each grid point: counts that add up over row
    batches, for :func:`ks_of_counts`."""
    return _counts_below(sorted_values, grid)


def ks_of_counts(spec: dict[str, Any], below: np.ndarray, n: int) -> float:
    """:func:`ks_statistic` from ``below`` (values under each grid point) out of ``n``."""
    ref = np.asarray(spec["ecdf"]["below"], dtype=np.float64)
    return float(np.max(np.abs(ref - np.asarray(below) / n))) if len(ref) else 0.0


def kolmogorov_sf(z: float) -> float:
    """P(K > z) for the Kolmogorov distribution (the limit of sqrt(n) * D_n):
    Q(z) = 2 * sum_k (-1)**(k-1) * exp(-2 k**2 z**2).

    Plain ``math``, no scipy: the series above from z = 1.18 on (three terms), the Jacobi theta
    form of the CDF, sqrt(2 pi) / z * sum_k exp(-(2k-1)**2 pi**2 / (8 z**2)), below it (four
    terms), as Numerical Recipes (3rd ed., 6.14) does; each is exact to double precision there.
    """
    if z <= 0.0:
        return 1.0
    if z < 1.18:
        y = math.exp(-(math.pi**2) / (8.0 * z * z))
        cdf = math.sqrt(2.0 * math.pi) / z * (y + y**9 + y**25 + y**49)
        return min(1.0, max(0.0, 1.0 - cdf))
    x = math.exp(-2.0 * z * z)
    return min(1.0, max(0.0, 2.0 * (x - x**4 + x**9)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sample KS p-value of the statistic ``d`` for samples of ``n`` and ``m`` values.

    In the effective size ne = n*m/(n+m): the asymptotic Kolmogorov distribution with
    Stephens' small-sample correction, Q((sqrt(ne) + 0.12 + 0.11/sqrt(ne)) * d) (Stephens 1970;
    Numerical Recipes), which costs microseconds. Below ``KS_EXACT_BELOW`` it is
    ``scipy.stats.kstwo.sf(d, round(ne))`` as in scipy's ``ks_2samp(method="asymp")``,
    imported only then: scipy's exact form costs up to ~0.8 s a call at ne ~ 500,000 and
    ~1 s to import. 1.0 when either sample is empty.
    """
    if n <= 0 or m <= 0:
        return 1.0
    ne = n * m / (n + m)
    if ne < KS_EXACT_BELOW:
        from scipy.stats import kstwo

        en = round(ne)
        return float(kstwo.sf(d, en)) if en else 1.0
    root = math.sqrt(ne)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index with floored bins (so empty bins do not divide by zero)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def column_psi(spec: dict[str, Any], series: pd.Series) -> float:
    """PSI of ``series`` against the reference column profile ``spec``."""
    return psi_of_counts(spec, current_counts(spec, series), len(series))


def psi_of_counts(spec: dict[str, Any], counts: np.ndarray, total: int) -> float:
    """PSI of a column whose rows fell ``counts`` times in the bins of ``spec``."""
    expected = np.append(np.asarray(spec["bins"]["fractions"]), spec["bins"]["missing"])
    actual = counts / total if total else np.zeros(len(expected))
    value = psi(expected, actual)
    return 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value


def band(value: float) -> str:
    """Conventional PSI band: stable < 0.1 <= moderate <= 0.25 < major."""
    if value < STABLE:
        return "stable"
    return "moderate" if value <= MODERATE else "major"
