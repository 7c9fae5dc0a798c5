"""The evaluate component body, called through ``python_func``: the evaluation spec and golden
set arrive as strings (as the pipeline passes them), the champion as an optional Model."""

import json

import pytest
from kfp import dsl

from conveyor import evaluation, features, training
from conveyor.components.evaluate.component import evaluate
from conveyor.config import TrackingSpec, TrainingSpec
from conveyor.registry import MemoryTracker
from tests.conftest import FAST_LATENCY, fast_evaluation

pytestmark = pytest.mark.unit


def test_evaluate_component_with_golden_set_and_champion(tmp_path, small_df, config):
    prep = features.FeatureOutputs.under(tmp_path / "prep")
    features.prepare(small_df, config.features, prep)
    tracking = TrackingSpec(uri="memory://", experiment="component")
    runs = {}
    for name, spec in (
        ("candidate", TrainingSpec(params={"max_iter": 40}, seed=3)),
        ("champion", TrainingSpec(estimator="logistic_regression")),
    ):
        result = training.train(
            prep.train, prep.validation, prep.preprocessing, spec, tracking, tmp_path / name
        )
        runs[name] = result.run_id

    def art(cls, name, uri=None):
        return cls(name=name, uri=str(uri or tmp_path / "out" / name), metadata={})

    inputs = evaluation.component_inputs(
        fast_evaluation(config),
        config.resolve(config.evaluation.golden_set),
    )
    out = {
        "evaluation": art(dsl.Artifact, "evaluation"),
        "metrics": art(dsl.Metrics, "metrics"),
        "classification_metrics": art(dsl.ClassificationMetrics, "cm"),
        "report": art(dsl.Markdown, "report"),
    }
    (tmp_path / "out").mkdir()
    evaluate.python_func(
        model=art(dsl.Model, "model", tmp_path / "candidate"),
        holdout=art(dsl.Dataset, "holdout", prep.holdout),
        champion_model=art(dsl.Model, "champion", tmp_path / "champion"),
        mlflow_tracking_uri="memory://",
        mlflow_run_id=runs["candidate"],
        **inputs,
        **out,
    )
    doc = json.loads((tmp_path / "out" / "evaluation").read_text())
    assert doc["sanity"]["golden_version"] == "golden_v1"
    assert doc["sanity"]["golden_agreement"] == 1.0
    assert doc["latency_ms"]["single_calls"] == FAST_LATENCY["single_calls"]
    assert doc["champion"]["model"]["estimator"] == "LogisticRegression"
    assert out["evaluation"].metadata == {
        "model_sha256": doc["model"]["sha256"],
        "holdout_rows": doc["holdout"]["rows"],
        "champion_sha256": doc["champion"]["model"]["sha256"],
    }
    logged = out["metrics"].metadata
    assert logged["roc_auc"] == doc["metrics"]["roc_auc"]
    assert logged["golden_agreement"] == 1.0
    assert logged["slice_online_recall"] == doc["slices"]["online"]["metrics"]["recall"]
    assert logged["latency_p99_ms"] == doc["latency_ms"]["p99"]
    assert "slice_high_value_recall" not in logged  # too few rows: null, not logged
    run = MemoryTracker.runs[runs["candidate"]]
    assert run["metrics"]["champion_test_roc_auc"] == doc["champion"]["metrics"]["roc_auc"]
    assert run["tags"]["conveyor.champion.sha256"] == doc["champion"]["model"]["sha256"]
    assert "| metric | candidate | champion | delta |" in (tmp_path / "out" / "report").read_text()
