"""evaluate: known metric values and the evaluation.json shape."""

import json
import math

import numpy as np
import pytest

from conveyor import evaluation, features
from conveyor.config import TrackingSpec
from conveyor.registry import MemoryTracker
from tests.conftest import train_and_evaluate

pytestmark = pytest.mark.unit


def test_metrics_match_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = evaluation.classification_metrics(y, p, 0.5)
    assert m["accuracy"] == 0.5
    assert m["precision"] == 0.5
    assert m["recall"] == 0.5
    assert m["roc_auc"] == 0.75
    expected_ll = -np.mean([np.log(0.9), np.log(0.4), np.log(0.4), np.log(0.9)])
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert evaluation.confusion(y, p, 0.5)["matrix"] == [[1, 1], [1, 1]]


def test_single_class_holdout_has_no_auc():
    m = evaluation.classification_metrics(np.zeros(5), np.full(5, 0.2), 0.5)
    assert math.isnan(m["roc_auc"])


def test_roc_is_thinned_and_finite():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    curve = evaluation.roc(y, rng.random(5000))
    assert len(curve["fpr"]) <= evaluation.ROC_POINTS
    assert all(math.isfinite(t) for t in curve["thresholds"])


def test_evaluate_stage_writes_json_markdown_and_tracks(tmp_path, small_df, config):
    tracking = TrackingSpec(uri="memory://", experiment="t")
    prep, trained, result = train_and_evaluate(tmp_path, small_df, config, tracking)
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc == json.loads(json.dumps(result))
    assert set(doc) >= {"metrics", "slices", "fairness", "model", "confusion_matrix", "roc"}
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert 0 <= doc["metrics"][key] <= 1 or key == "log_loss"
    assert doc["metrics"]["rows"] == len(features.read_table(prep.holdout))
    assert doc["model"]["sha256"] == trained.model_sha256
    assert "| roc_auc |" in (tmp_path / "report.md").read_text()
    run = MemoryTracker.runs[trained.run_id]
    assert run["metrics"]["test_roc_auc"] == doc["metrics"]["roc_auc"]
    assert run["artifacts"]["evaluation"] == ["evaluation.json", "evaluation.md"]
