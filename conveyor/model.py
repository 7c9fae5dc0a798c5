"""A saved model, apart from how it was trained or judged: ``model.joblib`` (the one file
KServe's sklearn runtime loads) beside ``feature_spec.json`` and ``model.sha256``
(``sha256sum -c`` format), so whoever loads it verifies the bytes first.

Training writes it; evaluation, drift checks, serving and the rollout read it. Keeping it
here (not in ``training``) is what lets ``evaluation`` score a model without importing the
trainer that imports ``evaluation`` for its metrics.
"""

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from conveyor.errors import BadInputError, ConveyorError
from conveyor.features import feature_frame
from conveyor.tables import sha256_file, write_json

__all__ = [
    "CHECKSUM_FILE",
    "MODEL_FILE",
    "SPEC_FILE",
    "inputs",
    "load_model",
    "predict_proba",
    "save_model",
]

MODEL_FILE = "model.joblib"
CHECKSUM_FILE = "model.sha256"
SPEC_FILE = "feature_spec.json"


def save_model(model: Pipeline, feature_spec: dict[str, Any], out_dir: str | Path) -> str:
    """Write model.joblib + feature_spec.json + model.sha256; returns the model's sha256.

    feature_spec.json gains ``sklearn_version``: the release that pickled model.joblib, which
    is the only one guaranteed to unpickle it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILE
    joblib.dump(model, path)
    digest = sha256_file(path)
    (out / CHECKSUM_FILE).write_text(f"{digest}  {MODEL_FILE}\n")
    write_json({**feature_spec, "sklearn_version": sklearn.__version__}, out / SPEC_FILE)
    return digest


def load_model(model_dir: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    """Load a saved model after verifying its sha256; a mismatch never gets unpickled."""
    d = Path(model_dir)
    path, check = d / MODEL_FILE, d / CHECKSUM_FILE
    if not path.is_file() or not check.is_file():
        raise BadInputError(
            f"{d}: not a Conveyor model folder (needs {MODEL_FILE}, {CHECKSUM_FILE})"
        )
    expected = check.read_text().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise ConveyorError(
            f"{path}: sha256 {actual} does not match {CHECKSUM_FILE} ({expected}); "
            "refusing to load a model that changed after training"
        )
    spec = json.loads((d / SPEC_FILE).read_text()) if (d / SPEC_FILE).is_file() else {}
    return joblib.load(path), spec


def inputs(df: pd.DataFrame, feature_spec: dict[str, Any]) -> pd.DataFrame:
    """The model's input columns of ``df``, typed as in training (from feature_spec.json)."""
    return feature_frame(df, feature_spec["numeric"], feature_spec["categorical"])


def predict_proba(model: Pipeline, df: pd.DataFrame, feature_spec: dict[str, Any]) -> np.ndarray:
    """Positive-class scores for rows of ``df``."""
    return np.asarray(model.predict_proba(inputs(df, feature_spec))[:, 1])
