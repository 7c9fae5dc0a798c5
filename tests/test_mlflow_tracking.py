"""Tracking against a real `mlflow server` on 127.0.0.1: what train and evaluate leave behind."""

import numpy as np
import pytest

from conveyor import model as model_files
from conveyor.config import TrackingSpec
from conveyor.errors import TrackingError
from conveyor.registry import tracker_for
from conveyor.tables import read_table
from tests.conftest import train_and_evaluate

pytestmark = pytest.mark.integration


@pytest.fixture
def tracking(mlflow_server, request):
    return TrackingSpec(uri=mlflow_server, experiment=f"it-{request.node.name}"[:60])


def test_train_and_evaluate_leave_a_complete_run(tmp_path, small_df, config, tracking):
    from mlflow.tracking import MlflowClient

    prep, trained, _ = train_and_evaluate(
        tmp_path, small_df, config, tracking, data_fingerprint="f" * 64
    )

    client = MlflowClient(tracking.uri)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["estimator"] == "hist_gradient_boosting"
    assert run.data.params["model.max_iter"] == "40"
    assert run.data.params["seed"] == "3"
    assert run.data.tags["data.sha256"] == "f" * 64
    assert run.data.tags["model.sha256"] == trained.model_sha256
    assert run.data.metrics["validation_roc_auc"] > 0.75
    assert "test_roc_auc" in run.data.metrics
    serving = {f.path for f in client.list_artifacts(trained.run_id, "serving")}
    assert serving == {"serving/model.joblib", "serving/model.sha256", "serving/feature_spec.json"}
    assert {f.path for f in client.list_artifacts(trained.run_id, "evaluation")} == {
        "evaluation/evaluation.json",
        "evaluation/evaluation.md",
    }

    # The MLflow model and our model.joblib are the same model.
    import mlflow.sklearn

    logged = mlflow.sklearn.load_model(f"runs:/{trained.run_id}/model")
    ours, spec = model_files.load_model(tmp_path / "model")
    holdout = read_table(prep.holdout)
    np.testing.assert_allclose(
        model_files.predict_proba(logged, holdout, spec),
        model_files.predict_proba(ours, holdout, spec),
    )


def test_unreachable_tracking_server_is_a_clear_error():
    with pytest.raises(TrackingError, match=r"MLflow at http://127\.0\.0\.1:9: cannot connect"):
        tracker_for("http://127.0.0.1:9", "x")


def test_missing_tracking_uri_says_what_to_set(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingError, match="set MLFLOW_TRACKING_URI"):
        tracker_for("", "x")
