"""The @dsl.component bodies, called in-process through ``python_func``: each wrapper hands
the engine its paths and records typed outputs (metadata, Metrics, ClassificationMetrics)."""

import json

import pytest
from kfp import dsl

from conveyor.components.evaluate.component import evaluate
from conveyor.components.prepare_features.component import prepare_features
from conveyor.components.train.component import train
from conveyor.components.validate_data.component import validate_data
from conveyor.registry import MemoryTracker
from conveyor.sample import generate
from conveyor.tables import write_table
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit


def _artifact(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name), metadata={})


def test_wrappers_chain_and_record_typed_outputs(tmp_path, config):
    A = lambda cls, name: _artifact(cls, tmp_path, name)  # noqa: E731
    batch = dsl.Dataset(uri=str(write_table(generate(3000, seed=9), tmp_path / "batch.parquet")))
    validated = A(dsl.Dataset, "validated")
    out = validate_data.python_func(
        batch=batch,
        contract=(EXAMPLES / "contract.yaml").read_text(),
        dataset=validated,
        report=A(dsl.Markdown, "report"),
        report_json=A(dsl.Artifact, "report_json"),
    )
    assert out.rows == 3000
    assert validated.metadata == {
        "rows": 3000,
        "sha256": out.data_sha256,
        "contract": "fraud-transactions",
    }

    splits = {n: A(dsl.Dataset, n) for n in ("train", "validation", "holdout")}
    preprocessing = A(dsl.Model, "preprocessing")
    prepare_features.python_func(
        dataset=validated,
        features=json.dumps(config.features.model_dump(mode="json")),
        preprocessing=preprocessing,
        feature_profile=A(dsl.Artifact, "profile"),
        **splits,
    )
    assert sum(s.metadata["rows"] for s in splits.values()) == 3000
    assert preprocessing.metadata["features_out"] > 16

    model, metrics = A(dsl.Model, "model"), A(dsl.Metrics, "metrics")
    trained = train.python_func(
        train=splits["train"],
        validation=splits["validation"],
        preprocessing=preprocessing,
        training='{"estimator": "logistic_regression", "seed": 1}',
        model=model,
        metrics=metrics,
        mlflow_tracking_uri="memory://",
        data_sha256=out.data_sha256,
    )
    assert model.metadata["sha256"] == trained.model_sha256
    assert MemoryTracker.runs[trained.run_id]["tags"]["data.sha256"] == out.data_sha256
    assert "validation_roc_auc" in metrics.metadata

    scores, cm = A(dsl.Metrics, "scores"), A(dsl.ClassificationMetrics, "cm")
    evaluation = A(dsl.Artifact, "evaluation")
    evaluate.python_func(
        model=model,
        holdout=splits["holdout"],
        evaluation=evaluation,
        metrics=scores,
        classification_metrics=cm,
        report=A(dsl.Markdown, "eval_report"),
        mlflow_tracking_uri="memory://",
        mlflow_run_id=trained.run_id,
    )
    doc = json.loads((tmp_path / "evaluation").read_text())
    assert scores.metadata["roc_auc"] == doc["metrics"]["roc_auc"]
    rows = cm.metadata["confusionMatrix"]["rows"]
    assert sum(sum(r["row"]) for r in rows) == splits["holdout"].metadata["rows"]
    assert cm.metadata["confidenceMetrics"]
