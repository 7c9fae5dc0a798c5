"""train: one sklearn Pipeline (prepared preprocessing + estimator), seeded, tracked in MLflow.

The model is saved by ``conveyor.model``: ONE ``model.joblib`` (the layout KServe's sklearn
runtime loads), beside ``feature_spec.json`` and ``model.sha256``, so whoever serves it can
verify the bytes first. ``feature_spec.json`` records the scikit-learn that pickled the model
(``sklearn_version``; also the run tag ``model.sklearn_version``): scikit-learn only promises to
unpickle within one release, so deploy and the serving runtime compare it with their own.
"""

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from conveyor import __version__, distributions, progress
from conveyor.config import TrackingSpec, TrainingSpec
from conveyor.errors import BadInputError, TrainingError
from conveyor.evaluation import check_threshold, classification_metrics
from conveyor.model import SPEC_FILE, inputs, save_model
from conveyor.registry import (
    PROFILE_FILE,
    REFERENCE_PATH,
    SKLEARN_VERSION_TAG,
    TRAINING_KEY_TAG,
    tracker_for,
)
from conveyor.tables import read_table, resolve_table, sha256_file, write_json

__all__ = ["TrainResult", "build_model", "train"]


ESTIMATORS: dict[str, tuple[type, dict[str, Any]]] = {
    "logistic_regression": (LogisticRegression, {"max_iter": 2000, "C": 1.0}),
    "hist_gradient_boosting": (
        HistGradientBoostingClassifier,
        {"max_iter": 200, "learning_rate": 0.1, "early_stopping": False},
    ),
}


def build_estimator(spec: TrainingSpec) -> ClassifierMixin:
    """The configured estimator with defaults, user params and the fixed seed."""
    cls, defaults = ESTIMATORS[spec.estimator]
    allowed = set(cls().get_params())
    unknown = sorted(set(spec.params) - allowed)
    if unknown:
        raise BadInputError(
            f"training.params: unknown parameter(s) {unknown} for {spec.estimator}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    params = {**defaults, **spec.params, "random_state": spec.seed}
    try:
        estimator = cls(**params)
        estimator._validate_params()  # sklearn's own bound checks, before any data is touched
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"training.params for {spec.estimator}: {exc}") from exc
    return estimator


def build_model(preprocessor: Any, spec: TrainingSpec) -> Pipeline:
    """Pipeline(preprocess, model); the preprocessing fitted in prepare_features stays frozen."""
    return Pipeline(
        [("preprocess", FrozenEstimator(preprocessor)), ("model", build_estimator(spec))]
    )


@dataclass
class TrainResult:
    run_id: str
    model_sha256: str
    model_dir: Path
    validation_metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)


def train(
    train_path: str | Path,
    validation_path: str | Path,
    prep_dir: str | Path,
    spec: TrainingSpec,
    tracking: TrackingSpec,
    out_dir: str | Path,
    data_fingerprint: str = "",
    run_name: str = "train",
    threshold: float = 0.5,
    training_key: str = "",
) -> TrainResult:
    """Fit, save and track one model. The MLflow run is marked FAILED if anything breaks."""
    check_threshold(threshold)
    prep = Path(prep_dir)
    missing = [n for n in (SPEC_FILE, "preprocessor.joblib") if not (prep / n).is_file()]
    if missing:
        raise BadInputError(f"{prep}: not a prepare_features output folder (missing {missing})")
    feature_spec = json.loads((prep / SPEC_FILE).read_text())
    preprocessor = joblib.load(prep / "preprocessor.joblib")
    model = build_model(preprocessor, spec)  # config errors surface before a run is opened
    train_df, val_df = read_table(train_path), read_table(validation_path)
    label = feature_spec["label"]
    if train_df[label].nunique() < 2:
        raise TrainingError(f"train split: label {label!r} has a single class; cannot train")

    tracker = tracker_for(tracking.uri, tracking.experiment, tracking.artifact_root)
    fingerprints = {
        "data.sha256": data_fingerprint,
        "data.train.sha256": sha256_file(resolve_table(train_path)),
        "data.validation.sha256": sha256_file(resolve_table(validation_path)),
        "features.spec.sha256": sha256_file(prep / SPEC_FILE),
        **({TRAINING_KEY_TAG: training_key} if training_key else {}),
    }
    run_id = tracker.start_run(
        run_name,
        {"conveyor.version": __version__, "conveyor.stage": "train", **fingerprints},
    )
    try:
        x_train = inputs(train_df, feature_spec)
        shape = f"{len(x_train):,} rows x {x_train.shape[1]} inputs"
        progress.step(f"fitting {spec.estimator} on {shape}")
        model.fit(x_train, train_df[label].to_numpy())
        progress.step(f"scoring {len(val_df):,} validation rows")
        proba = model.predict_proba(inputs(val_df, feature_spec))[:, 1]
        val_metrics = classification_metrics(val_df[label].to_numpy(), proba, threshold)
        digest = save_model(model, feature_spec, out_dir)
        params = {
            "estimator": spec.estimator,
            "seed": spec.seed,
            **{f"model.{k}": v for k, v in model.named_steps["model"].get_params().items()},
            "features.numeric": len(feature_spec["numeric"]),
            "features.categorical": len(feature_spec["categorical"]),
            "features.out": len(feature_spec["features_out"]),
            "rows.train": len(train_df),
            "rows.validation": len(val_df),
        }
        tracker.log(
            run_id,
            params=params,
            metrics={f"validation_{k}": v for k, v in val_metrics.items() if np.isfinite(v)},
            tags={"model.sha256": digest, SKLEARN_VERSION_TAG: sklearn.__version__},
        )
        tracker.log_artifacts(run_id, out_dir, "serving")
        with tempfile.TemporaryDirectory(prefix="conveyor-reference-") as tmp:
            write_json(reference_profile(train_df, feature_spec, proba), Path(tmp) / PROFILE_FILE)
            tracker.log_artifacts(run_id, tmp, REFERENCE_PATH)
        example = x_train.head(5)
        tracker.log_sklearn_model(
            run_id, model, "model", example, [f"scikit-learn=={sklearn.__version__}"]
        )
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        shutil.rmtree(out_dir, ignore_errors=True)  # no model file from a failed run
        raise
    tracker.end_run(run_id)
    return TrainResult(run_id, digest, Path(out_dir), val_metrics, params)


def reference_profile(
    train_df: pd.DataFrame, feature_spec: dict[str, Any], scores: np.ndarray
) -> dict[str, Any]:
    """What check_drift compares a later batch with: the model's input features on its train
    split, and its scores on the validation split (rows it did not fit)."""
    profile = distributions.profile_frame(
        train_df, [*feature_spec["numeric"], *feature_spec["categorical"]]
    )
    profile["source"] = "train split (features), validation split (scores)"
    profile["score"] = distributions.profile_column(pd.Series(scores, name="score"))
    return profile
