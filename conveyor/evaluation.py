"""evaluate: the evidence a gate decides on, written as ``evaluation.json``.

One model block per model (``evaluate_model``): holdout metrics, configured slices, fairness
across group columns (fairlearn's MetricFrame), predict latency and batch peak memory, sanity
checks (a collapsed model, agreement with a versioned golden set), the confusion matrix and ROC
curve. ``evaluate`` scores the candidate and, when given, the champion on the SAME holdout
DataFrame so the two blocks are comparable. Metrics that cannot be computed are ``None``
(JSON ``null``), never NaN.
"""

import itertools
import json
import math
import re
import time
import tracemalloc
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor import progress
from conveyor.config import EvaluationSpec, LatencySpec, SliceSpec
from conveyor.errors import BadInputError, did_you_mean
from conveyor.golden import (  # noqa: F401  (re-exported: evaluation's public API)
    GOLDEN_TARGET,
    check_golden,
    component_inputs,
    golden_records_json,
    load_golden,
)
from conveyor.tables import read_table, resolve_table, sha256_file

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "MLFLOW_BATCH",
    "ROC_POINTS",
    "bin_groups",
    "check_threshold",
    "classification_metrics",
    "component_inputs",
    "confusion",
    "evaluate",
    "evaluate_model",
    "flat_metrics",
    "golden_from_records",
    "golden_records_json",
    "group_fairness",
    "group_order",
    "load_golden",
    "measure_latency",
    "metric_paths",
    "natural_key",
    "render_markdown",
    "resolve_slices",
    "roc",
    "unknown_metric",
]


ROC_POINTS = 101  # KFP's ROC view gets slow past a few hundred points
FAIRNESS_METRICS = ("recall", "precision", "selection_rate")
MLFLOW_BATCH = 900  # MLflow's log_batch takes at most 1000 metrics per call


CLASSIFICATION = ("rows", "positive_rate", "predicted_positive_rate", "accuracy", "precision",
                  "recall", "f1", "roc_auc", "pr_auc", "log_loss")  # fmt: skip
LATENCY = ("p50", "p95", "p99", "batch_p50", "batch_p95", "batch_p99")


def metric_paths(spec: EvaluationSpec) -> list[str]:
    """Every number evaluation.json holds for this config, as the dotted paths gate rules
    name; ``*`` stands for a value known only from the data (a ``by`` slice's values, a
    fairness group)."""
    paths = [f"metrics.{m}" for m in (*CLASSIFICATION, "majority_class_share",
                                      "golden_agreement")]  # fmt: skip
    paths += [f"latency_ms.{m}" for m in LATENCY]
    paths += ["model.batch_peak_memory_mb", "model.size_bytes", "sanity.majority_class_share",
              "sanity.golden_agreement", "sanity.golden_rows", "holdout.rows"]  # fmt: skip
    for s in spec.slices:
        name = s.name if s.where is not None else f"{s.name}_*"
        paths += [f"slices.{name}.rows", *(f"slices.{name}.metrics.{m}" for m in CLASSIFICATION)]
    for col in spec.fairness:
        paths += [f"fairness.{col}.disparate_impact", f"fairness.{col}.rows_left_out"]
        paths += [f"fairness.{col}.max_gap.{m}" for m in FAIRNESS_METRICS]
        paths += [f"fairness.{col}.by_group.*.{m}" for m in ("rows", *FAIRNESS_METRICS)]
    return paths


def unknown_metric(path: str, spec: EvaluationSpec) -> str | None:
    """Why no evaluation of this config can hold ``path`` (the nearest name suggested), or
    None when it can. A gate rule on such a path would always find its evidence missing."""
    import fnmatch

    known = metric_paths(spec)
    if any(fnmatch.fnmatchcase(path, p) for p in known):
        return None
    hint = did_you_mean(path, known)
    if not hint and path.startswith(("slices.", "fairness.")):
        what = "evaluation.slices" if path.startswith("slices.") else "evaluation.fairness"
        hint = f"; add it under {what} in the pipeline config"
    return f"{path!r} is not a metric the evaluate stage produces for this config{hint}"


def check_threshold(threshold: float) -> None:
    """A decision threshold outside (0, 1) makes every metric meaningless: refuse it."""
    if not 0.0 < threshold < 1.0:
        raise BadInputError(f"threshold: {threshold} is outside the open interval (0, 1)")


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Headline binary-classification metrics at ``threshold``.

    Undefined values are NaN (the JSON writers turn them into ``null``): ``recall`` without
    positive rows, ``precision`` without predicted positives, the AUCs on a single class.
    """
    y = np.asarray(y).astype(int)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    pred = (proba >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(y.mean()) if len(y) else math.nan,
        "predicted_positive_rate": float(pred.mean()) if len(y) else math.nan,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=np.nan)),
        "recall": float(skm.recall_score(y, pred, zero_division=np.nan)),
        "f1": float(skm.f1_score(y, pred, zero_division=np.nan)),
        "roc_auc": float(skm.roc_auc_score(y, proba)) if both else math.nan,
        "pr_auc": float(skm.average_precision_score(y, proba)) if both else math.nan,
        "log_loss": float(skm.log_loss(y, proba, labels=[0, 1])),
    }


def confusion(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = (np.asarray(proba) >= threshold).astype(int)
    matrix = skm.confusion_matrix(np.asarray(y).astype(int), pred, labels=[0, 1])
    return {"labels": ["negative", "positive"], "matrix": matrix.astype(int).tolist()}


def roc(y: np.ndarray, proba: np.ndarray) -> dict[str, list[float]]:
    """ROC curve thinned to at most ROC_POINTS points, with finite thresholds only."""
    fpr, tpr, thr = skm.roc_curve(np.asarray(y).astype(int), proba)
    thr = np.where(np.isfinite(thr), thr, 1.0)
    if len(fpr) > ROC_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, ROC_POINTS).round().astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return {
        "fpr": [round(float(v), 6) for v in fpr],
        "tpr": [round(float(v), 6) for v in tpr],
        "thresholds": [round(float(v), 6) for v in thr],
    }


def _num(v: Any, digits: int = 6) -> float | None:
    """A finite number rounded, or None (JSON null) for NaN, inf and missing values."""
    if v is None:
        return None
    f = float(v)
    return round(f, digits) if math.isfinite(f) else None


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: _num(v) for k, v in d.items()}


def slug(value: Any) -> str:
    """Lowercase, every character outside [a-z0-9] replaced by ``_`` (slice and metric names)."""
    return re.sub(r"[^a-z0-9]", "_", str(value).lower())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------------- slices


def _column_ref(col: str) -> str:
    return col if col.isidentifier() else f"`{col}`"


def _where_mask(holdout: pd.DataFrame, s: SliceSpec) -> np.ndarray:
    """The boolean row mask of ``s.where``, evaluated as DataFrame.query evaluates it."""
    expr = str(s.where)
    what = f"evaluation.slices {s.name!r}: where {expr!r}"
    if "@" in expr:
        raise BadInputError(f"{what}: local variables (@name) are not available in a slice")
    try:
        res = holdout.eval(expr)
    except Exception as exc:  # pandas raises many types (SyntaxError, UndefinedVariableError...)
        raise BadInputError(
            f"{what} cannot be evaluated on the holdout: {type(exc).__name__}: "
            f"{_first_line(exc)} (columns: {', '.join(map(str, holdout.columns))})"
        ) from exc
    if not (
        isinstance(res, pd.Series)
        and len(res) == len(holdout)
        and pd.api.types.is_bool_dtype(res.dtype)
    ):
        got = f"dtype {res.dtype}" if isinstance(res, pd.Series) else type(res).__name__
        raise BadInputError(f"{what} is not a boolean expression over rows (got {got})")
    return res.fillna(False).to_numpy(dtype=bool)


def resolve_slices(holdout: pd.DataFrame, slices: list[SliceSpec]) -> list[tuple[str, str, Any]]:
    """``(name, where, mask)`` per slice; a ``by`` slice expands to one per value (sorted)."""
    out: list[tuple[str, str, Any]] = []
    for s in slices:
        if s.where is not None:
            out.append((s.name, s.where, _where_mask(holdout, s)))
            continue
        col = str(s.by)
        if col not in holdout.columns:
            raise BadInputError(
                f"evaluation.slices {s.name!r}: by column {col!r} is not in the holdout "
                f"(columns: {', '.join(map(str, holdout.columns))})"
            )
        values = holdout[col]
        for v in sorted(values.dropna().unique(), key=str):
            value = v.item() if isinstance(v, np.generic) else v
            out.append((f"{s.name}_{slug(value)}", f"{_column_ref(col)} == {value!r}", values == v))
        if values.isna().any():
            out.append((f"{s.name}_null", f"{_column_ref(col)}.isna()", values.isna()))
    seen: dict[str, str] = {}
    for name, where, _ in out:
        if name in seen:
            raise BadInputError(
                f"evaluation.slices: slice name {name!r} is produced twice "
                f"({seen[name]!r} and {where!r}); rename a slice"
            )
        seen[name] = where
    return [(n, w, np.asarray(m, dtype=bool)) for n, w, m in out]


def slice_metrics(
    holdout: pd.DataFrame, y: np.ndarray, proba: np.ndarray, spec: EvaluationSpec
) -> dict[str, Any]:
    """Per-slice row counts and metrics; a slice under ``min_slice_rows`` gets metrics null."""
    out: dict[str, Any] = {}
    for name, where, mask in resolve_slices(holdout, spec.slices):
        rows = int(mask.sum())
        if rows < spec.min_slice_rows:
            out[name] = {
                "where": where,
                "rows": rows,
                "metrics": None,
                "note": f"{rows} rows < min_slice_rows {spec.min_slice_rows}: not scored",
            }
            continue
        out[name] = {
            "where": where,
            "rows": rows,
            "metrics": _finite(classification_metrics(y[mask], proba[mask], spec.threshold)),
            "note": None,
        }
    return out


# ------------------------------------------------------------------------------- fairness


def natural_key(group: str) -> tuple[Any, ...]:
    """Groups in the order a person reads them: numbers by value ('9' before '20'), text with
    its digit runs compared as numbers ('grade 2' before 'grade 10'), 'null' last."""
    if group == "null":
        return (2,)
    try:
        return (0, float(group))
    except ValueError:
        parts = re.split(r"(\d+)", group.casefold())
        return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))


def bin_names(edges: list[float]) -> list[str]:
    """The groups inner ``edges`` make, lowest first."""
    inner = [f"{a:g} to {b:g}" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]:g}", *inner, f">= {edges[-1]:g}"]


def group_order(fairness: dict[str, Any]) -> list[str]:
    """A fairness block's groups in reading order (bins lowest first, values naturally, null
    last): JSON documents are written with sorted keys, so the order is not kept in them."""
    rank = (
        {g: (i,) for i, g in enumerate([*bin_names(fairness["bins"]), "null"])}
        if fairness.get("bins")
        else None
    )
    return sorted(fairness["by_group"], key=rank.__getitem__ if rank else natural_key)


def bin_groups(
    values: pd.Series, bins: int | list[float] | None
) -> tuple[pd.Series, list[float] | None]:
    """A numeric column of many values as interval groups (``< 25``, ``25 to 40``, ``>= 60``):
    per-value groups of an age or an income are mostly too small to judge. ``bins`` is a count
    of quantile bins or the inner edges; None bins only a column of many values. Returns the
    groups and the edges (None when not binned)."""
    from conveyor.config import DEFAULT_FAIRNESS_BINS, MAX_FAIRNESS_VALUES

    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if bins is not None and not numeric:
        raise BadInputError(
            f"evaluation.fairness_bins.{values.name}: column {values.name!r} is "
            f"{values.dtype}, not numeric; bins apply to numeric columns only"
        )
    if not numeric or (bins is None and values.nunique() <= MAX_FAIRNESS_VALUES):
        return values, None
    if isinstance(bins, list):
        edges = [float(e) for e in bins]
    else:
        count = bins or DEFAULT_FAIRNESS_BINS
        inner = np.nanquantile(values.to_numpy(dtype=float), np.linspace(0, 1, count + 1)[1:-1])
        edges = sorted({float(f"{e:.4g}") for e in inner})
    names = bin_names(edges)
    codes = np.searchsorted(np.asarray(edges), values.to_numpy(dtype=float), side="right")
    out = pd.Series(np.asarray(names, dtype=object)[codes], index=values.index, name=values.name)
    return out.mask(values.isna()), edges


def group_fairness(
    groups: pd.Series,
    y: np.ndarray,
    pred: np.ndarray,
    min_rows: int,
    bins: int | list[float] | None = None,
) -> dict[str, Any]:
    """Per-group recall, precision and selection rate (fairlearn MetricFrame), their max gap
    and the disparate impact ratio (min / max selection rate) over groups of >= min_rows.
    A numeric column of many values is grouped into bins (``bin_groups``)."""
    from fairlearn.metrics import MetricFrame, selection_rate

    groups, edges = bin_groups(groups, bins)
    labels = groups.map(lambda v: "null" if pd.isna(v) else str(v)).to_numpy(dtype=object)
    counts = pd.Series(labels).value_counts()
    present = group_order({"bins": edges, "by_group": [str(g) for g in counts.index]})
    eligible = [g for g in present if counts[g] >= min_rows]
    small = [g for g in present if counts[g] < min_rows]
    by_group: dict[str, dict[str, Any]] = {
        g: {"rows": int(counts[g]), **dict.fromkeys(FAIRNESS_METRICS)} for g in present
    }
    max_gap: dict[str, float | None] = dict.fromkeys(FAIRNESS_METRICS)
    disparate_impact: float | None = None
    if eligible:
        keep = np.isin(labels, eligible)
        frame = MetricFrame(
            metrics={
                "recall": partial(skm.recall_score, zero_division=np.nan),
                "precision": partial(skm.precision_score, zero_division=np.nan),
                "selection_rate": selection_rate,
            },
            y_true=np.asarray(y)[keep].astype(int),
            y_pred=np.asarray(pred)[keep].astype(int),
            sensitive_features=labels[keep],
        )
        table = frame.by_group
        for g in table.index:
            by_group[str(g)].update({m: _num(table.loc[g, m]) for m in FAIRNESS_METRICS})
        gaps = frame.difference(method="between_groups")
        for m in FAIRNESS_METRICS:
            # a gap needs two groups with a defined value (recall is undefined without positives)
            if int(table[m].notna().sum()) >= 2:
                max_gap[m] = _num(gaps[m])
        rates = table["selection_rate"]
        if len(rates) >= 2:
            low, high = float(frame.group_min()["selection_rate"]), float(rates.max())
            disparate_impact = _num(low / high) if high > 0 else None
    note = None
    left_out = int(sum(counts[g] for g in small))
    if small:
        shown = small if len(small) <= 8 else [*small[:8], f"... {len(small) - 8} more"]
        note = (
            f"{left_out} of {len(labels)} rows ({left_out / len(labels):.0%}) are in "
            f"{len(small)} group(s) of fewer than {min_rows} rows (evaluation.min_slice_rows), "
            f"left out of max_gap and disparate_impact: {', '.join(shown)}"
        )
    return {
        "by_group": by_group,
        "max_gap": max_gap,
        "disparate_impact": disparate_impact,
        "bins": edges,
        "rows_left_out": left_out,
        "note": note,
    }


def fairness_metrics(
    holdout: pd.DataFrame, y: np.ndarray, pred: np.ndarray, spec: EvaluationSpec
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in spec.fairness:
        if col not in holdout.columns:
            raise BadInputError(
                f"evaluation.fairness: column {col!r} is not in the holdout "
                f"(columns: {', '.join(map(str, holdout.columns))}); keep it in the splits with "
                "features.passthrough"
            )
        out[col] = group_fairness(
            holdout[col], y, pred, spec.min_slice_rows, spec.fairness_bins.get(col)
        )
        if out[col]["note"]:
            progress.warn(f"fairness across {col!r}: {out[col]['note']}")
    return out


# -------------------------------------------------------------------------------- latency


def _percentiles(ns: np.ndarray) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(ns, [50, 95, 99]) / 1e6
    return round(float(p50), 4), round(float(p95), 4), round(float(p99), 4)


def measure_latency(model: "Pipeline", x: pd.DataFrame, spec: LatencySpec) -> dict[str, Any]:
    """Wall time of ``model.predict_proba`` (model call only, input already typed), in ms.

    Single-row calls take holdout rows in turn (cycling); batch calls take ``batch_rows`` rows
    (the holdout repeated when it is shorter). Each series follows ``warmup`` untimed calls.
    Timed with ``spec.threads`` OpenMP/BLAS threads, as the serving runtime runs the model.
    """
    if len(x) == 0:
        raise BadInputError("latency: the holdout has no rows to time predictions on")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=spec.threads):
        return _timed(model, x, spec)


def _timed(model: "Pipeline", x: pd.DataFrame, spec: LatencySpec) -> dict[str, Any]:
    rows = [x.iloc[[i]] for i in range(min(len(x), spec.single_calls))]
    for i in range(spec.warmup):
        model.predict_proba(rows[i % len(rows)])
    single = np.empty(spec.single_calls, dtype=np.int64)
    for i in range(spec.single_calls):
        row = rows[i % len(rows)]
        t0 = time.perf_counter_ns()
        model.predict_proba(row)
        single[i] = time.perf_counter_ns() - t0
    batch = x.iloc[np.resize(np.arange(len(x)), spec.batch_rows)]
    for _ in range(spec.warmup):
        model.predict_proba(batch)
    batched = np.empty(spec.batch_calls, dtype=np.int64)
    for i in range(spec.batch_calls):
        t0 = time.perf_counter_ns()
        model.predict_proba(batch)
        batched[i] = time.perf_counter_ns() - t0
    p50, p95, p99 = _percentiles(single)
    b50, b95, b99 = _percentiles(batched)
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "single_calls": spec.single_calls,
        "batch_p50": b50,
        "batch_p95": b95,
        "batch_p99": b99,
        "batch_rows": spec.batch_rows,
        "batch_calls": spec.batch_calls,
    }


def batch_peak_memory_mb(model: "Pipeline", batch: pd.DataFrame) -> float:
    """Peak memory (MiB) allocated during one batch predict_proba, traced by tracemalloc
    (Python and numpy allocations; not native buffers that bypass Python's allocators)."""
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.predict_proba(batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return round((peak - base) / 2**20, 4)


# --------------------------------------------------------------------------------- golden


def golden_from_records(text: str, version: str, folder: str | Path) -> str | None:
    """Write JSON records (the component's ``golden_set``) as ``<folder>/<version>.csv`` and
    return its path; None when there are no records."""
    source = f"golden_set ({version or 'unversioned'})"
    try:
        records = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BadInputError(f"{source}: expected a JSON list of records (objects)")
    if not records:
        return None
    name = slug(version) if version else "golden_set"
    path = Path(folder) / f"{name}.csv"
    pd.DataFrame.from_records(records).to_csv(path, index=False)
    return str(path)


def golden_agreement(
    model: "Pipeline", golden: pd.DataFrame, feature_spec: dict[str, Any], threshold: float
) -> tuple[float, list[int]]:
    """Share of golden rows whose prediction equals ``expected_prediction``; mismatched rows."""
    from conveyor.model import predict_proba

    source = golden.attrs.get("source", "golden set")
    missing = [c for c in feature_spec["input_columns"] if c not in golden.columns]
    if missing:
        raise BadInputError(f"{source}: golden set lacks model input column(s) {missing}")
    pred = (predict_proba(model, golden, feature_spec) >= threshold).astype(int)
    expected = golden[GOLDEN_TARGET].to_numpy().astype(int)
    return float(np.mean(pred == expected)), [int(i) for i in np.flatnonzero(pred != expected)]


# ---------------------------------------------------------------------------------- models


def evaluate_model(
    model_dir: str | Path,
    holdout: pd.DataFrame,
    spec: EvaluationSpec,
    golden: pd.DataFrame | None,
    who: str = "candidate",
) -> dict[str, Any]:
    """The evidence block of one model scored on ``holdout`` (sha256 verified before loading)."""
    from conveyor.model import MODEL_FILE, inputs, load_model

    check_threshold(spec.threshold)
    model, feature_spec = load_model(model_dir)
    needed = [feature_spec["label"], *feature_spec["input_columns"]]
    missing = [c for c in needed if c not in holdout.columns]
    if missing:
        raise BadInputError(f"{model_dir}: holdout lacks column(s) {missing} the model needs")
    y = holdout[feature_spec["label"]].to_numpy().astype(int)
    x = inputs(holdout, feature_spec)
    progress.step(f"{who}: scoring {len(x):,} holdout rows")
    proba = np.asarray(model.predict_proba(x)[:, 1])
    pred = (proba >= spec.threshold).astype(int)

    # configuration errors (slices, fairness columns, golden columns) before the slow timing
    slices = slice_metrics(holdout, y, proba, spec)
    fairness = fairness_metrics(holdout, y, pred, spec)
    share = float(max(pred.mean(), 1.0 - pred.mean()))
    agreement: float | None = None
    mismatched: list[int] = []
    if golden is not None:
        agreement, mismatched = golden_agreement(model, golden, feature_spec, spec.threshold)
    metrics = _finite(classification_metrics(y, proba, spec.threshold))
    metrics["majority_class_share"] = _num(share)
    metrics["golden_agreement"] = _num(agreement)

    lat = spec.latency
    progress.step(f"{who}: timing {lat.single_calls} single-row and {lat.batch_calls} batch calls")
    latency = measure_latency(model, x, lat)
    batch = x.iloc[np.resize(np.arange(len(x)), spec.latency.batch_rows)]
    model_file = Path(model_dir) / MODEL_FILE
    return {
        "metrics": metrics,
        "slices": slices,
        "fairness": fairness,
        "latency_ms": latency,
        "sanity": {
            "majority_class_share": _num(share),
            "collapsed": bool(share >= 1.0),
            "golden_agreement": _num(agreement),
            "golden_rows": 0 if golden is None else len(golden),
            "golden_version": None if golden is None else golden.attrs.get("version"),
            "golden_mismatched_rows": mismatched,
        },
        "model": {
            "sha256": (Path(model_dir) / "model.sha256").read_text().split()[0],
            "size_bytes": model_file.stat().st_size,
            "estimator": type(model.named_steps["model"]).__name__,
            "batch_peak_memory_mb": batch_peak_memory_mb(model, batch),
        },
        "confusion_matrix": confusion(y, proba, spec.threshold),
        "roc": roc(y, proba),
    }


def evaluate(
    model_dir: str | Path,
    holdout_path: str | Path,
    spec: EvaluationSpec,
    golden_path: str | None = None,
    champion_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Score the candidate (and the champion, when given) on the same holdout.

    ``golden_path`` is the golden-set CSV, already resolved (``PipelineConfig.resolve``);
    ``spec.golden_set`` itself is not read here, and setting it without ``golden_path`` is an
    error so that a configured check is never skipped silently.
    """
    check_threshold(spec.threshold)
    if spec.golden_set and not golden_path:
        raise BadInputError(
            f"evaluation.golden_set is {spec.golden_set!r} but no golden set path was passed; "
            "resolve it against the config file (PipelineConfig.resolve)"
        )
    holdout = read_table(holdout_path)
    golden = load_golden(golden_path) if golden_path else None
    candidate = evaluate_model(model_dir, holdout, spec, golden)
    champion = None
    if champion_dir is not None:
        champion = evaluate_model(champion_dir, holdout, spec, golden, who="champion")
    return {
        **candidate,
        "threshold": spec.threshold,
        "holdout": {"rows": len(holdout), "sha256": sha256_file(resolve_table(holdout_path))},
        "champion": champion,
    }


# ------------------------------------------------------------------------- flat metrics


def flat_metrics(block: dict[str, Any]) -> dict[str, float]:
    """One model block as flat, finite metrics: the headline metrics under their own names,
    ``slice_<name>_<metric>``, ``latency_<p>_ms`` / ``latency_batch_<p>_ms``,
    ``fairness_<column>_disparate_impact``, ``fairness_<column>_max_gap_<metric>`` and
    ``batch_peak_memory_mb``. Used for the KFP Metrics artifact and (prefixed) for MLflow."""
    out: dict[str, Any] = dict(block["metrics"])
    for name, s in block["slices"].items():
        for k, v in (s["metrics"] or {}).items():
            out[f"slice_{name}_{k}"] = v
    lat = block["latency_ms"]
    for p in ("p50", "p95", "p99"):
        out[f"latency_{p}_ms"] = lat[p]
        out[f"latency_batch_{p}_ms"] = lat[f"batch_{p}"]
    for col, f in block["fairness"].items():
        out[f"fairness_{slug(col)}_disparate_impact"] = f["disparate_impact"]
        for m, v in f["max_gap"].items():
            out[f"fairness_{slug(col)}_max_gap_{m}"] = v
    out["batch_peak_memory_mb"] = block["model"]["batch_peak_memory_mb"]
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


# ------------------------------------------------------------------------------- report


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _delta(a: Any, b: Any) -> str:
    if isinstance(a, bool) or isinstance(b, bool):
        return ""
    if isinstance(a, int) and isinstance(b, int):
        return f"{a - b:+d}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        return f"{a - b:+.4f}"
    return ""


def _side_by_side(
    title: str, cand: dict[str, Any], champ: dict[str, Any] | None, keys: list[str]
) -> list[str]:
    if champ is None:
        lines = [f"| {title} | value |", "|---|---:|"]
        return lines + [f"| {k} | {_fmt(cand.get(k))} |" for k in keys]
    lines = [f"| {title} | candidate | champion | delta |", "|---|---:|---:|---:|"]
    return lines + [
        f"| {k} | {_fmt(a)} | {_fmt(b)} | {_delta(a, b)} |"
        for k, a, b in ((k, cand.get(k), champ.get(k)) for k in keys)
    ]


def render_markdown(evaluation: dict[str, Any]) -> str:
    """The evaluation for the KFP UI: candidate (and champion) metrics, slices, fairness,
    latency and sanity tables."""
    champ = evaluation.get("champion")
    model = evaluation["model"]
    holdout = evaluation.get("holdout") or {}
    lines = [
        "# Holdout evaluation",
        "",
        f"Candidate `{model['estimator']}` sha256 `{model['sha256'][:12]}`, threshold "
        f"{evaluation['threshold']}, holdout {holdout.get('rows', '?')} rows "
        f"(sha256 `{str(holdout.get('sha256', ''))[:12]}`).",
    ]
    if champ:
        lines.append(
            f"Champion `{champ['model']['estimator']}` sha256 `{champ['model']['sha256'][:12]}`, "
            "scored on the same holdout rows."
        )
    else:
        lines.append("No champion to compare with.")
    lines += ["", "## Metrics", ""]
    lines += _side_by_side(
        "metric", evaluation["metrics"], champ and champ["metrics"], sorted(evaluation["metrics"])
    )

    cm = evaluation["confusion_matrix"]["matrix"]
    lines += [
        "",
        "| actual \\ predicted | negative | positive |",
        "|---|---:|---:|",
        f"| negative | {cm[0][0]} | {cm[0][1]} |",
        f"| positive | {cm[1][0]} | {cm[1][1]} |",
    ]

    if evaluation["slices"]:
        lines += ["", "## Slices", ""]
        cols = ["recall", "precision", "roc_auc", "pr_auc", "positive_rate"]
        head = "| slice | where | rows | " + " | ".join(cols)
        if champ:
            head += " | champion recall | champion roc_auc"
        lines += [
            head + " | note |",
            "|---|---|---:|" + "---:|" * (len(cols) + 2 * bool(champ)) + "---|",
        ]
        for name, s in evaluation["slices"].items():
            m = s["metrics"] or {}
            row = f"| {name} | `{s['where']}` | {s['rows']} | " + " | ".join(
                _fmt(m.get(c)) for c in cols
            )
            if champ:
                cm_ = (champ["slices"].get(name) or {}).get("metrics") or {}
                row += f" | {_fmt(cm_.get('recall'))} | {_fmt(cm_.get('roc_auc'))}"
            lines.append(row + f" | {s['note'] or ''} |")

    for col, f in evaluation["fairness"].items():
        lines += ["", f"## Fairness across `{col}`", ""]
        lines += [
            "| group | rows | " + " | ".join(FAIRNESS_METRICS) + " |",
            "|---|---:|---:|---:|---:|",
        ]
        for g in group_order(f):
            v = f["by_group"][g]
            lines.append(
                f"| {g} | {v['rows']} | " + " | ".join(_fmt(v[m]) for m in FAIRNESS_METRICS) + " |"
            )
        gaps = ", ".join(f"{m} {_fmt(v)}" for m, v in f["max_gap"].items())
        lines += ["", f"Max gap between groups: {gaps}. Disparate impact (min / max selection "
                  f"rate): {_fmt(f['disparate_impact'])}."]  # fmt: skip
        if champ and col in champ["fairness"]:
            lines.append(
                f"Champion disparate impact: {_fmt(champ['fairness'][col]['disparate_impact'])}."
            )
        if f["note"]:
            lines.append(f"Note: {f['note']}.")

    lat = evaluation["latency_ms"]
    lines += ["", "## Latency (ms, predict_proba)", ""]
    keys = ["p50", "p95", "p99", "batch_p50", "batch_p95", "batch_p99"]
    lines += _side_by_side("latency", lat, champ and champ["latency_ms"], keys)
    lines += [
        "",
        f"{lat['single_calls']} single-row calls; {lat['batch_calls']} batch calls of "
        f"{lat['batch_rows']} rows.",
        "",
        "## Sanity and model",
        "",
    ]
    sanity = {**evaluation["sanity"], **{k: v for k, v in model.items() if k != "sha256"}}
    sanity.pop("golden_mismatched_rows", None)
    champ_sanity = champ and {**champ["sanity"], **champ["model"]}
    lines += _side_by_side("check", sanity, champ_sanity, list(sanity))
    mismatched = evaluation["sanity"]["golden_mismatched_rows"]
    if mismatched:
        lines += ["", f"Golden rows predicted differently than expected: {mismatched}."]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- stage
