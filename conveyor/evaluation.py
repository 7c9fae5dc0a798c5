"""evaluate: holdout metrics written as evaluation.json plus the curves the KFP UI draws.

This is the first version (overall metrics, confusion matrix, ROC); slices, fairness, latency
and champion comparison extend the same ``evaluation.json`` shape.
"""

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from conveyor.config import TrackingSpec
from conveyor.errors import BadInputError
from conveyor.registry import tracker_for
from conveyor.tables import read_table, write_json, write_text

ROC_POINTS = 101  # KFP's ROC view gets slow past a few hundred points


def check_threshold(threshold: float) -> None:
    """A decision threshold outside (0, 1) makes every metric meaningless: refuse it."""
    if not 0.0 < threshold < 1.0:
        raise BadInputError(f"threshold: {threshold} is outside the open interval (0, 1)")


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Headline binary-classification metrics at ``threshold``."""
    y = np.asarray(y).astype(int)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    pred = (proba >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(y.mean()) if len(y) else math.nan,
        "predicted_positive_rate": float(pred.mean()) if len(y) else math.nan,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
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


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (round(v, 6) if math.isfinite(v) else None) for k, v in d.items()}


def evaluate(model_dir: str | Path, holdout_path: str | Path, threshold: float) -> dict[str, Any]:
    """Score the saved model on the holdout; returns the evaluation.json document."""
    from conveyor.training import MODEL_FILE, load_model, predict_proba

    check_threshold(threshold)
    model, spec = load_model(model_dir)  # verifies the sha256 first
    holdout = read_table(holdout_path)
    missing = [c for c in [spec["label"], *spec["input_columns"]] if c not in holdout.columns]
    if missing:
        raise BadInputError(f"{holdout_path}: holdout lacks column(s) {missing} the model needs")
    y = holdout[spec["label"]].to_numpy()
    proba = predict_proba(model, holdout, spec)
    model_file = Path(model_dir) / MODEL_FILE
    return {
        "metrics": _finite(classification_metrics(y, proba, threshold)),
        "slices": {},
        "fairness": {},
        "threshold": threshold,
        "confusion_matrix": confusion(y, proba, threshold),
        "roc": roc(y, proba),
        "model": {
            "sha256": (Path(model_dir) / "model.sha256").read_text().split()[0],
            "size_bytes": model_file.stat().st_size,
            "estimator": type(model.named_steps["model"]).__name__,
        },
    }


def render_markdown(evaluation: dict[str, Any]) -> str:
    """Holdout metrics as a Markdown table for the KFP UI."""
    m = evaluation["metrics"]
    lines = [
        "# Holdout evaluation",
        "",
        f"Model `{evaluation['model']['estimator']}` sha256 `{evaluation['model']['sha256'][:12]}`,"
        f" threshold {evaluation['threshold']}.",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {'n/a' if v is None else f'{v:.4f}'} |" for k, v in sorted(m.items())]
    cm = evaluation["confusion_matrix"]["matrix"]
    lines += [
        "",
        "| actual \\ predicted | negative | positive |",
        "|---|---:|---:|",
        f"| negative | {cm[0][0]} | {cm[0][1]} |",
        f"| positive | {cm[1][0]} | {cm[1][1]} |",
    ]
    return "\n".join(lines) + "\n"


def evaluate_stage(
    model_dir: str | Path,
    holdout_path: str | Path,
    threshold: float,
    evaluation_path: str | Path,
    report_path: str | Path,
    tracking: TrackingSpec | None = None,
    run_id: str = "",
) -> dict[str, Any]:
    """The evaluate stage: evaluation.json + Markdown, attached to the training run if given."""
    result = evaluate(model_dir, holdout_path, threshold)
    write_json(result, evaluation_path)
    write_text(render_markdown(result), report_path)
    if run_id and tracking is not None:
        tracker = tracker_for(tracking.uri, tracking.experiment, tracking.artifact_root)
        metrics = {f"test_{k}": v for k, v in result["metrics"].items() if v is not None}
        tracker.log(run_id, metrics=metrics, tags={"conveyor.evaluated": "true"})
        with tempfile.TemporaryDirectory() as tmp:
            write_json(result, Path(tmp) / "evaluation.json")
            write_text(render_markdown(result), Path(tmp) / "evaluation.md")
            tracker.log_artifacts(run_id, tmp, "evaluation")
    return result
