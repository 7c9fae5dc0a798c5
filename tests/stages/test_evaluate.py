"""evaluate: evaluation.json and Markdown written, metrics and files logged to the run."""

import json
import math

import pytest

from conveyor.config import TrackingSpec
from conveyor.registry import MemoryTracker
from conveyor.tables import read_table, sha256_file
from tests.conftest import train_and_evaluate

pytestmark = pytest.mark.unit


def test_writes_json_markdown_and_tracks(tmp_path, small_df, config):
    tracking = TrackingSpec(uri="memory://", experiment="t")
    prep, trained, result = train_and_evaluate(tmp_path, small_df, config, tracking)
    text = (tmp_path / "evaluation.json").read_text()
    doc = json.loads(text)
    assert doc == json.loads(json.dumps(result, allow_nan=False))  # no NaN anywhere
    assert set(doc) == {
        "metrics", "slices", "fairness", "latency_ms", "sanity", "model", "confusion_matrix",
        "roc", "threshold", "holdout", "champion",
    }  # fmt: skip
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert 0 <= doc["metrics"][key] <= 1 or key == "log_loss"
    holdout = read_table(prep.holdout)
    assert doc["metrics"]["rows"] == len(holdout) == doc["holdout"]["rows"]
    assert doc["holdout"]["sha256"] == sha256_file(prep.holdout / "data.parquet")
    assert doc["model"]["sha256"] == trained.model_sha256
    assert doc["champion"] is None
    assert set(doc["slices"]) == {
        "high_value", "online", "channel_atm", "channel_online", "channel_phone", "channel_pos",
    }  # fmt: skip
    assert set(doc["fairness"]) == {"group"}
    assert doc["sanity"]["golden_version"] == "golden_v1"
    report = (tmp_path / "report.md").read_text()
    for part in ("| roc_auc |", "## Slices", "## Fairness across `group`", "## Latency", "p95"):
        assert part in report
    run = MemoryTracker.runs[trained.run_id]
    m = run["metrics"]
    assert m["test_roc_auc"] == doc["metrics"]["roc_auc"]
    assert m["test_golden_agreement"] == 1.0
    assert m["test_slice_online_recall"] == doc["slices"]["online"]["metrics"]["recall"]
    assert m["test_latency_p95_ms"] == doc["latency_ms"]["p95"]
    assert m["test_latency_batch_p99_ms"] == doc["latency_ms"]["batch_p99"]
    assert m["test_fairness_group_disparate_impact"] == doc["fairness"]["group"]["disparate_impact"]
    assert all(math.isfinite(v) for v in m.values())
    assert run["artifacts"]["evaluation"] == ["evaluation.json", "evaluation.md"]
